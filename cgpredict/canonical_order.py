"""Rules 6 and 7 of the canonical form: commutative operand order and a structural node order.

Pipeline position: model → CG → **canonical CG** (:mod:`cgpredict.canonical`, whose last step this
is) → features → predictor → ranking/search.

Each node gets an ancestry hash (its own content and its inputs', commutative operands as a
multiset) and a descendancy hash (its content and its readers', with the slot each reads it at).
Commutative operands are sorted by them, and the nodes are put in the topological order that always
takes the ready node of smallest (ancestry, descendancy), network inputs first. The hashes are
truncated SHA-256 of compact, key-sorted JSON (:func:`_digest`), so the order is the same in every
process and on every machine; the JSON texts are written directly where that is cheaper (hex digests
and ints need no escaping), byte for byte what ``json.dumps`` writes.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from json.encoder import encode_basestring_ascii as _json_str  # what json.dumps writes a str as

from cgpredict.cg import Node

__all__ = ["order_nodes", "COMMUTATIVE"]

#: ops whose activation operands may be reordered without changing the result
COMMUTATIVE: frozenset[str] = frozenset({"add", "mul"})


def _digest(*parts: object) -> str:
    """The first 32 hex digits of the SHA-256 of ``parts`` as compact, key-sorted JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def _label(node: Node) -> str:
    """Hash of a node's own content (what :meth:`CG.hash` keeps, without ids and inputs)."""
    data = node.to_dict()
    for key in ("id", "inputs", "in_shapes", "name", "macs"):
        data.pop(key)
    if node.op != "unknown":
        data.pop("source_op")
    return _digest(data)


def _ints_json(shape: object) -> str | None:
    """Compact JSON of a tuple/list of plain ints (``None`` for anything else)."""
    if type(shape) not in (tuple, list) or any(type(d) is not int for d in shape):  # type: ignore[union-attr]
        return None
    return "[" + ",".join(map(str, shape)) + "]"  # type: ignore[call-overload]


def _fast_label(node: Node) -> str | None:
    """:func:`_label` with its JSON written field by field (keys in sorted order).

    Covers nodes whose fields have their declared types (shapes of plain ints, ``int`` groups and
    params, ``bool`` bias, ``str`` op and source); returns ``None`` otherwise, for :func:`_label`.
    """
    shapes = [_ints_json(s) for s in (node.dilation, node.kernel, node.out_shape, node.padding, node.stride)]
    weight = "null" if node.weight_shape is None else _ints_json(node.weight_shape)
    if (None in shapes or weight is None or type(node.groups) is not int or type(node.params) is not int
            or type(node.bias) is not bool or type(node.op) is not str or type(node.source_op) is not str):
        return None
    dilation, kernel, out_shape, padding, stride = shapes
    attrs = json.dumps(node.attrs, sort_keys=True, separators=(",", ":")) if node.attrs else "{}"
    source = f'"source_op":{_json_str(node.source_op)},' if node.op == "unknown" else ""
    text = (f'[{{"attrs":{attrs},"bias":{"true" if node.bias else "false"},"dilation":{dilation},'
            f'"groups":{node.groups},"kernel":{kernel},"op":{_json_str(node.op)},"out_shape":{out_shape},'
            f'"padding":{padding},"params":{node.params},{source}"stride":{stride},"weight_shape":{weight}}}]')
    return hashlib.sha256(text.encode()).hexdigest()[:32]


#: labels by content key (:func:`_labels`), shared by all calls: a family's CGs repeat their nodes
_LABEL_CACHE: dict[object, str] = {}
_LABEL_CACHE_SIZE = 1 << 16


def _labels(nodes: list[Node]) -> list[str]:
    """:func:`_label` of every node, computed once per distinct content (kept across calls).

    The cache key is the tuple of the fields the label hashes, with the types of the scalar ones
    (``True == 1`` would otherwise share a key) and the ``repr`` of non-empty attrs; shapes are
    tuples of ints (:data:`cgpredict.cg.Shape`, as :class:`~cgpredict.cg.CGBuilder` and
    :meth:`Node.from_dict <cgpredict.cg.Node.from_dict>` store them), so equal keys mean equal JSON
    and equal labels. A node with an unhashable field (a list for a shape) is keyed by its ``repr``.
    Most nodes of a cell-based network repeat a few contents.
    """
    cache = _LABEL_CACHE
    if len(cache) > _LABEL_CACHE_SIZE:
        cache.clear()
    out = []
    for node in nodes:
        op, groups, bias, params, attrs = node.op, node.groups, node.bias, node.params, node.attrs
        key: object = (op, node.out_shape, node.source_op if op == "unknown" else None, node.weight_shape,
                       node.kernel, node.stride, node.padding, node.dilation, groups, type(groups), bias,
                       type(bias), params, type(params), repr(attrs) if attrs else None)
        try:
            label = cache.get(key)
        except TypeError:  # an unhashable field: its repr says as much as the JSON
            key = repr(key)
            label = cache.get(key)
        if label is None:
            label = cache[key] = _fast_label(node) or _label(node)
        out.append(label)
    return out


def _up_text(label: str, ins: list[str]) -> str:
    """The JSON that ``_digest(label, ins)`` hashes, for hex-digest strings (no escaping needed)."""
    return '["' + label + '",["' + '","'.join(ins) + '"]]' if ins else '["' + label + '",[]]'


def _down_text(label: str, outs: list[tuple[str, int]]) -> str:
    """The JSON that ``_digest(label, outs)`` hashes, for (hex digest, int) pairs."""
    return '["' + label + '",[' + ",".join(['["' + d + '",' + str(slot) + "]" for d, slot in outs]) + "]]"


def order_nodes(nodes: list[Node]) -> list[Node]:
    """Rules 6 and 7: sort commutative operands and pick a structural topological order.

    ``nodes`` (copies owned by :func:`cgpredict.canonical.canonicalize`) are in a topological order with ``id`` =
    position; they are reordered and renumbered in place and returned in the new order. Nodes whose
    ancestry and descendancy hash alike are interchangeable; between them the given order decides.

    A node's ancestry hash is ``_digest(label, [ancestry hashes of its inputs])`` (sorted for a
    commutative op); its descendancy hash is ``_digest(label, sorted([descendancy hash of the
    consumer, slot]))`` with one pair per consumer occurrence and slot (a consumer reading it at
    ``k`` slots contributes each of them ``k`` times; slot -1 at a commutative op). The JSON of
    these is written directly (:func:`_up_text`, :func:`_down_text`).
    """
    n = len(nodes)
    sha256 = hashlib.sha256
    labels = _labels(nodes)
    succ: list[list[int]] = [[] for _ in nodes]
    reads: list[list[tuple[int, int]]] = [[] for _ in nodes]  # (consumer, slot or -1) per read
    up: list[str] = [""] * n
    for node in nodes:  # ancestry: commutative operands as a multiset
        c, inputs = node.id, node.inputs
        commutative = node.op in COMMUTATIVE
        for slot, src in enumerate(inputs):
            succ[src].append(c)
            reads[src].append((c, -1 if commutative else slot))
        if len(inputs) > 1 and len(set(inputs)) < len(inputs):
            for src in set(inputs):
                if (times := inputs.count(src)) > 1:
                    reads[src].extend([pair for pair in reads[src] if pair[0] == c] * (times - 1))
        if len(inputs) == 1:  # the common case, written inline: _up_text(label, [up of the input])
            text = '["' + labels[c] + '",["' + up[inputs[0]] + '"]]'
        else:
            ins = [up[i] for i in inputs]
            text = _up_text(labels[c], sorted(ins) if commutative else ins)
        up[c] = sha256(text.encode()).hexdigest()[:32]
    down: list[str] = [""] * n
    for i in range(n - 1, -1, -1):  # descendancy, with the slot each consumer reads this node at
        read = reads[i]
        if len(read) == 1:  # the common case, written inline: _down_text(label, [(down, slot)])
            c, slot = read[0]
            text = '["' + labels[i] + '",[["' + down[c] + '",' + str(slot) + "]]]"
        else:
            text = _down_text(labels[i], sorted([(down[c], slot) for c, slot in read]))
        down[i] = sha256(text.encode()).hexdigest()[:32]
    key = list(zip(up, down))
    for node in nodes:
        if node.op in COMMUTATIVE and len(node.inputs) > 1:
            node.inputs = sorted(node.inputs, key=key.__getitem__)
    # the heap holds ints: a non-input node's rank in (key, id) order (what tuples of them compared
    # as), an input's place among the inputs minus their count (inputs first, in their own order)
    by_rank = sorted(range(n), key=key.__getitem__)  # stable: equal keys stay in id order
    rank = [0] * n
    for r, i in enumerate(by_rank):
        rank[i] = r
    indegree = [len(node.inputs) for node in nodes]
    first_inputs = [node.id for node in nodes if node.op == "input"]
    k = len(first_inputs)
    heap = list(range(-k, 0))
    heap += [rank[node.id] for node in nodes if indegree[node.id] == 0 and node.op != "input"]
    heapq.heapify(heap)
    order: list[int] = []
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        v = pop(heap)
        i = first_inputs[v + k] if v < 0 else by_rank[v]
        order.append(i)
        for c in succ[i]:  # once per read: the consumer is ready after its last one
            indegree[c] -= 1
            if indegree[c] == 0:
                push(heap, rank[c])
    new_id = [0] * n
    for new, old in enumerate(order):
        new_id[old] = new
    out = [nodes[i] for i in order]
    for node in out:
        node.id = new_id[node.id]
        node.inputs = [new_id[i] for i in node.inputs]
        node.in_shapes = [out[i].out_shape for i in node.inputs]
    return out

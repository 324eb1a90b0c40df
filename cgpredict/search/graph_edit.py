"""Low-level editing of computation graphs: copy, rewire, insert, renumber, recount, check shapes.

Pipeline position: model → CG → features → predictor → ranking/**search**. The mutation operators
(:mod:`cgpredict.search.mutations`) edit a list of node copies with these helpers and call
:func:`finish` to obtain a valid :class:`~cgpredict.cg.CG` again (topological ids, ``in_shapes``
taken from the producers, MACs recounted, dead nodes pruned).
"""

from __future__ import annotations

import copy
import heapq
import math
from collections import Counter
from typing import Any

from cgpredict.cg import CG, Node, live_nodes, renumber
from cgpredict.counting import node_macs
from cgpredict.ops import ACTIVATION_OPS, CONV_OPS, conv_op_type

#: Activations a mutation may switch between (shape-preserving, pointwise).
SWAPPABLE_ACTIVATIONS: tuple[str, ...] = ("relu", "relu6", "silu", "hardswish", "gelu")
#: Ops that keep their input's shape exactly (one input).
SHAPE_PRESERVING: frozenset[str] = frozenset(
    set(ACTIVATION_OPS) | {"batch_norm", "identity", "zero"}
)


class ShapeError(ValueError):
    """A node's recorded output shape does not follow from its inputs and attributes."""


def copy_nodes(cg: CG) -> list[Node]:
    """Independent copies of ``cg``'s nodes (lists and attrs not shared)."""
    out = []
    for node in cg.nodes:
        new = Node.__new__(Node)
        new.__dict__.update(node.__dict__)  # shallow copy (copy.copy is ~3x slower here)
        new.inputs = list(node.inputs)
        new.in_shapes = list(node.in_shapes)
        new.attrs = copy.deepcopy(node.attrs) if node.attrs else {}
        out.append(new)
    return out


def consumers(nodes: list[Node]) -> dict[int, list[int]]:
    """Map node id → ids of the nodes reading it (one entry per input slot)."""
    succ: dict[int, list[int]] = {n.id: [] for n in nodes}
    for node in nodes:
        for src in node.inputs:
            succ[src].append(node.id)
    return succ


def rewire(nodes: list[Node], old: int, new: int, skip: set[int] | None = None) -> None:
    """Make every consumer of ``old`` (except those in ``skip``) read ``new`` instead."""
    skip = skip or set()
    for node in nodes:
        if node.id in skip:
            continue
        node.inputs = [new if i == old else i for i in node.inputs]


def conv_params(weight_shape: tuple[int, ...], bias: bool) -> int:
    """Parameters of a conv/linear weight (plus bias, one per output channel)."""
    return int(math.prod(weight_shape)) + (int(weight_shape[0]) if bias else 0)


def conv_out_hw(hw: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
                padding: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    """Spatial output size of a (non-transposed) convolution or pooling window."""
    dil = dilation or (1,) * len(kernel)
    return tuple((h + 2 * p - d * (k - 1) - 1) // s + 1 for h, k, s, p, d in zip(hw, kernel, stride, padding, dil))


class Editor:
    """A mutable copy of a CG's nodes plus an id counter for new nodes.

    Example:
        >>> ed = Editor(cg)
        >>> relu = ed.node("relu6", [3], cg.nodes[3].out_shape, "x.act")
        >>> ed.rewire(3, relu.id, skip={relu.id}); ed.insert_after(3, [relu])
        >>> mutated = ed.finish("activation: inserted relu6")
    """

    def __init__(self, cg: CG) -> None:
        self.template = cg
        self.nodes = copy_nodes(cg)
        self.next_id = len(self.nodes)
        self.by_id = {n.id: n for n in self.nodes}

    def node(self, op: str, inputs: list[int], out_shape: tuple[int, ...], name: str, **fields: Any) -> Node:
        """Create a node with a fresh id (not yet placed: see :meth:`insert_after`)."""
        node = Node(id=self.next_id, op=op, inputs=list(inputs), in_shapes=[], out_shape=tuple(out_shape),
                    name=name, source_op=f"search.{op}", **fields)
        self.next_id += 1
        self.by_id[node.id] = node
        return node

    def shape(self, node_id: int) -> tuple[int, ...]:
        """Output shape of a node (existing or new)."""
        return tuple(self.by_id[node_id].out_shape)

    def conv(self, src: int, out_ch: int, kernel: int, stride: tuple[int, ...], groups: int, name: str,
             bias: bool = False) -> Node:
        """A 2-D convolution with ``same``-style padding reading node ``src``."""
        in_shape = self.shape(src)
        c_in = in_shape[1]
        k = (kernel, kernel)
        pad = ((kernel - 1) // 2, (kernel - 1) // 2)
        hw = conv_out_hw(tuple(in_shape[2:]), k, tuple(stride), pad, (1, 1))
        weight = (out_ch, c_in // groups, kernel, kernel)
        return self.node(conv_op_type(c_in, groups), [src], (in_shape[0], out_ch, *hw), name,
                         weight_shape=weight, kernel=k, stride=tuple(stride), padding=pad, dilation=(1, 1),
                         groups=groups, bias=bias, params=conv_params(weight, bias))

    def bn(self, src: int, name: str) -> Node:
        """An affine batch norm over channel dim 1 of node ``src``."""
        shape = self.shape(src)
        return self.node("batch_norm", [src], shape, name, weight_shape=(shape[1],), params=2 * shape[1])

    def simple(self, op: str, inputs: list[int], name: str) -> Node:
        """A parameter-free op (activation, add, identity) shaped like its first input."""
        return self.node(op, inputs, self.shape(inputs[0]), name)

    def rewire(self, old: int, new: int, skip: set[int] | None = None) -> None:
        """Make every consumer of ``old`` (except ids in ``skip``) read ``new`` instead."""
        rewire(self.nodes, old, new, skip)

    def consumers(self) -> dict[int, list[int]]:
        """Node id → consumer ids for the current (placed) nodes."""
        return consumers(self.nodes)

    def insert_after(self, anchor: int, new: list[Node]) -> None:
        """Place ``new`` right after node ``anchor`` in the order hint."""
        pos = next(i for i, n in enumerate(self.nodes) if n.id == anchor)
        self.nodes[pos + 1:pos + 1] = new

    def remove(self, ids: set[int]) -> None:
        """Drop nodes (their consumers must have been rewired)."""
        self.nodes = [n for n in self.nodes if n.id not in ids]

    def finish(self, mutation: str | None = None) -> CG:
        """The edited, renumbered and validated CG (see :func:`finish`)."""
        return finish(self.nodes, self.template, mutation)


def dominant_activation(cg: CG) -> str:
    """The network's most frequent swappable activation (``relu`` when it has none)."""
    counts = Counter(n.op for n in cg.nodes if n.op in SWAPPABLE_ACTIVATIONS)
    return counts.most_common(1)[0][0] if counts else "relu"


def _topological(alive: list[Node]) -> list[Node]:
    """Kahn's algorithm, ties broken by list position."""
    pos = {n.id: i for i, n in enumerate(alive)}
    indeg = {n.id: len(set(n.inputs)) for n in alive}
    succ: dict[int, set[int]] = {n.id: set() for n in alive}
    for n in alive:
        for src in set(n.inputs):
            succ[src].add(n.id)
    heap = [pos[i] for i, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    order: list[Node] = []
    while heap:
        node = alive[heapq.heappop(heap)]
        order.append(node)
        for dst in succ[node.id]:
            indeg[dst] -= 1
            if indeg[dst] == 0:
                heapq.heappush(heap, pos[dst])
    if len(order) != len(alive):
        raise ValueError("the edited CG has a cycle")
    return order


def finish(nodes: list[Node], template: CG, mutation: str | None = None) -> CG:
    """Renumber ``nodes`` topologically, prune dead nodes, refresh shapes/MACs and validate.

    Node order in ``nodes`` is used as a tie-breaking hint so untouched parts keep their order.
    ``mutation`` (a readable description) is appended to ``meta["mutations"]``.
    """
    by_id = {n.id: n for n in nodes}
    if len(by_id) != len(nodes):
        raise ValueError("duplicate node ids while editing a CG")
    alive = live_nodes(nodes)
    seen: set[int] = set()
    for n in alive:  # fast path: the edit kept the list in topological order
        if any(src not in seen for src in n.inputs):
            break
        seen.add(n.id)
    else:
        order = alive
    if len(seen) != len(alive):
        order = _topological(alive)
    for node in renumber(order):
        node.macs = node_macs(node)
    meta = copy.deepcopy(template.meta)
    if mutation:
        meta["mutations"] = [*meta.get("mutations", []), mutation]
    cg = CG(nodes=order, name=template.name, meta=meta)
    cg.validate()
    return cg


def check_shapes(cg: CG) -> None:
    """Check that each node's output shape follows from its inputs for the ops search edits.

    ``CG.validate`` only checks that recorded input shapes match the producers; this also checks
    convolution channels/groups/spatial sizes, batch-norm widths, shape-preserving ops and adds.

    Raises:
        ShapeError: naming the first inconsistent node.
    """
    for node in cg.nodes:
        where = f"node {node.id} ({node.op} {node.name!r})"
        if not node.in_shapes:
            continue
        x = tuple(node.in_shapes[0])
        out = tuple(node.out_shape)
        if node.op in CONV_OPS and node.weight_shape is not None and len(x) == 4 and not node.attrs.get("transposed"):
            w = node.weight_shape
            if x[1] != w[1] * node.groups:
                raise ShapeError(f"{where}: input has {x[1]} channels, weight expects {w[1]}×{node.groups} groups")
            if out[1] != w[0]:
                raise ShapeError(f"{where}: output has {out[1]} channels, weight has {w[0]}")
            if node.op != conv_op_type(x[1], node.groups):
                raise ShapeError(f"{where}: groups={node.groups} with {x[1]} channels is a {conv_op_type(x[1], node.groups)}")
            hw = conv_out_hw(x[2:], node.kernel, node.stride, node.padding, node.dilation)
            if tuple(out[2:]) != hw:
                raise ShapeError(f"{where}: spatial output {out[2:]} but kernel/stride/padding give {hw}")
        elif node.op == "batch_norm" and node.weight_shape is not None and len(x) >= 2:
            if node.weight_shape[0] != x[1] or out != x:
                raise ShapeError(f"{where}: batch norm over {node.weight_shape[0]} channels on input {x} → {out}")
        elif node.op in SHAPE_PRESERVING and len(node.in_shapes) == 1:
            if out != x:
                raise ShapeError(f"{where}: shape-preserving op maps {x} to {out}")
        elif node.op == "add" and len(x) == 4:
            if any(tuple(s) != out for s in node.in_shapes):
                raise ShapeError(f"{where}: adds shapes {[tuple(s) for s in node.in_shapes]} into {out}")
        elif node.op == "linear" and node.weight_shape is not None and len(node.weight_shape) == 2:
            if x[-1] != node.weight_shape[1] or out[-1] != node.weight_shape[0]:
                raise ShapeError(f"{where}: linear {node.weight_shape} on input {x} → {out}")


def canonical_key(cg: CG, rounds: int = 4) -> str:
    """A hash of the network that ignores node order and names (Weisfeiler–Lehman style).

    Two mutation sequences that reach the same network in a different order give different
    ``CG.hash()`` values (node ids differ) but the same key here. Each node starts from its op,
    shapes and layer attributes; each round appends the labels of its inputs (in argument order,
    sorted for the commutative ``add``/``mul``); the key is the SHA-256 of the sorted labels.
    """
    import hashlib

    from cgpredict.ops import OP_INDEX

    # tuples of ints hash identically in every process (unlike str), so keys are reproducible
    labels = [
        hash((OP_INDEX[n.op], tuple(n.out_shape), tuple(n.weight_shape or ()), n.kernel, n.stride, n.padding,
              n.dilation, n.groups, n.bias, n.params))
        for n in cg.nodes
    ]
    commutative = [n.op in ("add", "mul") for n in cg.nodes]
    for _ in range(rounds):
        new = []
        for n, comm in zip(cg.nodes, commutative):
            ins = [labels[i] for i in n.inputs]
            if comm:
                ins.sort()
            new.append(hash((labels[n.id], tuple(ins))))
        labels = new
    return hashlib.sha256(repr(sorted(labels)).encode()).hexdigest()

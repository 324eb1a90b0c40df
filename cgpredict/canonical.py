"""The canonical form of a CG: one graph per network, whatever source it was converted from.

Pipeline position: model → CG → **canonical CG** → features → predictor → ranking/search.

The converters keep what their source shows: :func:`~cgpredict.converters.from_torch` and the
ONNX dynamo exporter keep eval-mode batch norm as ``batch_norm`` nodes, while the legacy ONNX
exporter (``torch.onnx.export(..., dynamo=False)``, constant folding on) and optimised exports fold
it into the preceding convolution. :func:`canonicalize` rewrites a CG into the form every source
reaches, so that ``canonicalize(from_torch(m)).hash() == canonicalize(from_onnx(export(m))).hash()``
and the features (:mod:`cgpredict.features`, a function of the hashed content) are identical.

Rules, applied in order:

1. **Batch norm folded into its producer.** A ``batch_norm`` node whose only input is a
   ``conv``/``depthwise_conv``/``grouped_conv`` (transposed too) or ``linear`` node, which has no
   other consumer and whose output channels equal the batch norm's, is removed; the producer takes
   its output and gets ``bias=True``. Parameters are counted as deployed: the folded layer holds its
   weight plus a bias of ``C_out`` (its own, or the one the fold creates), and the batch norm's
   ``γ``/``β`` disappear — exactly what a folded export stores. ``CG.params`` of a canonical CG is
   thus the inference-time count; the original count stays in ``meta["params_before_canonical"]``.
   MACs of the layer are unchanged; the batch norm's elementwise MACs (counting mode ``all``) go.
   Batch norm anywhere else (before a conv, after an add, after a layer with two consumers) stays.
2. **Pools.** A max/avg pool whose window is its whole unpadded input is a ``global_pool`` (the
   legacy exporter writes ``adaptive_max_pool2d(1)`` that way); an adaptive pool whose input size is
   a multiple of its output size drops its ``adaptive``/``output_size`` attributes (its windows are
   uniform: how exporters write it).
3. **Zero padding into convolutions.** A constant ``pad`` of spatial dims read only by a
   (non-transposed) convolution becomes that convolution's padding (asymmetric pads in
   ``attrs["pads"]``, begins then ends, as :func:`~cgpredict.converters.from_onnx` writes them), as
   ONNX optimisers fuse it. The CG does not record a pad's fill value: a constant pad counts as zero.
4. **Splits and concats.** ``split`` nodes name their piece by its offset along ``dim``
   (``index`` := ``attrs["start"]`` where the converter recorded one), since an exporter may write
   ``chunk`` as slices; a ``concat`` read only by a concat along the same dim is inlined into it
   (``cat([a, cat([b, c])])`` → ``cat([a, b, c])``, as the legacy exporter flattens it).
5. **Reshape chains** collapse and no-op reshapes disappear (the rule of
   :meth:`cgpredict.cg.CGBuilder.build`, re-applied after the rewrites); a ``global_pool`` that reads
   a reshape which only inserts or removes unit spatial dims (an exported ``adaptive_avg_pool1d``
   runs as a 2-D pool) and is read only by reshapes pools the reshape's input directly.
6. **Operand order** of commutative ops (``add`` and ``mul``) is sorted by a structural hash of each
   operand's ancestry, so ``a + b`` and ``b + a`` agree.
7. **Node order** is a deterministic topological order chosen by structure (hashes of each node's
   ancestry and descendancy), not by the order the source happened to list the ops in. Rules 6
   and 7 live in :mod:`cgpredict.canonical_order`.

Node names and ``source_op`` of known ops are left as they are (the hash ignores them). The CG given
is never modified. ``canonicalize`` is idempotent.

The predictor reads canonical CGs (``Predictor(canonical=True)``, the default, and the shipped
checkpoint, trained on them; :func:`cgpredict.predictor.inputs.canonical_of` caches the form per CG
object), so every source of one network gets one prediction. Checkpoints saved before that option
load with ``canonical=False``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from cgpredict.cg import CG, Node, _collapse_reshape_chains, _copy_node, live_nodes
from cgpredict.canonical_order import order_nodes
from cgpredict.counting import node_macs
from cgpredict.gc_pause import gc_paused
from cgpredict.ops import CONV_OPS

__all__ = ["canonicalize", "is_canonical", "FOLDABLE_INTO"]

#: ops a following batch norm is folded into
FOLDABLE_INTO: frozenset[str] = frozenset(CONV_OPS | {"linear"})


def _out_channels(node: Node) -> int | None:
    """Output channels of a conv/linear node from its weight shape (``None`` when unknown)."""
    ws = node.weight_shape
    if not ws:
        return None
    if node.op in CONV_OPS and node.attrs.get("transposed"):
        return int(ws[1]) * max(1, int(node.groups)) if len(ws) > 1 else None
    return int(ws[0])


def _foldable(bn: Node, producer: Node, consumers: int) -> bool:
    if producer.op not in FOLDABLE_INTO or consumers != 1 or len(bn.inputs) != 1:
        return False
    channels = _out_channels(producer)
    if channels is None or tuple(bn.out_shape) != tuple(producer.out_shape) or len(bn.out_shape) < 2:
        return False
    if producer.op == "linear" and len(bn.out_shape) != 2:
        return False  # batch norm over (N, C) only: a linear on (N, T, C) has C last, BN reads dim 1
    bn_channels = int(bn.weight_shape[0]) if bn.weight_shape else int(bn.out_shape[1])
    return channels == bn_channels == int(bn.out_shape[1])


def _fold_batch_norms(nodes: list[Node]) -> list[Node]:
    """Rule 1 (see module docstring) on copies of ``nodes`` (ids are positions)."""
    consumers = [0] * len(nodes)
    for node in nodes:
        for src in node.inputs:
            consumers[src] += 1
    replace: dict[int, int] = {}
    for node in nodes:
        if replace:
            node.inputs = [replace.get(i, i) for i in node.inputs]
        if node.op != "batch_norm" or len(node.inputs) != 1:
            continue
        producer = nodes[node.inputs[0]]
        if not _foldable(node, producer, consumers[producer.id]):
            continue
        if not producer.bias:
            producer.params += _out_channels(producer) or 0
            producer.bias = True
        producer.source_op = f"{producer.source_op}+{node.source_op}" if producer.source_op else node.source_op
        replace[node.id] = producer.id
    alive = [n for n in nodes if n.id not in replace]
    for node in alive:
        node.in_shapes = [nodes[i].out_shape for i in node.inputs]
    return alive


def _consumers(nodes: list[Node]) -> list[list[int]]:
    succ: list[list[int]] = [[] for _ in nodes]
    for node in nodes:
        for src in node.inputs:
            succ[src].append(node.id)
    return succ


def _whole_window_pools(nodes: list[Node]) -> None:
    """Rule 2: a max/avg pool whose window is its whole unpadded input → ``global_pool``."""
    for node in nodes:
        if node.op not in ("max_pool", "avg_pool") or not node.in_shapes:
            continue
        spatial = tuple(node.in_shapes[0][2:])
        out_spatial = tuple(node.out_shape[2:])
        if not spatial or any(o != 1 for o in out_spatial) or len(out_spatial) != len(spatial):
            continue
        pads = node.attrs.get("pads") or list(node.padding) * 2
        if tuple(node.kernel) != spatial or any(int(p) != 0 for p in pads):
            continue
        if node.op == "max_pool" and any(int(d) != 1 for d in node.dilation):
            continue
        mode = "max" if node.op == "max_pool" else "avg"
        node.op, node.attrs = "global_pool", {"mode": mode}
        node.kernel, node.stride, node.padding, node.dilation = (), (), (), ()
        node.source_op = f"{node.source_op}(whole-window)"


def _uniform_adaptive_pools(nodes: list[Node]) -> None:
    """Rule 2 (second half): an adaptive pool with uniform windows is a plain pool.

    Its input size is a multiple of its output size, so kernel = stride = in/out, which is how
    exporters write it; the ``adaptive``/``output_size`` attributes are dropped.
    """
    for node in nodes:
        if node.op not in ("max_pool", "avg_pool") or not node.attrs.get("adaptive") or not node.in_shapes:
            continue
        ins, outs = tuple(node.in_shapes[0][2:]), tuple(node.out_shape[2:])
        if len(ins) == len(outs) and all(o > 0 and i % o == 0 for i, o in zip(ins, outs)):
            node.attrs.pop("adaptive", None)
            node.attrs.pop("output_size", None)


def _unit_dims_only(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether ``a`` and ``b`` differ only by inserted or removed size-1 dims."""
    return [d for d in a if d != 1] == [d for d in b if d != 1]


def _pool_through_unit_reshapes(nodes: list[Node]) -> bool:
    """Rule 5 (second half): unit-dim ``reshape`` → ``global_pool`` → only reshapes: pool the input.

    The pool reads the reshape's input directly (its output keeps that input's rank, spatial dims
    1); the reshapes after it then collapse. Returns whether anything changed.
    """
    succ = _consumers(nodes)
    changed = False
    for node in nodes:
        if node.op != "global_pool" or len(node.inputs) != 1:
            continue
        src = nodes[node.inputs[0]]
        if src.op != "reshape" or len(src.inputs) != 1 or len(succ[src.id]) != 1:
            continue
        x = tuple(src.in_shapes[0])
        y = tuple(src.out_shape)
        if len(x) < 3 or len(y) < 3 or x[:2] != y[:2] or not _unit_dims_only(x[2:], y[2:]):
            continue
        if not succ[node.id] or any(nodes[c].op != "reshape" for c in succ[node.id]):
            continue
        node.inputs = [src.inputs[0]]
        node.in_shapes = [x]
        node.out_shape = x[:2] + (1,) * (len(x) - 2)
        for c in succ[node.id]:
            nodes[c].in_shapes = [node.out_shape if i == node.id else nodes[i].out_shape for i in nodes[c].inputs]
        changed = True
    return changed


def _zero_pads_into_convs(nodes: list[Node]) -> None:
    """Rule 3: a constant ``pad`` of spatial dims only, read by one conv only → the conv's padding.

    The CG does not record a pad's fill value; a constant pad is taken as zero padding (the only
    kind exporters fold into a convolution).
    """
    succ = _consumers(nodes)
    for node in nodes:
        if node.op not in CONV_OPS or node.attrs.get("transposed") or not node.inputs:
            continue
        src = nodes[node.inputs[0]]
        if src.op != "pad" or src.attrs.get("mode", "constant") != "constant" or len(succ[src.id]) != 1:
            continue
        torch_pad = [int(p) for p in src.attrs.get("pad", [])]
        nd = len(node.kernel)
        if not torch_pad or len(torch_pad) > 2 * nd or any(p < 0 for p in torch_pad) or len(torch_pad) % 2:
            continue
        begins = list(node.attrs.get("pads", list(node.padding) * 2)[:nd])
        ends = list(node.attrs.get("pads", list(node.padding) * 2)[nd:])
        for j in range(len(torch_pad) // 2):  # torch order: last dim first
            d = nd - 1 - j
            begins[d] += torch_pad[2 * j]
            ends[d] += torch_pad[2 * j + 1]
        node.inputs[0] = src.inputs[0]
        node.in_shapes[0] = src.in_shapes[0]
        node.padding = tuple(begins)
        node.attrs.pop("pads", None)
        if begins != ends:
            node.attrs["pads"] = begins + ends
        node.params += src.params
        node.source_op = f"{src.source_op}+{node.source_op}"


def _split_offsets(nodes: list[Node]) -> None:
    """Rule 4: a ``split`` names its piece by its offset along ``dim`` (``index`` := ``start``).

    Converters number the outputs of ``split``/``chunk``/ONNX ``Split`` by position and record the
    offset as ``start`` when it differs; slices record their offset as ``index`` (an exporter may
    write ``chunk`` as slices).
    """
    for node in nodes:
        if node.op == "split" and "start" in node.attrs:
            node.attrs["index"] = node.attrs.pop("start")


def _flatten_concats(nodes: list[Node]) -> None:
    """Rule 4 (second half): a concat read only by a concat along the same dim is inlined there.

    Only concats of activations (no learned tokens in ``params``) are inlined.
    ``cat([a, cat([b, c])])`` is ``cat([a, b, c])``, which is how the legacy exporter writes it.
    ``nodes`` are in topological order, so inner concats are already flat when their reader comes.
    """
    succ = _consumers(nodes)
    for node in nodes:
        if node.op != "concat":
            continue
        dim = node.attrs.get("dim")
        inputs: list[int] = []
        for i in node.inputs:
            src = nodes[i]
            if (src.op == "concat" and src.attrs.get("dim") == dim and src.params == 0
                    and len(succ[i]) == 1 and succ[i][0] == node.id):
                inputs.extend(src.inputs)
            else:
                inputs.append(i)
        if inputs != node.inputs:
            node.inputs = inputs
            node.in_shapes = [nodes[i].out_shape for i in inputs]


def _renumber(nodes: Iterable[Node]) -> list[Node]:
    """Give ``nodes`` ids ``0..n-1`` in their order, remapping inputs (no-op when already so)."""
    nodes = list(nodes)
    if not nodes or nodes[-1].id == len(nodes) - 1:
        return nodes  # a subsequence of 0..m-1 whose last id is n-1 is 0..n-1 itself
    new_id = {node.id: i for i, node in enumerate(nodes)}
    for node in nodes:
        node.id = new_id[node.id]
        node.inputs = [new_id[i] for i in node.inputs]
    return nodes


@gc_paused()  # it allocates many small containers and frees them all: see cgpredict.gc_pause
def canonicalize(cg: CG) -> CG:
    """The canonical form of ``cg`` (rules in the module docstring); ``cg`` is left unchanged.

    Example:
        >>> import torchvision
        >>> from cgpredict.converters import from_torch
        >>> cg = from_torch(torchvision.models.resnet18())
        >>> canon = canonicalize(cg)
        >>> cg.op_histogram()["batch_norm"], "batch_norm" in canon.op_histogram()
        (20, False)
        >>> canon.flops == cg.flops, cg.params - canon.params  # 20 BNs' γ, β (2·4800) out, biases (4800) in
        (True, 4800)
    """
    nodes = [_copy_node(node) for node in cg.nodes]  # the only copy: every rule below works in place
    nodes = _renumber(_fold_batch_norms(nodes))
    ops = {node.op for node in nodes}  # each rule below acts only on nodes of its ops: skip the rest
    if "max_pool" in ops or "avg_pool" in ops:
        _whole_window_pools(nodes)
        _uniform_adaptive_pools(nodes)
    if "pad" in ops:
        _zero_pads_into_convs(nodes)
    if "split" in ops:
        _split_offsets(nodes)
    if "concat" in ops:
        _flatten_concats(nodes)
    nodes = _renumber(live_nodes(nodes))
    if "reshape" in ops:  # without reshapes both rules leave the nodes as they are
        nodes = _renumber(_collapse_reshape_chains(nodes, copy_nodes=False))
        if _pool_through_unit_reshapes(nodes):
            nodes = _renumber(live_nodes(nodes))
            nodes = _renumber(_collapse_reshape_chains(nodes, copy_nodes=False))
    nodes = order_nodes(nodes)  # rules 6 and 7
    for node in nodes:
        node.macs = node_macs(node)
    meta = copy.deepcopy(cg.meta)
    meta.setdefault("params_before_canonical", cg.params)
    meta["canonical"] = True
    out = CG(nodes=nodes, name=cg.name, meta=meta)
    out.validate()
    return out


def is_canonical(cg: CG) -> bool:
    """Whether ``cg`` is already in canonical form (``canonicalize`` would not change its hash)."""
    return canonicalize(cg).hash() == cg.hash()

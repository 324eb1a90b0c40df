"""Tracking which axis of each ONNX activation holds the batch, to record shapes batch-first.

Pipeline position: model (ONNX) → **CG** (helper of :mod:`cgpredict.converters.onnx_converter`).

CG shapes carry the batch first and MACs are counted per sample (:mod:`cgpredict.counting`), but
exported graphs may move the batch: ``nn.MultiheadAttention`` works on ``(L, N, E)`` and flattens
to ``(L·N, E)``. Following the batch axis through each op (the rule the torch converter uses too)
lets the converter record every shape with the batch — or the axis it is merged into — first.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import onnx

from ._onnx_eval import node_attr
from ._torch_batch import fallback_batch_first

if TYPE_CHECKING:  # pragma: no cover
    from ._onnx_values import ValueTable

_REDUCTIONS = frozenset({"ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                         "ReduceLogSumExp", "ReduceSumSquare", "ReduceLogSum"})
_RESHAPES = frozenset({"Reshape", "Flatten", "DepthToSpace", "SpaceToDepth"})


def canonical_shape(shape: tuple[int, ...], bpos: int | None, batch: int) -> tuple[int, ...]:
    """``shape`` rewritten batch-first: the batch axis (or the axis it is merged into) leads."""
    shape = tuple(shape)
    if bpos is None or not 0 <= bpos < len(shape):
        return fallback_batch_first(shape, batch)
    size = shape[bpos]
    if bpos == 0 and size == batch:
        return shape
    if size == batch:
        return (batch,) + shape[:bpos] + shape[bpos + 1 :]
    if size % batch == 0:
        return (batch,) + shape[:bpos] + (size // batch,) + shape[bpos + 1 :]
    return shape


def _axes(v: ValueTable, node: onnx.NodeProto, rank: int) -> list[int] | None:
    axes = node_attr(node, "axes", None)
    if axes is None and len(node.input) > 1 and node.input[1] and v.is_const(node.input[1]):
        axes = v.int_list(node.input[1])
    if axes is None:
        return None
    return sorted(int(a) + rank if int(a) < 0 else int(a) for a in axes)


def track_batch(
    v: ValueTable, node: onnx.NodeProto, x: str, out: str, b: int | None, batch: int, split_axis: tuple[int, bool] | None = None
) -> int | None:
    """Which axis of ``out`` holds the batch, given that axis ``b`` of the node's input ``x`` does.

    ``split_axis`` is ``(axis, keepdims)`` of the sequence a ``SequenceAt`` reads from.
    """
    if b is None:
        return None
    ins, outs = v.shapes.get(x), v.shapes.get(out)
    if ins is None or outs is None:
        return None
    op = node.op_type
    try:
        if op == "Transpose":
            perm = list(node_attr(node, "perm", None) or reversed(range(len(ins))))
            return perm.index(b)
        if op == "Unsqueeze":
            for a in _axes(v, node, len(outs)) or []:
                if a <= b:
                    b += 1
            return b
        if op == "Squeeze":
            axes = _axes(v, node, len(ins))
            removed = set(axes) if axes is not None else {d for d, s in enumerate(ins) if s == 1}
            return None if b in removed else b - sum(1 for d in removed if d < b)
        if op == "Gather":
            if v.is_const(node.input[0]):  # a table lookup: the batch sits where the indices have it
                return b
            axis = int(node_attr(node, "axis", 0))
            axis = axis + len(ins) if axis < 0 else axis
            k = int(np.ndim(v.value(node.input[1]))) if v.is_const(node.input[1]) else len(v.shapes.get(node.input[1]) or ())
            if axis == b:
                return b if k == 1 and outs == ins else None
            return b + k - 1 if axis < b else b
        if op == "SequenceAt" and split_axis is not None:
            axis, keepdims = split_axis
            if keepdims:
                return b
            return None if axis == b else b - 1 if axis < b else b
        if op in ("Split", "Slice", "SplitToSequence", "Col2Im"):
            return b
        if op in ("LSTM", "GRU", "RNN"):  # Y (T, D, N, H) / layout 1: (N, T, D, H); Y_h (D, N, H)
            if node_attr(node, "layout", 0):
                return 0 if out == node.output[0] else None
            return 2 if out == node.output[0] else 1
        if op in _REDUCTIONS:
            axes = _axes(v, node, len(ins))
            axes = list(range(len(ins))) if not axes else axes
            if b in axes:
                return None
            return b if node_attr(node, "keepdims", 1) else b - sum(1 for a in axes if a < b)
        if op in _RESHAPES:
            prefix, acc = math.prod(ins[:b]), 1
            for j, size in enumerate(outs):
                if acc == prefix and size > 0 and size % batch == 0:
                    return j
                acc *= size
                if acc > prefix:
                    break
            return None
    except (ValueError, IndexError, TypeError, KeyError):
        return None
    r = b + len(outs) - len(ins)
    return r if 0 <= r < len(outs) else None

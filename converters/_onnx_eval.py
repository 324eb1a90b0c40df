"""Evaluating single constant ONNX nodes with numpy (shape bookkeeping, folded constants).

Pipeline position: model (ONNX) → **CG** (helper of :mod:`cgpredict.converters.onnx_converter`).
``Shape``/``Size`` read the statically inferred shape of their input, ``CastLike`` only the dtype of
its second input; every other op is run by ``onnx.reference.ReferenceEvaluator``.

Folding is capped by size: before a node runs, the number of elements it would produce is
estimated (from the inferred output shapes, else from the op's inputs: ``ConstantOfShape``,
``Expand``, ``Tile``, ``Range``, broadcasting ops …) and a node above :data:`MAX_FOLD_ELEMENTS` is
refused with :class:`ConstantTooLarge` naming it. A tiny hostile file (``ConstantOfShape`` of
12000×12000) thus keeps its constant as a shape only instead of allocating gigabytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import onnx
from onnx.helper import get_attribute_value, tensor_dtype_to_np_dtype


#: the most elements one folded constant may have (2**20: shapes, axes and pads are far smaller)
MAX_FOLD_ELEMENTS = 1 << 20


class ConstantTooLarge(ValueError):
    """A constant node would produce more than :data:`MAX_FOLD_ELEMENTS` elements."""


def node_attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    """The value of attribute ``name`` of ``node`` (bytes decoded to str), or ``default``."""
    for a in node.attribute:
        if a.name == name:
            value = get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def evaluate_node(
    node: onnx.NodeProto,
    feeds: Mapping[str, np.ndarray],
    opsets: Mapping[str, int],
    shapes: Mapping[str, tuple[int, ...] | None],
    dtypes: Mapping[str, int],
) -> list[np.ndarray]:
    """Outputs of ``node`` given the values of its (constant) inputs.

    ``shapes`` and ``dtypes`` describe inputs that are not fed (the activation read by ``Shape``
    or the type source of ``CastLike``). Raises whatever the reference evaluator raises.
    """
    op = node.op_type
    estimate = estimated_numel(node, feeds, shapes)
    if estimate is None or estimate > MAX_FOLD_ELEMENTS:
        size = "an unknown number of" if estimate is None else f"{estimate:,}"
        raise ConstantTooLarge(
            f"{op} node {node.name or node.output[0]!r} would materialise {size} elements "
            f"(the limit for a folded constant is {MAX_FOLD_ELEMENTS:,})"
        )
    if op in ("Shape", "Size"):
        shape = shapes.get(node.input[0])
        if shape is None:
            raise ValueError(f"shape of {node.input[0]!r} is unknown")
        if op == "Size":
            return [np.array(int(np.prod(shape)), dtype=np.int64)]
        start = int(node_attr(node, "start", 0))
        end = node_attr(node, "end", None)
        return [np.array(shape[start : None if end is None else int(end)], dtype=np.int64)]
    if op == "CastLike":
        dtype = tensor_dtype_to_np_dtype(dtypes.get(node.input[1], onnx.TensorProto.FLOAT))
        return [np.asarray(feeds[node.input[0]]).astype(dtype)]
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(node, opsets=dict(opsets))
    return [np.asarray(v) for v in evaluator.run(None, {i: feeds[i] for i in node.input if i})]


#: ops whose output may be far larger than their inputs and whose size is not read off them below
_UNBOUNDED = frozenset({"OneHot", "Einsum", "Resize", "Upsample", "Col2Im", "Scan", "Loop", "If",
                        "ConvTranspose", "EyeLike", "RandomNormal", "RandomUniform", "Multinomial"})


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        sizes = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        out.append(max(sizes, default=1))
    return tuple(out)


def estimated_numel(
    node: onnx.NodeProto, feeds: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...] | None]
) -> int | None:
    """An upper estimate of the elements ``node`` produces (its largest output), or ``None``.

    Inferred output shapes are used when shape inference filled them in; otherwise the size is
    read off the inputs for the ops that can produce more than they read.
    """
    outs = [o for o in node.output if o]
    known = [shapes.get(o) for o in outs]
    if outs and all(s is not None for s in known):
        return max(math.prod(s) for s in known)  # type: ignore[arg-type]
    op = node.op_type
    values = [np.asarray(feeds[i]) if i in feeds else None for i in node.input]
    in_shapes = [tuple(v.shape) if v is not None else (shapes.get(i) if i else None)
                 for i, v in zip(node.input, values)]
    try:
        if op in ("Shape", "Size"):
            shape = shapes.get(node.input[0])
            return None if shape is None else max(1, len(shape))
        if op == "Constant":  # a dense value is already in memory; a sparse one is densified
            for a in node.attribute:
                if a.name == "sparse_value":
                    return math.prod(int(d) for d in a.sparse_tensor.dims)
                if a.name == "value":
                    return math.prod(int(d) for d in a.t.dims)
            return 1  # value_ints / value_floats / value_string: as large as the attribute itself
        if op == "ConstantOfShape":
            return math.prod(int(d) for d in values[0].reshape(-1)) if values[0] is not None else None
        if op == "Expand" and values[1] is not None and in_shapes[0] is not None:
            return math.prod(_broadcast(tuple(in_shapes[0]), tuple(int(d) for d in values[1].reshape(-1))))
        if op == "Tile" and values[1] is not None and in_shapes[0] is not None:
            return math.prod(s * int(r) for s, r in zip(in_shapes[0], values[1].reshape(-1)))
        if op == "Range" and all(v is not None for v in values[:3]):
            start, limit, delta = (float(v.reshape(-1)[0]) for v in values[:3])
            return max(0, math.ceil((limit - start) / delta)) if delta else None
        if op in ("Pad", "Reshape", "Gather", "Slice", "Squeeze", "Unsqueeze", "Concat"):
            sizes = [math.prod(s) for s in in_shapes if s is not None]
            if op == "Pad" and len(values) > 1 and values[1] is not None and in_shapes[0] is not None:
                pads = [int(p) for p in values[1].reshape(-1)]
                half = len(pads) // 2
                grown = [s + max(0, pads[i]) + max(0, pads[i + half]) for i, s in enumerate(in_shapes[0][:half])]
                return math.prod(grown) * math.prod(in_shapes[0][half:])
            return sum(sizes) if op == "Concat" else max(sizes, default=1)
        if op in _UNBOUNDED or any(s is None for i, s in zip(node.input, in_shapes) if i):
            return None
        if op in ("MatMul", "Gemm") and len(in_shapes) >= 2 and all(s is not None for s in in_shapes[:2]):
            a, b = tuple(in_shapes[0]), tuple(in_shapes[1])
            batch = _broadcast(a[:-2], b[:-2]) if len(a) > 2 or len(b) > 2 else ()
            return math.prod(batch) * (a[-2] if len(a) > 1 else 1) * (b[-1] if len(b) > 1 else 1)
        present = [tuple(s) for s in in_shapes if s is not None]
        return math.prod(_broadcast(*present)) if present else None
    except (TypeError, ValueError, IndexError, OverflowError, ZeroDivisionError):
        return None

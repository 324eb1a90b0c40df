"""Evaluating single constant ONNX nodes with numpy (shape bookkeeping, folded constants).

Pipeline position: model (ONNX) → **CG** (helper of :mod:`cgpredict.converters.onnx_converter`).
``Shape``/``Size`` read the statically inferred shape of their input, ``CastLike`` only the dtype of
its second input; every other op is run by ``onnx.reference.ReferenceEvaluator``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx.helper import get_attribute_value, tensor_dtype_to_np_dtype


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

"""Pattern matchers that recognise exporter decompositions in an ONNX graph.

Pipeline position: model (ONNX) → **CG** (helper of :mod:`cgpredict.converters.onnx_converter`).

Exporters decompose some torch ops into several ONNX ops: ``silu`` → ``x * Sigmoid(x)``, exact
``gelu`` → ``0.5 * x * (1 + Erf(x / √2))``, ``scaled_dot_product_attention`` →
``MatMul(Q·s, Kᵀ·s) → Softmax → MatMul(·, V)`` and (older opsets) ``layer_norm`` → ``ReduceMean``/
``Sub``/``Pow``/``Sqrt``/``Div``. Each function here looks backwards from the node that closes such
a pattern and returns the value names the fused CG node should read, or ``None`` when the pattern
does not hold. Nothing is emitted here; intermediate nodes that the fused node makes unused are
dropped by :meth:`cgpredict.cg.CGBuilder.build`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import onnx

if TYPE_CHECKING:  # pragma: no cover
    from ._onnx_values import ValueTable

#: ops that pass an activation through unchanged (no CG node)
PASS_THROUGH = frozenset({"Identity", "Cast", "Dropout", "CastLike"})
_VIEW_OPS = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten"})


def origin(v: ValueTable, name: str) -> str:
    """Follow ``name`` back through pass-through ops to the value that really produced it."""
    for _ in range(16):
        node = v.producer.get(name)
        if node is None or node.op_type not in PASS_THROUGH or v.is_const(node.input[0]):
            return name
        name = node.input[0]
    return name


def producer(v: ValueTable, name: str) -> onnx.NodeProto | None:
    """The node producing ``name`` after skipping pass-through ops (``None`` for graph inputs)."""
    return v.producer.get(origin(v, name))


def _act_inputs(v: ValueTable, node: onnx.NodeProto) -> list[str]:
    return [i for i in node.input if i and not v.is_const(i)]


def const_scaled(v: ValueTable, node: onnx.NodeProto | None, ops: tuple[str, ...] = ("Mul", "Div")) -> str | None:
    """If ``node`` is an elementwise op in ``ops`` with one constant operand, its activation input."""
    if node is None or node.op_type not in ops or len(node.input) != 2:
        return None
    acts = _act_inputs(v, node)
    if len(acts) != 1:
        return None
    if node.op_type in ("Div", "Sub") and acts[0] != node.input[0]:
        return None  # const / x is not a scaling of x
    return acts[0]


def sigmoid_gate(v: ValueTable, gate: str) -> tuple[str, str] | None:
    """If ``gate`` is ``Sigmoid(x)`` or ``HardSigmoid(x)``: ``(x, op)``; else ``None``."""
    node = producer(v, gate)
    if node is not None and node.op_type in ("Sigmoid", "HardSigmoid") and not v.is_const(node.input[0]):
        return node.input[0], node.op_type
    return None


def erf_gelu_source(v: ValueTable, name: str) -> tuple[str, bool] | None:
    """If ``name`` is ``[c *] (1 + Erf(x / √2))``: ``(x, scaled)``; ``scaled`` says a ``c *`` was seen."""
    node = producer(v, name)
    scaled = False
    inner = const_scaled(v, node, ("Mul", "Div"))
    if inner is not None and producer(v, inner) is not None and producer(v, inner).op_type in ("Add", "Sub"):
        node, scaled = producer(v, inner), True
    added = const_scaled(v, node, ("Add",))
    if added is None:
        return None
    erf = producer(v, added)
    if erf is None or erf.op_type != "Erf":
        return None
    x = const_scaled(v, producer(v, erf.input[0]), ("Mul", "Div"))
    if x is None:
        return None
    return x, scaled


def tanh_gelu_source(v: ValueTable, name: str) -> tuple[str, bool] | None:
    """If ``name`` is ``[c *] (1 + Tanh(k * (x + a * x³)))``: ``(x, scaled)``."""
    node = producer(v, name)
    scaled = False
    inner = const_scaled(v, node, ("Mul", "Div"))
    if inner is not None and producer(v, inner) is not None and producer(v, inner).op_type == "Add":
        node, scaled = producer(v, inner), True
    added = const_scaled(v, node, ("Add",))
    if added is None:
        return None
    tanh = producer(v, added)
    if tanh is None or tanh.op_type != "Tanh":
        return None
    poly = const_scaled(v, producer(v, tanh.input[0]), ("Mul",))
    add = producer(v, poly) if poly is not None else None
    if add is None or add.op_type != "Add":
        return None
    acts = _act_inputs(v, add)
    if len(acts) != 2:
        return None
    for x, cube in (acts, acts[::-1]):
        node = producer(v, cube)
        if node is not None and node.op_type in ("Mul", "Pow") and x in (node.input[0], origin(v, node.input[0])):
            return x, scaled
        if node is not None and node.op_type == "Mul" and producer(v, const_scaled(v, node) or "") is not None:
            # a * Pow(x, 3) or a * x*x*x
            pow_node = producer(v, const_scaled(v, node) or "")
            if pow_node is not None and pow_node.op_type in ("Pow", "Mul") and x in (
                pow_node.input[0],
                origin(v, pow_node.input[0]),
            ):
                return x, scaled
    return None


def attention_inputs(v: ValueTable, probs: str, values: str) -> tuple[str, str, str, list[str]] | None:
    """If ``MatMul(probs, values)`` closes ``softmax(QKᵀ·s [+ mask]) · V``: ``(q, k, v, matched)``.

    ``q`` and ``k`` are the tensors before the exporter's scaling and transposition of K, so that
    they have the ``(…, L, E)`` / ``(…, S, E)`` layout SDPA takes; ``matched`` lists the ONNX op types
    of the fused pattern (for ``source_op``).
    """
    soft = producer(v, probs)
    if soft is None or soft.op_type != "Softmax":
        return None
    matched = ["Softmax"]
    scores = soft.input[0]
    node = producer(v, scores)
    for _ in range(4):  # scale and mask between QKᵀ and the softmax
        if node is None or node.op_type == "MatMul":
            break
        if node.op_type in ("Mul", "Div") and const_scaled(v, node) is not None:
            scores = const_scaled(v, node)
        elif node.op_type == "Add" and len(node.input) == 2:
            left = producer(v, node.input[0])
            scores = node.input[0] if left is not None and left.op_type in ("MatMul", "Mul", "Div") else node.input[1]
        elif node.op_type == "Where" and len(node.input) == 3:
            scores = node.input[2] if not v.is_const(node.input[2]) else node.input[1]
        else:
            return None
        matched.append(node.op_type)
        node = producer(v, scores)
    if node is None or node.op_type != "MatMul" or len(_act_inputs(v, node)) != 2:
        return None
    q, kt = node.input[0], node.input[1]
    for _ in range(3):
        inner = const_scaled(v, producer(v, q))
        if inner is None:
            break
        q = inner
    q = origin(v, q)
    q_shape = v.shapes.get(q)
    kt_shape = v.shapes.get(kt)
    if not q_shape or not kt_shape or len(q_shape) < 2 or len(kt_shape) < 2:
        return None
    want = tuple(q_shape[:-2]) + (kt_shape[-1], q_shape[-1])
    # walk back from Kᵀ through scaling and views to K: the tensor shaped like Q with S rows;
    # failing that (an optimiser dropped the last reshape), the first (…, S, E) view of it
    k, loose = kt, None
    for _ in range(10):
        shape = v.shapes.get(k)
        if shape == want:
            break
        if loose is None and shape and len(shape) >= 2 and shape[-2:] == want[-2:] and math.prod(shape) == math.prod(want):
            loose = k
        node_k = producer(v, k)
        if node_k is not None and node_k.op_type in ("Mul", "Div") and const_scaled(v, node_k) is not None:
            k = origin(v, const_scaled(v, node_k))
        elif node_k is not None and node_k.op_type in _VIEW_OPS:
            k = origin(v, node_k.input[0])
        else:
            k = None
            break
    else:
        k = None
    k = k if k is not None and v.shapes.get(k) == want else loose
    if k is None:
        return None
    return q, k, values, ["MatMul", *reversed(matched), "MatMul"]


def decomposed_layer_norm(v: ValueTable, centered: str, denom: str) -> str | None:
    """If ``centered / denom`` is ``(x - mean(x)) / sqrt(var(x) + eps)``: the input ``x``."""
    sub = producer(v, centered)
    if sub is None or sub.op_type != "Sub" or len(_act_inputs(v, sub)) != 2:
        return None
    x, mean = sub.input[0], sub.input[1]
    mean_node = producer(v, mean)
    if mean_node is None or mean_node.op_type != "ReduceMean" or origin(v, mean_node.input[0]) != origin(v, x):
        return None
    sqrt = producer(v, denom)
    if sqrt is None or sqrt.op_type != "Sqrt":
        return None
    return x

"""The fixed vocabulary of atomic operations a computation graph (CG) node may carry.

Pipeline position: model → **CG** → features → predictor → ranking/search. Every converter maps
framework operators onto these names, and every feature encoder one-hot encodes them in the order
of :data:`OP_TYPES`, so the order is part of the feature format: append, never reorder.

=====================  =====================================================================
op type                meaning
=====================  =====================================================================
``input``              a network input (no predecessors)
``output``             the network output(s) (one node, the final tensors as predecessors)
``conv``               convolution with ``groups == 1`` (1-D/2-D/3-D, also transposed)
``depthwise_conv``     convolution with ``groups == in_channels`` (and > 1)
``grouped_conv``       any other grouped convolution
``linear``             a fully connected layer: an activation times a weight matrix (+ bias)
``matmul``             a product of two activations (e.g. attention scores without SDPA)
``batch_norm``         batch normalisation (inference form)
``layer_norm``         layer / group / instance / RMS normalisation
``relu`` ``relu6``     activations (``relu6`` also covers ``hardtanh``; ``relu`` also covers
                       ``leaky_relu``, its slope in ``attrs["negative_slope"]``)
``gelu`` ``silu``      ``silu`` is also swish
``hardswish``
``hardsigmoid``
``sigmoid`` ``tanh``
``softmax``            softmax and log-softmax
``add``                elementwise addition (and subtraction)
``mul``                elementwise multiplication (and division)
``concat``             concatenation along a dimension
``split``              one slice of a tensor (split/chunk/unbind/select/slice); a multi-output
                       split becomes one node per used output, each with its own shape
``max_pool``           max pooling with a window
``avg_pool``           average pooling with a window
``global_pool``        pooling to a 1×1 spatial output (adaptive pooling to 1, global max/avg)
``mean``               reduction by mean/sum over some dims that is not a global spatial pool
``reshape``            a chain of view/reshape/flatten/permute/transpose ops that changes the
                       tensor's shape (chains that leave the shape unchanged are removed)
``pad``                explicit padding
``upsample``           upsampling / interpolation
``sdpa``               scaled-dot-product attention (softmax(QKᵀ/√d)·V as one node)
``identity``           an explicit no-op that a search space names (e.g. a skip edge)
``zero``               an explicit "none" edge that outputs zeros
``unknown``            anything else; :attr:`Node.source_op` keeps the original operator name
=====================  =====================================================================

Collapsed, never graph nodes: parameters, buffers and constants (folded into the consumer node's
``params``/``weight_shape``); dropout and other inference-time no-ops; dtype/device casts,
``contiguous``/``clone``/``detach``; and shape bookkeeping (``size``/``Shape``/``Gather`` on shapes).
"""

from __future__ import annotations

OP_TYPES: tuple[str, ...] = (
    "input",
    "output",
    "conv",
    "depthwise_conv",
    "grouped_conv",
    "linear",
    "matmul",
    "batch_norm",
    "layer_norm",
    "relu",
    "relu6",
    "gelu",
    "silu",
    "hardswish",
    "hardsigmoid",
    "sigmoid",
    "tanh",
    "softmax",
    "add",
    "mul",
    "concat",
    "split",
    "max_pool",
    "avg_pool",
    "global_pool",
    "mean",
    "reshape",
    "pad",
    "upsample",
    "sdpa",
    "identity",
    "zero",
    "unknown",
)

OP_INDEX: dict[str, int] = {op: i for i, op in enumerate(OP_TYPES)}

#: Ops whose multiply-accumulates are the ones NAS benchmarks and torchvision's model cards count.
MAC_OPS: frozenset[str] = frozenset(
    {"conv", "depthwise_conv", "grouped_conv", "linear", "matmul", "sdpa"}
)
#: Convolution-like and fully connected ops only (what most other counters report).
CONV_LINEAR_OPS: frozenset[str] = frozenset({"conv", "depthwise_conv", "grouped_conv", "linear"})
#: Ops that own a weight tensor (weight_shape is set).
WEIGHTED_OPS: frozenset[str] = frozenset(
    {"conv", "depthwise_conv", "grouped_conv", "linear", "batch_norm", "layer_norm"}
)
CONV_OPS: frozenset[str] = frozenset({"conv", "depthwise_conv", "grouped_conv"})
ACTIVATION_OPS: frozenset[str] = frozenset(
    {"relu", "relu6", "gelu", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "softmax"}
)
POOL_OPS: frozenset[str] = frozenset({"max_pool", "avg_pool", "global_pool"})


def check_op(op: str) -> str:
    """Return ``op`` if it is in the vocabulary, else raise ``ValueError`` naming it."""
    if op not in OP_INDEX:
        raise ValueError(f"unknown op type {op!r}; the vocabulary is {', '.join(OP_TYPES)}")
    return op


def conv_op_type(in_channels: int, groups: int) -> str:
    """Classify a convolution by its groups: ``conv``, ``depthwise_conv`` or ``grouped_conv``."""
    if groups <= 1:
        return "conv"
    if groups == in_channels:
        return "depthwise_conv"
    return "grouped_conv"

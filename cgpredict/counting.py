"""Multiply-accumulate (MAC) rules per node and named whole-graph counting modes.

Pipeline position: model → **CG** (this module fills ``Node.macs``) → features → predictor.

All counts are *per sample*: shapes carry the batch dimension first and it is divided out, so a CG
traced with batch 16 reports the same MACs as one traced with batch 1. Every node gets a MAC count
by the rules in :func:`node_macs` (elementwise ops count one per output element, windows count the
window area); which of them a whole-graph total includes is a *counting mode*:

``torchvision`` (default, :attr:`CG.flops`)
    conv, depthwise/grouped conv, linear, matmul and SDPA (QKᵀ and AV): the convention of
    torchvision's model cards and of most NAS benchmarks; also ``unknown`` nodes whose converter
    counted their MACs in ``attrs["macs"]`` (LSTM/GRU/RNN layers; embedding lookups count 0).
``conv_linear``
    convolutions and linear layers only (what ``fvcore``-style counters without attention report).
``all``
    every node's MACs, including normalisation, activations, pooling and elementwise ops.

Other modes (for example a benchmark's own counter) are added with :func:`register_counting_mode`.
A family whose benchmark counts its own way declares its rule in its
:class:`~cgpredict.datasets.registry.FamilySpec` (``flops_mode``, ``counting``); such a mode is
found whether or not the family's module was imported before: an unknown mode name makes
:func:`count_macs` import the family modules first (:func:`cgpredict.datasets.registry.load_counting_modes`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from cgpredict.ops import CONV_LINEAR_OPS, CONV_OPS, MAC_OPS

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG, Node

ELEMENTWISE_OPS = frozenset(
    {
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
        "upsample",
    }
)


def _numel(shape: Iterable[int]) -> int:
    return int(math.prod(shape))


def _per_sample(shape: tuple[int, ...]) -> int:
    """Number of elements of one sample (batch dimension first)."""
    if not shape:
        return 1
    batch = shape[0] if shape[0] > 0 else 1
    return _numel(shape) // batch


def node_macs(node: Node) -> int:
    """Multiply-accumulates of one node for one sample, from its shapes and attributes."""
    op = node.op
    out = tuple(node.out_shape)
    if op in CONV_OPS:
        if node.weight_shape is None:
            return 0
        if node.attrs.get("transposed"):
            return _per_sample(tuple(node.in_shapes[0])) * _numel(node.weight_shape[1:])
        return _per_sample(out) * _numel(node.weight_shape[1:])
    if op == "linear":
        if node.weight_shape is None or len(node.weight_shape) < 2:
            return 0
        return _per_sample(out) * int(node.weight_shape[-1])
    if op == "matmul":
        if not node.in_shapes or not node.in_shapes[0]:
            return 0
        return _per_sample(out) * int(node.in_shapes[0][-1])
    if op == "sdpa":
        if len(node.in_shapes) < 3:
            return 0
        q, k, v = (tuple(s) for s in node.in_shapes[:3])
        length, depth = q[-2], q[-1]
        source_len, value_depth = k[-2], v[-1]
        batch_heads = _per_sample(q) // max(1, length * depth)
        return batch_heads * length * source_len * (depth + value_depth)
    if op in ELEMENTWISE_OPS:
        return _per_sample(out)
    if op in ("max_pool", "avg_pool"):
        return _per_sample(out) * _numel(node.kernel or (1,))
    if op in ("global_pool", "mean"):
        return _per_sample(tuple(node.in_shapes[0])) if node.in_shapes else 0
    if op == "unknown":  # a converter's own count for an op these rules do not know (e.g. LSTM)
        return counted_unknown_macs(node) or 0
    return 0


def counted_unknown_macs(node: Node) -> int | None:
    """MACs a converter counted for an ``unknown`` node (``attrs["macs"]``), or ``None`` if not counted."""
    value = node.attrs.get("macs") if node.op == "unknown" else None
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else None


CountingRule = Callable[["CG"], int]
_MODES: dict[str, CountingRule] = {}


def register_counting_mode(name: str, rule: CountingRule | Iterable[str]) -> None:
    """Register a named whole-graph MAC counting mode.

    ``rule`` is either a set of op types whose node MACs are summed, or a callable taking a CG and
    returning its total.
    """
    if callable(rule):
        _MODES[name] = rule
        return
    ops = frozenset(rule)

    def _sum_ops(cg: CG, _ops: frozenset[str] = ops) -> int:
        return sum(n.macs for n in cg.nodes if n.op in _ops)

    _MODES[name] = _sum_ops


def _load_family_modes() -> None:
    """Register the family-specific modes (each family module registers its own on import)."""
    from cgpredict.datasets.registry import load_counting_modes

    load_counting_modes()


def counting_modes() -> list[str]:
    """Names of the counting modes: the built-in ones, every family's own and any registered here."""
    _load_family_modes()
    return sorted(_MODES)


def count_macs(cg: CG, mode: str = "torchvision") -> int:
    """Total MACs of ``cg`` under the named counting mode.

    Raises:
        ValueError: no built-in, family or registered mode has that name (the message lists them).
    """
    if mode not in _MODES:
        _load_family_modes()
    try:
        rule = _MODES[mode]
    except KeyError:
        raise ValueError(f"unknown counting mode {mode!r}; known: {', '.join(counting_modes())}") from None
    return int(rule(cg))


register_counting_mode(
    "torchvision",  # recurrent layers (unknown nodes a converter counted) are dense products too
    lambda cg: sum(n.macs for n in cg.nodes if n.op in MAC_OPS or counted_unknown_macs(n) is not None),
)
register_counting_mode("conv_linear", CONV_LINEAR_OPS)
register_counting_mode("all", lambda cg: sum(n.macs for n in cg.nodes))

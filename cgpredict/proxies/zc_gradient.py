"""Gradient-based training-free proxies: SNIP, grad-norm, Fisher, ZiCo, Jacobian covariance.

Pipeline position: model → CG → shared pass (:mod:`~cgpredict.proxies.zc_pass`) → **gradient
proxies** → bank scores / node features → predictor.

``L`` is the cross-entropy of the logits against seeded random labels; the gradients ``g`` of the
two half-batches of the shared pass are summed for the one-batch proxies.

* **SNIP** (Lee et al., ICLR 2019; as a NAS proxy Abdelfattah et al., ICLR 2021):
  ``Σ_layers Σ |θ ⊙ ∂L/∂θ|`` over conv/linear weights. Per node: the layer's sum.
* **grad-norm** (Abdelfattah et al., ICLR 2021): ``Σ_layers ‖∂L/∂θ‖₂``. Per node: the layer's norm.
* **Fisher** (Theis et al. 2018; Turner et al., ICLR 2020; Abdelfattah et al. 2021): for every
  conv/linear output ``a``, channel ``c``: ``Δ_c = ½ · mean_batch (Σ_space a_c ⊙ ∂L/∂a_c)²``; a layer
  scores ``fan_in · Σ_c Δ_c`` (``fan_in`` = weights per output channel: the zero-cost-proxy code of
  Abdelfattah et al., which NAS-Bench-Suite-Zero's ``fisher`` column uses, spreads each channel's
  value over all weights of the channel before summing), summed over layers.
* **ZiCo** (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients",
  ICLR 2023): with the per-weight gradients of the two half-batches, per layer
  ``ln Σ_θ mean|g_θ| / std(g_θ)`` (over weights with non-zero std), summed over layers.
* **Jacobian covariance** (Mellor et al., arXiv 2006.04647v1, "jacov" of NAS-Bench-Suite-Zero): the
  gradients ``J_i`` of the summed logits with respect to each input of the first half-batch; with
  ``λ`` the eigenvalues of their correlation matrix and ``k = 1e-5``,
  ``−Σ (ln(λ + k) + 1/(λ + k))``.

A degenerate network (its output does not depend on its input or weights, e.g. an NB-201 cell of
``none`` edges) scores ``−inf`` on ZiCo and Jacobian covariance, the lowest rank.

Per-node gradient statistics (every node with a gradient): mean ``|∂L/∂a|`` and std ``∂L/∂a`` of its
output on the first half-batch, for the predictor's node features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from cgpredict.proxies.zc_pass import PassData

__all__ = ["act_grad_stats", "fisher", "grad_norm", "jacov", "jacov_from_jacobian", "snip", "zico", "zico_layer_ratio"]


def _summed_grads(data: PassData) -> dict[int, torch.Tensor]:
    """Weight gradients summed over the half-batches (computed once per pass, shared by SNIP and grad-norm)."""
    if "summed_grads" not in data.memo:
        out: dict[int, torch.Tensor] = {}
        for grads in data.weight_grads:
            for nid, g in grads.items():
                out[nid] = out[nid] + g if nid in out else g
        data.memo["summed_grads"] = out
    return data.memo["summed_grads"]


def _empty(num_nodes: int) -> np.ndarray:
    return np.full(num_nodes, np.nan, dtype=np.float32)


def _layer_sums(data: PassData, num_nodes: int, term) -> tuple[float, np.ndarray]:  # noqa: ANN001
    """``(Σ_layers term(node id, g), per-node terms)`` over the conv/linear weight gradients ``g``;
    NaN without such weights."""
    node = _empty(num_nodes)
    grads = _summed_grads(data)
    if not grads:
        return math.nan, node
    total = 0.0
    for nid, g in grads.items():
        v = float(term(nid, g))
        node[nid] = v
        total += v
    return total, node


def snip(data: PassData, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(Σ |θ ⊙ g|, per-node layer sums)``; NaN without conv/linear weights."""
    return _layer_sums(data, num_nodes, lambda nid, g: (data.weights[nid] * g).abs().sum())


def grad_norm(data: PassData, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(Σ_layers ‖g‖₂, per-node norms)``."""
    return _layer_sums(data, num_nodes, lambda nid, g: g.norm())


def fisher(data: PassData, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(Σ_layers Fisher, per-node Fisher)`` of the conv/linear outputs."""
    node = _empty(num_nodes)
    if not data.fisher:
        return math.nan, node
    for nid, v in data.fisher.items():
        node[nid] = v
    return float(sum(data.fisher.values())), node


def zico(data: PassData, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(Σ_layers ln Σ mean|g|/std(g), per-node layer terms)`` over the two half-batches (−inf: all std 0)."""
    node = _empty(num_nodes)
    if len(data.weight_grads) < 2:
        return math.nan, node
    ratios = _zico_ratios(data.weight_grads)
    total, used = 0.0, 0
    for nid in data.weight_grads[0]:
        ratio = ratios[nid]
        if ratio > 0:
            node[nid] = math.log(ratio)
            total += node[nid]
            used += 1
    if not used:  # every weight's gradient is constant (zero) over the batches: the lowest score
        return -math.inf, node
    return float(total), node


def zico_layer_ratio(grads: Sequence[torch.Tensor]) -> float:
    """``Σ_θ mean|g_θ| / std(g_θ)`` of one layer over its weights with non-zero std (population std
    over the batches); the definition, one layer at a time."""
    stack = torch.stack([g.reshape(-1).double() for g in grads])
    std = stack.std(dim=0, unbiased=False)
    mean_abs = stack.abs().mean(dim=0)
    keep = std > 0
    return float((mean_abs[keep] / std[keep]).sum()) if bool(keep.any()) else 0.0


def _zico_ratios(weight_grads: Sequence[dict[int, torch.Tensor]]) -> dict[int, float]:
    """:func:`zico_layer_ratio` of every layer of ``weight_grads[0]``.

    With two batches (the shared pass), all layers at once: for two values ``mean|g| = (|a| + |b|)/2``
    and ``std = |a − b|/2``, elementwise on the concatenated weights, then one sum per layer.
    """
    ids = list(weight_grads[0])
    if len(weight_grads) != 2 or not ids:
        return {nid: zico_layer_ratio([grads[nid] for grads in weight_grads]) for nid in ids}
    a, b = (torch.cat([grads[nid].reshape(-1) for nid in ids]).double() for grads in weight_grads)
    std = (a - b).abs_().div_(2.0)
    ratio = (a.abs() + b.abs()).div_(2.0).div_(std)
    keep = (std > 0) & torch.isfinite(std)  # a NaN or infinite gradient has a NaN std in the definition
    ratio = torch.where(keep, ratio, torch.zeros((), dtype=ratio.dtype))
    out: dict[int, float] = {}
    start = 0
    for nid in ids:
        n = weight_grads[0][nid].numel()
        out[nid] = float(ratio[start:start + n].sum())
        start += n
    return out


def jacov_from_jacobian(jacobian: torch.Tensor, k: float = 1e-5) -> float:
    """``−Σ (ln(λ + k) + 1/(λ + k))`` over the eigenvalues ``λ`` of the rows' correlation matrix."""
    rows = jacobian.double()
    if not bool(torch.isfinite(rows).all()):
        return math.nan
    if bool((rows.std(dim=1) == 0).any()):  # an input that does not change the output: the lowest score
        return -math.inf
    corr = torch.corrcoef(rows)
    lam = torch.linalg.eigvalsh(corr)
    value = float(-(torch.log(lam + k) + 1.0 / (lam + k)).sum())
    return value if math.isfinite(value) else math.nan


def jacov(data: PassData, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(Jacobian covariance score, no per-node statistic)``."""
    if data.jacobian is None:
        return math.nan, _empty(num_nodes)
    return jacov_from_jacobian(data.jacobian), _empty(num_nodes)


def act_grad_stats(data: PassData, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-node ``(mean |∂L/∂a|, std ∂L/∂a)`` on the first half-batch (NaN where no gradient)."""
    mean, std = _empty(num_nodes), _empty(num_nodes)
    for nid, v in data.act_grad_mean.items():
        mean[nid] = v
    for nid, v in data.act_grad_std.items():
        std[nid] = v
    return mean, std

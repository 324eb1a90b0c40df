"""Combining the GENNAPE ensemble members' scores into one ranking.

Pipeline position: model → CG → features → predictor members → **ensemble** → ranking/search.

Members produce scores on different scales (accuracies, merge-sort positions, FLOPs), so every
member's scores are first turned into normalised ranks: average ranks for ties, rescaled to
``[0, 1]`` (1 = that member's best CG). The ensemble score is the weighted mean of these ranks.
Zero-shot, all members weigh the same; after fine-tuning on a few labelled CGs of the target
family, the weights are ``softmax(τ_member / temperature)`` of each member's Kendall τ on those
CGs (a member with an undefined τ, e.g. constant scores, counts as τ = 0).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from scipy.stats import rankdata

from cgpredict.metrics import DegenerateMetricWarning, kendall_tau


def normalized_ranks(scores: np.ndarray) -> np.ndarray:
    """Average ranks of ``scores`` (higher score → higher rank) rescaled to ``[0, 1]``;
    all 0.5 for a single CG or constant scores."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size <= 1 or np.ptp(scores) == 0:
        return np.full(scores.size, 0.5)
    return (rankdata(scores, method="average") - 1.0) / (scores.size - 1.0)


def equal_weights(members: list[str]) -> dict[str, float]:
    """``1 / len(members)`` each."""
    if not members:
        raise ValueError("the ensemble has no members")
    return {name: 1.0 / len(members) for name in members}


def kendall_weights(member_scores: Mapping[str, np.ndarray], labels: np.ndarray,
                    temperature: float = 1.0) -> tuple[dict[str, float], dict[str, float]]:
    """``(weights, taus)``: softmax over members of Kendall τ(labels, member scores) / temperature."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    taus: dict[str, float] = {}
    for name, scores in member_scores.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateMetricWarning)
            tau = kendall_tau(labels, scores)
        taus[name] = 0.0 if np.isnan(tau) else float(tau)
    return softmax_weights(taus, temperature), taus


def softmax_weights(taus: Mapping[str, float], temperature: float = 1.0) -> dict[str, float]:
    """``softmax(τ / temperature)`` over members."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    names = list(taus)
    logits = np.array([taus[n] for n in names], dtype=np.float64) / temperature
    w = np.exp(logits - logits.max())
    w /= w.sum()
    return dict(zip(names, w.tolist()))


def combine(member_scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted mean of the members' normalised ranks (weights renormalised over given members)."""
    names = [n for n in member_scores if weights.get(n, 0.0) > 0]
    if not names:
        raise ValueError("no ensemble member with a positive weight")
    total = sum(weights[n] for n in names)
    return sum(weights[n] / total * normalized_ranks(member_scores[n]) for n in names)

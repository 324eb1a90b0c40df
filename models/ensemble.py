"""Combining the GENNAPE ensemble members' scores into one ranking.

Pipeline position: model → CG → features → predictor members → **ensemble** → ranking/search.

Members produce scores on different scales (accuracies, merge-sort positions, FLOPs), so every
member's scores are first turned into normalised ranks: average ranks for ties, rescaled to
``[0, 1]`` (1 = that member's best CG). The ensemble score is the weighted mean of these ranks.
Zero-shot, all members weigh the same; after fine-tuning on a few labelled CGs of the target
family, the weights are ``softmax(τ_member / temperature)`` of each member's Kendall τ on those
CGs (a member with an undefined τ, e.g. constant scores, counts as τ = 0); or, by
:func:`stacked_weights`, a non-negative least-squares fit of the labels' ranks on the members'
cross-fitted ranks, which accounts for members that duplicate each other.

With the training-free ``Proxy`` member there is a label-free alternative for zero-shot ranking,
:func:`proxy_agreement_weights`: the proxy scores, computed on the target family itself, act as
pseudo-labels that judge which of the members learned on another family transfer to this one.
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


def failed_floor(scores: np.ndarray) -> np.ndarray:
    """Per column: the smallest finite score − 1 (0 for a column without any)."""
    return np.array([np.nanmin(c) - 1.0 if np.isfinite(c).any() else 0.0 for c in np.asarray(scores).T])


def fill_failed(scores: np.ndarray, floor: np.ndarray | None = None) -> np.ndarray:
    """NaN (failed) entries replaced per column by ``floor`` (default :func:`failed_floor` of
    ``scores``), so a CG whose score failed ranks last in that column."""
    scores = np.array(scores, dtype=np.float64, ndmin=2)
    floor = failed_floor(scores) if floor is None else floor
    return np.where(np.isfinite(scores), scores, floor[None, :])


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


#: Temperatures :func:`crossfit_temperature` chooses from.
TEMPERATURE_GRID: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5)


def crossfit_temperature(shot_scores: Mapping[str, np.ndarray], folds: np.ndarray, labels: np.ndarray,
                         grid: tuple[float, ...] = TEMPERATURE_GRID) -> tuple[float, dict[float, float]]:
    """``(temperature, criterion)``: the Kendall-τ softmax temperature that ranks held-out nets best.

    ``shot_scores`` are the members' cross-fitted scores on the fine-tuning nets (each net scored
    by a copy not fine-tuned on it; :attr:`Predictor.crossfit_scores_`) and ``folds`` each net's
    fold. For every fold ``k`` and temperature ``T``, the weights ``softmax(τ / T)`` come from the
    members' τ on the *other* folds, and the weighted rank ensemble is scored by its Kendall τ on
    fold ``k``; ``criterion[T]`` is the mean over folds. Returns the best ``T`` (ties: the larger,
    i.e. the smoother weighting). Low ``T`` nearly selects the best member, high ``T`` averages
    them. An analysis helper (the ``auto T`` rule of ``benchmarks/weight_rules.py``), not used by
    :class:`~cgpredict.predictor.Predictor`: on 50-shot NB-201 CIFAR-10 it did not beat a fixed
    ``T = 0.1``, 25 nets per fold being too few to choose ``T`` reliably.
    """
    folds = np.asarray(folds)
    labels = np.asarray(labels, dtype=np.float64)
    ids = np.unique(folds)
    if ids.size < 2:
        raise ValueError("crossfit_temperature needs at least 2 folds")
    if not grid or min(grid) <= 0:
        raise ValueError(f"temperatures must be > 0, got {grid}")
    criterion: dict[float, list[float]] = {float(t): [] for t in grid}
    for k in ids:
        held = folds == k
        other_taus: dict[str, list[float]] = {name: [] for name in shot_scores}
        for j in ids[ids != k]:
            part = folds == j
            _, taus = kendall_weights({n: np.asarray(s)[part] for n, s in shot_scores.items()}, labels[part])
            for name, tau in taus.items():
                other_taus[name].append(tau)
        taus = {name: float(np.mean(v)) for name, v in other_taus.items()}
        held_scores = {n: np.asarray(s)[held] for n, s in shot_scores.items()}
        for t in criterion:
            ens = combine(held_scores, softmax_weights(taus, t))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DegenerateMetricWarning)
                tau = kendall_tau(labels[held], ens)
            criterion[t].append(0.0 if np.isnan(tau) else float(tau))
    means = {t: float(np.mean(v)) for t, v in criterion.items()}
    best = max(means.values())
    return max(t for t, v in means.items() if v >= best - 1e-12), means


def stacked_weights(shot_scores: Mapping[str, np.ndarray], folds: np.ndarray,
                    labels: np.ndarray) -> dict[str, float]:
    """Member weights by stacked regression on cross-fitted ranks (Breiman, *Stacked Regressions*, 1996).

    ``shot_scores`` are the members' cross-fitted scores on the fine-tuning nets (each net scored
    by a copy not fine-tuned on it; :attr:`Predictor.crossfit_scores_`), ``folds`` each net's fold.
    Within every fold the members' scores and the labels become normalised ranks (the scale the
    ensemble averages; scores of different folds come from different copies), centred at 0; the
    weights are the non-negative least-squares fit (SciPy ``nnls``) of the label ranks on the
    member ranks, rescaled to sum to 1 (all zero: equal weights). Unlike a softmax of each
    member's own τ, the joint fit sees how members overlap: near-duplicates (the four CL members
    share one encoder) split one share instead of taking four, and a member that adds nothing to
    the others gets 0. A failed (NaN) score ranks last within its fold.
    """
    from scipy.optimize import nnls

    names = list(shot_scores)
    if not names:
        raise ValueError("the ensemble has no members")
    folds = np.asarray(folds)
    labels = np.asarray(labels, dtype=np.float64)
    rows, targets = [], []
    for k in np.unique(folds):
        part = folds == k
        block = fill_failed(np.stack([np.asarray(shot_scores[n], dtype=np.float64)[part] for n in names], axis=1))
        rows.append(np.stack([normalized_ranks(column) - 0.5 for column in block.T], axis=1))
        targets.append(normalized_ranks(labels[part]) - 0.5)
    w, _ = nnls(np.concatenate(rows), np.concatenate(targets))
    if not w.sum() > 0:
        return equal_weights(names)
    return dict(zip(names, (w / w.sum()).tolist()))


def proxy_agreement_weights(member_scores: Mapping[str, np.ndarray], temperature: float = 0.1,
                            judge: str = "Proxy") -> tuple[dict[str, float], dict[str, float]]:
    """``(weights, taus)``: label-free zero-shot weights from agreement with a training-free judge.

    ``judge`` (the ``Proxy`` member: proxy scores computed on the target CGs) keeps its equal share
    ``1 / M`` of the ``M`` members; the other ``(M − 1) / M`` is split among the remaining members
    by ``softmax(τ / temperature)`` of their Kendall τ with the judge's scores on the same CGs —
    the fine-tuning rule of :func:`kendall_weights` with the judge's scores as pseudo-labels.
    ``taus`` are those pseudo-τ (the judge's own is 1). Members learned on another family transfer
    with a large spread across seeds (zero-shot NB-201: k-GNN 0.49 ± 0.23 Spearman); agreement with
    the target's own proxies is the only label-free evidence of which ones did.
    """
    if judge not in member_scores:
        raise ValueError(f"proxy-agreement weights need the {judge!r} member's scores")
    others = {n: s for n, s in member_scores.items() if n != judge}
    if not others:
        return {judge: 1.0}, {judge: 1.0}
    inner, taus = kendall_weights(others, np.asarray(member_scores[judge], dtype=np.float64), temperature)
    share = 1.0 / len(member_scores)
    weights = {n: share if n == judge else (1.0 - share) * inner[n] for n in member_scores}
    return weights, {**taus, judge: 1.0}


def combine(member_scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted mean of the members' normalised ranks (weights renormalised over given members)."""
    names = [n for n in member_scores if weights.get(n, 0.0) > 0]
    if not names:
        raise ValueError("no ensemble member with a positive weight")
    total = sum(weights[n] for n in names)
    return sum(weights[n] / total * normalized_ranks(member_scores[n]) for n in names)

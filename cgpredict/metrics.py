"""Ranking and regression metrics for accuracy predictors.

Pipeline position: model → CG → features → predictor → **evaluation** (of predictions against
benchmark labels) → ranking/search.

All functions take ``y_true`` (measured accuracies, higher is better) and ``y_pred`` (predicted
accuracies or any score where higher means better) as 1-D array-likes of equal length.

Ties and degenerate inputs
--------------------------
* :func:`spearman` and :func:`kendall_tau` use SciPy's tie-corrected statistics (Spearman on
  average ranks, Kendall's tau-b). When either input is constant the correlation is undefined:
  they return ``nan`` and emit a :class:`DegenerateMetricWarning` instead of raising.
* :func:`ndcg_at_k`, :func:`precision_at_k` and :func:`best_ranking_at_k` treat tied predictions
  as if the tie were broken uniformly at random and return the *expected* value, so a constant
  predictor scores exactly what a random ranking would on average (never an optimistic value from
  a lucky index order).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats
from scipy.special import gammaln

#: Fractions K used by :func:`evaluate` for precision@K and best-ranking@K.
TOP_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.10)
#: Cut-offs k used by :func:`evaluate` for NDCG@k.
NDCG_KS: tuple[int, ...] = (10, 50)
#: Relevance scale of :func:`ndcg_at_k`: accuracies are min-max rescaled to ``[0, NDCG_MAX_RELEVANCE]``.
NDCG_MAX_RELEVANCE = 20.0


class DegenerateMetricWarning(RuntimeWarning):
    """A metric is undefined for the given inputs (e.g. constant predictions) and returned nan."""


def _pair(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}")
    if t.size == 0:
        raise ValueError("metrics need at least one value (y_true is empty)")
    if not np.all(np.isfinite(t)):
        raise ValueError("y_true contains nan or inf")
    if not np.all(np.isfinite(p)):
        raise ValueError("y_pred contains nan or inf")
    return t, p


def _correlation(kind: str, t: np.ndarray, p: np.ndarray) -> float:
    if t.size < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
        which = "y_true" if t.size >= 2 and np.ptp(t) == 0 else "y_pred"
        warnings.warn(f"{kind} is undefined because {which} is constant; returning nan",
                      DegenerateMetricWarning, stacklevel=3)
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "spearman":
            value = stats.spearmanr(t, p).statistic
        else:
            value = stats.kendalltau(t, p).statistic  # tau-b
    return float(value)


def spearman(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (SRCC) with average ranks for ties; nan (+warning) if constant."""
    return _correlation("spearman", *_pair(y_true, y_pred))


def kendall_tau(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b (tie-corrected); nan (+warning) if an input is constant."""
    return _correlation("kendall_tau", *_pair(y_true, y_pred))


def mae(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    """Mean absolute error ``mean(|y_true - y_pred|)`` in the labels' units."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def _groups_desc(p: np.ndarray) -> list[np.ndarray]:
    """Indices grouped by equal prediction, groups ordered by decreasing prediction."""
    order = np.argsort(-p, kind="stable")
    sorted_p = p[order]
    cuts = np.flatnonzero(np.diff(sorted_p) != 0) + 1
    return np.split(order, cuts)


def ndcg_at_k(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray, k: int = 10) -> float:
    """Normalised discounted cumulative gain of the predicted top-``k``.

    Relevance is the true accuracy min-max rescaled to ``[0, 20]`` (best network 20, worst 0);
    gain is linear in relevance and the discount of (1-based) position ``i`` is ``1 / log2(i + 1)``:
    ``NDCG@k = DCG@k(predicted order) / DCG@k(ideal order)``. Tied predictions share the average
    discount of the positions they span (the expectation under a random tie-break; the same rule as
    scikit-learn's ``ndcg_score``). Returns 1.0 when all true accuracies are equal.
    """
    t, p = _pair(y_true, y_pred)
    if k < 1:
        raise ValueError(f"ndcg_at_k needs k >= 1, got {k}")
    span = np.ptp(t)
    if span == 0:
        return 1.0
    rel = (t - t.min()) / span * NDCG_MAX_RELEVANCE
    n = t.size
    k = min(k, n)
    discount = np.zeros(n)
    discount[:k] = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = 0.0
    start = 0
    for group in _groups_desc(p):
        stop = start + group.size
        if start >= k:
            break
        dcg += rel[group].mean() * discount[start:stop].sum()
        start = stop
    ideal = float(np.sort(rel)[::-1][:k] @ discount[:k])
    return float(dcg / ideal)


def _inclusion_prob(values: np.ndarray, count: int) -> np.ndarray:
    """P(item is among the ``count`` largest values) when ties are broken uniformly at random."""
    prob = np.zeros(values.size)
    taken = 0
    for group in _groups_desc(values):
        if taken >= count:
            break
        room = count - taken
        prob[group] = min(1.0, room / group.size)
        taken += group.size
    return prob


def top_count(n: int, fraction: float) -> int:
    """Size of a top-``fraction`` set among ``n`` items: ``max(1, ceil(fraction * n))``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"top fraction must be in (0, 1], got {fraction}")
    return max(1, math.ceil(fraction * n - 1e-9))


def precision_at_k(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray, fraction: float = 0.05) -> float:
    """P@K: the fraction of the true top-K% that is also in the predicted top-K%.

    Both sets have ``m = max(1, ceil(K * n))`` members. ``P@K = |true_top ∩ pred_top| / m``, in
    ``[0, 1]`` (1 = the predictor finds exactly the best ``m`` networks). With ties at a set's
    boundary the expected overlap under uniformly random tie-breaking is returned, so a constant
    predictor gets ``m / n``.
    """
    t, p = _pair(y_true, y_pred)
    m = top_count(t.size, fraction)
    return float(_inclusion_prob(t, m) @ _inclusion_prob(p, m) / m)


def _true_ranks(t: np.ndarray) -> np.ndarray:
    """1-based true rank of each network (1 = most accurate; ties share the best rank)."""
    return stats.rankdata(-t, method="min")


def best_ranking_at_k(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray, fraction: float = 0.05) -> float:
    """BR@K: the best true rank among the predicted top-K%, as a percentile in ``[0, 100)``.

    Let ``r`` be the smallest 1-based true rank (1 = most accurate network, ties share the lowest
    rank) among the ``m = max(1, ceil(K * n))`` networks with the highest predictions. Then
    ``BR@K = 100 * (r - 1) / n``: 0 means the truly best network was among the predicted top-K%;
    lower is better. With ties at the predicted boundary the expectation over uniformly random
    tie-breaking is returned.
    """
    t, p = _pair(y_true, y_pred)
    n = t.size
    m = top_count(n, fraction)
    ranks = _true_ranks(t).astype(np.float64)
    sure: list[float] = []
    taken = 0
    expected = None
    for group in _groups_desc(p):
        if taken >= m:
            break
        room = m - taken
        if group.size <= room:
            sure.extend(ranks[group])
            taken += group.size
            continue
        # choose `room` of the tied group at random: E[min(best_sure, min of the sample)]
        best_sure = min(sure) if sure else math.inf
        g = np.sort(ranks[group])
        size = g.size
        j = np.arange(size)  # 0-based position of the sample's minimum in the sorted group
        # P(min is g[j]) = C(size-j-1, room-1) / C(size, room)
        valid = size - j - 1 >= room - 1
        logp = np.full(size, -np.inf)
        jj = j[valid]
        logp[valid] = (gammaln(size - jj) - gammaln(room) - gammaln(size - jj - room + 1)
                       - (gammaln(size + 1) - gammaln(room + 1) - gammaln(size - room + 1)))
        prob = np.exp(logp)
        expected = float(prob @ np.minimum(g, best_sure) / prob.sum())
        taken = m
    best = expected if expected is not None else min(sure)
    return float(100.0 * (best - 1.0) / n)


def evaluate(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> dict[str, float]:
    """All metrics at once: ``spearman``, ``kendall_tau``, ``ndcg@10``, ``ndcg@50``, ``mae``,
    ``precision@1%``/``5%``/``10%`` and ``best_rank@1%``/``5%``/``10%`` (see each function).

    ``mae`` is only meaningful when ``y_pred`` is in accuracy units; correlations are nan (with a
    :class:`DegenerateMetricWarning`) for constant inputs.
    """
    t, p = _pair(y_true, y_pred)
    out: dict[str, float] = {"spearman": spearman(t, p), "kendall_tau": kendall_tau(t, p)}
    for k in NDCG_KS:
        out[f"ndcg@{k}"] = ndcg_at_k(t, p, k)
    out["mae"] = mae(t, p)
    for frac in TOP_FRACTIONS:
        out[f"precision@{frac * 100:g}%"] = precision_at_k(t, p, frac)
    for frac in TOP_FRACTIONS:
        out[f"best_rank@{frac * 100:g}%"] = best_ranking_at_k(t, p, frac)
    return out

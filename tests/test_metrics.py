"""Ranking/regression metrics against SciPy, scikit-learn and hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import ndcg_score

from cgpredict.metrics import (
    DegenerateMetricWarning,
    best_ranking_at_k,
    evaluate,
    kendall_tau,
    mae,
    ndcg_at_k,
    precision_at_k,
    spearman,
    top_count,
)


def test_correlations_match_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    t = rng.integers(0, 8, 60).astype(float)
    p = t + rng.integers(-3, 4, 60)
    assert spearman(t, p) == pytest.approx(stats.spearmanr(t, p).statistic)
    assert kendall_tau(t, p) == pytest.approx(stats.kendalltau(t, p).statistic)
    assert spearman(t, -t) == pytest.approx(-1.0)


def test_constant_predictions_give_nan_with_warning_not_crash() -> None:
    t = np.arange(10.0)
    with pytest.warns(DegenerateMetricWarning, match="y_pred is constant"):
        assert math.isnan(spearman(t, np.ones(10)))
    with pytest.warns(DegenerateMetricWarning):
        assert math.isnan(kendall_tau(t, np.ones(10)))
    with pytest.warns(DegenerateMetricWarning):
        result = evaluate(t, np.full(10, 3.0))
    assert math.isnan(result["spearman"])
    # random-tie-break expectation: top-10% of 10 is 1 network, each one equally likely
    assert result["precision@10%"] == pytest.approx(0.1)
    assert result["best_rank@10%"] == pytest.approx(100 * 4.5 / 10)  # E[rank] = 5.5 -> (5.5-1)/10


def test_mae() -> None:
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)


def test_ndcg_matches_sklearn_linear_gain_relevance_0_to_20() -> None:
    rng = np.random.default_rng(1)
    t = rng.uniform(80, 95, 40)
    rel = (t - t.min()) / (t.max() - t.min()) * 20
    for p in (t + rng.normal(0, 2, 40), np.round(t + rng.normal(0, 2, 40))):  # second has ties
        for k in (1, 10, 50):
            expected = ndcg_score(rel[None, :], p[None, :], k=k)
            assert ndcg_at_k(t, p, k) == pytest.approx(expected)
    assert ndcg_at_k(t, t, 10) == pytest.approx(1.0)


def test_ndcg_by_hand() -> None:
    t = np.array([3.0, 2.0, 1.0])  # relevances 20, 10, 0
    p = np.array([1.0, 2.0, 3.0])  # predicted order: 3rd, 2nd, 1st
    dcg = 0 / 1 + 10 / math.log2(3)
    ideal = 20 / 1 + 10 / math.log2(3)
    assert ndcg_at_k(t, p, 2) == pytest.approx(dcg / ideal)


def test_precision_at_k_by_hand() -> None:
    t = np.arange(20, 0, -1.0)  # network 0 is best
    assert top_count(20, 0.1) == 2 and top_count(20, 0.01) == 1
    p = np.zeros(20)
    p[[0, 5]] = 1.0  # predicted top-2 = {0, 5}; true top-2 = {0, 1}
    assert precision_at_k(t, p, 0.1) == pytest.approx(0.5)
    assert precision_at_k(t, t, 0.05) == pytest.approx(1.0)
    assert precision_at_k(t, -t, 0.10) == pytest.approx(0.0)


def test_best_ranking_by_hand() -> None:
    t = np.arange(20, 0, -1.0)
    p = np.zeros(20)
    p[[3, 7]] = [2.0, 1.0]  # predicted top-2 are true ranks 4 and 8
    assert best_ranking_at_k(t, p, 0.1) == pytest.approx(100 * 3 / 20)
    assert best_ranking_at_k(t, t, 0.01) == 0.0
    assert best_ranking_at_k(t, -t, 0.05) == pytest.approx(100 * 19 / 20)


def test_tied_predictions_give_the_random_tie_break_expectation() -> None:
    t = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0])
    p = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])  # 4 tied at the top, choose 2 of them (k=2 for 1/3)
    tied = [0, 2, 3, 5]
    brs, precs = [], []
    for pick in itertools.combinations(tied, 2):
        best = min(pick) + 1  # true rank of network i is i+1
        brs.append(100 * (best - 1) / 6)
        precs.append(len(set(pick) & {0, 1}) / 2)
    assert best_ranking_at_k(t, p, 1 / 3) == pytest.approx(np.mean(brs))
    assert precision_at_k(t, p, 1 / 3) == pytest.approx(np.mean(precs))


def test_evaluate_keys_and_bad_input() -> None:
    rng = np.random.default_rng(2)
    t = rng.uniform(size=200)
    out = evaluate(t, t + rng.normal(0, 0.1, 200))
    assert set(out) == {"spearman", "kendall_tau", "ndcg@10", "ndcg@50", "mae", "precision@1%", "precision@5%",
                        "precision@10%", "best_rank@1%", "best_rank@5%", "best_rank@10%"}
    assert all(np.isfinite(v) for v in out.values())
    with pytest.raises(ValueError, match="y_true has 3 values but y_pred has 2"):
        evaluate([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="y_pred contains nan"):
        spearman([1, 2, 3], [1, np.nan, 2])
    with pytest.raises(ValueError, match="top fraction"):
        precision_at_k(t, t, 1.5)

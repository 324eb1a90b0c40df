"""Set-relative proxy features and the cross-family ProxyRanker (no data needed)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from cgpredict.generalist import ProxyRanker, SetReference, raw_columns, set_features, within_group_targets
from cgpredict.metrics import spearman

PROXIES = ["a", "b"]


def _raw(a, b, flops=None, params=None):
    n = len(a)
    flops = np.arange(1, n + 1) * 1e6 if flops is None else flops
    params = np.arange(1, n + 1)[::-1] * 1e3 if params is None else params
    return raw_columns({"a": a, "b": b}, flops, params, proxies=PROXIES)


def test_features_are_rank_positions_with_names_and_masks():
    raw, names = _raw([3.0, 1.0, 2.0], [10.0, 30.0, 20.0])
    f = set_features(raw, names)
    assert f.names == ("a", "b", "log_flops", "log_params", "a:missing", "b:missing")
    np.testing.assert_allclose(f.matrix[:, 0], [1.0, 0.0, 0.5])
    np.testing.assert_allclose(f.matrix[:, 1], [0.0, 1.0, 0.5])
    np.testing.assert_allclose(f.matrix[:, 2], [0.0, 0.5, 1.0])  # flops increase
    np.testing.assert_allclose(f.matrix[:, 3], [1.0, 0.5, 0.0])  # params decrease
    np.testing.assert_array_equal(f.matrix[:, 4:], 0.0)


def test_neg_inf_is_the_set_minimum_and_nan_is_neutral_with_mask():
    raw, names = _raw([-math.inf, 5.0, 7.0, 6.0, -math.inf], [1.0, math.nan, 3.0, 2.0, 4.0])
    f = set_features(raw, names).matrix
    assert f[0, 0] == 0.0 and f[4, 0] == 0.0  # -inf → exactly the minimum
    assert f[1, 0] > 0.0 and f[2, 0] == 1.0  # finite values rank above every -inf
    assert f[1, 1] == 0.5 and f[1, 5] == 1.0  # NaN → neutral + mask
    assert f[[0, 2, 3, 4], 5].sum() == 0.0
    np.testing.assert_allclose(f[[0, 3, 2, 4], 1], [0.0, 1 / 3, 2 / 3, 1.0])  # ranked among the 4 defined
    assert np.all(np.isfinite(f))


def test_invariant_to_a_monotone_rescaling_of_one_proxy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=40), rng.lognormal(size=40)
    raw1, names = _raw(a, b)
    raw2, _ = _raw(a, 1e9 * np.log(b) + 3.0)  # strictly increasing transform of b
    f1, f2 = set_features(raw1, names).matrix, set_features(raw2, names).matrix
    np.testing.assert_array_equal(f1, f2)
    raw3, _ = _raw(a, -b)  # a decreasing one must change it
    assert not np.array_equal(f1, set_features(raw3, names).matrix)


def test_single_network_needs_a_reference_and_matches_in_set_rank():
    raw, names = _raw([1.0, 2.0, 3.0, 4.0, -math.inf], [5.0, 4.0, 3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="SetReference"):
        set_features(raw[:1], names)
    ref = SetReference.from_dict(SetReference.from_raw(raw[1:], names).to_dict())  # JSON round trip
    one = set_features(raw[:1], names, reference=ref).matrix
    whole = set_features(raw, names).matrix
    np.testing.assert_allclose(one[0], whole[0])  # same position as if ranked within the full set
    inf_row = set_features(raw[4:], names, reference=SetReference.from_raw(raw[:4], names)).matrix
    assert inf_row[0, 0] == 0.0


def test_raw_columns_name_the_missing_proxy():
    with pytest.raises(KeyError, match="'b'"):
        raw_columns({"a": [1.0, 2.0]}, [1, 2], [1, 2], proxies=PROXIES)
    with pytest.raises(ValueError, match="different lengths"):
        raw_columns({"a": [1.0, 2.0], "b": [1.0]}, [1, 2], [1, 2], proxies=PROXIES)


def test_within_group_targets_remove_scale_and_offset():
    y = np.array([1.0, 5.0, 2.0, 9.0])
    for transform in ("rank", "z"):
        t = within_group_targets(y, transform)
        assert abs(t.mean()) < 1e-12 and abs(t.std() - 1) < 1e-12
        np.testing.assert_allclose(within_group_targets(100 * y - 7, transform), t)
    np.testing.assert_array_equal(within_group_targets(np.ones(3)), 0.0)
    with pytest.raises(ValueError, match="label transform"):
        within_group_targets(y, "minmax")


def _synthetic_group(rng, n, scale, offset, good=0, noise=0.3):
    """Proxy ``good`` tracks the label; the other is noise. Raw scales and label offset vary by group."""
    y = rng.normal(size=n)
    cols = [rng.normal(size=n), rng.normal(size=n)]
    cols[good] = y + noise * rng.normal(size=n)
    raw, names = raw_columns({"a": scale * cols[0], "b": np.exp(scale * cols[1])}, rng.uniform(1, 2, n) * 1e6,
                             rng.uniform(1, 2, n) * 1e4, proxies=PROXIES)
    return set_features(raw, names).matrix, scale * 10 * y + offset


@pytest.mark.parametrize("kind", ["ridge", "pairwise", "mlp", "consensus"])
def test_ranker_learns_within_group_order_across_scales_and_offsets(kind):
    rng = np.random.default_rng(1)
    groups = [_synthetic_group(rng, n, s, o) for n, s, o in ((30, 1.0, 0.0), (50, 100.0, 1e4), (40, 0.01, -50.0))]
    model = ProxyRanker(kind, seed=0, epochs=150).fit(*zip(*groups))
    x, y = _synthetic_group(np.random.default_rng(2), 200, 7.0, 3e3)
    assert model.score(x, y) > 0.8
    pred = model.predict(x)
    assert np.all(np.isfinite(pred)) and pred.shape == (200,)


def test_ranker_ignores_between_group_offsets():
    """Two groups whose label offset correlates with a feature's *level* across groups teach nothing."""
    rng = np.random.default_rng(3)
    xa, ya = _synthetic_group(rng, 40, 1.0, 0.0)
    xb, yb = _synthetic_group(rng, 40, 1.0, 0.0)
    xb = xb.copy()
    xb[:, 1] += 5.0  # group b is shifted on the noise proxy…
    yb = yb + 1e3  # …and has much higher labels: a pooled model would trust proxy b
    for kind in ("ridge", "pairwise", "consensus"):
        model = ProxyRanker(kind).fit([xa, xb], [ya, yb])
        assert abs(model.coef_[1]) < 0.5 * abs(model.coef_[0]), kind


@pytest.mark.parametrize("kind", ["ridge", "pairwise", "consensus"])
def test_groups_are_balanced_a_huge_group_does_not_dominate(kind):
    """Two small groups rank by proxy a, one huge group by proxy b: equal group weights keep a strong."""
    rng = np.random.default_rng(4)
    small = [_synthetic_group(rng, 30, 1.0, 0.0, good=0) for _ in range(2)]
    huge = _synthetic_group(rng, 3000, 1.0, 0.0, good=1)
    model = ProxyRanker(kind, pairs_per_group=500).fit(*zip(*small, huge))
    assert model.coef_[0] > model.coef_[1] > 0  # 2 groups of 30 beat 1 group of 3000
    # …and the same weighting, given explicitly, flips it when the huge group weighs more than both
    heavy = ProxyRanker(kind, pairs_per_group=500).fit(*zip(*small, huge), group_weights=[1, 1, 5])
    assert heavy.coef_[1] > heavy.coef_[0]


@pytest.mark.parametrize("kind", ["ridge", "pairwise", "mlp"])
def test_ranker_is_deterministic_given_its_seed(kind):
    groups = [_synthetic_group(np.random.default_rng(s), 60, 1.0, 0.0) for s in range(3)]
    x = groups[0][0]
    p1 = ProxyRanker(kind, seed=5, epochs=30, pairs_per_group=300).fit(*zip(*groups)).predict(x)
    p2 = ProxyRanker(kind, seed=5, epochs=30, pairs_per_group=300).fit(*zip(*groups)).predict(x)
    np.testing.assert_array_equal(p1, p2)


def test_ranker_errors_name_the_problem():
    x, y = _synthetic_group(np.random.default_rng(0), 10, 1.0, 0.0)
    with pytest.raises(ValueError, match="unknown ranker kind"):
        ProxyRanker("svm").fit([x], [y])
    with pytest.raises(ValueError, match="group 0: 10 feature rows but 9 labels"):
        ProxyRanker().fit([x], [y[:9]])
    with pytest.raises(ValueError, match="no group"):
        ProxyRanker().fit([x[:3]], [np.ones(3)])
    with pytest.raises(RuntimeError, match="not fitted"):
        ProxyRanker().predict(x)
    with pytest.raises(ValueError, match=r"shape \(n, "):
        ProxyRanker().fit([x], [y]).predict(x[:, :3])
    with pytest.raises(ValueError, match=f"penalty needs {x.shape[1]} finite multipliers"):
        ProxyRanker(penalty=[1.0]).fit([x], [y])
    with pytest.raises(ValueError, match="finite multipliers >= 0"):
        ProxyRanker(penalty=-np.ones(x.shape[1])).fit([x], [y])
    with pytest.raises(ValueError, match="ridge kind only"):
        ProxyRanker("consensus", penalty=np.ones(x.shape[1])).fit([x], [y])


def test_ridge_penalty_per_feature_is_the_closed_form():
    rng = np.random.default_rng(2)
    x, y = _synthetic_group(rng, 80, 1.0, 0.0)
    pen = np.linspace(0.5, 50.0, x.shape[1])
    coef = ProxyRanker(alpha=0.3, penalty=pen).fit([x], [y]).coef_
    xc, t = x - x.mean(axis=0), within_group_targets(y)
    np.testing.assert_allclose(coef, np.linalg.solve(xc.T @ xc / len(y) + 0.3 * np.diag(pen), xc.T @ t / len(y)))
    np.testing.assert_allclose(ProxyRanker(alpha=0.3, penalty=np.ones(x.shape[1])).fit([x], [y]).coef_,
                               ProxyRanker(alpha=0.3).fit([x], [y]).coef_)


def test_score_is_spearman():
    x, y = _synthetic_group(np.random.default_rng(0), 50, 1.0, 0.0)
    model = ProxyRanker().fit([x], [y])
    assert model.score(x, y) == pytest.approx(spearman(y, model.predict(x)))


def _benchmark_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "generalist.py"
    spec = importlib.util.spec_from_file_location("generalist_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_benchmark_lofo_on_synthetic_tables_beats_flops_and_reports_strict_variant():
    """The benchmark's protocol on synthetic tables: meco tracks the labels in every family, FLOPs do not."""
    from types import SimpleNamespace

    from cgpredict.generalist import FEATURE_PROXIES, GeneralistPredictor

    bench = _benchmark_module()
    rng = np.random.default_rng(0)
    tables = []
    width = len(GeneralistPredictor().column_names)
    for name in ("nb201_c10", "tnb_jigsaw", "nb301", "nb101"):
        n = 80
        y = rng.normal(size=n)
        scores = {m: rng.normal(size=n) for m in FEATURE_PROXIES}
        scores["meco"] = y + 0.3 * rng.normal(size=n)
        scores["synflow"][0] = -math.inf
        raw = rng.normal(size=(n, width))
        raw[:, : len(FEATURE_PROXIES)] = np.stack([scores[m] for m in FEATURE_PROXIES], axis=1)
        tables.append(bench.TableData(name, bench._family(name), raw, scores, 50 + 5 * y, 0))
    arms = ["cg+proxies", "proxies", "cg"]
    results = bench.run_lofo(tables, arms, "ridge", seeds=2, fraction=0.8, shots=20, shot_seeds=2)
    assert ("nb201_c10", "strict", "cg+proxies") in results and ("nb301", "strict", "cg+proxies") not in results
    assert len(results[("nb101", "all", "proxies")]) == 2
    assert len(results[("nb101", "20-shot fine-tuned, linear step only", "cg+proxies")]) == 2  # no CGs: no kernel
    base = {t.name: bench.baselines(t) for t in tables}
    for t in tables:
        learned = np.mean([r[0] for r in results[(t.name, "all", "cg+proxies")]])
        assert learned > base[t.name]["FLOPs"][0] + 0.3
        # the graph-only arm cannot see meco: it does not rank these synthetic labels
        assert np.mean([r[0] for r in results[(t.name, "all", "cg")]]) < learned - 0.3
    args = SimpleNamespace(arms=",".join(arms), kind="ridge", alpha=1.0, balance="vocabulary", code_line="Code: test",
                           sample_seed=0, seeds=2, fraction=0.8, shots=20, shot_seeds=2)
    text = bench.report(tables, results, base, bench.weights_on_all(tables, "ridge"), args, 1.0)
    assert "| nb201_c10 | 80 |" in text and "cg+proxies strict" in text and "| meco |" in text
    assert "20-shot from the generalist" in text and "Mean over held-out families" in text
    # vocabulary balance: the NB-201-cell tables share one unit of weight
    model = bench.fit_generalist(tables, ["NB-201", "TransNAS micro", "NB-101"], bench.ARMS["proxies"][0], "ridge", 0, 1.0,
                         "vocabulary", 1.0)
    assert {g: v["weight"] for g, v in model.groups_.items()} == {"nb201_c10": 0.5, "tnb_jigsaw": 0.5, "nb101": 1.0}
    assert bench._size("nb201_c100", bench.DEFAULT_SIZES) == 725 and bench._size("tnb_normal", "tnb=7") == 7

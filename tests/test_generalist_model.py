"""GeneralistPredictor and CG descriptors: definitions on hand-made CGs, fit/predict/finetune, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cgpredict.cg import CGBuilder
from cgpredict.generalist import CG_COLUMNS, GRAPH_COLUMNS, GeneralistPredictor, cg_descriptors, pooled_node_stats
from cgpredict.metrics import spearman


def _conv(b, src, c=8, k=3):
    return b.add("conv", [src], (1, c, 8, 8), weight_shape=(c, c, k, k), kernel=(k, k), stride=(1, 1), macs=c * c * k * k * 64)


def _desc(cg):
    return dict(zip(CG_COLUMNS, cg_descriptors(cg)))


def test_descriptors_of_a_chain_and_a_residual_block():
    b = CGBuilder("chain")
    x = b.add("input", [], (1, 8, 8, 8))
    h = b.add("relu", [_conv(b, x)], (1, 8, 8, 8))
    b.add("output", [_conv(b, h, k=1)], (1, 8, 8, 8))
    d = _desc(b.build())
    assert (d["weighted"], d["depth_max"], d["depth_min"], d["log_paths"], d["merges"]) == (2, 2, 2, pytest.approx(math.log(2)), 0)
    # MAC-weighted kernel area: 9·(9·576) and 1·(1·576) MACs → (81 + 1) / 10
    assert d["kernel_area"] == pytest.approx(82 / 10)
    assert d["log_width"] == pytest.approx(math.log(9)) and 0.95 < d["macs_conv_share"] < 1.0  # relu has MACs too

    r = CGBuilder("residual")
    x = r.add("input", [], (1, 8, 8, 8))
    s = r.add("add", [x, _conv(r, _conv(r, x))], (1, 8, 8, 8))
    r.add("output", [s], (1, 8, 8, 8))
    d = _desc(r.build())
    assert (d["depth_max"], d["depth_min"], d["log_paths"], d["merges"]) == (2, 0, pytest.approx(math.log(3)), 1)


def test_a_zero_op_cuts_its_path():
    b = CGBuilder("zero-skip")
    x = b.add("input", [], (1, 8, 8, 8))
    z = b.add("zero", [x], (1, 8, 8, 8))
    s = b.add("add", [z, _conv(b, x)], (1, 8, 8, 8))
    b.add("output", [s], (1, 8, 8, 8))
    d = _desc(b.build())
    assert (d["depth_min"], d["log_paths"], d["merges"]) == (1, pytest.approx(math.log(2)), 0)  # zero: no path

    dead = CGBuilder("dead-output")
    x = dead.add("input", [], (1, 8, 8, 8))
    dead.add("output", [dead.add("zero", [_conv(dead, x)], (1, 8, 8, 8))], (1, 8, 8, 8))
    d = _desc(dead.build())
    assert (d["depth_max"], d["depth_min"], d["log_paths"]) == (0, 0, 0.0)  # nothing reaches the output


def test_pooled_node_stats_min_median_and_nan_when_undefined():
    out = pooled_node_stats({"synflow": np.array([3.0, np.nan, 1.0, 2.0])}, stats=("synflow", "meco"))
    np.testing.assert_allclose(out[:2], [1.0, 2.0])
    assert np.isnan(out[2:]).all()


def _synthetic(rng, n, width, signal_col, offset=0.0, scale=1.0):
    """Raw columns where one column tracks the labels (any scale/offset per group)."""
    y = rng.normal(size=n)
    raw = rng.normal(size=(n, width))
    raw[:, signal_col] = scale * (y + 0.2 * rng.normal(size=n)) + offset
    return raw, 70 + 3 * y


def test_fit_predict_across_groups_and_graph_only_ranker():
    model = GeneralistPredictor(structure_penalty=1.0, progress=False)  # the signal is a structure column
    names = model.column_names
    rng = np.random.default_rng(0)
    sig = names.index("depth_max")  # a graph column: both rankers can learn it
    parts = [_synthetic(rng, 60, len(names), sig, offset=o, scale=s) for o, s in ((0, 1), (50, 10), (-3, 0.1))]
    raw = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] + 100 * g for g, p in enumerate(parts)])  # groups on very different label scales
    groups = sum(([f"g{g}"] * 60 for g in range(3)), [])
    model.fit([None] * len(y), y, groups, raw=raw)
    assert set(model.groups_) == {"g0", "g1", "g2"}
    test_raw, test_y = _synthetic(rng, 80, len(names), sig, offset=1e3, scale=1e-3)
    assert spearman(test_y, model.predict([None] * 80, raw=test_raw)) > 0.8
    assert spearman(test_y, model.predict([None] * 80, raw=test_raw, use_proxies=False)) > 0.8
    assert model.cg_ranker_.n_features_in_ == len(GRAPH_COLUMNS)


def _groups_with_signal(model, column, rng, n=60, k=3):
    raw, y, groups = [], [], []
    for g in range(k):
        r, lab = _synthetic(rng, n, len(model.column_names), model.column_names.index(column), offset=10 * g)
        raw.append(r)
        y.append(lab)
        groups += [f"g{g}"] * n
    return np.concatenate(raw), np.concatenate(y), groups


def test_structure_penalty_shrinks_structure_columns_only():
    rng = np.random.default_rng(3)
    model = GeneralistPredictor(progress=False)
    features = model.ranker_features
    pen = model.structure_penalties()
    assert pen.shape == (len(features),) and pen[features.index("depth_max")] == model.structure_penalty
    assert pen[features.index("synflow:min")] == model.structure_penalty == pen[features.index("synflow:min:missing")]
    assert pen[features.index("meco")] == pen[features.index("log_flops")] == pen[features.index("meco:missing")] == 1.0

    raw, y, groups = _groups_with_signal(model, "depth_max", rng)
    shrunk = GeneralistPredictor(progress=False).fit([None] * len(y), y, groups, raw=raw)
    equal = GeneralistPredictor(structure_penalty=1.0, progress=False).fit([None] * len(y), y, groups, raw=raw)
    j = features.index("depth_max")
    assert abs(shrunk.ranker_.coef_[j]) < 0.05 * abs(equal.ranker_.coef_[j])
    np.testing.assert_allclose(shrunk.cg_ranker_.coef_, equal.cg_ranker_.coef_)  # the graph-only ranker is not shrunk

    raw, y, groups = _groups_with_signal(model, "meco", rng)  # a proxy column: learned at full strength
    a = GeneralistPredictor(progress=False).fit([None] * len(y), y, groups, raw=raw).ranker_.coef_
    b = GeneralistPredictor(structure_penalty=1.0, progress=False).fit([None] * len(y), y, groups, raw=raw).ranker_.coef_
    assert a[features.index("meco")] > 0.5 * b[features.index("meco")] > 0

    pairwise = GeneralistPredictor(kind="pairwise", progress=False).fit([None] * len(y), y, groups, raw=raw)
    assert pairwise.ranker_.penalty is None  # other kinds read every column alike


def test_finetune_can_give_a_shrunk_structure_column_weight():
    rng = np.random.default_rng(4)
    model = GeneralistPredictor(progress=False)
    raw, y, groups = _groups_with_signal(model, "meco", rng)
    model.fit([None] * len(y), y, groups, raw=raw)
    j = model.ranker_features.index("depth_max")
    before = model.ranker_.coef_[j]
    shots, labels = _synthetic(rng, 50, len(model.column_names), model.column_names.index("depth_max"))
    model.finetune([None] * 50, labels, raw=shots, graph_kernel=False)
    assert model.ranker_.coef_[j] > before + 0.3
    test_raw, test_y = _synthetic(rng, 200, len(model.column_names), model.column_names.index("depth_max"))
    assert spearman(test_y, model.predict([None] * 200, raw=test_raw)) > 0.7


def _nb201(arch, side=32):
    from cgpredict.converters import from_torch
    from cgpredict.datasets import build

    return from_torch(build("nasbench201", arch), input_shape=(1, 3, side, side))


def test_graph_only_prediction_runs_no_proxy(monkeypatch):
    cgs = [_nb201(arch) for arch in ((0, 1, 2, 3, 4, 1), (3, 3, 3, 3, 3, 3), (1, 1, 1, 1, 1, 1))]
    model = GeneralistPredictor(use_proxies=False, progress=False)
    rng = np.random.default_rng(1)
    raw = rng.normal(size=(30, len(model.column_names)))
    model.fit([None] * 30, rng.normal(size=30), ["a"] * 15 + ["b"] * 15, raw=raw)

    def no_bank(*args, **kwargs):
        raise AssertionError("the bank ran")

    monkeypatch.setattr(GeneralistPredictor, "bank_results", no_bank)
    scores = model.predict(cgs)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    with pytest.raises(AssertionError, match="the bank ran"):
        model.predict(cgs, use_proxies=True)


def test_single_network_is_placed_against_the_nearest_group_and_matches_its_set_rank():
    model = GeneralistPredictor(progress=False)
    rng = np.random.default_rng(2)
    names = model.column_names
    j = names.index("log_flops")
    raw_a, y_a = _synthetic(rng, 50, len(names), j)
    raw_b, y_b = _synthetic(rng, 50, len(names), j, offset=30.0)
    model.fit([None] * 100, np.concatenate([y_a, y_b]), ["small"] * 50 + ["big"] * 50,
              raw=np.concatenate([raw_a, raw_b]))
    assert model.nearest_group(raw_b[:1]) == "big" and model.nearest_group(raw_a[:1]) == "small"
    one = model.predict([None], raw=raw_b[:1])
    same = model.predict([None], raw=raw_b[:1], reference="big")
    np.testing.assert_allclose(one, same)
    with pytest.raises(ValueError, match="no training group 'nope'"):
        model.predict([None], raw=raw_b[:1], reference="nope")


def test_finetune_shrinks_towards_the_generalist_and_learns_the_new_family():
    model = GeneralistPredictor(progress=False)
    names = model.column_names
    rng = np.random.default_rng(3)
    a, b = names.index("meco"), names.index("synflow")
    raw, y = _synthetic(rng, 200, len(names), a)
    model.fit([None] * 200, y, ["train"] * 200, raw=raw)
    prior = model.ranker_.coef_.copy()
    new_raw, new_y = _synthetic(rng, 120, len(names), b)  # a family where another proxy ranks
    before = spearman(new_y[50:], model.predict([None] * 70, raw=new_raw[50:]))
    strong = GeneralistPredictor(progress=False).fit([None] * 200, y, ["train"] * 200, raw=raw)
    strong.finetune([None] * 50, new_y[:50], raw=new_raw[:50], strength=1e6, graph_kernel=False)
    np.testing.assert_allclose(strong.ranker_.coef_, prior, atol=1e-4)  # infinite pull: unchanged
    with pytest.raises(ValueError, match="entry 0 is NoneType, not a CG"):
        model.finetune([None] * 50, new_y[:50], raw=new_raw[:50])  # the graph kernel needs the graphs
    model.finetune([None] * 50, new_y[:50], raw=new_raw[:50], graph_kernel=False)
    np.testing.assert_array_equal(model.ranker_.prior_coef_, prior)
    after = spearman(new_y[50:], model.predict([None] * 70, raw=new_raw[50:]))
    assert after > before + 0.3 and after > 0.6
    with pytest.raises(ValueError, match="at least 3"):
        model.finetune([None] * 3, [1.0, 1.0, 1.0], raw=new_raw[:3], graph_kernel=False)
    with pytest.raises(ValueError, match="ridge kind only"):
        GeneralistPredictor(kind="consensus", progress=False).fit(
            [None] * 200, y, ["t"] * 200, raw=raw).finetune([None] * 50, new_y[:50], raw=new_raw[:50], graph_kernel=False)


def test_checkpoint_round_trip_and_format_check(tmp_path):
    from cgpredict.predictor import CheckpointError

    model = GeneralistPredictor(kind="mlp", progress=False)
    rng = np.random.default_rng(4)
    raw, y = _synthetic(rng, 150, len(model.column_names), 0)
    raw[3, 0] = -math.inf
    model.fit([None] * 150, y, ["x"] * 75 + ["y"] * 75, raw=raw)
    path = model.save(tmp_path / "gen", card={"data": "synthetic"})
    back = GeneralistPredictor.load(path, progress=False)
    assert back.get_params() == {**model.get_params(), "progress": False} and back.card_ == {"data": "synthetic"}
    test, _ = _synthetic(rng, 40, len(model.column_names), 0)
    np.testing.assert_allclose(back.predict([None] * 40, raw=test), model.predict([None] * 40, raw=test))
    np.testing.assert_allclose(back.predict([None], raw=test[:1]), model.predict([None], raw=test[:1]))
    (path / "weights.pt").write_bytes(b"tampered")
    with pytest.raises(CheckpointError):
        GeneralistPredictor.load(path)
    with pytest.raises(CheckpointError, match="not a generalist checkpoint"):
        GeneralistPredictor.load(_nb101_checkpoint())


def _nb101_checkpoint():
    from cgpredict.predictor.checkpoint import pretrained_path

    return pretrained_path("nb101")


def test_fit_errors_name_the_problem():
    model = GeneralistPredictor(progress=False)
    raw = np.zeros((4, len(model.column_names)))
    with pytest.raises(ValueError, match="one of each per network"):
        model.fit([None] * 4, [1.0, 2.0, 3.0], ["a"] * 4, raw=raw)
    with pytest.raises(ValueError, match="finite"):
        model.fit([None] * 4, [1.0, math.nan, 3.0, 4.0], ["a"] * 4, raw=raw)
    with pytest.raises(ValueError, match="raw columns have shape"):
        model.fit([None] * 4, [1.0, 2.0, 3.0, 4.0], ["a"] * 4, raw=raw[:, :3])


def test_end_to_end_on_real_cgs_with_the_bank(tmp_path, monkeypatch):
    """Real NB-201 CGs through the bank (cached under tmp_path), descriptors and both rankers."""
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path))
    archs = [(0, 1, 2, 3, 4, 1), (3, 3, 3, 3, 3, 3), (1, 1, 1, 1, 1, 1), (2, 2, 2, 2, 2, 2), (3, 1, 3, 1, 3, 1),
             (4, 4, 4, 4, 4, 4)]
    cgs = [_nb201(a, 16) for a in archs]
    model = GeneralistPredictor(progress=False, bank={"batch_size": 8})
    raw = model.columns(cgs)
    assert raw.shape == (6, len(model.column_names)) and np.isfinite(raw[:, model.column_names.index("depth_max")]).all()
    assert np.isnan(raw[:, model.column_names.index("meco")]).sum() <= 1
    y = raw[:, model.column_names.index("depth_max")] + 0.1 * np.arange(6)
    model.fit(cgs, y, ["a", "b"] * 3)
    assert model.predict(cgs).shape == (6,) and model.predict(cgs[:1]).shape == (1,)


def test_coverage_and_ood_flag_a_set_outside_every_training_group():
    model = GeneralistPredictor(progress=False)
    names = model.column_names
    rng = np.random.default_rng(5)
    raw = rng.normal(size=(60, len(names)))
    model.fit([None] * 60, rng.normal(size=60), ["a"] * 30 + ["b"] * 30, raw=raw + np.repeat([[0.0], [5.0]], 30, 0))
    inside = rng.uniform(-0.5, 0.5, size=(10, len(names)))
    report = model.ood([None] * 10, raw=inside)
    assert report["nearest_group"] == "a" and report["coverage"] == 1.0 and not report["flag"]
    far = inside + 100.0
    assert model.coverage([None] * 10, raw=far) == {"a": 0.0, "b": 0.0} and model.ood([None] * 10, raw=far)["flag"]
    shifted = inside + 5.0
    assert model.ood([None] * 10, raw=shifted)["nearest_group"] == "b"


def test_the_demo_checkpoint_flags_the_family_it_never_saw_and_not_one_it_saw():
    """generalist_demo is trained on NB-101 and NB-301 only: sampled NB-201 nets lie outside its
    groups' ranges, sampled NB-101 nets inside (graph columns only, no network run)."""
    from cgpredict.datasets import load_family

    model = GeneralistPredictor.pretrained("generalist_demo", progress=False)
    seen = model.ood(load_family("nasbench101", n=40, seed=7).cgs(progress=False))
    unseen = model.ood(load_family("nasbench201", n=40, seed=7).cgs(progress=False))
    assert seen["nearest_group"] == "nb101" and seen["coverage"] >= 0.95 and not seen["flag"]
    assert unseen["coverage"] < 0.8 and unseen["flag"]


def test_large_inputs_are_scored_at_max_resolution_with_a_full_size_fallback(monkeypatch):
    """The bank sees ImageNet-size nets at ``max_resolution``; a net that fails there is rescored at its size."""
    import cgpredict.proxies.bank as bank

    small, big, stubborn = _nb201((0, 1, 2, 3, 4, 1)), _nb201((3, 3, 3, 3, 3, 3), 96), _nb201((1, 1, 1, 1, 1, 1), 128)
    calls = []

    def fake(cgs, methods, config, **kwargs):
        calls.append((config.resolution, [cg.input_nodes[0].out_shape[-1] for cg in cgs]))
        out = []
        for cg in cgs:
            failed = cg is stubborn and config.resolution == 64
            out.append(bank.BankResult(name="x", scores={m: (math.nan if failed else 1.0) for m in methods},
                                       errors={m: "cannot run at 64" for m in methods} if failed else {}))
        return out

    monkeypatch.setattr(bank, "bank_scores_many", fake)
    model = GeneralistPredictor(progress=False)
    results = model.bank_results([small, big, stubborn])
    assert calls == [(None, [32]), (64, [96, 128]), (None, [128])]
    assert [r.errors for r in results] == [{}, {}, {}]
    assert GeneralistPredictor(max_resolution=None, progress=False).bank_config(big).resolution is None
    assert GeneralistPredictor(bank={"resolution": 16}, progress=False).bank_config(big).resolution == 16


def test_rank_family_and_coverage_read_precomputed_columns_without_recomputing(monkeypatch):
    """The CLI computes a generalist's columns once; rank_family and coverage_line then read them."""
    from cgpredict.datasets import load_family
    from cgpredict.ranking import coverage_line, predict_rows, rank_family

    model = GeneralistPredictor.pretrained("generalist_demo", progress=False)
    fam = load_family("nasbench201", n=12, seed=3)
    cgs = fam.cgs(progress=False)
    expected, _ = rank_family(model, fam, cgs=cgs, use_proxies=False, progress=False)
    line = coverage_line(model, cgs)
    raw = model.columns(cgs, use_proxies=False)

    def refuse(*args, **kwargs):
        raise AssertionError("columns recomputed although they were given")

    monkeypatch.setattr(model, "columns", refuse)
    rows, _ = rank_family(model, fam, cgs=cgs, use_proxies=False, progress=False, raw=raw)
    assert [(r["arch"], r["score"]) for r in rows] == [(r["arch"], r["score"]) for r in expected]
    assert coverage_line(model, cgs, raw=raw) == line
    with pytest.raises(ValueError, match="11 row"):
        rank_family(model, fam, cgs=cgs, use_proxies=False, progress=False, raw=raw[:11])
    order = [r["arch"] for r in rows]
    ranks = [r["rank"] for r in predict_rows(model, cgs, [f"net{i}" for i in range(len(cgs))], use_proxies=False, raw=raw)]
    assert ranks == [order.index(fam.key(i)) + 1 for i in range(len(cgs))]


def test_precomputed_columns_are_refused_by_a_gennape_predictor():
    from cgpredict.predictor import Predictor
    from cgpredict.ranking import predict_rows

    with pytest.raises(ValueError, match="raw applies to the generalist only"):
        predict_rows(Predictor.pretrained("nb101", progress=False), [], [], raw=np.zeros((0, 3)))

"""The Weisfeiler-Lehman graph kernel and the kernel ridge of the generalist's fine-tuning."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest

from cgpredict.cg import CGBuilder
from cgpredict.generalist import GeneralistPredictor
from cgpredict.generalist.graph_kernel import ShotKernelRidge, wl_features, wl_kernel
from cgpredict.metrics import spearman


def _cell(ops, c=8):
    """input → two parallel branches (ops[0], ops[1]) → add → ops[2] → output, at width ``c``."""
    b = CGBuilder("cell")
    x = b.add("input", [], (1, c, 8, 8))

    def op(name, src):
        if name == "conv":
            return b.add("conv", [src], (1, c, 8, 8), weight_shape=(c, c, 3, 3), kernel=(3, 3), stride=(1, 1))
        if name == "pool":
            return b.add("avg_pool", [src], (1, c, 8, 8), kernel=(3, 3), stride=(1, 1))
        return b.add(name, [src], (1, c, 8, 8))

    s = b.add("add", [op(ops[0], x), op(ops[1], x)], (1, c, 8, 8))
    b.add("output", [op(ops[2], s)], (1, c, 8, 8))
    return b.build()


def test_wl_features_count_the_subtrees_of_a_hand_made_cell():
    bag = wl_features(_cell(("conv", "conv", "relu")), iterations=1)
    round0 = {k: v for k, v in bag.items() if ":" not in k}
    assert round0 == {"input||": 1, "conv|3x3|1x1": 2, "add||": 1, "relu||": 1, "output||": 1}
    round1 = [v for k, v in bag.items() if k.startswith("1:")]
    # the two convs read the same input and are the same op: one round-1 label, counted twice
    assert sorted(round1) == [1, 1, 1, 1, 2] and sum(bag.values()) == 12
    assert wl_features(_cell(("conv", "conv", "relu")), iterations=0) == round0


def test_wl_features_ignore_width_and_are_stable_across_processes():
    narrow, wide = _cell(("conv", "pool", "relu"), c=8), _cell(("conv", "pool", "relu"), c=64)
    assert wl_features(narrow) == wl_features(wide)
    code = ("from tests.test_graph_kernel import _cell; from cgpredict.generalist.graph_kernel import wl_features; "
            "print(sorted(wl_features(_cell(('conv', 'pool', 'relu'))).items()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    assert out.stdout.strip() == str(sorted(wl_features(narrow).items()))


def test_wl_kernel_is_a_cosine_of_the_bags(monkeypatch):
    cells = [_cell(o) for o in (("conv", "conv", "relu"), ("conv", "pool", "relu"), ("pool", "pool", "sigmoid"))]
    bags = [wl_features(c) for c in cells]
    k = wl_kernel(bags, bags)
    np.testing.assert_allclose(np.diag(k), 1.0)
    np.testing.assert_allclose(k, k.T)
    assert 0 < k[0, 1] < 1 and k[0, 1] > k[0, 2]  # one op changed vs two ops and the last layer
    # against a bag with labels the first list never saw: its norm still counts them
    np.testing.assert_allclose(wl_kernel(bags[:1], bags[2:]), k[:1, 2:])
    monkeypatch.setattr("cgpredict.generalist.graph_kernel._KERNEL_CHUNK", 2)  # large sets go in chunks
    np.testing.assert_allclose(wl_kernel(bags, bags), k)


def _space(rng, n):
    """Random 3-op cells and labels that depend on which op sits where (not on any count of ops)."""
    names = ("conv", "pool", "relu", "sigmoid")
    ops = [tuple(names[i] for i in rng.integers(0, 4, 3)) for _ in range(n)]
    y = np.array([(o[0] == "conv") * 2.0 + (o[2] == "relu") * 1.0 - (o[1] == "sigmoid") * 1.5 for o in ops])
    return [_cell(o) for o in ops], y + 0.1 * rng.normal(size=n)


def test_shot_kernel_ridge_learns_what_the_base_score_misses_and_keeps_a_perfect_base():
    rng = np.random.default_rng(0)
    cgs, y = _space(rng, 260)
    bags = [wl_features(c) for c in cgs]
    useless = rng.normal(size=260)
    model = ShotKernelRidge().fit(bags[:60], useless[:60], y[:60])
    assert spearman(y[60:], model.predict(bags[60:], useless[60:])) > 0.8
    assert model.coef_.shape == (5, 60) and len(model.selected_) == 5
    # a base score that already ranks perfectly (its own noise-free labels) is kept
    clean = y + 0.0
    kept = ShotKernelRidge().fit(bags[:60], clean[:60], y[:60])
    assert spearman(y[60:], kept.predict(bags[60:], clean[60:])) > 0.9
    assert max(beta for beta, _, _ in kept.selected_) >= 10
    with pytest.raises(ValueError, match="at least 3 shots"):
        ShotKernelRidge().fit(bags[:3], useless[:3], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="3 graphs, 2 base scores"):
        ShotKernelRidge().fit(bags[:3], useless[:2], y[:3])


def test_shot_kernel_ridge_subsamples_beyond_max_shots_deterministically():
    rng = np.random.default_rng(1)
    cgs, y = _space(rng, 40)
    bags = [wl_features(c) for c in cgs]
    a = ShotKernelRidge(max_shots=25, seed=3).fit(bags, y, y)
    b = ShotKernelRidge(max_shots=25, seed=3).fit(bags, y, y)
    assert len(a.bags_) == 25 and a.bags_ == b.bags_
    np.testing.assert_array_equal(a.coef_, b.coef_)


def _generalist(rng):
    model = GeneralistPredictor(use_proxies=False, progress=False)
    raw = rng.normal(size=(60, len(model.column_names)))
    return model.fit([None] * 60, rng.normal(size=60), ["a"] * 30 + ["b"] * 30, raw=raw)


def test_generalist_finetune_with_the_graph_kernel_round_trips_and_needs_graphs(tmp_path):
    rng = np.random.default_rng(2)
    cgs, y = _space(rng, 160)
    model = _generalist(rng)
    linear = copy.deepcopy(model).finetune(cgs[:50], y[:50], graph_kernel=False)
    tuned = copy.deepcopy(model).finetune(cgs[:50], y[:50])
    assert linear.kernel_ is None and tuned.cg_kernel_ is not None
    rho_linear = spearman(y[50:], linear.predict(cgs[50:]))
    rho_kernel = spearman(y[50:], tuned.predict(cgs[50:]))
    assert rho_kernel > 0.7 and rho_kernel > rho_linear + 0.2
    back = GeneralistPredictor.load(tuned.save(tmp_path / "tuned"), progress=False)
    np.testing.assert_allclose(back.predict(cgs[50:]), tuned.predict(cgs[50:]))
    assert back.cg_kernel_.selected_ == tuned.cg_kernel_.selected_
    with pytest.raises(ValueError, match="entry 0 is NoneType, not a CG"):
        tuned.predict([None] * 3, raw=np.zeros((3, len(model.column_names))))
    # an un-fine-tuned generalist still saves and loads without a kernel
    assert GeneralistPredictor.load(model.save(tmp_path / "base"), progress=False).cg_kernel_ is None


def test_identical_shots_with_a_constant_base_give_finite_scores():
    """Three copies of one graph, one base score, three labels: nothing to learn, and no blow-up."""
    bags = [wl_features(_cell(("conv", "conv", "relu")))] * 3
    model = ShotKernelRidge().fit(bags, np.zeros(3), [1.0, 2.0, 3.0])
    other = wl_features(_cell(("pool", "conv", "relu")))
    scores = model.predict(bags + [other], np.zeros(4))
    assert np.all(np.isfinite(scores)) and np.all(np.abs(scores) < 1e3)
    assert scores[0] == scores[1] == scores[2]

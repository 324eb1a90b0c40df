"""The optional ``Proxy`` ensemble member and the zero-cost proxies it can use (SynFlow, NASWOT)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from cgpredict.converters import from_torch
from cgpredict.metrics import spearman
from cgpredict.models.proxy_member import ProxyRanker
from cgpredict.models.synthetic import toy_family
from cgpredict.predictor import MEMBERS, Predictor
from cgpredict.proxies.zero_cost import naswot, synflow, zero_cost_scores

TINY = dict(encoder={"epochs": 3, "batch_size": 64, "branch_dim": 16}, regressor={"epochs": 30, "hidden": 32},
            pairwise={"epochs": 5, "hidden": 16}, kgnn={"epochs": 10, "batch_size": 32, "lr": 3e-3},
            n_clusters=3, progress=False)
TINY_PROXY = {"method": "eproxy", "iterations": 2, "batch_size": 4}


def _mlp_cg(width: int, depth: int):
    layers: list[torch.nn.Module] = [torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.ReLU()]
    for _ in range(depth - 1):
        layers += [torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.ReLU()]
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(width, 10)]
    return from_torch(torch.nn.Sequential(*layers).eval(), input_shape=(1, 3, 16, 16), name=f"w{width}d{depth}")


# ------------------------------------------------------------------------------ zero-cost proxies
def test_synflow_matches_a_direct_computation() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 8 * 8, 5)).eval()
    cg = from_torch(net, input_shape=(1, 3, 8, 8))
    torch.manual_seed(0)  # synflow() rebuilds with this seed: the same weights as below
    rebuilt = cg.to_module().double()
    with torch.no_grad():
        for p in rebuilt.parameters():
            p.abs_()
    rebuilt(torch.ones(1, 3, 8, 8, dtype=torch.float64)).sum().backward()
    expect = sum(float((m.weight.detach() * m.weight.grad).abs().sum()) for m in rebuilt.modules()
                 if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert synflow(cg, seed=0) == pytest.approx(np.log(expect), rel=1e-9)


def test_naswot_matches_the_two_product_kernel_of_the_paper() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(6, 6, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(6 * 8 * 8, 5)).eval()
    cg = from_torch(net, input_shape=(1, 3, 8, 8))
    from cgpredict.proxies.inputs import make_inputs

    torch.manual_seed(3)  # naswot() rebuilds with this seed: the same weights as below
    rebuilt = cg.to_module().train()
    relus = [n.id for n in cg.nodes if n.op == "relu"]
    with torch.no_grad():
        out = rebuilt.forward_nodes(make_inputs("natural", 16, 8, 3), keep=relus)
    kernel = torch.zeros((16, 16), dtype=torch.float64)
    for nid in relus:  # K = C Cᵀ + (1 − C)(1 − C)ᵀ: agreements of the binary ReLU codes
        c = (out[nid].reshape(16, -1) > 0).double()
        kernel += c @ c.t() + (1 - c) @ (1 - c).t()
    assert naswot(cg, batch_size=16, seed=3) == pytest.approx(float(torch.linalg.slogdet(kernel)[1]), rel=1e-12)


def test_zero_cost_scores_grow_with_capacity_and_cache(tmp_path: Path, broken_cg) -> None:
    cgs = [_mlp_cg(4, 2), _mlp_cg(16, 2), _mlp_cg(16, 4)]
    syn = zero_cost_scores(cgs, "synflow", cache_dir=tmp_path, progress=False)
    assert syn[0] < syn[1] < syn[2]  # SynFlow grows with width and depth
    nw = zero_cost_scores(cgs, "naswot", cache_dir=tmp_path, progress=False)
    assert np.all(np.isfinite(nw)) and nw[0] < nw[1]  # wider ReLU layers separate more samples
    assert naswot(cgs[1], batch_size=16) != naswot(cgs[1], batch_size=16, seed=1)
    assert len(list(tmp_path.rglob("*.json"))) == 6
    # cached values come back unchanged, and a net that cannot be rebuilt scores NaN (cached too)
    again = zero_cost_scores(cgs + [broken_cg], "synflow", cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again[:3], syn)
    assert np.isnan(again[3])
    with pytest.raises(ValueError, match="unknown zero-cost proxy"):
        zero_cost_scores(cgs, "jacov", cache_dir=tmp_path)


# ------------------------------------------------------------------------------ ProxyRanker
def test_proxy_ranker_zero_shot_is_the_proxy_ranking() -> None:
    scores = np.array([[3.0, 10.0], [1.0, 30.0], [np.nan, 20.0], [2.0, np.nan]])
    ranker = ProxyRanker(("gennas", "synflow"))
    got = ranker.decision_function(scores, np.ones(4))
    # column ranks (failed = last): gennas [3, 1, 0, 2] / 3, synflow [1, 3, 2, 0] / 3
    np.testing.assert_allclose(got, (np.array([3, 1, 0, 2]) + np.array([1, 3, 2, 0])) / 6)
    with pytest.raises(ValueError, match="expected 2 proxy columns"):
        ranker.decision_function(scores[:, :1], np.ones(4))


def test_proxy_ranker_ridge_and_exact_leave_one_out() -> None:
    rng = np.random.default_rng(0)
    n = 40
    proxy = rng.normal(size=(n, 1))
    gflops = np.exp(rng.normal(size=n))
    y = 3.0 * proxy[:, 0] - np.log(gflops) + 0.3 * rng.normal(size=n)
    ranker = ProxyRanker(("p",)).finetune(proxy, gflops, y)
    assert ranker.finetuned
    assert spearman(y, ranker.decision_function(proxy, gflops)) > 0.95
    z = (ranker._design(proxy, gflops) - ranker.mean_) / ranker.scale_
    loo = [Ridge(alpha=ranker.alpha_).fit(np.delete(z, i, 0), np.delete(y, i)).predict(z[i:i + 1])[0]
           for i in range(n)]
    np.testing.assert_allclose(ranker.loo_scores_, loo, rtol=1e-8, atol=1e-8)
    clone = ProxyRanker(("p",))
    clone.load_state(ranker.state())
    np.testing.assert_array_equal(clone.decision_function(proxy, gflops), ranker.decision_function(proxy, gflops))
    with pytest.raises(ValueError, match="columns"):
        ProxyRanker(("q",)).load_state(ranker.state())
    with pytest.raises(ValueError, match="at least 3"):
        ProxyRanker(("p",)).finetune(proxy[:2], gflops[:2], y[:2])


# ------------------------------------------------------------------------------ in the Predictor
def test_proxy_member_in_the_predictor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    cgs, acc = toy_family(64, seed=7)
    pred = Predictor(members=[*MEMBERS, "Proxy"], proxy=TINY_PROXY, proxy_inputs=False, zero_cost=("synflow",),
                     **TINY).fit(cgs[:40], acc[:40])
    assert pred.proxy_columns() == ("eproxy", "synflow")
    assert pred.models["CL+T"].in_dim == pred.encoder.dim  # proxy_inputs=False: heads see no proxy
    assert pred.models["k-GNN"].extra_node_dim == 0
    assert "Proxy" not in pred.accuracy_members()  # zero-shot it ranks, it does not regress
    target, y = cgs[40:], acc[40:]
    scores = pred.member_scores(target)
    raw = pred.proxy_scores(target)
    np.testing.assert_allclose(scores["Proxy"], ProxyRanker(pred.proxy_columns()).decision_function(raw, np.ones(24)))
    tuned = copy.deepcopy(pred)
    tuned.weighting = "kendall"  # in-sample τ weights (weight_folds=0)
    tuned.finetune(target, y, epochs=2, weight_folds=0)
    assert tuned.models["Proxy"].finetuned and "Proxy" in tuned.accuracy_members()
    assert set(tuned.weights) == {*MEMBERS, "Proxy"}
    # with in-sample weights the Proxy member's τ is that of its leave-one-out predictions
    from cgpredict.metrics import kendall_tau

    assert tuned.taus_["Proxy"] == pytest.approx(kendall_tau(y, tuned.models["Proxy"].loo_scores_))
    tuned.save(tmp_path / "ckpt")
    loaded = Predictor.load(tmp_path / "ckpt", progress=False)
    assert loaded.zero_cost == ("synflow",) and loaded.proxy_inputs is False
    np.testing.assert_array_equal(loaded.predict(target), tuned.predict(target))
    np.testing.assert_array_equal(loaded.member_scores(target)["Proxy"], tuned.member_scores(target)["Proxy"])


def test_add_proxy_member_to_a_fitted_predictor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    cgs, acc = toy_family(60, seed=8)
    pred = Predictor(**TINY).fit(cgs[:40], acc[:40])
    before = pred.models["CL+T"].predict(pred.embed(cgs[40:]), pred.member_scores(cgs[40:])["FLOPs"])
    pred.add_proxy_member(proxy=None, zero_cost=("synflow",))
    assert pred.members == [*MEMBERS, "Proxy"] and pred.proxy is None
    assert pred.weights == pytest.approx({m: 1 / 7 for m in pred.members})
    after = pred.models["CL+T"].predict(pred.embed(cgs[40:]), pred.member_scores(cgs[40:])["FLOPs"])
    np.testing.assert_array_equal(before, after)  # the trained heads are untouched
    assert np.all(np.isfinite(pred.score(cgs[40:])))
    with pytest.raises(ValueError, match="needs a proxy"):
        Predictor(**TINY).fit(cgs[:40], acc[:40]).add_proxy_member(proxy=None, zero_cost=())
    with pytest.raises(ValueError, match="needs proxy scores"):  # options are validated by fit
        Predictor(members=["CL+T", "Proxy"], **TINY).fit(cgs[:40], acc[:40])
    with pytest.raises(ValueError, match="unknown zero-cost"):
        Predictor(zero_cost=("jacov",), **TINY).fit(cgs[:40], acc[:40])


def test_proxy_agreement_weights_follow_agreement_with_the_judge() -> None:
    from cgpredict.models.ensemble import proxy_agreement_weights

    rng = np.random.default_rng(0)
    judge = rng.normal(size=100)
    scores = {"agrees": judge + 0.3 * rng.normal(size=100), "noise": rng.normal(size=100), "reversed": -judge,
              "Proxy": judge}
    weights, taus = proxy_agreement_weights(scores, temperature=0.1)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["Proxy"] == pytest.approx(1 / 4)  # the judge keeps its equal share
    assert weights["agrees"] > 0.7 > 1e-3 > weights["noise"] > weights["reversed"]
    assert taus["reversed"] == pytest.approx(-1.0) and taus["Proxy"] == 1.0
    # at a high temperature the weights approach equal shares
    flat, _ = proxy_agreement_weights(scores, temperature=100.0)
    assert flat["noise"] == pytest.approx(0.25, abs=0.01)
    with pytest.raises(ValueError, match="Proxy"):
        proxy_agreement_weights({"a": judge})


def test_reweight_by_proxy_sets_label_free_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    cgs, acc = toy_family(60, seed=9)
    pred = Predictor(**TINY).fit(cgs[:40], acc[:40])
    with pytest.raises(ValueError, match="add_proxy_member"):
        pred.reweight_by_proxy(cgs[40:])
    pred.add_proxy_member(proxy=None, zero_cost=("synflow",))
    with pytest.raises(ValueError, match="at least 10"):
        pred.reweight_by_proxy(cgs[40:45])
    target = cgs[40:]
    pred.reweight_by_proxy(target)
    scores = pred.member_scores(target)
    assert pred.weights["Proxy"] == pytest.approx(1 / 7) and sum(pred.weights.values()) == pytest.approx(1.0)
    from cgpredict.metrics import kendall_tau

    for name in MEMBERS:  # the pseudo-τ is each member's agreement with the Proxy member's ranking
        assert pred.taus_[name] == pytest.approx(kendall_tau(scores["Proxy"], scores[name]))
    best = max(MEMBERS, key=lambda n: pred.taus_[n])
    worst = min(MEMBERS, key=lambda n: pred.taus_[n])
    assert pred.weights[best] > pred.weights[worst]


def test_crossfit_temperature_sharpens_for_a_dominant_member_and_smooths_for_equals() -> None:
    from cgpredict.models.ensemble import crossfit_temperature

    rng = np.random.default_rng(0)
    y = rng.normal(size=60)
    folds = np.arange(60) % 2
    # one member is nearly exact, the others are noise: the sharpest weighting wins
    dominant = {"good": y + 0.05 * rng.normal(size=60), **{f"noise{i}": rng.normal(size=60) for i in range(5)}}
    t, crit = crossfit_temperature(dominant, folds, y)
    assert t < max(crit) and crit[t] > crit[max(crit)] + 0.1
    # five equally good members with independent errors: averaging them beats picking one
    equals = {f"m{i}": y + 1.0 * rng.normal(size=60) for i in range(5)}
    t, crit = crossfit_temperature(equals, folds, y)
    assert t > 0.02 and crit[t] > crit[0.02]
    with pytest.raises(ValueError, match="2 folds"):
        crossfit_temperature(equals, np.zeros(60), y)


def test_stacked_weights_split_duplicates_and_drop_members_that_add_nothing() -> None:
    from cgpredict.models.ensemble import kendall_weights, stacked_weights

    rng = np.random.default_rng(1)
    y = rng.normal(size=400)
    folds = np.arange(400) % 2
    a = y + 0.8 * rng.normal(size=400)  # one view of the label ...
    b = y + 0.8 * rng.normal(size=400)  # ... an independent, equally good one ...
    scores = {"a": a, "a_copy1": a + 1e-3 * rng.normal(size=400), "a_copy2": a * 2.0, "b": b,
              "noise": rng.normal(size=400)}
    stacked = stacked_weights(scores, folds, y)
    assert sum(stacked.values()) == pytest.approx(1.0) and min(stacked.values()) >= 0
    # the three copies of `a` share about what `b` gets alone; the softmax of τ gives them three shares
    copies = stacked["a"] + stacked["a_copy1"] + stacked["a_copy2"]
    assert copies == pytest.approx(stacked["b"], abs=0.2) and stacked["noise"] < 0.05
    soft, _ = kendall_weights(scores, y, 0.1)
    assert soft["a"] + soft["a_copy1"] + soft["a_copy2"] > 2 * soft["b"]
    # a member whose scores are fold-wise rescaled is the same member: ranks are taken within folds
    shifted = {**scores, "b": np.where(folds == 0, b, 100.0 + 5.0 * b)}
    assert stacked_weights(shifted, folds, y) == pytest.approx(stacked)
    # failed (NaN) scores rank last instead of breaking the fit; no signal at all: equal weights
    with_nan = {**scores, "noise": np.where(np.arange(400) < 5, np.nan, scores["noise"])}
    assert np.isfinite(list(stacked_weights(with_nan, folds, y).values())).all()
    flat = stacked_weights({"x": -y, "z": -2 * y}, folds, y)
    assert flat == {"x": 0.5, "z": 0.5}

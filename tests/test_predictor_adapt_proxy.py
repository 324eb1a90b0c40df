"""Predictor options beyond the basic fit: unlabelled pre-training, label-free adaptation to a
target family (``adapt`` / ``finetune(adapt=...)``) and regression-proxy feature channels."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from cgpredict.metrics import spearman
from cgpredict.models.heads import EmbeddingRegressor
from cgpredict.models.synthetic import toy_family
from cgpredict.predictor import Predictor
from cgpredict.proxies.features import ProxyConfig

TINY = dict(encoder={"epochs": 3, "batch_size": 64, "branch_dim": 16}, regressor={"epochs": 30, "hidden": 32},
            pairwise={"epochs": 5, "hidden": 16}, kgnn={"epochs": 10, "batch_size": 32, "lr": 3e-3},
            n_clusters=3, progress=False)
TINY_PROXY = {"method": "eproxy", "iterations": 2, "batch_size": 4}


def _heads(pred: Predictor) -> dict[str, EmbeddingRegressor]:
    """The CL heads (members with an input standardisation), by member name."""
    return {name: m for name, m in pred.models.items() if hasattr(m, "x_mean_")}


def test_unlabelled_cgs_set_the_input_statistics() -> None:
    cgs, acc = toy_family(120, seed=1)
    labelled, y, extra = cgs[:40], acc[:40], cgs[40:]
    plain = Predictor(**TINY).fit(labelled, y)
    pre = Predictor(**TINY).fit(labelled, y, unlabelled=extra)
    emb_all = pre.embed(cgs)  # the standardisation is the mean over labelled + unlabelled inputs
    for head in _heads(pre).values():
        np.testing.assert_allclose(head.x_mean_[:-1], emb_all.mean(0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(_heads(plain)["CL+T"].x_mean_, _heads(pre)["CL+T"].x_mean_)
    assert np.all(np.isfinite(pre.predict(cgs)))
    with pytest.raises(TypeError, match="not a cgpredict.CG"):
        Predictor(**TINY).fit(labelled, y, unlabelled=["not a cg"])


def test_adapt_restandardises_to_the_target_family_only() -> None:
    cgs, acc = toy_family(160, seed=2)
    pred = Predictor(**TINY).fit(cgs[:80], acc[:80])
    target = cgs[80:]
    before = {name: np.array(m.x_mean_) for name, m in _heads(pred).items()}
    kgnn_before = pred.models["k-GNN"].predict(target)
    weights = {k: v.detach().clone() for k, v in pred.modules().state_dict().items()}
    pred.adapt(target)
    emb = pred.embed(target)
    for name, head in _heads(pred).items():
        np.testing.assert_allclose(head.x_mean_[:-1], emb.mean(0), rtol=1e-5, atol=1e-6)
        assert not np.allclose(head.x_mean_, before[name])
    after = pred.modules().state_dict()
    assert all(np.array_equal(weights[k].numpy(), after[k].numpy()) for k in weights)  # no weight changes
    np.testing.assert_array_equal(pred.models["k-GNN"].predict(target), kgnn_before)
    with pytest.raises(ValueError, match="at least 2"):
        pred.adapt(target[:1])


def test_finetune_adapt_flag() -> None:
    cgs, acc = toy_family(160, seed=3)
    base = Predictor(**TINY).fit(cgs[:80], acc[:80])
    kept = {n: np.array(m.x_mean_) for n, m in _heads(base).items()}

    frozen = copy.deepcopy(base).finetune(cgs[80:100], acc[80:100], epochs=2)  # default: no adapt
    for name, head in _heads(frozen).items():
        np.testing.assert_array_equal(head.x_mean_, kept[name])
    adapted = copy.deepcopy(base).finetune(cgs[80:100], acc[80:100], epochs=2, adapt=True)
    emb = adapted.embed(cgs[80:100])
    np.testing.assert_allclose(adapted.models["CL+T"].x_mean_[:-1], emb.mean(0), rtol=1e-5, atol=1e-6)


def test_proxy_features_are_extra_channels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken_cg) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    cgs, acc = toy_family(48, seed=4)
    pred = Predictor(proxy=TINY_PROXY, **TINY).fit(cgs[:32], acc[:32])
    cfg = ProxyConfig(**TINY_PROXY)
    graph_dim = len(cfg.graph_feature_names)
    assert pred.models["CL+T"].in_dim == pred.encoder.dim + graph_dim
    assert pred.models["k-GNN"].extra_node_dim == 3
    graph, nodes = pred.proxy_features(cgs[:4])
    assert graph.shape == (4, graph_dim) and np.all(graph[:, 0] == 1.0)  # "available"
    assert [n.shape for n in nodes] == [(cg.num_nodes, 3) for cg in cgs[:4]]
    assert all(n[:, 2].any() for n in nodes)  # some nodes measured (mask column)
    # a network the proxy cannot run is still predicted (neutral fill)
    broken = broken_cg
    values = pred.predict(cgs[32:] + [broken])
    assert values.shape == (17,) and np.all(np.isfinite(values))
    g_broken, n_broken = pred.proxy_features([broken])
    assert not g_broken.any() and not n_broken[0].any()
    # the proxy option survives save/load and gives identical predictions
    pred.save(tmp_path / "ckpt")
    loaded = Predictor.load(tmp_path / "ckpt", progress=False)
    assert loaded.proxy == pred.proxy
    np.testing.assert_array_equal(loaded.predict(cgs[32:]), pred.predict(cgs[32:]))
    # and fine-tuning uses the proxy channels too
    loaded.finetune(cgs[32:], acc[32:], epochs=2)
    assert np.isfinite(spearman(acc[32:], loaded.predict(cgs[32:])))


def test_proxy_option_errors() -> None:
    with pytest.raises(ValueError, match="unknown proxy method"):
        Predictor(proxy="synflow", **TINY)
    with pytest.raises(TypeError, match="proxy must be"):
        Predictor(proxy=3, **TINY)
    assert Predictor(proxy=ProxyConfig(method="gennas"), **TINY).proxy.method == "gennas"


def test_refit_encoder_false_keeps_a_pretrained_encoder() -> None:
    cgs, acc = toy_family(100, seed=5)
    pred = Predictor(**TINY)
    with pytest.raises(RuntimeError, match="already trained"):
        pred.fit(cgs[:40], acc[:40], refit_encoder=False)
    pred.encoder.fit(cgs[40:])  # pre-train on "unlabelled" CGs only
    before = pred.embed(cgs[:10])
    pred.fit(cgs[:40], acc[:40], unlabelled=cgs[40:], refit_encoder=False)
    np.testing.assert_array_equal(pred.embed(cgs[:10]), before)
    assert np.all(np.isfinite(pred.predict(cgs[40:])))

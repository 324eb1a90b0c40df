"""Tests of proxies on CGs: taps from shapes, proxy features with the disk cache, task search, family CLI."""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from cgpredict.cg import CGBuilder
from cgpredict.converters import from_torch
from cgpredict.datasets import registry
from cgpredict.proxies import score, score_many
from cgpredict.proxies.cg_taps import find_cg_taps
from cgpredict.proxies.features import NODE_FEATURES, ProxyConfig, proxy_features, proxy_features_many
from cgpredict.proxies.task_search import genome_to_config, search_proxy_task

TINY = ProxyConfig(method="eproxy", iterations=2, batch_size=4)


def _nb201(seed: int = 0, n: int = 1) -> list:
    archs = registry.sample("nasbench201", n, seed)
    return [from_torch(registry.build("nasbench201", a), input_shape=(1, 3, 32, 32)) for a in archs]


def test_taps_from_cg_shapes() -> None:
    cg = from_torch(torchvision.models.resnet18(), input_shape=(1, 3, 64, 64))
    names = [cg.nodes[i].name for i in find_cg_taps(cg)]
    assert names == ["relu", "layer1.1.relu", "layer2.1.relu", "layer3.1.relu", "layer4.1.relu"]
    mb = from_torch(torchvision.models.mobilenet_v2(), input_shape=(1, 3, 64, 64))
    # the trunk tensor before each inverted-residual downsampling, not the expansion's activation
    assert [mb.nodes[i].name for i in find_cg_taps(mb)][1:] == ["features.3", "features.6", "features.13", "features.18.2"]
    nb = _nb201()[0]
    taps = find_cg_taps(nb)
    assert [nb.nodes[i].name for i in taps] == ["cells.4", "cells.10", "lastact.1"]
    assert [nb.nodes[i].out_shape[2] for i in taps] == [32, 16, 8]


def test_taps_need_an_image_network() -> None:
    b = CGBuilder("mlp")
    x = b.add("input", [], (1, 8))
    y = b.add("linear", [x], (1, 4), weight_shape=(4, 8), params=32)
    b.add("output", [y], (1, 4))
    with pytest.raises(ValueError, match="no 4-D feature map"):
        find_cg_taps(b.build())


def test_score_accepts_a_cg_and_collects_node_stats() -> None:
    cg = _nb201()[0]
    r = score(cg, method="eproxy", iterations=2, batch_size=4, collect_stats=True)
    assert r.ok, r.error
    assert len(r.stage_losses) == 3 and r.taps == [f"node{i}" for i in find_cg_taps(cg)]
    assert set(r.node_stats) <= set(range(cg.num_nodes)) and len(r.node_stats) > cg.num_nodes // 2
    again = score(cg, method="eproxy", iterations=2, batch_size=4)
    assert again.loss == r.loss  # seeded: same CG, same score
    many = score_many([cg, registry.build("nasbench201", registry.sample("nasbench201", 1, 0)[0])],
                      method="eproxy", iterations=2, batch_size=4, progress=False, flops_alpha=0.5)
    assert [m.ok for m in many] == [True, True] and many[0].loss == r.loss
    assert many[0].macs == cg.macs("conv_linear") == many[1].macs  # same net given as CG and as module
    with pytest.raises(ValueError, match="input_size"):
        score(from_torch(torchvision.models.resnet18(), input_shape=(1, 3, 64, 64)), method="eproxy")


def test_proxy_features_are_aligned_cached_and_resumable(tmp_path: Path) -> None:
    cg = _nb201()[0]
    feats = proxy_features(cg, TINY, cache_dir=tmp_path)
    assert feats.ok and not feats.cached
    assert feats.graph.shape == (len(TINY.graph_feature_names),) and feats.graph[0] == 1.0
    assert feats.node.shape == (cg.num_nodes, len(NODE_FEATURES)) and feats.node_mask.shape == (cg.num_nodes,)
    assert np.isfinite(feats.node).all() and feats.node[:, 1].max() == pytest.approx(1.0)
    # nodes after the final tap (pooling, classifier, output) get the neutral fill
    last_tap = max(find_cg_taps(cg))
    assert not feats.node_mask[last_tap + 1:].any() and (feats.node[last_tap + 1:] == 0).all()
    assert feats.node_mask[1:last_tap + 1].all()
    assert math.isclose(float(feats.graph[1]), math.log(feats.loss), rel_tol=1e-5)
    files = list(tmp_path.rglob("*"))
    assert [p.suffix for p in files if p.is_file()] == [".npz"]  # atomic: no temporary left over
    hit = proxy_features(cg, TINY, cache_dir=tmp_path)
    assert hit.cached and np.array_equal(hit.graph, feats.graph) and np.array_equal(hit.node, feats.node)
    other = proxy_features(cg, ProxyConfig(method="eproxy", iterations=3, batch_size=4), cache_dir=tmp_path)
    assert not other.cached and other.loss != feats.loss
    kaiming = proxy_features(cg, ProxyConfig(method="eproxy", iterations=2, batch_size=4, init="kaiming_normal"),
                             cache_dir=tmp_path)
    assert kaiming.ok and kaiming.loss != feats.loss
    with pytest.raises(ValueError, match="init scheme"):
        ProxyConfig(init="lecun")
    # a truncated cache entry is recomputed, not trusted
    entry = next(p for p in tmp_path.rglob("*.npz"))
    entry.write_bytes(b"garbage")
    assert proxy_features(cg, TINY, cache_dir=tmp_path).ok


def test_failing_nets_get_the_neutral_fill(tmp_path: Path) -> None:
    b = CGBuilder("weird")
    x = b.add("input", [], (1, 3, 8, 8))
    c = b.add("conv", [x], (1, 4, 4, 4), weight_shape=(4, 3, 3, 3), kernel=(3, 3), stride=(2, 2),
              padding=(1, 1), dilation=(1, 1), params=108)
    u = b.add("unknown", [c], (1, 4, 4, 4), source_op="roll")
    b.add("output", [u], (1, 4, 4, 4))
    cg = b.build()
    feats = proxy_features(cg, TINY, cache_dir=tmp_path)
    assert not feats.ok and "roll" in feats.error
    assert not feats.graph.any() and not feats.node.any() and not feats.node_mask.any()
    assert feats.graph.shape == (len(TINY.graph_feature_names),)
    assert proxy_features(cg, TINY, cache_dir=tmp_path).cached  # failures are cached too
    many = proxy_features_many([cg, _nb201()[0]], TINY, cache_dir=tmp_path, progress=False)
    assert [f.ok for f in many] == [False, True]


def test_task_search_with_tiny_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path))
    cgs = _nb201(seed=5, n=3)
    labels = [float(cg.flops) for cg in cgs]  # a real, architecture-dependent target
    result = search_proxy_task(cgs, labels, "eproxy", population=3, sample=2, cycles=2, base=TINY, seed=1,
                               progress=False)
    assert len(result.history) == 5
    assert -1.0 <= result.best_fitness <= 1.0
    assert result.best_fitness == max(f for _, f in result.history)
    config, alpha = genome_to_config("eproxy", result.best_genome, TINY)
    assert config == result.best_config and alpha == result.best_alpha
    # the best config reproduces its fitness through the (now warm) cache
    feats = [proxy_features(cg, result.best_config) for cg in cgs]
    assert all(f.cached for f in feats)
    gen = search_proxy_task(cgs, labels, "gennas", population=2, sample=1, cycles=1,
                            base=ProxyConfig(method="gennas", iterations=2, batch_size=4), progress=False)
    assert len(gen.history) == 3 and dict(gen.best_config.overrides)["stages"]
    with pytest.raises(ValueError, match="labels"):
        search_proxy_task(cgs, labels[:2], "eproxy")
    with pytest.raises(ValueError, match="method"):
        search_proxy_task(cgs, labels, "synflow")


def test_onnx_cg_rebuilds_and_scores(tmp_path: Path) -> None:
    import warnings

    from cgpredict.converters import from_onnx
    from cgpredict.proxies.specs import load_model

    model = torchvision.models.squeezenet1_0(num_classes=10).eval()
    path = tmp_path / "sq.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), str(path), dynamo=True, optimize=False, verbose=False)
    cg = from_onnx(path)
    net = cg.to_module()
    again = from_torch(net, input_shape=(1, 3, 32, 32))
    assert again.hash() == cg.hash()  # ONNX source ops (Split, Gather…) rebuild to the same graph
    assert isinstance(load_model(str(path)), torch.nn.Module)
    result = score(cg, method="eproxy", iterations=2, batch_size=4)
    assert result.ok, result.error


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_score_cg_on_cuda_matches_cpu_closely() -> None:
    cg = _nb201()[0]
    cpu = score(cg, method="eproxy", iterations=3, batch_size=8)
    gpu = score(cg, method="eproxy", iterations=3, batch_size=8, device="cuda")
    assert gpu.ok, gpu.error
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-2)


def _cli(argv: list[str]) -> int:
    from cgpredict.commands import proxy as proxy_cmd

    parser = argparse.ArgumentParser()
    proxy_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["proxy", *argv])
    return args.func(args)


def test_cli_family_mode_resumes_from_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CGPREDICT_DATA", str(tmp_path / "no-data"))
    out = tmp_path / "s.csv"
    argv = ["--family", "hiaml", "--n", "2", "--seed", "1", "--method", "eproxy", "--iterations", "2",
            "--batch-size", "4", "-q", "-o", str(out)]
    assert _cli(argv) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and all(r["eproxy_error"] == "" and float(r["eproxy_loss"]) > 0 for r in rows)
    entries = sorted((tmp_path / "cache" / "proxies").rglob("*.npz"))
    assert len(entries) == 2
    stamps = [p.stat().st_mtime_ns for p in entries]
    assert _cli(argv) == 2  # the CSV exists: refused without --force, nothing recomputed
    assert _cli([*argv, "--force"]) == 0  # second run: everything from the cache
    assert [p.stat().st_mtime_ns for p in entries] == stamps
    assert list(csv.DictReader(out.open())) == rows
    assert _cli(["--family", "hiaml", "-q", "-o", str(out)]) == 2  # --n missing


@pytest.mark.data
def test_cli_family_mode_writes_labels(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path))
    monkeypatch.setenv("CGPREDICT_DATA", str(shared_data))
    out = tmp_path / "nb.csv"
    assert _cli(["--family", "nasbench201", "--task", "cifar10", "--n", "3", "--method", "eproxy",
                 "--iterations", "2", "--batch-size", "4", "-q", "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and all(0 < float(r["label"]) <= 100 for r in rows)
    assert {"arch", "label", "eproxy_score", "eproxy_loss", "eproxy_stage3", "eproxy_seconds", "eproxy_error"} <= set(rows[0])


def test_cli_bank_on_an_executor_writes_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cgpredict proxy --family F --n N --method ... --executor local:2`` writes the rows the
    in-process run writes (scores are computed in two worker processes, cached here)."""
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CGPREDICT_DATA", str(tmp_path / "no-data"))
    here, there = tmp_path / "here.csv", tmp_path / "there.csv"
    argv = ["--family", "nasbench201", "--n", "3", "--seed", "2", "--method", "synflow,naswot", "--batch-size", "8",
            "-q", "--no-cache"]
    assert _cli([*argv, "-o", str(here)]) == 0
    assert _cli([*argv, "--executor", "local:2", "-o", str(there)]) == 0
    drop = ("seconds",)
    rows = [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(here.open())]
    assert rows == [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(there.open())]
    assert len(rows) == 3 and all(r["error"] == "" for r in rows)

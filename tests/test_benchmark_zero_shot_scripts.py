"""The zero-shot report scripts of issues 22 and 23 on small real inputs (no labelled data needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    yield
    for name in ("generalist_nb201_full", "proxy_seed_agreement", "proxy_bank_report", "meco_layers"):
        sys.modules.pop(name, None)


def test_per_set_rankings_of_the_demo_generalist_and_baselines(benchmarks_on_path):
    import generalist_nb201_full as full

    from cgpredict.generalist import GeneralistPredictor

    model = GeneralistPredictor.pretrained("generalist_demo", progress=False)
    names = model.column_names
    rng = np.random.default_rng(0)
    labels = rng.normal(size=400)
    raw = rng.normal(size=(400, len(names)))
    raw[:, names.index("log_flops")] = labels  # FLOPs rank every set perfectly
    raw[:, names.index("synflow")] = -labels   # SynFlow ranks every set backwards
    out = full.per_set(model, raw, {"acc": labels}, size=40, sets=6, seed=1)
    assert out["acc"]["FLOPs"] == pytest.approx((1.0, 0.0))
    assert out["acc"]["synflow"] == pytest.approx((-1.0, 0.0))
    mean, std = out["acc"]["generalist_demo"]
    assert -1.0 <= mean <= 1.0 and std > 0  # six different random sets
    assert full.per_set(model, raw, {"acc": labels}, size=40, sets=6, seed=1) == out  # seeded


def test_seed_agreement_is_one_for_seed_free_proxies_and_bounded_for_batch_ones(benchmarks_on_path, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path))
    import proxy_seed_agreement as agree

    from cgpredict.datasets import load_family

    cgs = load_family("nasbench201", n=5, seed=2).cgs(progress=False)
    first, between = agree.seed_agreement(cgs, ["complexity", "snip"], (0, 1), "noise", None)
    assert between["complexity"] == pytest.approx(1.0)  # FLOPs do not depend on the batch
    assert -1.0 <= between["snip"] <= 1.0
    assert first["complexity"].shape == (5,) and np.isfinite(first["snip"]).all()
    assert any((tmp_path / "proxies" / "bank").rglob("*.npz"))  # both seeds cached in the redirected folder


def test_transnas_task_networks_are_each_tasks_own_network_and_run_in_the_bank(benchmarks_on_path, tmp_path,
                                                                               monkeypatch):
    """``--transnas-task-network``: the decoders (leaky ReLU, tanh), the jigsaw tiles and the room-layout
    head are the tasks' own networks, scored with the task's loss; the default stays class_scene."""
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path))
    from types import SimpleNamespace

    import proxy_bank_report as report

    from cgpredict.proxies.bank import BankConfig, bank_scores

    arch = (3, 1, 2, 3, 0, 2)
    shapes = {"segmentsemantic": (1, 17, 32, 32), "normal": (1, 3, 32, 32), "jigsaw": (1, 1000),
              "room_layout": (1, 9)}
    for task, out_shape in shapes.items():
        fam = SimpleNamespace(task=task, archs=[arch])
        (own,) = report._transnas_cgs(fam, 32, task_network=True)
        (shared,) = report._transnas_cgs(fam, 32)
        assert "unknown" not in own.op_histogram()
        assert tuple(own.output_node.in_shapes[0]) == out_shape
        assert tuple(shared.output_node.in_shapes[0]) == (1, 63)  # class_scene's head for every task
        if task != "jigsaw":  # jigsaw keeps its native 9 tiles of 64×64
            assert tuple(own.input_nodes[0].out_shape) == (1, 3, 32, 32)
        config = BankConfig(batch_size=4, inputs="noise", loss=report.TRANSNAS_LOSS[task])
        result = bank_scores(own, ["synflow", "snip", "naswot"], config)
        assert not result.errors and all(np.isfinite(v) for v in result.scores.values()), (task, result.errors)


def test_meco_of_sample_zero_is_the_banks_meco_and_other_samples_differ(benchmarks_on_path) -> None:
    """``meco_layers.meco_per_sample``: sample 0 reproduces the bank's MeCo (same weights, batch and
    batch statistics); the other samples of the batch give their own values."""
    from torch import nn

    from meco_layers import meco_per_sample

    from cgpredict.converters import from_torch
    from cgpredict.proxies.bank import BankConfig, bank_scores

    cg = from_torch(nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)),
                    input_shape=(1, 3, 8, 8), name="meco_probe")
    config = BankConfig(batch_size=8, inputs="noise")
    per = meco_per_sample(cg, config, 4)
    assert per.shape == (4,) and np.all(np.isfinite(per))
    assert per[0] == pytest.approx(bank_scores(cg, ["meco"], config, cache=False).scores["meco"], rel=1e-9)
    assert len(set(np.round(per, 9))) == 4

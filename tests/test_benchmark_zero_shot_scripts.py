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
    for name in ("generalist_nb201_full", "proxy_seed_agreement"):
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

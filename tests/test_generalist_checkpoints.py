"""The shipped generalist checkpoints: loadable with weights_only, small, carded, and ranking for real."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cgpredict.generalist import GeneralistPredictor
from cgpredict.predictor.checkpoint import CHECKPOINT_DIR

NAMES = ("generalist", "generalist_demo")
CELL_FAMILIES = {"NB-201", "TransNAS micro", "NATS sss"}


@pytest.mark.parametrize("name", NAMES)
def test_shipped_checkpoint_loads_is_small_and_has_a_model_card(name):
    folder = CHECKPOINT_DIR / name
    model = GeneralistPredictor.pretrained(name, progress=False)
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size <= 10_000_000
    card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Reproduce with" in card and "## Training data" in card
    assert model.groups_ and all(info["n"] >= 2 for info in model.groups_.values())
    units = {"NB-201 cell" if f in CELL_FAMILIES else f for f in model.card_["families"]}  # one weight unit each
    assert abs(sum(info["weight"] for info in model.groups_.values()) - len(units)) < 1e-9
    for table in model.card_["tables"]:
        assert f"| {table} |" in card


def test_demo_checkpoint_never_saw_an_nb201_cell_family():
    demo = GeneralistPredictor.pretrained("generalist_demo", progress=False)
    full = GeneralistPredictor.pretrained("generalist", progress=False)
    assert not CELL_FAMILIES & set(demo.card_["families"])
    assert CELL_FAMILIES & set(full.card_["families"])
    assert not any(g.startswith(("nb201", "nats", "tnb")) for g in demo.groups_)


def test_graph_only_ranking_of_sampled_nets_without_data():
    from cgpredict.datasets import load_family

    cgs = load_family("nasbench201", n=12, seed=3).cgs(progress=False)
    model = GeneralistPredictor.pretrained(progress=False)
    scores = model.predict(cgs, use_proxies=False)
    assert scores.shape == (12,) and np.isfinite(scores).all() and np.ptp(scores) > 0
    # the same nets in another order get the same scores: only the set matters
    perm = np.random.default_rng(0).permutation(12)
    np.testing.assert_allclose(model.predict([cgs[i] for i in perm], use_proxies=False), scores[perm])


DATA = os.environ.get("CGPREDICT_DATA")


@pytest.mark.skipif(not DATA or not (Path(DATA) / "naslib").is_dir(), reason="needs CGPREDICT_DATA tables")
def test_demo_checkpoint_ranks_nb201_zero_shot_with_proxies():
    """Zero-shot on 30 labelled NB-201 nets (proxies cached after the first run, ~20 s cold)."""
    from cgpredict.datasets import load_family
    from cgpredict.metrics import spearman

    fam = load_family("nasbench201", task="cifar10", data_dir=DATA)
    fam = fam.subset(np.sort(np.random.default_rng(0).choice(len(fam), 30, replace=False)))
    model = GeneralistPredictor.pretrained("generalist_demo", progress=False)
    rho = spearman(fam.labels, model.predict(fam.cgs(progress=False)))
    assert rho > 0.6

"""The shipped checkpoints: the default (the generalist) and checkpoint folders dispatched on their format;
the NB-101 GENNAPE checkpoint: safe loading, finite and deterministic predictions, its training script.

Pipeline position: model → CG → features → **predictor (shipped checkpoint)** → ranking/search.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cgpredict.datasets import load_family
from cgpredict.metrics import spearman
from cgpredict.models.fcm import OutOfDistributionWarning
from cgpredict.predictor import CHECKPOINT_DIR, MEMBERS, Predictor

CKPT = CHECKPOINT_DIR / "nb101"
REPO = Path(__file__).resolve().parents[1]


def test_checkpoint_files_small_and_safe() -> None:
    files = {p.name: p.stat().st_size for p in CKPT.iterdir()}
    assert {"config.json", "weights.pt", "MODEL_CARD.md", "manifest.json"} <= set(files)
    assert sum(files.values()) < 6_000_000, files  # ships inside the wheel
    state = torch.load(CKPT / "weights.pt", map_location="cpu", weights_only=True)
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    assert all(torch.isfinite(v).all() for v in state.values())
    doc = json.loads((CKPT / "config.json").read_text())
    assert doc["config"]["members"] == list(MEMBERS)
    assert doc["config"]["min_train_accuracy"] == 80.0
    assert doc["config"]["canonical"] is True  # trained on, and reads, canonical CGs
    assert set(json.loads((CKPT / "manifest.json").read_text())["files"]) == {"config.json", "weights.pt",
                                                                              "MODEL_CARD.md"}
    card = (CKPT / "MODEL_CARD.md").read_text()
    assert "held-out" in card and "benchmarks/train_pretrained.py" in card


def test_default_predictor_is_the_generalist_and_folders_dispatch_on_format(tmp_path: Path) -> None:
    from cgpredict import GeneralistPredictor, load_predictor
    from cgpredict.commands.predict import load_predictor as cli_load
    from cgpredict.models.synthetic import toy_family

    default = Predictor.pretrained(progress=False)
    assert isinstance(default, GeneralistPredictor) and default.predicts_accuracy is False
    assert isinstance(load_predictor(progress=False), GeneralistPredictor)
    assert isinstance(cli_load(None), GeneralistPredictor)
    assert isinstance(Predictor.pretrained("generalist_demo", progress=False), GeneralistPredictor)
    gennape = Predictor.pretrained("nb101", progress=False)
    assert type(gennape) is Predictor and getattr(gennape, "predicts_accuracy", True)
    assert type(load_predictor(CKPT, progress=False)) is Predictor
    assert type(cli_load(str(CKPT))) is Predictor
    # a generalist saved anywhere is read back as one (graph columns only: no network is run)
    cgs, acc = toy_family(40, seed=0)
    model = GeneralistPredictor(progress=False)
    model.fit(cgs, acc, [i % 2 for i in range(40)], raw=model.columns(cgs, use_proxies=False))
    folder = model.save(tmp_path / "gen")
    for loaded in (load_predictor(folder, progress=False), cli_load(str(folder))):
        assert isinstance(loaded, GeneralistPredictor)
        np.testing.assert_allclose(loaded.predict(cgs[:10], use_proxies=False),
                                   model.predict(cgs[:10], use_proxies=False))
    with pytest.raises(Exception, match="not a generalist checkpoint"):
        GeneralistPredictor.load(CKPT)


@pytest.fixture(scope="module")
def nb101_cgs() -> list:
    return load_family("nasbench101", n=6, seed=11).cgs(progress=False)


def test_pretrained_predicts_finite_and_deterministic(nb101_cgs: list) -> None:
    a = Predictor.pretrained("nb101", progress=False)
    b = Predictor.pretrained("nb101", progress=False)
    pa, pb = a.predict(nb101_cgs), b.predict(nb101_cgs)
    assert pa.shape == (6,) and np.all(np.isfinite(pa))
    assert np.all((pa > 50) & (pa < 100))  # NB-101 CIFAR-10 accuracies live in this range
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(a.predict(nb101_cgs), pa)  # no state changes between calls
    np.testing.assert_array_equal(a.score(nb101_cgs), b.score(nb101_cgs))
    assert np.ptp(pa) > 0  # different nets get different predictions
    ood = a.ood(nb101_cgs)
    assert set(ood) == {"max_membership", "centroid_distance", "flag"}
    assert not ood["flag"].all()  # nets of the training family are mostly in distribution


def test_pretrained_flags_foreign_family_more(nb101_cgs: list) -> None:
    p = Predictor.pretrained("nb101", progress=False)
    foreign = load_family("ofa_mbv3", n=4, seed=0).cgs(progress=False)
    with pytest.warns(OutOfDistributionWarning):
        far = p.ood(foreign)["centroid_distance"]
    near = p.ood(nb101_cgs)["centroid_distance"]
    assert far.min() > np.median(near)


def test_pretrained_ranks_nb101_labels(shared_data: Path) -> None:
    fam = load_family("nasbench101", task="cifar10", data_dir=shared_data)
    fam = fam.subset(np.random.default_rng(0).choice(len(fam), 60, replace=False))
    p = Predictor.pretrained("nb101", progress=False)
    # in-sample (these nets trained the heads): a sanity check that the shipped weights are the trained ones
    assert spearman(fam.labels, p.score(fam.cgs(progress=False))) > 0.6


@pytest.mark.slow
def test_training_script_quick_run(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "train_pretrained.py"), "--quick", "--no-progress",
                    "--zero-shot-n", "0", "--data", str(shared_data), "-o", str(out)], check=True, env=env)
    p = Predictor.load(out, progress=False)
    cgs = load_family("nasbench101", n=3, seed=2).cgs(progress=False)
    assert np.all(np.isfinite(p.predict(cgs)))
    assert "held-out" in (out / "MODEL_CARD.md").read_text()

"""Checkpoint folders: atomic writes, the manifest, version-1 checkpoints, sane-size config checks.

Pipeline position: model → CG → features → predictor → **checkpoint** → ranking/search.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cgpredict.models.synthetic import toy_family
from cgpredict.predictor import CHECKPOINT_DIR, CheckpointError, Predictor
from cgpredict.predictor import checkpoint as ckpt

TINY = dict(encoder={"epochs": 2, "batch_size": 64, "branch_dim": 16}, regressor={"epochs": 5, "hidden": 32},
            pairwise={"epochs": 2, "hidden": 16}, kgnn={"epochs": 2, "batch_size": 32}, n_clusters=3,
            progress=False)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Predictor, Path, list]:
    cgs, acc = toy_family(48, seed=6)
    pred = Predictor(**TINY).fit(cgs[:32], acc[:32])
    return pred, pred.save(tmp_path_factory.mktemp("ckpt") / "pred"), cgs[32:]


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def test_manifest_lists_every_file_and_catches_edits(saved, tmp_path: Path) -> None:
    pred, path, _ = saved
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"config.json", "weights.pt"}
    assert json.loads((path / "config.json").read_text())["format_version"] == 2
    for name, damage in (("weights.pt", lambda b: b[: len(b) // 2]), ("config.json", lambda b: b.replace(b"0", b"1", 1))):
        copy = _copy(path, tmp_path / name)
        (copy / name).write_bytes(damage((copy / name).read_bytes()))
        with pytest.raises(CheckpointError, match=f"{name} does not match its hash in .*manifest.json"):
            Predictor.load(copy)
    copy = _copy(path, tmp_path / "nomanifest")
    (copy / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="has no manifest.json"):
        Predictor.load(copy)


def test_save_replaces_atomically_and_keeps_the_old_checkpoint_on_failure(saved, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pred, path, cgs = saved
    target = _copy(path, tmp_path)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)  # dies while writing weights.pt
    with pytest.raises(OSError, match="disk full"):
        pred.save(target)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # the previous checkpoint, intact
    assert [p.name for p in tmp_path.iterdir()] == ["copy"]  # no temporary folder left behind
    np.testing.assert_array_equal(Predictor.load(target, progress=False).predict(cgs), pred.predict(cgs))
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not a cgpredict checkpoint; refusing to replace it"):
        pred.save(user)
    assert (user / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(("section", "key", "value"), [
    ("regressor", "hidden", 1_000_000),
    ("kgnn", "layers", 10_000),
    ("", "n_clusters", -3),
    ("encoder", "branch_dim", "64"),
    ("pairwise", "hidden_layers", 1.5),
])
def test_tampered_sizes_are_refused_before_any_module_is_built(saved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              section: str, key: str, value) -> None:
    _, path, _ = saved
    copy = _copy(path, tmp_path)
    doc = json.loads((copy / "config.json").read_text())
    (doc["config"] if not section else doc["config"].setdefault(section, {}))[key] = value
    (copy / "config.json").write_text(json.dumps(doc))
    ckpt.write_manifest(copy)  # a consistent but hostile checkpoint
    monkeypatch.setattr(Predictor, "_build", lambda *a, **k: pytest.fail("modules built from a tampered config"))
    field = f"{section}.{key}" if section else key
    with pytest.raises(CheckpointError, match=rf"config.json: config field {field} = .* outside the sane range"):
        Predictor.load(copy)


def test_a_model_too_large_overall_is_refused(saved, tmp_path: Path) -> None:
    _, path, _ = saved
    copy = _copy(path, tmp_path)
    doc = json.loads((copy / "config.json").read_text())
    doc["config"].update(n_clusters=1000, regressor={"hidden": 4096, "hidden_layers": 32})  # each within bounds
    (copy / "config.json").write_text(json.dumps(doc))
    ckpt.write_manifest(copy)
    with pytest.raises(CheckpointError, match=r"would have about .* parameters \(limit"):
        Predictor.load(copy)
    assert ckpt.estimated_parameters(json.loads((CHECKPOINT_DIR / "nb101" / "config.json").read_text())["config"]) \
        < ckpt.MAX_PARAMETERS / 10


def test_version_1_checkpoint_loads_and_converts(saved, tmp_path: Path) -> None:
    """A format-version-1 checkpoint (no manifest, no ``canonical`` option: how the shipped one was
    written before it was retrained on canonical CGs) loads as it is, reading CGs as converted,
    and the documented conversion (``python -m cgpredict.predictor.checkpoint FOLDER``) gives a
    version-2 folder with identical predictions."""
    from cgpredict.datasets import load_family

    pred, path, _ = saved
    v1 = _copy(path, tmp_path)
    (v1 / "manifest.json").unlink()
    (v1 / "MODEL_CARD.md").write_text("# a version-1 card\n")
    doc = json.loads((v1 / "config.json").read_text())
    doc["format_version"] = 1
    del doc["config"]["canonical"]
    (v1 / "config.json").write_text(json.dumps(doc))
    cgs = load_family("nasbench201", n=8, seed=1).cgs(progress=False)
    original = Predictor.load(v1, progress=False)
    assert original.canonical is False
    as_converted = Predictor.load(path, progress=False)
    as_converted.canonical = False
    np.testing.assert_array_equal(original.predict(cgs), as_converted.predict(cgs))
    assert ckpt.main([str(v1)]) == 0
    assert json.loads((v1 / "config.json").read_text())["format_version"] == 2
    assert set(json.loads((v1 / "manifest.json").read_text())["files"]) == {"config.json", "weights.pt",
                                                                             "MODEL_CARD.md"}
    converted = Predictor.load(v1, progress=False)
    assert converted.canonical is False
    np.testing.assert_array_equal(converted.predict(cgs), original.predict(cgs))
    np.testing.assert_array_equal(converted.rank(cgs), original.rank(cgs))


def test_sigkill_during_save_leaves_the_previous_checkpoint(saved, tmp_path: Path) -> None:
    """A writer killed with SIGKILL while writing ``weights.pt`` leaves the old folder intact."""
    import signal
    import subprocess
    import sys
    import time

    pred, path, cgs = saved
    target = _copy(path, tmp_path)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    marker = tmp_path / "writing"
    script = f"""
import time, torch
from cgpredict.predictor import Predictor
pred = Predictor.load({str(target)!r}, progress=False)
real = torch.save
def slow(obj, f, *a, **k):
    real(obj, f, *a, **k)
    with open(f, "r+b") as h:
        h.truncate(100)  # half-written
    open({str(marker)!r}, "w").close()
    time.sleep(60)
torch.save = slow
pred.save({str(target)!r})
"""
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 120
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the writer never reached weights.pt"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    np.testing.assert_array_equal(Predictor.load(target, progress=False).predict(cgs), pred.predict(cgs))
    assert [p.name for p in tmp_path.glob(".copy.*.tmp")]  # the killed writer's folder, for remove_orphans

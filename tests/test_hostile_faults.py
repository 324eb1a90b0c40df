"""Writers killed with SIGKILL at the write: the previous file or folder survives intact.

Pipeline position: every file cgpredict writes (CG JSON from ``convert -o``, CG cache bundles,
search output folders, checkpoint folders), through :mod:`cgpredict.fileio`. Each case forks a
child that is killed (SIGKILL, no clean-up possible) at a chosen moment of the write — halfway
through the bytes, before the fsync, before the rename — and checks what a later reader sees.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cgpredict import cli, fileio
from cgpredict.cg import CG
from cgpredict.datasets.cache import CGCache
from hostile_helpers import TINY_SOURCE, flops_scorer, kill_at, run_killed, snapshot
from test_hostile_cache import chain


def kill_halfway_through_write() -> None:
    """Patch: the temporary file gets half of its first write, then the process is killed."""
    real_fdopen = os.fdopen

    class Half:
        def __init__(self, handle: object) -> None:
            self._handle = handle

        def write(self, data: bytes | str) -> int:
            self._handle.write(data[: max(1, len(data) // 2)])
            self._handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
            return 0  # pragma: no cover

        def __getattr__(self, name: str) -> object:
            return getattr(self._handle, name)

        def __enter__(self) -> Half:
            return self

        def __exit__(self, *exc: object) -> None:
            self._handle.close()

    fileio.os.fdopen = lambda *a, **k: Half(real_fdopen(*a, **k))  # type: ignore[assignment]


KILLS = {
    "halfway": kill_halfway_through_write,
    "before-fsync": kill_at(os, "fsync"),
    "before-rename": kill_at(os, "replace"),
}


@pytest.fixture()
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "user"
    home.mkdir()
    (home / "net.py").write_text(TINY_SOURCE)
    monkeypatch.chdir(home)
    return home


@pytest.mark.parametrize("moment", sorted(KILLS))
def test_convert_output_survives_a_kill_at_the_write(user: Path, moment: str) -> None:
    argv = ["convert", "net.py:TinyNet", "--input-shape", "1,3,8,8", "-o", "net.json", "--force"]
    assert cli.main(argv) == 0
    before = (user / "net.json").read_bytes()
    sig = run_killed(lambda: cli.main([*argv, "--name", "second"]), KILLS[moment])
    assert sig == signal.SIGKILL
    assert (user / "net.json").read_bytes() == before  # the previous file, whole
    assert CG.from_json(user / "net.json").name == "TinyNet"
    assert cli.main([*argv, "--name", "third"]) == 0  # a later run still writes
    assert CG.from_json(user / "net.json").name == "third"


@pytest.mark.parametrize("moment", sorted(KILLS))
def test_cache_bundle_survives_a_kill_and_the_orphan_is_cleared(tmp_path: Path, moment: str) -> None:
    cache = CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path)
    cache.put("old", chain(4))
    cache.flush()
    before = cache.path.read_bytes()

    def write_more() -> None:
        more = CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path)
        more.put("new", chain(8))
        more.flush()

    assert run_killed(write_more, KILLS[moment]) == signal.SIGKILL
    assert cache.path.read_bytes() == before
    assert CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path).keys() == ["old"]
    write_more()  # the next writer (holding the lock) merges and clears the killed writer's temp file
    assert sorted(CGCache("fam", "t", (1, 3, 8, 8), root=tmp_path).keys()) == ["new", "old"]
    assert not [n for n in os.listdir(cache.path.parent) if n.endswith(".tmp")]


def test_search_folder_survives_a_kill_during_export(tmp_path: Path) -> None:
    from cgpredict.search import search_cg, write_results
    from test_hostile import tiny_cg

    start = tiny_cg("start")

    first = search_cg(start, flops_scorer, iterations=1, topk=3, mutants=3, progress=False)
    write_results(first, start, tmp_path / "out", onnx=False, progress=False)
    before = snapshot(tmp_path / "out")
    second = search_cg(start, flops_scorer, iterations=1, topk=1, mutants=2, seed=1, progress=False)
    for after_calls in (0, 3):  # the first file of the export, and a later one
        sig = run_killed(lambda: write_results(second, start, tmp_path / "out", onnx=False, progress=False),
                         kill_at(os, "replace", after_calls=after_calls))
        assert sig == signal.SIGKILL
        assert snapshot(tmp_path / "out") == before
    write_results(second, start, tmp_path / "out", onnx=False, progress=False)
    assert sorted(p.name for p in (tmp_path / "out").glob("rank*")) == ["rank01"]


def test_checkpoint_folder_survives_a_kill_between_its_files(tmp_path: Path) -> None:
    """``finetune`` writes the checkpoint into a temporary folder swapped in whole: a kill between
    ``config.json`` and ``weights.pt`` (which once left a silently wrong checkpoint) changes nothing."""
    ckpt = tmp_path / "my.ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"format": "cgpredict.predictor", "generation": 1}))
    (ckpt / "weights.pt").write_bytes(b"old weights")
    before = snapshot(ckpt)

    def save() -> None:
        with fileio.atomic_directory(ckpt) as folder:
            (folder / "config.json").write_text(json.dumps({"format": "cgpredict.predictor", "generation": 2}))
            os.kill(os.getpid(), signal.SIGKILL)  # before weights.pt

    assert run_killed(save) == signal.SIGKILL
    assert snapshot(ckpt) == before


@pytest.mark.slow
def test_a_real_process_killed_while_writing_a_large_cg(tmp_path: Path) -> None:
    """A genuine ``cgpredict convert`` of a large model, SIGKILLed as soon as its temporary file
    appears: the output is the previous file or the complete new one, never torn."""
    out = tmp_path / "big.json"
    out.write_text('{"previous": true}')
    before = out.read_bytes()
    outcomes = set()
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "cgpredict.cli", "convert", "torchvision:vit_h_14", "--indent",
                                 "-o", str(out), "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if list(tmp_path.glob(".big.json.*.tmp")):
                time.sleep(0.01 * attempt)
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait()
        data = out.read_bytes()
        if data == before:
            outcomes.add("previous")
        else:
            assert CG.from_json(out).num_nodes > 100  # complete and valid
            outcomes.add("new")
            out.write_bytes(before)
    assert outcomes

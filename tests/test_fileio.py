"""cgpredict.fileio: atomic files and folders, refusal of existing outputs and of inputs as outputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from cgpredict.fileio import (OutputExistsError, atomic_directory, atomic_write, atomic_write_json,
                              atomic_writer, check_output, remove_orphans)


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"x": 1})
    atomic_write(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_sigkill_during_write_keeps_previous_file(tmp_path):
    target = tmp_path / "big.bin"
    target.write_bytes(b"previous")
    script = textwrap.dedent(f"""
        import time
        from cgpredict.fileio import atomic_writer
        with atomic_writer({str(target)!r}) as h:
            h.write(b"x" * 1000)
            h.flush()
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == b"previous"
    orphans = [p for p in tmp_path.iterdir() if p.name != "big.bin"]
    assert len(orphans) == 1 and orphans[0].name.endswith(".tmp")
    assert remove_orphans(tmp_path, older_than=3600) == 0      # too young: may belong to a live writer
    old = time.time() - 7200
    os.utime(orphans[0], (old, old))
    assert remove_orphans(tmp_path, older_than=3600) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["big.bin"]


def test_atomic_directory_swaps_whole_folder(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(ValueError), atomic_directory(target) as tmp:
        (tmp / "a").write_text("2")
        raise ValueError("interrupted")
    assert (target / "a").read_text() == "1"
    with atomic_directory(target) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_check_output_refuses_existing_and_inputs(tmp_path):
    src = tmp_path / "net.py"
    src.write_text("x = 1")
    with pytest.raises(OutputExistsError, match="--force"):
        check_output(src)
    assert check_output(src, force=True) == src
    with pytest.raises(OutputExistsError, match="input"):
        check_output(src, inputs=[f"{src}:Net"], force=True)
    with pytest.raises(OutputExistsError, match="input"):
        check_output(tmp_path / "." / "net.py", inputs=[str(src)], force=True)
    assert check_output(tmp_path / "new.json", inputs=[f"{src}:Net", "torchvision:resnet18"]) == tmp_path / "new.json"
    assert src.read_text() == "x = 1"

"""`python -m cgpredict.demo` (make demo) with tiny sizes: tables printed, PNGs written.

Pipeline position: model → CG → features → predictor → **ranking (demo)**.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cgpredict import demo


def _png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 10_000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_without_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CGPREDICT_DATA", raising=False)
    assert demo.main(["--models", "resnet18", "--n", "8", "--n-train", "20", "--out", str(tmp_path),
                      "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"resnet18\s+\d+\s+\d+\s+1\.81", text)  # conversion table: 1.81 GMACs
    assert "Zero-shot ranking of 8 sampled ofa_mbv3 nets" in text
    assert re.search(r"^ ?8  depths [2-4](-[2-4]){4}", text, re.M)  # 8 ranked rows with arch summaries
    assert _png(tmp_path / "embeddings.png")
    assert not (tmp_path / "pred_vs_true.png").exists()
    assert "set CGPREDICT_DATA" in text


def test_demo_with_labels(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--models", "resnet18", "--n", "6", "--n-train", "20", "--nb201-n", "30",
                      "--data", str(shared_data), "--out", str(tmp_path), "--no-progress"]) == 0
    text = capsys.readouterr().out
    match = re.search(r"SRCC (-?[0-9.]+)\s+Kendall tau (-?[0-9.]+)\s+NDCG@10 ([0-9.]+)", text)
    assert match and -1 <= float(match.group(1)) <= 1 and 0 <= float(match.group(3)) <= 1
    assert "30 labelled NB-201" in text
    assert _png(tmp_path / "embeddings.png") and _png(tmp_path / "pred_vs_true.png")


def test_arch_summary() -> None:
    arch = (((3, 4), (5, 6)), ((7, 3), (3, 3), (5, 4)), ((3, 3), (3, 3)), ((3, 6), (5, 6)), ((7, 4), (7, 4)))
    assert demo.arch_summary(arch) == "depths 2-3-2-2-2, mean k 4.6, mean e 4.2"
    assert demo.arch_summary((0, 2, 3, 2, 3, 1)) == "(0, 2, 3, 2, 3, 1)"
    assert demo.arch_summary("x" * 100, width=10) == "x" * 9 + "…"

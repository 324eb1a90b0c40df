"""`python -m cgpredict.demo` (make demo) with tiny sizes: the generalist's ranking printed, PNGs written.

Pipeline position: model → CG → features → predictor → **ranking (demo)**.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cgpredict import demo


def _png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 10_000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_without_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cgpredict.generalist import GeneralistPredictor

    monkeypatch.delenv("CGPREDICT_DATA", raising=False)

    def refuse(self, cgs):  # noqa: ANN001, ANN202 - --no-proxies must run no network
        raise AssertionError("the proxy bank ran")

    monkeypatch.setattr(GeneralistPredictor, "bank_results", refuse)
    assert demo.main(["--models", "resnet18", "--family", "ofa_mbv3", "--n", "8", "--n-train", "20", "--no-proxies",
                      "--out", str(tmp_path), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"resnet18\s+\d+\s+\d+\s+1\.81", text)  # conversion table: 1.81 GMACs
    assert "The generalist: zero-shot ranking of 8 sampled ofa_mbv3 nets" in text
    rows = re.findall(r"^ ?(\d)  depths [2-4](?:-[2-4]){4}, mean k [0-9.]+, mean e [0-9.]+\s+(-?[0-9.]+)\s+[0-9.]+$",
                      text, re.M)
    assert [int(r[0]) for r in rows] == list(range(1, 9))  # 8 ranked rows with arch summaries, best first
    scores = [float(r[1]) for r in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert "not accuracies" in text and "pred acc" not in text
    assert _png(tmp_path / "embeddings.png")
    assert not (tmp_path / "generalist_nb201.png").exists()
    assert "set CGPREDICT_DATA" in text


def test_demo_without_labels_runs_the_proxy_bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from cgpredict.generalist import GeneralistPredictor

    monkeypatch.delenv("CGPREDICT_DATA", raising=False)
    calls = []
    real = GeneralistPredictor.bank_results
    monkeypatch.setattr(GeneralistPredictor, "bank_results", lambda self, cgs: calls.append(len(cgs)) or real(self, cgs))
    assert demo.main(["--models", "", "--n", "5", "--n-train", "10", "--seed", "2", "--out", str(tmp_path),
                      "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "zero-shot ranking of 5 sampled nasbench201 nets" in text and calls == [5]
    assert len(re.findall(r"^ ?\d  \(\d, \d, \d, \d, \d, \d\)", text, re.M)) == 5


def test_demo_with_labels(tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cgpredict.datasets import load_family
    from cgpredict.generalist import GeneralistPredictor
    from cgpredict.metrics import kendall_tau, spearman

    assert demo.main(["--models", "resnet18", "--n-train", "20", "--nb201-n", "30", "--seed", "3",
                      "--data", str(shared_data), "--out", str(tmp_path), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "zero-shot ranking of 30 labelled NB-201 CIFAR-10 nets with generalist_demo" in text
    excluded = GeneralistPredictor.pretrained("generalist_demo", progress=False).card_.get("excluded")
    assert (f"trained without {', '.join(excluded)}" if excluded else "names no excluded family") in text
    table = dict(re.findall(r"^(generalist \(zero-shot\)|FLOPs|best single proxy: \w+|generalist, graph only|"
                            r"GENNAPE nb101 \(zero-shot\))\s+(-?[0-9.]+\s+-?[0-9.]+)$", text, re.M))
    assert len(table) == 5, text
    metrics = {k: tuple(map(float, v.split())) for k, v in table.items()}
    # the printed figures are those of the same 30 nets, recomputed here
    fam = load_family("nasbench201", task="cifar10", data_dir=shared_data)
    fam = fam.subset(np.sort(np.random.default_rng(3).choice(len(fam), 30, replace=False)))
    cgs, y = fam.cgs(progress=False), np.asarray(fam.labels)
    assert metrics["FLOPs"] == pytest.approx((spearman(y, [c.flops for c in cgs]),
                                              kendall_tau(y, [c.flops for c in cgs])), abs=1e-3)
    model = GeneralistPredictor.pretrained("generalist_demo", progress=False)
    bank = model.bank_results(cgs)  # cached by the demo's run
    assert metrics["generalist (zero-shot)"] == pytest.approx(
        (spearman(y, model.predict(cgs, bank=bank)), kendall_tau(y, model.predict(cgs, bank=bank))), abs=1e-3)
    (proxy_key,) = [k for k in metrics if k.startswith("best single proxy")]
    best = proxy_key.split(": ")[1]
    assert best in model.proxies
    for name in model.proxies:  # it is the best of the bank's proxies on these labels
        srcc, _ = demo.rank_metrics(y, [r.scores.get(name, float("nan")) for r in bank])
        assert not srcc > metrics[proxy_key][0] + 1e-3, name
    assert "picked with the labels" in text
    assert _png(tmp_path / "embeddings.png") and _png(tmp_path / "generalist_nb201.png")


def test_best_single_proxy_and_non_finite_scores() -> None:
    from types import SimpleNamespace

    y = np.array([1.0, 2.0, 3.0, 4.0])
    bank = [SimpleNamespace(scores={"a": v, "b": -v, "c": w}) for v, w in
            zip([1.0, 2.0, 3.0, 4.0], [float("nan"), 2.0, 3.0, float("-inf")])]
    name, srcc, tau = demo.best_single_proxy(y, bank, ["b", "a", "c"])
    assert (name, srcc, tau) == ("a", pytest.approx(1.0), pytest.approx(1.0))
    assert demo.rank_metrics(y, [float("nan"), 2.0, 3.0, 4.0])[0] == pytest.approx(1.0)  # NaN ranked last


def test_arch_summary() -> None:
    arch = (((3, 4), (5, 6)), ((7, 3), (3, 3), (5, 4)), ((3, 3), (3, 3)), ((3, 6), (5, 6)), ((7, 4), (7, 4)))
    assert demo.arch_summary(arch) == "depths 2-3-2-2-2, mean k 4.6, mean e 4.2"
    assert demo.arch_summary((0, 2, 3, 2, 3, 1)) == "(0, 2, 3, 2, 3, 1)"
    assert demo.arch_summary("x" * 100, width=10) == "x" * 9 + "…"

"""`cgpredict predict`, `cgpredict rank` and `cgpredict finetune` on real models and families.

Pipeline position: model → CG → features → predictor → ranking (command line).
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cgpredict import cli
from cgpredict.metrics import spearman

COMMANDS = ("predict", "rank", "finetune")


@pytest.fixture()
def run_cli(monkeypatch: pytest.MonkeyPatch):
    """``run_cli(*argv) -> exit code`` with the predictor sub-commands registered."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", tuple(dict.fromkeys(cli.COMMAND_MODULES + COMMANDS)))
    return lambda *argv: cli.main([str(a) for a in argv])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


TINY_SOURCE = """
from torch import nn


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        return self.body(x)
"""
_namespace: dict = {}
exec(TINY_SOURCE, _namespace)
TinyNet = _namespace["TinyNet"]


def test_predict_resnet18(run_cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pred.csv"
    assert run_cli("predict", "torchvision:resnet18", "--pretrained", "nb101", "-o", out) == 0
    text = capsys.readouterr().out
    assert "torchvision:resnet18" in text and "OOD" in text
    (row,) = _rows(out)
    assert row["model"] == "torchvision:resnet18"
    assert math.isfinite(float(row["predicted_acc"]))
    assert float(row["mmacs"]) == pytest.approx(1814.0, rel=0.01)  # torchvision's 1.81 GMACs at 224x224
    assert 0.0 < float(row["max_membership"]) <= 1.0
    assert float(row["centroid_distance"]) > 0
    assert row["ood"] in ("True", "False")


def test_predict_onnx_matches_torch_file(run_cli, tmp_path: Path) -> None:
    onnx_path = tmp_path / "tiny.onnx"
    torch.onnx.export(TinyNet().eval(), (torch.randn(1, 3, 32, 32),), str(onnx_path), dynamo=False, opset_version=14)
    py = tmp_path / "tiny_net.py"
    py.write_text(TINY_SOURCE)
    out = tmp_path / "pred.csv"
    assert run_cli("predict", onnx_path, f"{py}:TinyNet", "--input-shape", "1,3,32,32", "--pretrained", "nb101",
                   "-o", out) == 0
    onnx_row, torch_row = _rows(out)
    assert onnx_row["model"].endswith("tiny.onnx")
    # the two front ends give the same CG, so the same prediction
    assert float(onnx_row["mmacs"]) == pytest.approx(float(torch_row["mmacs"]))
    assert float(onnx_row["predicted_acc"]) == pytest.approx(float(torch_row["predicted_acc"]), abs=1e-4)


def test_predict_missing_checkpoint(run_cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("predict", "torchvision:resnet18", "--checkpoint", tmp_path / "nope") == 2
    assert "nope does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("predict", "torchvision:resnet18", "--checkpoint", empty) == 2
    assert "not a predictor checkpoint" in capsys.readouterr().err


def test_rank_sampled_family(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CGPREDICT_DATA", raising=False)
    out = tmp_path / "rank.csv"
    assert run_cli("rank", "--family", "nasbench201", "--n", 12, "--seed", 3, "--top", 5, "-q", "-o", out) == 0
    text = capsys.readouterr().out
    assert "12 sampled, unlabelled nets" in text and "SRCC" not in text
    rows = _rows(out)
    assert [int(r["rank"]) for r in rows] == list(range(1, 13))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert len({r["arch"] for r in rows}) == 12


def test_rank_adapt_changes_the_scores_not_the_nets(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CGPREDICT_DATA", raising=False)
    plain, adapted = tmp_path / "plain.csv", tmp_path / "adapted.csv"
    gennape = ("--pretrained", "nb101")
    assert run_cli("rank", "--family", "nasbench201", "--n", 12, "--seed", 3, "-q", *gennape, "-o", plain) == 0
    assert run_cli("rank", "--family", "nasbench201", "--n", 12, "--seed", 3, "-q", "--adapt", *gennape,
                   "-o", adapted) == 0
    a, b = _rows(plain), _rows(adapted)
    assert {r["arch"] for r in a} == {r["arch"] for r in b}
    pred_a = {r["arch"]: float(r["predicted_acc"]) for r in a}
    pred_b = {r["arch"]: float(r["predicted_acc"]) for r in b}
    assert any(abs(pred_a[k] - pred_b[k]) > 1e-6 for k in pred_a)  # the heads saw re-centred inputs


def test_rank_labelled_family_metrics(run_cli, tmp_path: Path, shared_data: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rank.csv"
    assert run_cli("rank", "--family", "nasbench201", "--task", "cifar10", "--n", 40, "--data", shared_data,
                   "-q", "-o", out) == 0
    text = capsys.readouterr().out
    srcc = float(re.search(r"SRCC (-?[0-9.]+)", text).group(1))
    rows = _rows(out)
    assert len(rows) == 40
    expected = spearman([float(r["label"]) for r in rows], [float(r["score"]) for r in rows])
    assert srcc == pytest.approx(expected, abs=1e-3)
    assert "Kendall tau" in text and "NDCG@10" in text


def _nb201_label(arch: tuple[int, ...]) -> float:
    """A made-up but learnable label: more 3x3 convs, fewer `none` edges = better."""
    return 70.0 + 3.0 * arch.count(2) + 1.0 * arch.count(3) - 4.0 * arch.count(1)


def _labels_csv(folder: Path, n: int) -> tuple[list, Path]:
    """``n`` sampled NB-201 archs (seed 5) and a CSV ``arch,label`` of their made-up labels."""
    from cgpredict.datasets import sample

    archs = sample("nasbench201", n, seed=5)
    path = folder / f"my{n}.csv"
    path.write_text("arch,label\n" + "".join(f'"{a}",{_nb201_label(a)}\n' for a in archs))
    return archs, path


def test_finetune_family_csv_writes_loadable_checkpoint(run_cli, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from cgpredict.datasets import load_family
    from cgpredict.predictor import Predictor

    archs, labels = _labels_csv(tmp_path, 10)
    out = tmp_path / "my.ckpt"
    assert run_cli("finetune", "--labels", labels, "--family", "nasbench201", "-o", out, "--epochs", 5, "-q",
                   "--pretrained", "nb101") == 0
    text = capsys.readouterr().out
    assert "fine-tuned on 10 nets" in text and "member weights (stacked on 2-fold cross-fitted ranks)" in text
    paper = tmp_path / "kendall.ckpt"
    assert run_cli("finetune", "--labels", labels, "--family", "nasbench201", "-o", paper, "--epochs", 2, "-q",
                   "--weighting", "kendall", "--weight-temperature", "0.5", "--pretrained", "nb101") == 0
    assert "member weights (softmax of 2-fold cross-fitted Kendall tau / 0.5)" in capsys.readouterr().out
    reloaded = Predictor.load(paper, progress=False)
    assert reloaded.weighting == "kendall" and reloaded.weight_temperature == 0.5
    tuned = Predictor.load(out, progress=False)
    assert tuned.weighting == "stacked"
    base = Predictor.pretrained("nb101", progress=False)
    cgs = load_family("nasbench201", n=10, seed=5).cgs(progress=False)
    assert not np.allclose(tuned.predict(cgs), base.predict(cgs))
    assert tuned.taus_ and set(tuned.weights) == set(base.weights)
    assert not np.allclose(list(tuned.weights.values()), list(base.weights.values()))
    # the fine-tuned checkpoint is usable from the CLI as well
    assert run_cli("predict", "torchvision:resnet18", "--checkpoint", out) == 0


def test_finetune_and_rank_with_the_proxy_member(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from cgpredict.datasets import load_family, sample
    from cgpredict.predictor import Predictor

    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CGPREDICT_DATA", raising=False)
    archs = sample("nasbench201", 12, seed=6)
    labels = tmp_path / "my12.csv"
    labels.write_text("arch,label\n" + "".join(f'"{a}",{_nb201_label(a)}\n' for a in archs))
    out = tmp_path / "proxy.ckpt"
    nb101 = ("--pretrained", "nb101")
    assert run_cli("finetune", "--labels", labels, "--family", "nasbench201", "-o", out, "--epochs", 2, *nb101,
                   "--zero-cost", "synflow", "--weight-folds", 0, "--weighting", "kendall", "-q") == 0
    assert "in-sample Kendall tau / 0.1)" in capsys.readouterr().out
    tuned = Predictor.load(out, progress=False)
    assert "Proxy" in tuned.members and tuned.zero_cost == ("synflow",) and tuned.models["Proxy"].finetuned
    cgs = load_family("nasbench201", n=12, seed=6).cgs(progress=False)
    assert np.all(np.isfinite(tuned.predict(cgs)))
    ranked = tmp_path / "rank.csv"
    assert run_cli("rank", "--family", "nasbench201", "--n", 12, "--seed", 3, "-q", "--zero-cost", "synflow",
                   *nb101, "-o", ranked) == 0
    assert len(_rows(ranked)) == 12
    capsys.readouterr()
    weighted = tmp_path / "weighted.csv"
    assert run_cli("rank", "--family", "nasbench201", "--n", 12, "--seed", 3, "-q", "--zero-cost", "synflow",
                   "--proxy-weights", *nb101, "-o", weighted) == 0
    shares = dict(re.findall(r"([\w+-]+) ([0-9.]+)(?:,|$)", capsys.readouterr().out.split("Proxy member): ")[1].splitlines()[0]))
    assert float(shares["Proxy"]) == pytest.approx(1 / 7, abs=0.01) and len(shares) == 7
    assert {r["arch"] for r in _rows(weighted)} == {r["arch"] for r in _rows(ranked)}
    assert run_cli("rank", "--family", "nasbench201", "--n", 12, "-q", "--proxy-weights", *nb101) == 2
    assert "--proxy-weights needs the Proxy member" in capsys.readouterr().err
    assert run_cli("rank", "--family", "nasbench201", "--n", 4, "-q", "--proxy", "synflow", *nb101) == 2
    assert "--proxy must be gennas, eproxy, cpu or a JSON object" in capsys.readouterr().err


def test_finetune_builder_and_errors(run_cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "space.py"
    space.write_text(
        "from torch import nn\n"
        "def build(width):\n"
        "    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),\n"
        "                         nn.Flatten(), nn.Linear(width, 10))\n")
    labels = tmp_path / "widths.csv"
    labels.write_text("arch,label\n4,60\n8,65\n16,70\n32,74\n")
    out = tmp_path / "w.ckpt"
    argv = ["finetune", "--labels", labels, "--builder", f"{space}:build", "--input-shape", "1,3,32,32",
            "-o", out, "--epochs", 3, "-q", "--pretrained", "nb101"]
    assert run_cli(*argv) == 0
    assert (out / "config.json").is_file() and (out / "weights.pt").is_file()
    capsys.readouterr()
    assert run_cli(*argv) == 2  # the checkpoint exists: replaced only with --force
    assert "pass --force" in capsys.readouterr().err
    first = (out / "weights.pt").read_bytes()
    assert run_cli(*argv, "--epochs", 1, "--force") == 0  # an earlier checkpoint is swapped for the new one
    from cgpredict.commands.finetune import CHECKPOINT_ENTRY

    names = {p.name for p in out.iterdir()}
    assert (out / "weights.pt").read_bytes() != first and {"config.json", "weights.pt"} <= names
    assert all(CHECKPOINT_ENTRY.match(name) for name in names)
    assert not list(tmp_path.glob(".*.tmp"))
    argv = [tmp_path / "w2.ckpt" if a == out else a for a in argv]
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,label\n4,60\n8,not-a-number\n")
    assert run_cli(*[bad if a == labels else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "line 3" in err
    assert run_cli(*[f"{space}:nobuild" if a == f"{space}:build" else a for a in argv]) == 2
    assert "no function 'nobuild'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli("finetune", "--labels", labels, "-o", out)  # neither --family nor --builder
    with pytest.raises(SystemExit):
        run_cli(*argv, "--weight-temperature", "0")
    assert "expected a number > 0, got '0'" in capsys.readouterr().err


# ------------------------------------------------------------------ the generalist (default predictor)


def _no_bank(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any run of the proxy bank fail the test."""
    from cgpredict.generalist import GeneralistPredictor

    def refuse(self, cgs):  # noqa: ANN001, ANN202
        raise AssertionError(f"the proxy bank ran on {len(list(cgs))} nets")

    monkeypatch.setattr(GeneralistPredictor, "bank_results", refuse)


def test_rank_no_proxies_prints_generalist_scores_without_running_the_bank(
        run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cgpredict.datasets import load_family
    from cgpredict.generalist import GeneralistPredictor

    monkeypatch.delenv("CGPREDICT_DATA", raising=False)
    _no_bank(monkeypatch)
    out = tmp_path / "rank.csv"
    assert run_cli("rank", "--family", "nasbench201", "--n", 15, "--seed", 4, "--no-proxies", "--top", 4,
                   "-o", out) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("#"))
    assert header.split() == ["#", "architecture", "score", "MMACs"]  # no accuracy, no OOD column
    assert "not accuracies" in text and "no network run" in text and "out-of-distribution" not in text
    rows = _rows(out)
    assert set(rows[0]) == {"rank", "arch", "score", "mmacs", "label"}
    assert [int(r["rank"]) for r in rows] == list(range(1, 16))
    # the printed order is the shipped generalist's graph-only ranking of exactly these nets
    fam = load_family("nasbench201", n=15, seed=4)
    expected = GeneralistPredictor.pretrained(progress=False).predict(fam.cgs(progress=False), use_proxies=False)
    by_arch = {fam.key(i): s for i, s in enumerate(expected)}
    assert [float(r["score"]) for r in rows] == pytest.approx([by_arch[r["arch"]] for r in rows])
    assert [r["arch"] for r in rows] == sorted(by_arch, key=lambda a: -by_arch[a])
    # NB-201 nets are covered by the NB-201 training tables: named, not flagged
    line = next(x for x in text.splitlines() if x.startswith("closest training group:"))
    assert line.split()[3].startswith(("nb201", "nats", "tnb")) and "extrapolates" not in line


def test_predict_torchvision_models_no_proxies(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _no_bank(monkeypatch)
    out = tmp_path / "pred.csv"
    assert run_cli("predict", "torchvision:resnet18", "torchvision:mobilenet_v2", "torchvision:resnet18",
                   "--no-proxies", "-o", out) == 0
    text = capsys.readouterr().out
    assert "score" in text and "pred acc" not in text and "OOD" not in text
    assert "scores rank the networks within the given set" in text and "not accuracies" in text
    rows = _rows(out)
    assert [r["model"] for r in rows] == ["torchvision:resnet18", "torchvision:mobilenet_v2", "torchvision:resnet18"]
    assert set(rows[0]) == {"model", "score", "rank", "mmacs"}
    assert float(rows[0]["mmacs"]) == pytest.approx(1814.0, rel=0.01)
    scores = [float(r["score"]) for r in rows]
    assert scores[0] == pytest.approx(scores[2]) and scores[0] != pytest.approx(scores[1])  # same net, same score
    ranks = [int(r["rank"]) for r in rows]
    assert sorted(ranks) == [1, 2, 3] and ranks[int(np.argmax(scores))] == 1
    # one model alone is scored against the nearest training group, and says so
    assert run_cli("predict", "torchvision:mobilenet_v2", "--no-proxies") == 0
    assert "one model alone" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["rank", "--family", "nasbench201", "--adapt"], "--adapt applies to the GENNAPE Predictor only"),
    (["rank", "--family", "nasbench201", "--zero-cost", "synflow"], "--zero-cost applies to the GENNAPE"),
    (["rank", "--family", "nasbench201", "--proxy", "cpu"], "--proxy applies to the GENNAPE"),
    (["rank", "--family", "nasbench201", "--proxy-weights"], "--proxy-weights applies to the GENNAPE"),
    (["rank", "--family", "nasbench201", "--pretrained", "nb101", "--no-proxies"],
     "--no-proxies applies to the generalist only"),
    (["predict", "torchvision:resnet18", "--pretrained", "nb101", "--no-proxies"], "--no-proxies applies to the generalist"),
    (["predict", "torchvision:resnet18", "--pretrained", "nb101", "--checkpoint", "."], "not both"),
    (["predict", "torchvision:resnet18", "--pretrained", "nope"], "no pretrained predictor 'nope'"),
    (["finetune", "--labels", "L", "--family", "nasbench201", "-o", "new.ckpt", "--epochs", "3"],
     "--epochs applies to the GENNAPE Predictor only"),
    (["finetune", "--labels", "L", "--family", "nasbench201", "-o", "new.ckpt", "--weighting", "kendall"],
     "--weighting applies to the GENNAPE"),
    (["finetune", "--labels", "L", "--family", "nasbench201", "-o", "new.ckpt", "--pretrained", "nb101",
      "--strength", "1"], "--strength applies to the generalist only"),
    (["finetune", "--labels", "L", "--family", "nasbench201", "-o", "new.ckpt", "--pretrained", "nb101",
      "--no-graph-kernel"], "--no-graph-kernel applies to the generalist only"),
])
def test_options_of_the_other_predictor_kind_are_refused_before_any_work(
        run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str], needle: str) -> None:
    import time

    monkeypatch.chdir(tmp_path)
    (tmp_path / "L").write_text("arch,label\n")
    start = time.perf_counter()
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert time.perf_counter() - start < 3.0
    assert not (tmp_path / "new.ckpt").exists()


def test_finetune_the_generalist_writes_a_generalist_checkpoint(run_cli, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from cgpredict.datasets import load_family
    from cgpredict.generalist import GENERALIST_FORMAT, GeneralistPredictor
    from cgpredict.predictor import load_predictor

    archs, labels = _labels_csv(tmp_path, 12)
    out = tmp_path / "gen.ckpt"
    argv = ["finetune", "--labels", labels, "--family", "nasbench201", "-o", out, "-q"]
    assert run_cli(*argv) == 0
    text = capsys.readouterr().out
    assert "fine-tuned the generalist on 12 nets" in text and "graph kernel: leave-one-out SRCC on these nets" in text
    before, after = map(float, re.search(r"SRCC on these nets: (-?[0-9.]+) before, (-?[0-9.]+) after", text).groups())
    assert after > before  # in-sample: the labels moved the ranker towards them
    tuned = load_predictor(out, progress=False)  # dispatched on config.json's format
    assert isinstance(tuned, GeneralistPredictor)
    assert json.loads((out / "config.json").read_text())["format"] == GENERALIST_FORMAT
    assert tuned.card_["finetuned"]["n"] == 12 and tuned.card_["finetuned"]["graph_kernel"] and tuned.kernel_ is not None
    base = GeneralistPredictor.pretrained(progress=False)
    np.testing.assert_allclose(tuned.ranker_.prior_coef_, base.ranker_.coef_)  # pulled towards the shipped one
    assert not np.allclose(tuned.ranker_.coef_, base.ranker_.coef_)
    cgs = load_family("nasbench201", n=12, seed=5).cgs(progress=False)
    y = [_nb201_label(a) for a in archs]
    assert spearman(y, tuned.predict(cgs)) == pytest.approx(after, abs=1e-3)
    # usable from the CLI; replaced only with --force
    assert run_cli("predict", "torchvision:resnet18", "--checkpoint", out, "--no-proxies") == 0
    assert "score" in capsys.readouterr().out
    assert run_cli(*argv) == 2 and "--force" in capsys.readouterr().err
    assert run_cli(*argv, "--force", "--strength", 100, "--no-graph-kernel") == 0
    strong = load_predictor(out, progress=False)
    assert strong.kernel_ is None and not strong.card_["finetuned"]["graph_kernel"]
    # a strong pull keeps the coefficients nearer the generalist's
    assert (np.linalg.norm(strong.ranker_.coef_ - base.ranker_.coef_)
            < np.linalg.norm(tuned.ranker_.coef_ - base.ranker_.coef_))

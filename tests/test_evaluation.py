"""Tests of cgpredict.evaluation: seeded splits, per-method scoring and evaluate_transfer on user families."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cgpredict.datasets import Family
from cgpredict.evaluation import (ENSEMBLE, METRIC_COLUMNS, baseline_scores, evaluate_transfer, score_rows, shot_indices,
                                  split_indices, subset_indices, summarize)
from cgpredict.metrics import spearman
from cgpredict.models.synthetic import toy_family

TINY = {"encoder": {"epochs": 2, "batch_size": 32, "branch_dim": 8}, "regressor": {"epochs": 4, "hidden": 16},
        "pairwise": {"epochs": 2, "hidden": 8}, "kgnn": {"epochs": 2, "batch_size": 32}, "n_clusters": 2,
        "progress": False}
REPO = Path(__file__).resolve().parents[1]


def test_split_indices_are_a_seeded_partition() -> None:
    tr, va, te = split_indices(500, 3)
    assert (tr.size, va.size, te.size) == (400, 50, 50)
    assert np.array_equal(np.sort(np.concatenate([tr, va, te])), np.arange(500))
    assert np.array_equal(split_indices(500, 3)[0], tr)
    assert not np.array_equal(split_indices(500, 4)[0], tr)
    with pytest.raises(ValueError, match="cannot split"):
        split_indices(2, 0)


def test_shot_indices_depend_only_on_seed_and_target() -> None:
    shots, rest = shot_indices(725, 50, 0, "nasbench201/cifar10")
    assert shots.size == 50 and rest.size == 675 and not set(shots) & set(rest)
    again, _ = shot_indices(725, 50, 0, "nasbench201/cifar10")
    assert np.array_equal(shots, again)
    assert not np.array_equal(shots, shot_indices(725, 50, 1, "nasbench201/cifar10")[0])
    assert not np.array_equal(shots, shot_indices(725, 50, 0, "nasbench301/cifar10")[0])
    with pytest.raises(ValueError, match="not enough"):
        shot_indices(40, 50, 0, "x/y")


def test_subset_indices_are_seeded_sorted_and_capped() -> None:
    a = subset_indices(100, 10, "limit", "x/y", 0)
    assert a.size == 10 and np.all(np.diff(a) > 0) and np.array_equal(a, subset_indices(100, 10, "limit", "x/y", 0))
    assert not np.array_equal(a, subset_indices(100, 10, "limit", "x/y", 1))
    assert np.array_equal(subset_indices(5, 10, "k"), np.arange(5))


def test_baselines_rank_missing_proxy_values_last_and_skip_empty_columns() -> None:
    cgs, acc = toy_family(6, seed=0)
    proxy = np.array([3.0, np.nan, 1.0, 2.0, 5.0, 4.0])
    fam = Family.from_cgs(cgs, acc, name="toy", extra={"synflow": proxy, "empty": np.full(6, np.nan)})
    base = baseline_scores(fam)
    assert list(base) == ["FLOPs", "params", "zc:synflow"]
    assert base["zc:synflow"][1] < proxy[np.isfinite(proxy)].min()
    np.testing.assert_array_equal(base["params"], [cg.params for cg in cgs])


def test_score_rows_fold_the_ensemble_predictions_into_its_mae() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    scores = {"FLOPs": y, ENSEMBLE: -y, ENSEMBLE + " (predict)": y + 1.0}
    rows = score_rows(y, scores, {ENSEMBLE + " (predict)"}, ["FLOPs"], setting="s", seed=0)
    by = {r["method"]: r for r in rows}
    assert set(by) == {"FLOPs", ENSEMBLE}
    assert by["FLOPs"]["kind"] == "baseline" and by[ENSEMBLE]["kind"] == "ensemble"
    assert by[ENSEMBLE]["mae"] == pytest.approx(1.0) and np.isnan(by["FLOPs"]["mae"])
    assert by[ENSEMBLE]["spearman"] == pytest.approx(-1.0) and by["FLOPs"]["setting"] == "s"


@pytest.fixture(scope="module")
def toy_transfer():
    cgs, acc = toy_family(50, seed=0)
    tcgs, tacc = toy_family(30, seed=1, min_depth=6, max_depth=14)
    source = Family.from_cgs(cgs, acc, name="mine")
    target = Family.from_cgs(tcgs, tacc, name="theirs", task="t")
    return source, target, evaluate_transfer(TINY, source, target, seeds=[0, 1], shots=8, finetune_epochs=2)


def test_evaluate_transfer_scores_every_method_on_the_same_nets(toy_transfer) -> None:
    source, target, rows = toy_transfer
    assert {(r["setting"], r["target"]) for r in rows} == {("in-family test", "mine"), ("zero-shot", "theirs/t"),
                                                           ("8-shot", "theirs/t")}
    for (setting, _), table in summarize(rows).items():
        assert {e["seeds"] for e in table} == {2}
        assert {"FLOPs", "params", "CL+T", "k-GNN", ENSEMBLE} <= {e["method"] for e in table}
        assert len({e["n_eval"] for e in table}) == 1
        assert all(set(METRIC_COLUMNS) <= set(e) for e in table)
    n_eval = {r["setting"]: r["n_eval"] for r in rows}
    assert n_eval == {"in-family test": 5, "zero-shot": 30, "8-shot": 22}
    flops = next(r for r in rows if r["setting"] == "zero-shot" and r["seed"] == 1 and r["method"] == "FLOPs")
    assert flops["spearman"] == pytest.approx(spearman(target.labels, [cg.flops for cg in target.cgs()]))


def test_evaluate_transfer_is_deterministic_and_takes_a_factory(toy_transfer) -> None:
    from cgpredict.predictor import Predictor

    source, target, rows = toy_transfer
    again = evaluate_transfer(lambda seed: Predictor(**TINY, seed=seed), source, target, seeds=[1],
                              settings=["zero-shot"])
    first = {(r["setting"], r["method"]): r["spearman"] for r in rows if r["seed"] == 1 and r["setting"] != "8-shot"}
    assert {(r["setting"], r["method"]): r["spearman"] for r in again} == pytest.approx(first, nan_ok=True)


def test_evaluate_transfer_rejects_unlabelled_families_and_unknown_settings() -> None:
    cgs, acc = toy_family(10, seed=0)
    with pytest.raises(ValueError, match="need labels"):
        evaluate_transfer(TINY, Family.from_cgs(cgs, acc), Family.from_cgs(cgs))
    with pytest.raises(ValueError, match="unknown setting"):
        evaluate_transfer(TINY, Family.from_cgs(cgs, acc), Family.from_cgs(cgs, acc), settings=["lofo"])
    with pytest.raises(TypeError, match="mapping of Predictor options"):
        evaluate_transfer(3, Family.from_cgs(cgs, acc), Family.from_cgs(cgs, acc))


def test_the_library_never_imports_the_benchmarks() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(benchmarks|protocol)\b", re.MULTILINE)
    offenders = [str(p.relative_to(REPO)) for folder in ("cgpredict", "converters", "datasets", "models")
                 for p in (REPO / folder).rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_eval_command_prints_every_setting_and_writes_rows(shared_data, tmp_path, capsys) -> None:
    import json

    from cgpredict import cli

    out = tmp_path / "rows.json"
    tiny = json.dumps({k: v for k, v in TINY.items() if k != "progress"})
    argv = ["eval", "--target", "nasbench201/cifar10", "--max-source", "40", "--max-target", "30", "--shots", "8",
            "--finetune-epochs", "2", "--predictor", tiny, "--data-dir", str(shared_data), "-q", "-o", str(out)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    for heading in ("in-family test — nasbench101/cifar10 (4 nets, 1 seed(s))", "zero-shot — nasbench201/cifar10 (30 nets",
                    "8-shot — nasbench201/cifar10 (22 nets"):
        assert heading in text
    assert "zc:synflow" in text and ENSEMBLE in text
    rows = json.loads(out.read_text())
    assert {r["setting"] for r in rows} == {"in-family test", "zero-shot", "8-shot"}
    assert cli.main(argv) == 2  # the output exists: refused without --force (usage error)
    assert "--force" in capsys.readouterr().err

"""Tests of the GENNAPE transfer benchmark (benchmarks/protocol, benchmarks/transfer.py) and its markdown report."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:  # the protocol package lives beside the benchmark scripts
    sys.path.insert(0, str(BENCHMARKS))

import protocol  # noqa: E402
from protocol import fits as protocol_fits  # noqa: E402
from protocol import TransferConfig, run_transfer, to_markdown  # noqa: E402

import cgpredict.evaluation.transfer as evaluation_steps  # noqa: E402
from cgpredict.datasets import Family  # noqa: E402
from cgpredict.evaluation import ENSEMBLE, METRIC_COLUMNS, PAPER_ENSEMBLE, AGREEMENT_ENSEMBLE, shot_indices  # noqa: E402
from cgpredict.metrics import evaluate  # noqa: E402
from cgpredict.models.synthetic import toy_family  # noqa: E402
from cgpredict.predictor import MEMBERS  # noqa: E402

TINY = {"encoder": {"epochs": 2, "batch_size": 32, "branch_dim": 8}, "regressor": {"epochs": 4, "hidden": 16},
        "pairwise": {"epochs": 2, "hidden": 8}, "kgnn": {"epochs": 2, "batch_size": 32}, "n_clusters": 2}


def _toy_set(name: str, n: int, seed: int, **kw) -> Family:
    cgs, acc = toy_family(n, seed=seed, **kw)
    rng = np.random.default_rng(seed)
    proxy = acc + rng.normal(0, 2.0, n)  # an informative fake zero-cost proxy, with one gap
    proxy[3] = np.nan
    return Family.from_cgs(cgs, acc, name=name, extra={"synflow": proxy, "flops": np.zeros(n)})


@pytest.fixture(scope="module")
def toy_rows():
    data = {"toya/x": _toy_set("toya/x", 60, 0), "toyb/x": _toy_set("toyb/x", 40, 1, min_depth=6, max_depth=14)}
    cfg = TransferConfig(source="toya/x", targets=["toyb/x"], seeds=2, settings=["zero-shot", "few-shot", "transductive", "lofo"],
                         shots=8, finetune_epochs=3, preset="quick", predictor=TINY, progress=False,
                         lofo_sources=["toya/x"])
    captured = []
    real = evaluation_steps.finetuned

    def spy(pred, cgs, labels, epochs, batch, weight_folds=2):
        captured.append((list(cgs), labels.copy(), epochs, batch))
        return real(pred, cgs, labels, epochs, batch, weight_folds)

    evaluation_steps.finetuned = spy
    try:
        rows = run_transfer(cfg, data=data)
    finally:
        evaluation_steps.finetuned = real
    return cfg, data, rows, captured


def test_config_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="setting"):
        TransferConfig(settings=["one-shot"])
    with pytest.raises(ValueError, match="finetune_batch"):
        TransferConfig(finetune_batch=0)
    with pytest.raises(ValueError, match="preset"):
        TransferConfig(preset="huge")
    with pytest.raises(ValueError, match="family/task"):
        TransferConfig(targets=[""])


def test_protocol_rows_cover_every_method_metric_and_setting(toy_rows) -> None:
    cfg, data, rows, _ = toy_rows
    settings = {r["setting"] for r in rows}
    assert settings == {"in-family test", "zero-shot", "8-shot", "transductive", "lofo"}
    for setting in settings:
        for seed in (0, 1):
            methods = {r["method"]: r for r in rows if r["setting"] == setting and r["seed"] == seed}
            assert {"FLOPs", "params", "zc:synflow", *cfg.members, ENSEMBLE} <= set(methods)
            assert "zc:flops" not in methods  # table flops/params columns are not duplicated
            assert ENSEMBLE + " (predict)" not in methods  # folded into the ensemble row's mae
            for r in methods.values():
                assert set(METRIC_COLUMNS) <= set(r)
                assert -1.0 <= r["spearman"] <= 1.0
            # mae only where the scores are accuracies
            assert np.isnan(methods["FLOPs"]["mae"]) and np.isnan(methods["CL+Pairwise"]["mae"])
            assert np.isfinite(methods["CL+T"]["mae"]) and np.isfinite(methods[ENSEMBLE]["mae"])
            # every method is scored on the same nets
            assert len({r["n_eval"] for r in methods.values()}) == 1
    few = [r for r in rows if r["setting"] == "8-shot"]
    assert {r["n_eval"] for r in few} == {len(data["toyb/x"]) - 8}
    zero = [r for r in rows if r["setting"] == "zero-shot"]
    assert {r["n_eval"] for r in zero} == {len(data["toyb/x"])}


def test_few_shot_nets_are_the_seeded_shot_indices(toy_rows) -> None:
    cfg, data, _, captured = toy_rows
    assert len(captured) == 2  # one fine-tuning per seed and target
    target = data["toyb/x"]
    target_cgs = target.cgs()
    for seed, (cgs, labels, epochs, batch) in enumerate(captured):
        shots, _ = shot_indices(len(target), cfg.shots, seed, "toyb/x")
        assert [id(c) for c in cgs] == [id(target_cgs[i]) for i in shots]
        assert np.array_equal(labels, target.labels[shots])
        assert (epochs, batch) == (cfg.finetune_epochs, cfg.finetune_batch)


def test_flops_baseline_matches_direct_metric(toy_rows) -> None:
    from cgpredict.metrics import spearman

    _, data, rows, _ = toy_rows
    target = data["toyb/x"]
    row = next(r for r in rows if r["setting"] == "zero-shot" and r["seed"] == 0 and r["method"] == "FLOPs")
    flops = np.array([cg.flops for cg in target.cgs()], dtype=float)
    assert row["spearman"] == pytest.approx(spearman(target.labels, flops))


def test_markdown_has_a_table_per_setting_with_all_columns(toy_rows) -> None:
    cfg, _, rows, _ = toy_rows
    text = to_markdown(rows, cfg, "cgpredict eval --quick", ["note"])
    assert "cgpredict eval --quick" in text and "- note" in text
    for heading in ("## zero-shot — toyb/x", "## 8-shot — toyb/x", "## lofo — toyb/x", "## in-family test — toya/x"):
        assert heading in text
    header = "| method | kind | " + " | ".join(METRIC_COLUMNS) + " |"
    assert text.count(header) == 5
    assert "| GENNAPE ensemble | ensemble |" in text and " ± " in text
    (code,) = [line for line in text.splitlines() if line.startswith("Code: cgpredict ")]
    assert f"torch {torch.__version__}" in code


def test_benchmark_quick_on_real_data(shared_data, tmp_path) -> None:
    out = tmp_path / "eval.md"
    assert _benchmark_main().main(["--quick", "--targets", "nasbench201/cifar10", "--max-source", "50",
                                   "--max-target", "40", "--data-dir", str(shared_data), "--no-progress",
                                   "-o", str(out)]) == 0
    text = out.read_text()
    assert "## zero-shot — nasbench201/cifar10 (40 nets evaluated" in text
    assert "## 10-shot — nasbench201/cifar10 (30 nets evaluated" in text
    for method in ("| FLOPs |", "| params |", "| zc:synflow |", "| zc:nwot |", "| k-GNN |", "| GENNAPE ensemble |"):
        assert method in text


def test_all_targets_come_from_the_family_registry(shared_data) -> None:
    """``--targets all``: every registered family/task with a label table, less the source's family."""
    parser = argparse.ArgumentParser()
    protocol.add_arguments(parser)
    cfg = protocol.config_from_args(parser.parse_args(["--targets", "all", "--data-dir", str(shared_data)]))
    tables = {p.stem.replace("__", "/") for p in (shared_data / "naslib").glob("*__*.csv")}
    if (shared_data / "nats_sss" / "natsbench_sss.csv").is_file():  # one table, a column per task
        tables |= {f"nats_sss/{task}" for task in ("cifar10", "cifar100", "ImageNet16-120")}
    assert set(cfg.targets) == {t for t in tables if not t.startswith("nasbench101/")}
    assert cfg.targets[:4] == ["nasbench201/cifar10", "nasbench201/cifar100", "nasbench201/ImageNet16-120",
                               "nasbench301/cifar10"]
    with_source = protocol.labelled_targets(str(shared_data))
    assert with_source[0] == "nasbench101/cifar10" and with_source[1:] == cfg.targets
    assert protocol.labelled_targets(str(shared_data / "nowhere")) == []


def test_cli_defaults_are_the_config_defaults() -> None:
    parser = argparse.ArgumentParser()
    protocol.add_arguments(parser)
    cfg = protocol.config_from_args(parser.parse_args([]))
    assert cfg == TransferConfig(progress=True)
    quick = protocol.config_from_args(parser.parse_args(["--quick"]))
    assert (quick.preset, quick.seeds, quick.max_source, quick.max_target, quick.shots, quick.finetune_epochs) == (
        "quick", 1, 80, 60, 10, 5)


def test_cli_rejects_bad_predictor_json() -> None:
    parser = argparse.ArgumentParser()
    protocol.add_arguments(parser)
    args = parser.parse_args(["--predictor", "[1]"])
    with pytest.raises(ValueError, match="JSON object"):
        protocol.config_from_args(args)


def test_protocol_with_the_proxy_member_reports_both_ensembles(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path))
    data = {"toya/x": _toy_set("toya/x", 40, 2), "toyb/x": _toy_set("toyb/x", 30, 3, min_depth=6, max_depth=14)}
    members = [*MEMBERS, "Proxy"]
    cfg = TransferConfig(source="toya/x", targets=["toyb/x"], seeds=1, settings=["zero-shot", "few-shot"], shots=8,
                         finetune_epochs=2, preset="quick", members=members,
                         predictor={**TINY, "zero_cost": ["synflow"]}, progress=False)
    rows = run_transfer(cfg, data=data)
    for setting in ("zero-shot", "8-shot"):
        methods = {r["method"]: r for r in rows if r["setting"] == setting}
        assert {"Proxy", ENSEMBLE, PAPER_ENSEMBLE} <= set(methods)
        assert methods[PAPER_ENSEMBLE]["kind"] == "ensemble"
    zero = {r["method"] for r in rows if r["setting"] == "zero-shot"}
    few_methods = {r["method"] for r in rows if r["setting"] == "8-shot"}
    assert AGREEMENT_ENSEMBLE in zero and AGREEMENT_ENSEMBLE not in few_methods
    few = {r["method"]: r for r in rows if r["setting"] == "8-shot"}
    assert np.isfinite(few["Proxy"]["mae"])  # fine-tuned, the Proxy member predicts accuracies
    text = to_markdown(rows, cfg)
    assert "paper's 6 members" in text and "| proxy-agreement weights |" in text


def _metrics(rows, setting):
    return {r["method"]: [r[c] for c in METRIC_COLUMNS] for r in rows if r["setting"] == setting}


def test_cached_source_fits_are_reused_and_give_the_same_results(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "proxies"))
    data = {"toya/x": _toy_set("toya/x", 40, 4), "toyb/x": _toy_set("toyb/x", 30, 5, min_depth=6, max_depth=14)}
    common = dict(source="toya/x", targets=["toyb/x"], seeds=1, settings=["zero-shot", "few-shot"], shots=8,
                  finetune_epochs=2, preset="quick", progress=False, cache_dir=str(tmp_path / "fits"))
    six = TransferConfig(**common, predictor=TINY, scores_dir=str(tmp_path / "scores"))
    fresh = run_transfer(six, data=data)
    again = run_transfer(six, data=data)
    assert len(list((tmp_path / "fits").iterdir())) == 1
    for setting in ("zero-shot", "8-shot"):
        np.testing.assert_allclose(np.array(list(_metrics(again, setting).values()), dtype=float),
                                   np.array(list(_metrics(fresh, setting).values()), dtype=float), equal_nan=True)
    dump = np.load(tmp_path / "scores" / "zero-shot__toyb__x__seed0.npz")
    np.testing.assert_array_equal(dump["labels"], data["toyb/x"].labels)
    names = list(dump["names"])
    assert ENSEMBLE in names and "FLOPs" in names and len(dump[f"score_{names.index(ENSEMBLE)}"]) == 30
    # after fine-tuning: the fine-tuning nets' labels and cross-fitted member scores, folds and τ
    few = np.load(tmp_path / "scores" / "8-shot__toyb__x__seed0.npz")
    shots, _ = shot_indices(30, 8, 0, "toyb/x")
    np.testing.assert_array_equal(few["shot_labels"], data["toyb/x"].labels[shots])
    assert sorted(set(few["shot_folds"].tolist())) == [0, 1] and list(few["shot_names"]) == list(MEMBERS)
    assert all(np.isfinite(few[f"shot_score_{i}"]).all() for i in range(len(MEMBERS)))
    # the offline weight-rule benchmark re-derives the run's ensemble from them (it checks T=0.1)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "weight_rules.py"
    subprocess.run([sys.executable, str(script), "--scores-dir", str(tmp_path / "scores"), "--dev", "toyb/x",
                    "--out", str(tmp_path / "rules.md")], check=True)
    table = (tmp_path / "rules.md").read_text()
    assert "## toyb/x — dev" in table and "| T=0.1 |" in table and "| auto T |" in table and "| stacked |" in table
    # a training-free Proxy member (proxy_inputs=False) reuses the same cached fit
    seven = TransferConfig(**common, members=[*MEMBERS, "Proxy"],
                           predictor={**TINY, "proxy_inputs": False, "zero_cost": ["synflow"]})
    with_proxy = run_transfer(seven, data=data)
    assert len(list((tmp_path / "fits").iterdir())) == 1
    zs = _metrics(with_proxy, "zero-shot")
    assert "Proxy" in zs
    for name in MEMBERS:
        np.testing.assert_allclose(zs[name], _metrics(fresh, "zero-shot")[name], equal_nan=True)


def test_lofo_caps_each_training_set_and_caches_its_fit(tmp_path, monkeypatch) -> None:
    data = {"toya/x": _toy_set("toya/x", 40, 6), "toyc/x": _toy_set("toyc/x", 36, 7),
            "toyb/x": _toy_set("toyb/x", 30, 8, min_depth=6, max_depth=14)}
    sizes = []
    real = protocol_fits.fit_predictor

    def spy(options, cgs, labels, encoder_cgs=None, encoder=None):
        sizes.append(len(cgs))
        return real(options, cgs, labels, encoder_cgs, encoder)

    monkeypatch.setattr(protocol_fits, "fit_predictor", spy)
    cfg = TransferConfig(source="toya/x", targets=["toyb/x"], seeds=1, settings=["lofo"], preset="quick",
                         predictor=TINY, progress=False, lofo_sources=["toya/x", "toyc/x", "toyb/x"], lofo_max=15,
                         cache_dir=str(tmp_path))
    first = run_transfer(cfg, data=data)
    assert sizes == [32, 30]  # the source split (80% of 40), then 15 + 15 lofo nets (the target's family left out)
    again = run_transfer(cfg, data=data)
    assert sizes == [32, 30]  # both fits come from the cache
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == ["lofo", "seed0"]
    np.testing.assert_allclose(np.array(list(_metrics(again, "lofo").values()), dtype=float),
                               np.array(list(_metrics(first, "lofo").values()), dtype=float), equal_nan=True)


def test_fit_key_changes_with_the_labels_and_the_options() -> None:
    cgs, acc = toy_family(12, seed=1)
    cfg = TransferConfig(source="toya/x", targets=["toyb/x"])
    key = protocol_fits.fit_key(cfg, {"a": 1}, 0, cgs, acc, 0, "source")
    assert key == protocol_fits.fit_key(cfg, {"a": 1}, 0, list(cgs), acc.copy(), 0, "source")
    assert key != protocol_fits.fit_key(cfg, {"a": 1}, 0, cgs, acc + 0.5, 0, "source")  # relabelled data refits
    assert key != protocol_fits.fit_key(cfg, {"a": 2}, 0, cgs, acc, 0, "source")
    assert key != protocol_fits.fit_key(cfg, {"a": 1}, 1, cgs, acc, 0, "source")
    assert key != protocol_fits.fit_key(cfg, {"a": 1}, 0, cgs[::-1], acc[::-1], 0, "source")
    with pytest.MonkeyPatch.context() as mp:  # other code: refit, never reuse the old code's fit
        mp.setattr(protocol_fits, "code_fingerprint", lambda roots=None: "0" * 16)
        assert key != protocol_fits.fit_key(cfg, {"a": 1}, 0, cgs, acc, 0, "source")


def test_shared_encoder_is_pretrained_once_and_frozen(tmp_path, monkeypatch) -> None:
    """--shared-encoder: one label-free pre-training on the unlabelled CGs, reused by every seed
    (and from the cache by a later run); the transductive setting adapts a copy of it."""
    monkeypatch.setattr(protocol_fits, "_ENCODERS", {})
    data = {"toya/x": _toy_set("toya/x", 50, 0), "toyb/x": _toy_set("toyb/x", 30, 1, min_depth=6, max_depth=14)}
    unlabelled = toy_family(60, seed=7)[0]
    fits, fitted = [], []
    real_fit, real_predictor = protocol_fits.ContrastiveEncoder.fit, protocol_fits.fit_predictor

    def count_fit(self, cgs, epochs=None):
        fits.append((len(cgs), epochs))
        return real_fit(self, cgs, epochs)

    def keep(*args, **kwargs):
        fitted.append(real_predictor(*args, **kwargs))
        return fitted[-1]

    monkeypatch.setattr(protocol_fits.ContrastiveEncoder, "fit", count_fit)
    monkeypatch.setattr(protocol_fits, "fit_predictor", keep)
    cfg = TransferConfig(source="toya/x", targets=["toyb/x"], seeds=2, settings=["zero-shot", "transductive"],
                         preset="quick", predictor=TINY, progress=False, n_unlabelled=len(unlabelled),
                         shared_encoder=True, adapt_epochs=1, cache_dir=str(tmp_path))
    rows = run_transfer(cfg, data=data, unlabelled=unlabelled)
    # one pre-training on the 60 unlabelled CGs, then one adaptation per seed on 30 target + 30 source CGs
    assert fits == [(60, None), (60, 1), (60, 1)]
    shared = next(iter(protocol_fits._ENCODERS.values()))
    source_fits, transductive = fitted[0::2], fitted[1::2]
    for pred in source_fits:  # frozen copies of the shared encoder
        for key, value in shared.module.state_dict().items():
            assert torch.equal(pred.encoder.module.state_dict()[key], value)
    for pred in transductive:
        assert not torch.equal(pred.encoder.module.encoder.node_proj.weight, shared.module.encoder.node_proj.weight)
    assert {r["setting"] for r in rows} == {"in-family test", "zero-shot", "transductive"}
    # a later run loads the encoder (and the source fits) from the cache: no pre-training
    monkeypatch.setattr(protocol_fits, "_ENCODERS", {})
    fits.clear()
    again = run_transfer(TransferConfig(**{**cfg.__dict__, "settings": ["zero-shot"]}), data=data, unlabelled=unlabelled)
    assert fits == []
    first = {(r["seed"], r["method"]): r["spearman"] for r in rows if r["setting"] == "zero-shot"}
    assert first == {(r["seed"], r["method"]): r["spearman"] for r in again if r["setting"] == "zero-shot"}
    # `cgpredict eval` runs one seed at a time (first_seed = 1 here): still the same shared encoder
    monkeypatch.setattr(protocol_fits, "_ENCODERS", {})
    one = run_transfer(TransferConfig(**{**cfg.__dict__, "settings": ["zero-shot"], "first_seed": 1, "seeds": 1}),
                       data=data, unlabelled=unlabelled)
    assert fits == []
    assert {k: v for k, v in first.items() if k[0] == 1} == {
        (r["seed"], r["method"]): r["spearman"] for r in one if r["setting"] == "zero-shot"}
    with pytest.raises(ValueError, match="n_unlabelled"):
        TransferConfig(shared_encoder=True)


def test_bags_average_seeded_fits_each_cached_on_its_own(tmp_path: Path) -> None:
    """``bags=2``: per seed, a PredictorBag of the seed's fit and one with seed + 1000 (cached apart)."""
    from cgpredict.predictor import PredictorBag

    data = {"toya/x": _toy_set("toya/x", 50, 0), "toyb/x": _toy_set("toyb/x", 40, 1)}
    cfg = TransferConfig(source="toya/x", targets=["toyb/x"], seeds=1, settings=["zero-shot", "few-shot"], shots=8,
                         finetune_epochs=2, preset="quick", predictor=TINY, progress=False, bags=2,
                         cache_dir=str(tmp_path / "fits"))
    seen = []
    real = evaluation_steps.predictor_scores

    def spy(pred, cgs, zero_shot=False):
        seen.append(pred)
        return real(pred, cgs, zero_shot)

    evaluation_steps.predictor_scores = spy
    try:
        rows = run_transfer(cfg, data=data)
    finally:
        evaluation_steps.predictor_scores = real
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "fits").iterdir()) == ["seed0", "seed1000"]
    assert all(isinstance(p, PredictorBag) and [q.seed for q in p.predictors] == [0, 1000] for p in seen)
    assert len(seen) == 3  # in-family test, zero-shot, few-shot
    zero = {r["method"]: r["spearman"] for r in rows if r["setting"] == "zero-shot"}
    bag = seen[1]
    expected = evaluate(data["toyb/x"].labels, bag.score(data["toyb/x"].cgs()))["spearman"]
    assert zero[ENSEMBLE] == pytest.approx(expected)
    again = run_transfer(cfg, data=data)  # both fits come from the cache now
    assert [r["spearman"] for r in again if r["setting"] == "zero-shot"] == pytest.approx(
        [r["spearman"] for r in rows if r["setting"] == "zero-shot"])
    with pytest.raises(ValueError, match="zero-shot and few-shot"):
        TransferConfig(bags=2, settings=["lofo"])
    with pytest.raises(ValueError, match="bags must be"):
        TransferConfig(bags=0)


def _benchmark_main():
    """``main`` of ``benchmarks/transfer.py`` (a script, not a package module)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "transfer.py"
    spec = importlib.util.spec_from_file_location("transfer_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_merges_one_seed_runs_into_the_report_of_all_seeds(toy_rows, tmp_path: Path) -> None:
    """Rows saved per seed (``--json``) merge into the same report as one run of both seeds."""
    import json

    cfg, _, rows, _ = toy_rows
    bench = _benchmark_main()
    files = []
    for seed in (0, 1):
        files.append(tmp_path / f"s{seed}.json")
        files[-1].write_text(json.dumps([r for r in rows if r["seed"] == seed], default=float))
    out = tmp_path / "merged.md"
    base = ["--source", "toya/x", "--targets", "toyb/x", "--settings", *cfg.settings, "--shots", "8",
            "--finetune-epochs", "3", "--preset", "quick", "--lofo-sources", "toya/x", "--no-progress", "-o", str(out)]
    assert bench.main([*base, "--seeds", "2", "--merge", *map(str, files), "--note", "two processes"]) == 0
    text = out.read_text()
    expected = to_markdown(rows, None)
    tables = text[text.index("## Summary"):]
    assert tables == expected[expected.index("## Summary"):]
    assert "- two processes" in text and "2 seed(s)" in text
    (command,) = [line for line in text.splitlines() if line.startswith("CGPREDICT_DATA=")]
    assert "--merge" not in command and "--note" not in command and "--seeds 2" in command

    with pytest.raises(ValueError, match=r"seeds \[0, 1\], the options describe seeds \[0, 1, 2\]"):
        bench.main([*base, "--seeds", "3", "--merge", *map(str, files)])
    with pytest.raises(ValueError, match="seed 0 is in both"):
        bench.main([*base, "--seeds", "2", "--merge", str(files[0]), str(files[0]), str(files[1])])
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": 1}')
    with pytest.raises(ValueError, match="bad.json is not a list of protocol rows"):
        bench.main([*base, "--seeds", "1", "--merge", str(bad)])

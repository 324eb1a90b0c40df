"""The GENNAPE Predictor: fit, predict, rank, fine-tune, OOD, save/load and version checks."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from cgpredict.metrics import kendall_tau, spearman
from cgpredict.models.fcm import OutOfDistributionWarning
from cgpredict.models.synthetic import toy_family
from cgpredict.models.transform import FlopsTransform
from cgpredict.predictor import MEMBERS, CheckpointError, Predictor
from cgpredict.predictor.checkpoint import write_manifest

TINY = dict(encoder={"epochs": 5, "batch_size": 64, "branch_dim": 32}, regressor={"epochs": 40, "hidden": 64},
            pairwise={"epochs": 10, "hidden": 64}, kgnn={"epochs": 20, "batch_size": 32, "lr": 3e-3},
            n_clusters=4, progress=False)


@pytest.fixture(scope="module")
def fitted() -> tuple[Predictor, list, np.ndarray]:
    cgs, acc = toy_family(240, seed=0)
    return Predictor(**TINY).fit(cgs[:160], acc[:160]), cgs, acc


def test_predict_and_rank_learn_the_toy_family(fitted) -> None:
    pred, cgs, acc = fitted
    test, y = cgs[160:], acc[160:]
    values = pred.predict(test)
    assert values.shape == (80,) and np.all(np.isfinite(values))
    assert spearman(y, values) > 0.6
    assert np.abs(values - y).mean() < 0.5 * np.abs(y - acc[:160].mean()).mean()
    order = pred.rank(test)
    assert sorted(order.tolist()) == list(range(80))
    assert spearman(y, pred.score(test)) > 0.6
    assert y[order[:8]].mean() > np.quantile(y, 0.75)  # the predicted top-10% are good networks
    scores = pred.member_scores(test)
    assert set(scores) == set(MEMBERS)
    assert pred.weights == pytest.approx({m: 1 / 6 for m in MEMBERS})


def test_predictions_do_not_depend_on_thread_count(fitted) -> None:
    """With several torch threads the encoder, heads and k-GNN run as parallel per-chunk jobs."""
    import concurrent.futures

    import torch

    pred, cgs, _ = fitted
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = pred.predict(cgs[160:]), pred.member_scores(cgs[160:])
        torch.set_num_threads(3)
        three = pred.predict(cgs[160:]), pred.member_scores(cgs[160:])
        assert torch.get_num_threads() == 3  # restored after the parallel jobs, also for new threads:
        seen = concurrent.futures.ThreadPoolExecutor(1).submit(torch.get_num_threads).result()
        assert seen == 3
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(three[0], one[0], atol=1e-5)
    for name in pred.members:
        np.testing.assert_allclose(three[1][name], one[1][name], atol=1e-5, err_msg=name)


def test_save_load_round_trip_is_identical(fitted, tmp_path: Path) -> None:
    pred, cgs, _ = fitted
    pred.save(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"config.json", "weights.pt", "manifest.json"}
    loaded = Predictor.load(tmp_path / "ckpt", progress=False)
    np.testing.assert_array_equal(loaded.predict(cgs), pred.predict(cgs))
    np.testing.assert_array_equal(loaded.rank(cgs), pred.rank(cgs))
    np.testing.assert_array_equal(loaded.ood(cgs[:20])["centroid_distance"], pred.ood(cgs[:20])["centroid_distance"])


@pytest.mark.parametrize(("key", "value", "message"), [
    ("feature_version", 999, "features v999"),
    ("cgpredict_version", "9.9.0", "saved by cgpredict 9.9.0"),
    ("format_version", 0, "checkpoint format"),
])
def test_version_mismatch_is_refused(fitted, tmp_path: Path, key: str, value, message: str) -> None:
    pred, _, _ = fitted
    path = pred.save(tmp_path / "ckpt")
    doc = json.loads((path / "config.json").read_text())
    doc[key] = value
    (path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="config.json does not match its hash"):
        Predictor.load(path)  # an edited file is refused first
    write_manifest(path)  # as if written so by another cgpredict
    with pytest.raises(CheckpointError, match=message):
        Predictor.load(path)


def test_missing_checkpoint_and_pretrained_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="needs config.json and weights.pt"):
        Predictor.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no pretrained predictor 'nope'"):
        Predictor.pretrained("nope")


def test_finetune_weights_are_softmax_of_kendall_tau(fitted, tmp_path: Path) -> None:
    pred, _, _ = fitted
    fresh = Predictor.load(pred.save(tmp_path / "ckpt"), progress=False)  # leave the shared fixture untouched
    fresh.weighting = "kendall"  # the paper's rule (the default, "stacked", needs cross-fitted scores)
    target, y = toy_family(40, seed=9, min_depth=3, max_depth=8)
    insample = copy.deepcopy(fresh).finetune(target[:20], y[:20], epochs=5, weight_folds=0)
    taus = insample.taus_
    assert set(taus) == set(MEMBERS)
    # in-sample: τ of the fine-tuned members on the fine-tuning nets themselves
    scores = insample.member_scores(target[:20])
    for name in MEMBERS:
        assert taus[name] == pytest.approx(kendall_tau(y[:20], scores[name]))
    expected = np.exp(np.array(list(taus.values())) / insample.weight_temperature)
    expected /= expected.sum()
    assert list(insample.weights.values()) == pytest.approx(expected.tolist())
    best = max(taus, key=taus.get)
    assert insample.weights[best] == max(insample.weights.values())
    assert spearman(y[20:], insample.predict(target[20:])) > 0.5


def test_finetune_cross_fitted_taus_score_held_out_folds(fitted, tmp_path: Path) -> None:
    pred, _, _ = fitted
    fresh = Predictor.load(pred.save(tmp_path / "ckpt"), progress=False)
    fresh.weighting = "kendall"
    target, y = toy_family(24, seed=10, min_depth=3, max_depth=8)
    tuned = copy.deepcopy(fresh).finetune(target, y, epochs=3, weight_folds=2)
    order = np.random.default_rng(fresh.seed).permutation(24)
    per_fold = []
    for k in range(2):  # redo the two folds by hand
        held = np.sort(order[k::2])
        train = np.setdiff1d(np.arange(24), held)
        clone = copy.deepcopy(fresh).finetune([target[i] for i in train], y[train], epochs=3, weight_folds=0)
        scores = clone.member_scores([target[i] for i in held])
        per_fold.append({n: kendall_tau(y[held], scores[n]) for n in MEMBERS})
        np.testing.assert_array_equal(tuned.crossfit_folds_[held], k)
        for name in MEMBERS:  # the held-out scores are kept, net by net
            np.testing.assert_allclose(tuned.crossfit_scores_[name][held], scores[name], rtol=1e-9)
    for name in MEMBERS:
        assert tuned.taus_[name] == pytest.approx(np.mean([f[name] for f in per_fold]), abs=1e-9)
    expected = np.exp(np.array([tuned.taus_[n] for n in tuned.weights]) / tuned.weight_temperature)
    assert list(tuned.weights.values()) == pytest.approx((expected / expected.sum()).tolist())
    with pytest.raises(ValueError, match="weight_folds"):
        copy.deepcopy(fresh).finetune(target, y, epochs=1, weight_folds=1)
    with pytest.raises(ValueError, match="too few"):
        copy.deepcopy(fresh).finetune(target[:5], y[:5], epochs=1, weight_folds=3)


def test_stacked_weights_are_fitted_on_the_cross_fitted_scores(fitted, tmp_path: Path) -> None:
    from cgpredict.models.ensemble import softmax_weights, stacked_weights

    pred, _, _ = fitted
    assert pred.weighting == "stacked"  # the default
    target, y = toy_family(24, seed=11, min_depth=3, max_depth=8)
    kendall = copy.deepcopy(pred)
    kendall.weighting = "kendall"
    kendall.finetune(target, y, epochs=3, weight_folds=2)
    stacked = copy.deepcopy(pred).finetune(target, y, epochs=3, weight_folds=2)
    # the same fine-tuning and cross-fitting; only the rule that turns the scores into weights differs
    assert stacked.taus_ == pytest.approx(kendall.taus_)
    assert kendall.weights == pytest.approx(softmax_weights(kendall.taus_, 0.1))
    assert stacked.weights == pytest.approx(stacked_weights(kendall.crossfit_scores_, kendall.crossfit_folds_, y))
    assert stacked.weights != pytest.approx(kendall.weights)
    again = copy.deepcopy(kendall).finetune(target, y, epochs=1, weight_folds=0)
    assert again.crossfit_scores_ == {} and again.crossfit_folds_ is None  # no stale held-out scores
    loaded = Predictor.load(kendall.save(tmp_path / "kendall"), progress=False)
    assert loaded.weighting == "kendall" and loaded.weights == pytest.approx(kendall.weights)
    with pytest.raises(ValueError, match="weight_folds >= 2, or set weighting='kendall'"):
        copy.deepcopy(stacked).finetune(target, y, epochs=1, weight_folds=0)
    with pytest.raises(ValueError, match="weighting must be one of kendall, stacked"):
        Predictor(weighting="nnls", members=["FLOPs"]).fit(target, y)
    with pytest.raises(ValueError, match="weight_temperature must be > 0"):
        Predictor(weight_temperature=0.0, members=["FLOPs"]).fit(target, y)


def test_ood_flags_a_far_family(fitted) -> None:
    pred, cgs, _ = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDistributionWarning)
        inside = pred.ood(cgs[160:])
    assert inside["flag"].mean() < 0.2
    far, _ = toy_family(30, seed=5, min_depth=14, max_depth=16, widths=(128,))
    with pytest.warns(OutOfDistributionWarning):
        out = pred.ood(far, name="deep family")
    assert out["flag"].mean() > 0.8
    assert out["centroid_distance"].mean() > inside["centroid_distance"].mean()
    assert np.all((out["max_membership"] > 0) & (out["max_membership"] <= 1))


def test_options_and_input_errors() -> None:
    cgs, acc = toy_family(40, seed=1)
    with pytest.raises(ValueError, match="unknown ensemble member"):
        Predictor(members=["CL+T", "XGBoost"]).fit(cgs, acc)
    only_flops = Predictor(members=["FLOPs"], progress=False).fit(cgs, acc)
    assert only_flops.encoder is None
    with pytest.raises(RuntimeError, match="do not regress accuracy"):
        only_flops.predict(cgs)
    with pytest.raises(RuntimeError, match="needs an FCM member"):
        only_flops.ood(cgs)
    np.testing.assert_array_equal(only_flops.rank(cgs), np.argsort(-np.array([c.flops for c in cgs]), kind="stable"))
    with pytest.raises(RuntimeError, match="not fitted"):
        Predictor(members=["FLOPs"]).predict(cgs)
    with pytest.raises(ValueError, match="40 CGs but 3 labels"):
        Predictor(members=["FLOPs"]).fit(cgs, acc[:3])
    with pytest.raises(TypeError, match="item 0 is a str"):
        only_flops.rank(["resnet"])
    kept = Predictor(members=["CL+T"], min_train_accuracy=float(np.median(acc)), **{k: v for k, v in TINY.items()
                     if k in ("encoder", "regressor", "progress")})
    kept.fit(cgs, acc)
    keep = acc >= np.median(acc)
    gflops = np.array([c.flops / 1e9 for c in cgs])
    expected = FlopsTransform().fit(acc[keep], gflops[keep])
    assert kept.models["CL+T"].transform.mean_ == pytest.approx(expected.mean_)
    assert kept.models["CL+T"].transform.std_ == pytest.approx(expected.std_)


def test_same_seed_same_predictions() -> None:
    cgs, acc = toy_family(48, seed=3)
    kw = dict(members=["CL+FCM+T", "k-GNN"], encoder={"epochs": 2, "branch_dim": 16, "batch_size": 16},
              regressor={"epochs": 5, "hidden": 32}, kgnn={"epochs": 3}, n_clusters=3, progress=False)
    a = Predictor(seed=7, **kw).fit(cgs, acc).predict(cgs)
    b = Predictor(seed=7, **kw).fit(cgs, acc).predict(cgs)
    c = Predictor(seed=8, **kw).fit(cgs, acc).predict(cgs)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.allclose(a, c)


def test_fcm_grid_search_option() -> None:
    cgs, acc = toy_family(60, seed=2)
    pred = Predictor(members=["CL+FCM+T"], encoder=TINY["encoder"], regressor={"epochs": 5, "hidden": 32},
                     fcm_grid={"clusters": [2, 3], "ms": [2.0, 3.5], "epochs": 3}, progress=False).fit(cgs, acc)
    assert (pred.n_clusters_, pred.m_) in {(2, 2.0), (2, 3.5), (3, 2.0), (3, 3.5)}
    assert pred.models["CL+FCM+T"].fcm.n_clusters == pred.n_clusters_
    assert pred.n_clusters == 10 and pred.config()["n_clusters"] == pred.n_clusters_  # the option is kept
    assert len(pred.grid_scores_) == 4


@pytest.mark.slow
@pytest.mark.data
def test_nasbench201_small_transfer_beats_flops(shared_data: Path) -> None:
    """Real NB-201 CGs (CIFAR-10 labels): 110 training nets, 50 held out (~2 min on 1 core)."""
    from cgpredict.datasets import load_family

    fam = load_family("nasbench201", task="cifar10", data_dir=shared_data)
    idx = np.random.default_rng(0).permutation(len(fam))[:160]
    cgs = [fam.convert(int(i)) for i in idx]
    y = np.asarray(fam.labels)[idx]
    pred = Predictor(encoder={"epochs": 5, "batch_size": 64}, regressor={"epochs": 60}, pairwise={"epochs": 10},
                     kgnn={"epochs": 20, "batch_size": 32}, n_clusters=4, progress=False).fit(cgs[:110], y[:110])
    test, y_test = cgs[110:], y[110:]
    flops_srcc = spearman(y_test, [cg.flops for cg in test])
    assert spearman(y_test, pred.score(test)) > max(0.75, flops_srcc)
    assert spearman(y_test, pred.predict(test)) > max(0.75, flops_srcc)



def test_batch_size_one_trains_every_item() -> None:
    """Fine-tuning at batch 1 (the protocol's setting) must take one step per item, not skip them."""
    import torch

    from cgpredict.models.training import fit_loop

    layer = torch.nn.Linear(2, 1)
    before = layer.weight.detach().clone()
    x, y = torch.randn(5, 2), torch.randn(5)
    seen: list[int] = []

    def step(idx: np.ndarray) -> torch.Tensor:
        seen.extend(int(i) for i in idx)
        return torch.nn.functional.mse_loss(layer(x[idx]).squeeze(-1), y[idx])

    fit_loop(step, layer.parameters(), n=5, epochs=1, batch_size=1, lr=0.1, seed=0, desc="t", progress=False)
    assert sorted(seen) == [0, 1, 2, 3, 4]
    assert not torch.equal(before, layer.weight.detach())


def test_stacked_weights_without_accuracy_members_still_predict(fitted, tmp_path: Path) -> None:
    """Issue 21 item 2: 6 labelled nets whose accuracy follows their FLOPs; the stacked weights give
    everything to ``FLOPs`` and 0 to every accuracy-regressing member. ``predict`` was a
    ZeroDivisionError (in ``finetune``'s CLI, ``predict``, ``rank`` and ``search``); it is now the
    regressing members' equal mean, with a warning, also after a save/load round trip."""
    from cgpredict.predictor import FewLabelsWarning, WeightingWarning

    pred, _, _ = fitted
    target, _ = toy_family(6, seed=24, min_depth=3, max_depth=8)
    y = 90.0 + np.log([cg.flops for cg in target])  # ranked exactly by FLOPs
    with pytest.warns(FewLabelsWarning, match="6 labelled nets"):
        tuned = copy.deepcopy(pred).finetune(target, y, epochs=2)
    regress = tuned.accuracy_members()
    assert regress == ["CL+FCM+T", "CL+T", "k-GNN"]
    assert all(tuned.weights[n] == 0.0 for n in regress) and tuned.weights["FLOPs"] > 0  # the crash's precondition
    with pytest.warns(WeightingWarning, match="equal mean"):
        values = tuned.predict(target)
    members = tuned.member_scores(target)
    np.testing.assert_allclose(values, np.mean([members[n] for n in regress], axis=0), rtol=1e-12)
    np.testing.assert_array_equal(tuned.rank(target), np.argsort(-y, kind="stable"))  # ranks by the weights
    loaded = Predictor.load(tuned.save(tmp_path / "tuned"), progress=False)
    with pytest.warns(WeightingWarning):
        np.testing.assert_array_equal(loaded.predict(target), values)

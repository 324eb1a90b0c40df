"""PredictorBag: several seeds of one GENNAPE configuration, averaged member by member."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cgpredict import Predictor, PredictorBag, load_predictor
from cgpredict.predictor import BAG_SEED_STRIDE
from cgpredict.models.ensemble import combine, stacked_weights
from cgpredict.models.synthetic import toy_family
from cgpredict.predictor import CheckpointError

TINY = dict(encoder={"epochs": 2, "branch_dim": 16}, regressor={"epochs": 5, "hidden": 32},
            pairwise={"epochs": 2, "hidden": 16}, kgnn={"epochs": 2}, n_clusters=3, progress=False)


@pytest.fixture(scope="module")
def family():
    return toy_family(64, seed=0)


@pytest.fixture(scope="module")
def bag(family):
    cgs, acc = family
    return PredictorBag(bags=2, seed=7, **TINY).fit(cgs, acc)


def test_bag_trains_each_predictor_with_its_own_seed(bag, family) -> None:
    cgs, acc = family
    assert [p.seed for p in bag.predictors] == [7, 7 + BAG_SEED_STRIDE]
    assert all(p.fitted for p in bag.predictors)
    # the second predictor is exactly a single Predictor fitted with its seed
    alone = Predictor(seed=7 + BAG_SEED_STRIDE, **TINY).fit(cgs, acc)
    np.testing.assert_allclose(alone.predict(cgs), bag.predictors[1].predict(cgs), rtol=1e-6)
    a, b = (p.member_scores(cgs)["CL+T"] for p in bag.predictors)
    assert not np.allclose(a, b)  # different seeds, different predictors


def test_bag_members_are_the_mean_of_the_bagged_members(bag, family) -> None:
    cgs, _ = family
    per = [p.member_scores(cgs) for p in bag.predictors]
    scores = bag.member_scores(cgs)
    assert list(scores) == bag.members == list(per[0]) and len(scores) == 6
    for name in scores:
        np.testing.assert_allclose(scores[name], (per[0][name] + per[1][name]) / 2)
    np.testing.assert_allclose(bag.score(cgs), combine(scores, bag.weights))
    assert np.array_equal(bag.rank(cgs), np.argsort(-bag.score(cgs), kind="stable"))
    regress = bag.accuracy_members()
    expected = np.mean([scores[n] for n in regress], axis=0)  # equal weights
    np.testing.assert_allclose(bag.predict(cgs), expected)


def test_bag_save_load_round_trip_and_clear_errors(bag, family, tmp_path: Path) -> None:
    cgs, _ = family
    bag.save(tmp_path / "bag")
    assert sorted(p.name for p in (tmp_path / "bag").iterdir()) == ["bag0", "bag1", "config.json", "manifest.json"]
    assert sorted(p.name for p in (tmp_path / "bag" / "bag0").iterdir()) == ["config.json", "manifest.json",
                                                                             "weights.pt"]
    again = load_predictor(tmp_path / "bag", progress=False)
    assert isinstance(again, PredictorBag) and again.bags == 2
    np.testing.assert_allclose(again.score(cgs), bag.score(cgs))
    np.testing.assert_allclose(again.predict(cgs), bag.predict(cgs))
    with pytest.raises(CheckpointError, match="bag of predictors"):
        Predictor.load(tmp_path / "bag")
    with pytest.raises(CheckpointError, match="not a bag"):
        PredictorBag.load(tmp_path / "bag" / "bag0")
    assert type(load_predictor(tmp_path / "bag" / "bag0", progress=False)) is Predictor
    # the bag's manifest covers its predictors' files too
    with open(tmp_path / "bag" / "bag1" / "weights.pt", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(CheckpointError, match="bag1/weights.pt does not match its hash"):
        PredictorBag.load(tmp_path / "bag")


def test_bag_finetune_weighs_bagged_members_by_stacking(bag, family) -> None:
    cgs, acc = family
    tuned_cgs, tuned_acc = cgs[:20], acc[:20]
    import copy

    tuned = copy.deepcopy(bag).finetune(tuned_cgs, tuned_acc, epochs=3)
    assert tuned.crossfit_folds_ is not None and set(tuned.crossfit_scores_) == set(tuned.members)
    expected = stacked_weights(tuned.crossfit_scores_, tuned.crossfit_folds_, tuned_acc)
    assert tuned.weights == pytest.approx(expected)
    # every bagged predictor was fine-tuned (its heads moved), the original bag was not
    before = bag.predictors[0].member_scores(cgs)["CL+T"]
    assert not np.allclose(tuned.predictors[0].member_scores(cgs)["CL+T"], before)
    np.testing.assert_allclose(bag.predictors[0].member_scores(cgs)["CL+T"], before)


def test_from_predictors_checks_configuration(family) -> None:
    cgs, acc = family
    a = Predictor(seed=0, **TINY).fit(cgs, acc)
    b = Predictor(seed=1, **{**TINY, "kgnn": {"epochs": 3}}).fit(cgs, acc)
    with pytest.raises(ValueError, match="kgnn"):
        PredictorBag.from_predictors([a, b])
    with pytest.raises(ValueError, match="at least 2"):
        PredictorBag.from_predictors([a])
    with pytest.raises(ValueError, match="fitted"):
        PredictorBag.from_predictors([a, Predictor(**TINY)])
    with pytest.raises(ValueError, match="bags >= 2"):
        PredictorBag(bags=1).fit(cgs, acc)
    kendall = Predictor(seed=5, weighting="kendall", **TINY).fit(cgs, acc)  # fine-tuning option: free
    joined = PredictorBag.from_predictors([a, kendall])
    assert joined.weighting == "stacked"
    assert joined.fitted and joined.weights == {m: pytest.approx(1 / 6) for m in joined.members}


def test_cli_checkpoint_loader_reads_bags(bag, tmp_path: Path) -> None:
    from cgpredict.commands.predict import load_predictor as cli_load

    bag.save(tmp_path / "bag")
    assert isinstance(cli_load(str(tmp_path / "bag")), PredictorBag)

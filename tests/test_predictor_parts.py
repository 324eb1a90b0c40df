"""The predictor's parts: estimator contract, per-call inputs, member adapters, weighting rules, bags.

Pipeline position: model → CG → features → **predictor (its parts)** → ranking/search.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgpredict.models.ensemble import kendall_weights, proxy_agreement_weights, softmax_weights, stacked_weights
from cgpredict.models.graph_data import flops_of
from cgpredict.models.synthetic import toy_family
from cgpredict.predictor import (MEMBER_KINDS, MEMBERS, NotFittedError, Predictor, PredictorBag, WeightingWarning,
                                 accuracy_mean, clone)
from cgpredict.predictor.inputs import Inputs, gflops_of
from cgpredict.predictor.weighting import RULES, Evidence

TINY = dict(encoder={"epochs": 2, "batch_size": 64, "branch_dim": 16}, regressor={"epochs": 5, "hidden": 32},
            pairwise={"epochs": 2, "hidden": 16}, kgnn={"epochs": 2, "batch_size": 32}, n_clusters=3,
            progress=False)


@pytest.fixture(scope="module")
def family() -> tuple[list, np.ndarray]:
    return toy_family(60, seed=4)


@pytest.fixture(scope="module")
def fitted(family) -> Predictor:
    cgs, acc = family
    return Predictor(**TINY).fit(cgs[:40], acc[:40])


# ------------------------------------------------------------------------------ estimator contract
def test_constructor_only_stores_and_params_round_trip() -> None:
    state = torch.random.get_rng_state()
    pred = Predictor(members=["CL+T", "XGBoost"], weighting="nnls", **TINY)  # nothing validated yet
    assert torch.equal(torch.random.get_rng_state(), state)  # no global reseeding, no modules built
    assert pred.members_ == {} and pred.encoder_ is None and not pred.fitted
    params = pred.get_params(deep=False)
    assert list(params) == list(Predictor._param_names())
    assert params["encoder"] == TINY["encoder"] and params["n_clusters"] == 3 and params["weighting"] == "nnls"
    assert pred.get_params()["encoder__branch_dim"] == 16
    with pytest.raises(ValueError, match="unknown ensemble member"):
        pred.fit(*toy_family(8, seed=1))


def test_set_params_nested_and_clone(fitted) -> None:
    pred = Predictor(**TINY).set_params(encoder__epochs=7, kgnn__hidden=8, seed=3)
    assert pred.encoder_kwargs == {**TINY["encoder"], "epochs": 7}
    assert pred.kgnn_kwargs["hidden"] == 8 and pred.seed == 3
    assert TINY["encoder"]["epochs"] == 2  # the caller's dict is not changed
    with pytest.raises(ValueError, match="has no parameter 'encoders'"):
        pred.set_params(encoders__epochs=1)
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params() and not twin.fitted
    assert twin.encoder_kwargs is not fitted.encoder_kwargs
    with pytest.raises(NotFittedError, match="not fitted"):
        twin.predict(toy_family(4, seed=2)[0])
    assert isinstance(NotFittedError("x"), RuntimeError)  # what older callers catch


def test_dict_options_as_in_the_readme_still_work(fitted, family) -> None:
    cgs, _ = family
    assert fitted.config()["encoder"] == TINY["encoder"]
    assert fitted.encoder is fitted.encoder_ and fitted.models["CL+T"] is fitted.members_["CL+T"].model
    assert set(fitted.models) == set(MEMBERS) - {"FLOPs"}
    assert fitted.predict(cgs[40:]).shape == (20,)


# ------------------------------------------------------------------------------ inputs
def test_flops_from_the_cg_are_the_numbers_the_members_were_trained_on(family) -> None:
    cgs, _ = family
    np.testing.assert_array_equal(gflops_of(cgs), flops_of(cgs))  # bit-identical to the PyG path


def test_rank_embeds_each_cg_once_per_call(fitted, family, monkeypatch: pytest.MonkeyPatch) -> None:
    cgs, _ = family
    calls: list[int] = []
    original = fitted.encoder_.transform

    def counting(batch, *args, **kwargs):
        calls.append(len(batch))
        return original(batch, *args, **kwargs)

    monkeypatch.setattr(fitted.encoder_, "transform", counting)
    fitted.rank(cgs[40:])
    assert sum(calls) == 20  # four CL members read one embedding
    calls.clear()
    fitted.predict(cgs[40:])
    assert sum(calls) == 20
    data = Inputs(fitted, cgs[40:45])
    assert data.emb is data.emb and sum(calls) == 25  # computed on first use, then kept


def test_every_member_kind_follows_the_protocol() -> None:
    for name, make in MEMBER_KINDS.items():
        member = make()
        assert member.name == name and member.reads in ("embedding", "graph", "flops", "proxy")
        for method in ("build", "fit", "adapt", "finetune", "score", "in_sample_scores", "state", "load_state"):
            assert callable(getattr(member, method)), (name, method)
        if member.regresses:
            assert callable(member.predict_from)


# ------------------------------------------------------------------------------ weighting rules
def test_weighting_rules_return_weights_taus_and_diagnostics() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=20)
    scores = {"a": y + 0.1 * rng.normal(size=20), "b": rng.normal(size=20), "Proxy": y + rng.normal(size=20)}
    folds = np.arange(20) % 2
    ev = Evidence(list(scores), 0.1, y, in_sample_scores=scores, crossfit_scores=scores, crossfit_folds=folds)
    assert RULES["equal"](ev).weights == pytest.approx({n: 1 / 3 for n in scores})
    kendall = RULES["kendall"](ev)
    assert (kendall.weights, kendall.taus) == (kendall_weights(scores, y, 0.1)[0], kendall_weights(scores, y, 0.1)[1])
    assert kendall.diagnostics == {"tau": "in-sample"}
    ev.crossfit_taus = {"a": 0.8, "b": 0.0, "Proxy": 0.4}
    assert RULES["kendall"](ev).weights == softmax_weights(ev.crossfit_taus, 0.1)
    stacked = RULES["stacked"](ev)
    assert stacked.weights == stacked_weights(scores, folds, y) and stacked.taus == ev.crossfit_taus
    assert "b" in stacked.diagnostics["zero_weight"]
    ev.target_scores = scores
    agree = RULES["proxy_agreement"](ev)
    assert (agree.weights, agree.taus) == proxy_agreement_weights(scores, 0.1)
    with pytest.raises(ValueError, match="cross-fitted"):
        RULES["stacked"](Evidence(["a"], labels=y))


def test_accuracy_mean_is_defined_for_every_weighting() -> None:
    values = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 6.0])}
    np.testing.assert_allclose(accuracy_mean(values, {"a": 0.25, "b": 0.75, "c": 0.5}, ["a", "b"]), [2.5, 5.0])
    with pytest.warns(WeightingWarning, match="equal mean"):
        np.testing.assert_allclose(accuracy_mean(values, {"a": 0.0, "b": 0.0, "c": 1.0}, ["a", "b"]), [2.0, 4.0])


# ------------------------------------------------------------------------------ bags compose predictors
def test_a_bag_holds_fitted_predictors_and_is_not_one(family) -> None:
    cgs, acc = family
    bag = PredictorBag(bags=2, **TINY)
    assert bag.get_params(deep=False)["bags"] == 2 and bag.get_params()["encoder__branch_dim"] == 16
    bag.set_params(kgnn__epochs=1)
    assert bag.options["kgnn"]["epochs"] == 1
    bag.fit(cgs[:40], acc[:40])
    assert not isinstance(bag, Predictor) and all(type(p) is Predictor for p in bag.predictors)
    assert [p.kgnn_kwargs["epochs"] for p in bag.predictors] == [1, 1]
    assert bag.members == list(MEMBERS) and bag.weights == pytest.approx({m: 1 / 6 for m in MEMBERS})

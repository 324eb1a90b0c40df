"""What every ensemble of members does with its members' scores: weigh, fine-tune, predict, rank.

Pipeline position: model → CG → features → members → **ensemble** → ranking/search.

:class:`Ensemble` is the part :class:`~cgpredict.predictor.Predictor` and
:class:`~cgpredict.predictor.PredictorBag` share. A subclass supplies the members' scores
(``member_scores``, ``_accuracy_scores``, ``accuracy_members``) and their training step
(``_finetune_members``); this class turns them into

* ``score`` / ``rank``: the weighted mean of the members' normalised ranks
  (:func:`~cgpredict.models.ensemble.combine`);
* ``predict``: the weighted mean of the accuracy-regressing members (when the weights give every
  one of them 0, their equal mean, with a :class:`WeightingWarning`, so that ``predict`` is
  defined for every weighting a checkpoint can hold; :func:`~cgpredict.predictor.weighting.accuracy_mean`);
* ``finetune``: the members' training step, then weights from the labels by the rule of the
  ``weighting`` option (:mod:`cgpredict.predictor.weighting`), on cross-fitted scores (copies
  fine-tuned on the other folds) or in-sample scores;
* ``reweight_by_proxy``: label-free weights from agreement with the ``Proxy`` member.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import numpy as np

from cgpredict.cg import CG
from cgpredict.models.ensemble import combine, kendall_weights
from cgpredict.predictor.base import Estimator, check_is_fitted
from cgpredict.predictor.inputs import check_cgs
from cgpredict.predictor.weighting import RULES, WEIGHTINGS, Evidence, accuracy_mean, finetune_rule

#: Fewest held-out nets per fold for which :meth:`Ensemble.finetune` does not warn.
MIN_NETS_PER_FOLD = 5


class FewLabelsWarning(UserWarning):
    """:meth:`Ensemble.finetune` got fewer labelled nets than what it fits needs to be reliable."""


class Ensemble(Estimator):
    """Weighting, fine-tuning and inference over member scores (see the module docstring)."""

    members: list[str]
    weighting: str
    weight_temperature: float
    seed: int
    weights_: dict[str, float] | None = None
    taus_: dict[str, float]
    crossfit_scores_: dict[str, np.ndarray]
    crossfit_folds_: np.ndarray | None = None

    # ------------------------------------------------------------------ provided by subclasses
    def member_scores(self, cgs: Sequence[CG]) -> dict[str, np.ndarray]:
        """Each member's scores (higher = better)."""
        raise NotImplementedError

    def accuracy_members(self) -> list[str]:
        """Members whose scores are accuracies."""
        raise NotImplementedError

    def _accuracy_scores(self, cgs: Sequence[CG], names: Sequence[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _finetune_members(self, cgs: Sequence[CG], y: np.ndarray, epochs: int, adapt: bool) -> None:
        raise NotImplementedError

    def _in_sample_scores(self, cgs: Sequence[CG]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_progress(self, flag: bool) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ fitted state
    @property
    def fitted(self) -> bool:
        """Whether the ensemble is fitted (or loaded)."""
        return self.weights_ is not None

    @property
    def weights(self) -> dict[str, float]:
        """The member weights (``weights_``); equal until fine-tuning or :meth:`reweight_by_proxy`."""
        check_is_fitted(self)
        return self.weights_

    @weights.setter
    def weights(self, value: dict[str, float]) -> None:
        self.weights_ = {str(k): float(v) for k, v in value.items()}

    def _require_fitted(self) -> None:
        check_is_fitted(self, what=type(self).__name__)

    def _reset_weights(self) -> None:
        """Equal weights, no τ and no cross-fitted scores (after a fit or a new member)."""
        self.weights_ = RULES["equal"](Evidence(self.members)).weights
        self.taus_, self.crossfit_scores_, self.crossfit_folds_ = {}, {}, None

    def _validate_weighting(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        if not self.weight_temperature > 0:
            raise ValueError(f"weight_temperature must be > 0, got {self.weight_temperature!r}")

    # ------------------------------------------------------------------ fine-tuning
    def finetune(self, cgs: Sequence[CG], labels: Sequence[float] | np.ndarray, epochs: int = 100,
                 adapt: bool = False, weight_folds: int = 2) -> Ensemble:
        """Adapt to a target family from a few labelled CGs, then weigh the members.

        The encoder, FCM clusters and label statistics stay as fitted; with ``adapt`` the heads'
        input standardisation is re-fitted to these CGs first (:meth:`adapt`; off by default: on
        NB-201 with the shipped checkpoint it changed the 50-shot SRCC by −0.02 to +0.005, within
        seed noise); heads and the k-GNN then train ``epochs`` more epochs on the new labels, and
        the ``Proxy`` member fits its ridge.

        Ensemble weights then come from how each member ranks these CGs: with ``weighting="stacked"``
        (default) the non-negative least-squares fit of the labels' ranks on the members'
        cross-fitted ranks (:func:`~cgpredict.models.ensemble.stacked_weights`), which sees that
        the four CL members share one encoder; with ``"kendall"`` (the paper's rule)
        ``softmax(τ / weight_temperature)`` of each member's Kendall τ. ``taus_`` holds each τ.
        With ``weight_folds = K ≥ 2`` (default 2) τ is cross-fitted: a copy of the predictor is
        fine-tuned on K−1 folds and scored on the held-out fold, τ averaged over folds. That costs
        one more fine-tuning run but measures what the weights are for — how a member ranks nets
        it was not fine-tuned on; the in-sample τ (``weight_folds=0``, the paper's reading;
        ``Proxy`` then uses its leave-one-out predictions) is inflated for the members that fit 50
        nets almost perfectly (NB-201, 50 nets: in-sample τ 0.82–0.91 for the MLP heads and k-GNN
        whose held-out τ is 0.44–0.63). Emits a :class:`FewLabelsWarning` when the labels are too
        few for the weights (or the ``Proxy`` ridge) it fits.
        """
        self._require_fitted()
        self._validate_weighting()
        y = check_cgs(cgs, labels)
        if y.size < 2:
            raise ValueError("fine-tuning needs at least 2 labelled CGs")
        if weight_folds == 1 or weight_folds < 0:
            raise ValueError(f"weight_folds must be 0 (in-sample τ) or >= 2, got {weight_folds}")
        if self.weighting == "stacked" and not weight_folds:
            raise ValueError("weighting='stacked' fits cross-fitted scores: use weight_folds >= 2, or set "
                             "weighting='kendall' for in-sample Kendall-tau weights")
        if weight_folds and y.size < 2 * weight_folds:
            raise ValueError(f"{y.size} CGs are too few for weight_folds={weight_folds}; use weight_folds=0 "
                             "with weighting='kendall' (in-sample τ)")
        self._warn_few_labels(y.size, weight_folds)
        self.crossfit_scores_, self.crossfit_folds_ = {}, None  # none from an earlier fine-tuning
        taus = self._cross_fitted_taus(cgs, y, epochs, adapt, weight_folds) if weight_folds else None
        self._finetune_members(cgs, y, epochs, adapt)
        evidence = Evidence(self.members, self.weight_temperature, y, crossfit_taus=taus,
                            crossfit_scores=self.crossfit_scores_ if taus is not None else None,
                            crossfit_folds=self.crossfit_folds_)
        if taus is None:
            evidence.in_sample_scores = self._in_sample_scores(cgs)
        result = finetune_rule(self.weighting, taus is not None)(evidence)
        self.weights_, self.taus_ = result.weights, result.taus
        return self

    def _warn_few_labels(self, n: int, folds: int) -> None:
        reasons = []
        if folds and n // folds < MIN_NETS_PER_FOLD:
            reasons.append(f"{folds} folds of {n // folds}-{-(-n // folds)} nets give noisy held-out Kendall tau")
        if folds and self.weighting == "stacked" and n < 2 * len(self.members):
            reasons.append(f"stacked weights fit {len(self.members)} coefficients from {n} nets")
        if "Proxy" in self.members and n < 3:
            reasons.append("the Proxy member needs at least 3 nets for its ridge and stays zero-shot")
        if reasons:
            warnings.warn(f"fine-tuning on {n} labelled nets: " + "; ".join(reasons)
                          + " — label more nets for reliable member weights", FewLabelsWarning, stacklevel=3)

    def _cross_fitted_taus(self, cgs: Sequence[CG], y: np.ndarray, epochs: int, adapt: bool,
                           folds: int) -> dict[str, float]:
        """Per member, Kendall τ on held-out folds of copies fine-tuned on the other folds (mean).

        Keeps each net's held-out scores in ``crossfit_scores_`` (member → one score per CG, from
        the copy that did not see it) and its fold in ``crossfit_folds_``; scores of different
        folds come from different copies, so compare them only within a fold."""
        order = np.random.default_rng(self.seed).permutation(y.size)
        per_member: dict[str, list[float]] = {name: [] for name in self.members}
        fold_of = np.empty(y.size, dtype=np.int64)
        held_scores = {name: np.full(y.size, np.nan) for name in self.members}
        for k in range(folds):
            held = np.sort(order[k::folds])
            fold_of[held] = k
            train = np.setdiff1d(np.arange(y.size), held)
            copy_k = copy.deepcopy(self)
            copy_k._set_progress(False)
            copy_k._finetune_members([cgs[i] for i in train], y[train], epochs, adapt)
            scores = copy_k.member_scores([cgs[i] for i in held])
            for name, values in scores.items():
                held_scores[name][held] = values
            _, fold_taus = kendall_weights(scores, y[held], 1.0)
            for name, tau in fold_taus.items():
                per_member[name].append(tau)
        self.crossfit_scores_, self.crossfit_folds_ = held_scores, fold_of
        return {name: float(np.mean(v)) for name, v in per_member.items()}

    def reweight_by_proxy(self, cgs: Sequence[CG]) -> Ensemble:
        """Label-free ensemble weights for ranking these (target-family) CGs zero-shot.

        Needs the ``Proxy`` member (:meth:`add_proxy_member`). It keeps its equal share; the other
        members share the rest by ``softmax(τ / weight_temperature)`` of their Kendall τ with the
        ``Proxy`` scores on ``cgs`` (:func:`cgpredict.models.ensemble.proxy_agreement_weights`),
        so members that transferred badly to this family lose weight without any label. Pass the
        whole target set (≥ 10 CGs); the weights stay until :meth:`finetune` replaces them with
        weights from real labels. ``taus_`` holds the pseudo-τ.
        """
        self._require_fitted()
        check_cgs(cgs)
        if "Proxy" not in self.members:
            raise ValueError("reweight_by_proxy() needs the Proxy member: call add_proxy_member() first")
        if len(cgs) < 10:
            raise ValueError(f"reweight_by_proxy() needs at least 10 target CGs to measure agreement, got {len(cgs)}")
        evidence = Evidence(self.members, self.weight_temperature, target_scores=self.member_scores(cgs))
        result = RULES["proxy_agreement"](evidence)
        self.weights_, self.taus_ = result.weights, result.taus
        return self

    # ------------------------------------------------------------------ inference
    def predict(self, cgs: Sequence[CG]) -> np.ndarray:
        """Predicted accuracies: the ensemble-weighted mean of the regressing members."""
        self._require_fitted()
        check_cgs(cgs)
        names = self.accuracy_members()
        if not names:
            raise RuntimeError(f"members {self.members} do not regress accuracy; use rank() or score()")
        return accuracy_mean(self._accuracy_scores(cgs, names), self.weights_, names)

    def score(self, cgs: Sequence[CG]) -> np.ndarray:
        """Ensemble score in ``[0, 1]`` (weighted mean of the members' normalised ranks)."""
        return combine(self.member_scores(cgs), self.weights)

    def rank(self, cgs: Sequence[CG]) -> np.ndarray:
        """Indices of ``cgs`` from predicted best to worst (ensemble score, stable)."""
        return np.argsort(-self.score(cgs), kind="stable")

"""How the ensemble weighs its members: one interface for every rule.

Pipeline position: model → CG → features → members → **ensemble weights** → ranking/search.

A rule takes the :class:`Evidence` a predictor has about its members (their scores on labelled
or target CGs) and returns a :class:`Weighting`: the weights, the per-member τ it used, and its
diagnostics. The arithmetic lives in :mod:`cgpredict.models.ensemble`; the rules here choose
which evidence goes in:

============================  =====================================================================
rule                          weights
============================  =====================================================================
:class:`Equal`                ``1 / M`` (zero-shot, after ``fit``)
:class:`KendallSoftmax`       ``softmax(τ / T)`` of each member's Kendall τ: cross-fitted τ when
                              the predictor cross-fitted, else in-sample τ (GENNAPE's rule)
:class:`Stacked`              non-negative least squares of the label ranks on the members'
                              cross-fitted ranks (needs cross-fitted scores)
:class:`ProxyAgreement`       label-free: τ with the ``Proxy`` member's scores on the target CGs
============================  =====================================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from cgpredict.models.ensemble import (equal_weights, kendall_weights, proxy_agreement_weights, softmax_weights,
                                       stacked_weights)

#: The rules :meth:`Predictor.finetune` can use (the ``weighting`` option).
WEIGHTINGS: tuple[str, ...] = ("kendall", "stacked")


@dataclass
class Evidence:
    """What a rule may read. ``labels`` and the score dicts are aligned with the same CGs."""

    members: Sequence[str]
    temperature: float = 0.1
    labels: np.ndarray | None = None
    in_sample_scores: Mapping[str, np.ndarray] | None = None  #: members fine-tuned on these CGs
    crossfit_scores: Mapping[str, np.ndarray] | None = None  #: each CG scored by a copy that did not see it
    crossfit_folds: np.ndarray | None = None
    crossfit_taus: Mapping[str, float] | None = None  #: mean held-out Kendall τ over the folds
    target_scores: Mapping[str, np.ndarray] | None = None  #: unlabelled target CGs (proxy agreement)


@dataclass
class Weighting:
    """A rule's result: member weights (sum 1), the τ it used and what else it measured."""

    weights: dict[str, float]
    taus: dict[str, float] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)


class WeightingRule(Protocol):
    """Turns :class:`Evidence` into a :class:`Weighting`."""

    name: str

    def __call__(self, evidence: Evidence) -> Weighting:
        """The weights for this evidence."""


class Equal:
    """``1 / M`` each."""

    name = "equal"

    def __call__(self, evidence: Evidence) -> Weighting:
        return Weighting(equal_weights(list(evidence.members)))


class KendallSoftmax:
    """``softmax(τ / temperature)``: cross-fitted τ when available, else in-sample τ."""

    name = "kendall"

    def __call__(self, evidence: Evidence) -> Weighting:
        if evidence.crossfit_taus is not None:
            taus = dict(evidence.crossfit_taus)
            return Weighting(softmax_weights(taus, evidence.temperature), taus, {"tau": "cross-fitted"})
        if evidence.in_sample_scores is None or evidence.labels is None:
            raise ValueError("Kendall-tau weights need labelled scores (in-sample or cross-fitted)")
        weights, taus = kendall_weights(evidence.in_sample_scores, evidence.labels, evidence.temperature)
        return Weighting(weights, taus, {"tau": "in-sample"})


class Stacked:
    """Stacked regression on cross-fitted ranks (:func:`~cgpredict.models.ensemble.stacked_weights`)."""

    name = "stacked"

    def __call__(self, evidence: Evidence) -> Weighting:
        if evidence.crossfit_scores is None or evidence.crossfit_folds is None or evidence.labels is None:
            raise ValueError("stacked weights need cross-fitted scores (weight_folds >= 2)")
        weights = stacked_weights(evidence.crossfit_scores, evidence.crossfit_folds, evidence.labels)
        zero = [n for n, w in weights.items() if w == 0.0]
        return Weighting(weights, dict(evidence.crossfit_taus or {}), {"zero_weight": zero})


class ProxyAgreement:
    """Label-free weights from agreement with the ``Proxy`` member on the target CGs."""

    name = "proxy_agreement"

    def __call__(self, evidence: Evidence) -> Weighting:
        if evidence.target_scores is None:
            raise ValueError("proxy-agreement weights need the members' scores on the target CGs")
        weights, taus = proxy_agreement_weights(evidence.target_scores, evidence.temperature)
        return Weighting(weights, taus, {"judge": "Proxy"})


#: Rule name → rule.
RULES: dict[str, WeightingRule] = {rule.name: rule for rule in (Equal(), KendallSoftmax(), Stacked(), ProxyAgreement())}


def finetune_rule(weighting: str, cross_fitted: bool) -> WeightingRule:
    """The rule :meth:`Predictor.finetune` applies: in-sample τ always means the Kendall rule."""
    return RULES[weighting] if cross_fitted else RULES["kendall"]


class WeightingWarning(RuntimeWarning):
    """The ensemble weights cannot be used as they are (e.g. all accuracy members at weight 0)."""


def accuracy_mean(values: Mapping[str, np.ndarray], weights: Mapping[str, float], names: Sequence[str]) -> np.ndarray:
    """The weighted mean of the accuracy members ``names``; their equal mean, with a
    :class:`WeightingWarning`, when the weights give every one of them 0 (stacked weights can),
    so that a prediction is defined for every weighting a checkpoint can hold."""
    total = sum(weights[n] for n in names)
    if not total > 0:
        warnings.warn(f"the ensemble weights give 0 to every accuracy-regressing member ({', '.join(names)}); "
                      "predicting their equal mean (score() and rank() use the weights as they are)",
                      WeightingWarning, stacklevel=3)
        return sum(values[n] for n in names) / len(names)
    return sum(weights[n] / total * values[n] for n in names)

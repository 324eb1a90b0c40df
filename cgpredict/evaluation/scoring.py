"""Score every method on one labelled set: baselines, each ensemble member and the ensemble.

Pipeline position: model → CG → features → predictor → **evaluation** (methods scored on the same
nets, one row of metrics each) → ranking/search.

A *method* is anything that scores nets, higher = better: the zero-cost baselines (the CG's FLOPs
and params, each numeric column of the family's table, e.g. zero-cost proxies), every member of a
:class:`~cgpredict.predictor.Predictor` and its ensemble. :func:`score_rows` turns their scores into
one row per method with the metrics of :func:`cgpredict.metrics.evaluate`; ``mae`` is only reported
for methods that output accuracies (regressing members and the ensemble's
:meth:`~cgpredict.predictor.Predictor.predict`) and is ``nan`` elsewhere.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cgpredict.metrics import DegenerateMetricWarning, evaluate

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG
    from cgpredict.datasets import Family
    from cgpredict.predictor import Predictor

__all__ = ["AGREEMENT_ENSEMBLE", "ENSEMBLE", "METRIC_COLUMNS", "PAPER_ENSEMBLE", "baseline_scores", "finetuned",
           "method_kind", "predictor_scores", "score_rows"]

#: The metric columns of a row, in table order.
METRIC_COLUMNS: tuple[str, ...] = ("spearman", "kendall_tau", "ndcg@10", "ndcg@50", "mae", "precision@1%",
                                   "precision@5%", "precision@10%", "best_rank@1%", "best_rank@5%",
                                   "best_rank@10%")
#: Name of the ensemble row.
ENSEMBLE = "GENNAPE ensemble"
#: With the optional ``Proxy`` member, the ensemble of the paper's six members alone (same weights).
PAPER_ENSEMBLE = "GENNAPE ensemble, paper's 6 members"
#: With the ``Proxy`` member, zero-shot: the ensemble with label-free proxy-agreement weights.
AGREEMENT_ENSEMBLE = "GENNAPE ensemble, proxy-agreement weights"
#: The ensemble's :meth:`~cgpredict.predictor.Predictor.predict` (its ``mae`` goes into the ensemble row).
_PREDICT = ENSEMBLE + " (predict)"
#: Rows of kind ``ensemble``; baselines are ``baseline``, everything else ``member``.
_ENSEMBLES = frozenset({ENSEMBLE, PAPER_ENSEMBLE, AGREEMENT_ENSEMBLE})


def baseline_scores(family: Family) -> dict[str, np.ndarray]:
    """Zero-cost baselines of a labelled family (higher = better): the CG's FLOPs (GMACs) and
    params, and ``zc:<column>`` for each numeric column of :attr:`Family.extra` (missing values
    ranked last; all-missing columns and any ``flops``/``params`` column left out)."""
    from cgpredict.models.graph_data import flops_of

    cgs = family.cgs(progress=False)
    out = {"FLOPs": flops_of(cgs), "params": np.array([float(cg.params) for cg in cgs])}
    for key, col in sorted(family.extra.items()):
        col = np.asarray(col, dtype=np.float64)
        if key in ("flops", "params") or not np.isfinite(col).any():
            continue
        finite = col[np.isfinite(col)]
        out[f"zc:{key}"] = np.where(np.isfinite(col), col, finite.min() - 1.0)
    return out


def predictor_scores(pred: Predictor, cgs: Sequence[CG], zero_shot: bool = False) -> tuple[dict[str, np.ndarray], set[str]]:
    """``(scores, accuracy_methods)``: the scores of every member and of the ensemble on ``cgs``, and
    the names whose scores are accuracies.

    With a ``Proxy`` member the paper's six members alone are scored too (:data:`PAPER_ENSEMBLE`)
    and, when ``zero_shot`` and there are at least 10 CGs, the ensemble with label-free
    proxy-agreement weights (:data:`AGREEMENT_ENSEMBLE`). The ensemble's predicted accuracies (the
    weighted mean of the regressing members, as :meth:`~cgpredict.predictor.Predictor.predict`)
    are returned under a private name that :func:`score_rows` folds into the ensemble row's ``mae``
    (their equal mean when the weights give every regressing member 0, as ``predict`` does).
    """
    from cgpredict.models.ensemble import combine, proxy_agreement_weights
    from cgpredict.predictor import accuracy_mean

    scores = dict(pred.member_scores(cgs))
    regress = pred.accuracy_members()
    out = {name: scores[name] for name in pred.members}
    out[ENSEMBLE] = combine(scores, pred.weights)
    if "Proxy" in pred.members:
        out[PAPER_ENSEMBLE] = combine({k: v for k, v in scores.items() if k != "Proxy"}, pred.weights)
        if zero_shot and len(cgs) >= 10:
            agreed, _ = proxy_agreement_weights(scores, pred.weight_temperature)
            out[AGREEMENT_ENSEMBLE] = combine(scores, agreed)
    acc_units = set(regress)
    if regress:
        out[_PREDICT] = accuracy_mean(scores, pred.weights, regress)
        acc_units.add(_PREDICT)
    return out, acc_units


def method_kind(name: str, baselines: Sequence[str] | Mapping[str, Any] = ()) -> str:
    """``baseline``, ``ensemble`` or ``member``: the ``kind`` column of a method's row."""
    if name in baselines:
        return "baseline"
    return "ensemble" if name in _ENSEMBLES else "member"


def score_rows(labels: np.ndarray, scores: Mapping[str, np.ndarray], acc_units: set[str],
               baselines: Sequence[str] | Mapping[str, Any] = (), **meta: Any) -> list[dict[str, Any]]:
    """One row per method: ``meta`` (e.g. ``setting``, ``target``, ``seed``), ``method``, ``kind``
    (:func:`method_kind`) and every metric of :func:`cgpredict.metrics.evaluate` against ``labels``
    (``mae`` nan unless the method is in ``acc_units``). The ensemble's predicted accuracies (see
    :func:`predictor_scores`) give the ensemble row's ``mae`` instead of a row of their own."""
    rows = []
    predict_mae = float("nan")
    for name, values in scores.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateMetricWarning)
            metrics = evaluate(labels, values)
        if name not in acc_units:
            metrics["mae"] = float("nan")
        if name == _PREDICT:
            predict_mae = metrics["mae"]
            continue
        rows.append({**meta, "method": name, "kind": method_kind(name, baselines), **metrics})
    for row in rows:
        if row["method"] == ENSEMBLE:
            row["mae"] = predict_mae
    return rows


def finetuned(pred: Predictor, cgs: Sequence[CG], labels: np.ndarray, epochs: int, batch: int,
              weight_folds: int = 2) -> Predictor:
    """A fine-tuned deep copy of ``pred`` (the original is left untouched): every member that trains
    in batches uses ``batch`` (the protocol fine-tunes with batch 1), ``epochs`` epochs."""
    tuned = copy.deepcopy(pred)
    for part in getattr(tuned, "predictors", [tuned]):  # every predictor of a PredictorBag
        for model in part.models.values():
            if hasattr(model, "batch_size"):
                model.batch_size = batch
    return tuned.finetune(cgs, labels, epochs=epochs, weight_folds=weight_folds)

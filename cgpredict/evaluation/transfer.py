"""Source → target evaluation of a predictor on your own labelled families.

Pipeline position: model → CG → features → predictor → **evaluation across families** (this
module) → ranking/search.

:func:`evaluate_transfer` trains a :class:`~cgpredict.predictor.Predictor` on a seeded train split
of a labelled *source* family, then scores it, next to the zero-cost baselines (FLOPs, params and
the family table's numeric columns), on

* the source family's held-out test split (setting ``in-family test``),
* every labelled net of the *target* family, without any target label (``zero-shot``),
* after fine-tuning a copy on ``shots`` seeded target nets, the remaining target nets (``<k>-shot``),

one row per (setting, seed, method) with every metric of :func:`cgpredict.metrics.evaluate`.
The splits are those of :mod:`cgpredict.evaluation.splits`: the same nets for every method and
every run. :func:`evaluate_model` and :func:`few_shot` are the steps, for protocols of your own
(the repository's GENNAPE benchmark, ``benchmarks/protocol``, is built from them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cgpredict.evaluation.scoring import baseline_scores, finetuned, predictor_scores, score_rows
from cgpredict.evaluation.splits import shot_indices, split_indices

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG
    from cgpredict.datasets import Family
    from cgpredict.predictor import Predictor

__all__ = ["SETTINGS", "evaluate_model", "evaluate_transfer", "few_shot", "source_split"]

#: Settings of :func:`evaluate_transfer` (the in-family test split is always scored).
SETTINGS: tuple[str, ...] = ("zero-shot", "few-shot")

PredictorFactory = Callable[[int], "Predictor"]


def parse_options(text: str, option: str = "--predictor") -> dict[str, Any]:
    """Predictor options given as JSON text on a command line (``'{"kgnn": {"epochs": 50}}'``).

    Raises ``ValueError`` naming ``option`` when the text is not JSON or not a JSON object.
    """
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{option} is not valid JSON: {exc}") from exc
    if not isinstance(options, dict):
        raise ValueError(f"{option} must be a JSON object of Predictor options")
    return options


def source_split(source: Family, seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> tuple[Family, Family, Family]:
    """``(train, val, test)`` subsets of a labelled family (:func:`~cgpredict.evaluation.splits.split_indices`)."""
    return tuple(source.subset(idx) for idx in split_indices(len(source), seed, fractions))  # type: ignore[return-value]


def evaluate_model(model: Predictor, family: Family, zero_shot: bool = False,
                   **meta: Any) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """``(rows, scores)``: every method's metrics on the labelled ``family`` (one row each, tagged
    with ``meta`` and ``n_eval``) and the per-net scores behind them (baselines first, then the
    predictor's members and ensembles; see :func:`~cgpredict.evaluation.scoring.predictor_scores`
    for ``zero_shot``)."""
    if family.labels is None:
        raise ValueError(f"family {family.label!r} has no labels to evaluate against")
    scores, acc = predictor_scores(model, family.cgs(progress=False), zero_shot=zero_shot)
    base = baseline_scores(family)
    both = {**base, **scores}
    meta.setdefault("n_eval", len(family))
    return score_rows(family.labels, both, acc, base, **meta), both


def few_shot(model: Predictor, target: Family, shots: int, seed: int, epochs: int = 100, batch: int = 1,
             weight_folds: int = 2, name: str | None = None) -> tuple[Predictor, Family, Family]:
    """``(tuned, shot_nets, rest)``: a copy of ``model`` fine-tuned on ``shots`` seeded nets of
    ``target`` (:func:`~cgpredict.evaluation.splits.shot_indices` keyed by ``name``, default
    ``target.label``) and the nets left to evaluate it on."""
    picked, rest = shot_indices(len(target), shots, seed, name or target.label)
    part = target.subset(picked)
    tuned = finetuned(model, part.cgs(progress=False), part.labels, epochs, batch, weight_folds)
    return tuned, part, target.subset(rest)


def _factory(predictor: PredictorFactory | Mapping[str, Any]) -> PredictorFactory:
    if callable(predictor):
        return predictor
    if isinstance(predictor, Mapping):
        from cgpredict.predictor import Predictor

        options = dict(predictor)
        return lambda seed: Predictor(**{**options, "seed": seed})
    raise TypeError("predictor must be a mapping of Predictor options or a function seed -> unfitted Predictor, "
                    f"got {type(predictor).__name__}")


def evaluate_transfer(predictor: PredictorFactory | Mapping[str, Any], source: Family, target: Family, *,
                      seeds: Sequence[int] = (0,), shots: int = 50, settings: Sequence[str] = SETTINGS,
                      split: Sequence[float] = (0.8, 0.1, 0.1), finetune_epochs: int = 100, finetune_batch: int = 1,
                      weight_folds: int = 2, unlabelled: Sequence[CG] | None = None,
                      log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Train on ``source``, evaluate in-family, zero-shot and after ``shots``-shot fine-tuning on ``target``.

    Args:
        predictor: :class:`~cgpredict.predictor.Predictor` constructor options (``seed`` is set per
            seed), or a function ``seed -> unfitted Predictor``.
        source, target: labelled families (:func:`cgpredict.datasets.load_family`,
            :meth:`Family.from_csv <cgpredict.datasets.Family.from_csv>`, :meth:`Family.from_cgs
            <cgpredict.datasets.Family.from_cgs>`, …); their CGs are converted once and kept.
        seeds: one fit per seed, on that seed's train split of ``source``.
        shots: labelled target nets to fine-tune on (``few-shot``).
        settings: any of :data:`SETTINGS`.
        split: train/val/test fractions of ``source`` (the val split is unused here).
        finetune_epochs, finetune_batch, weight_folds: as :meth:`Predictor.finetune
            <cgpredict.predictor.Predictor.finetune>` (``finetune_batch`` sets every batched member's batch).
        unlabelled: extra unlabelled CGs for the encoder (``Predictor.fit(..., unlabelled=...)``).
        log: called with one progress line per step.

    Returns:
        One dict per (setting, seed, method): ``setting`` (``in-family test``, ``zero-shot`` or
        ``<shots>-shot``), ``target``, ``seed``, ``n_eval``, ``fit_s``, ``method``, ``kind``
        (``baseline``/``member``/``ensemble``) and every column of
        :data:`~cgpredict.evaluation.scoring.METRIC_COLUMNS`; :func:`~cgpredict.evaluation.summarize`
        averages them over seeds.

    Example:
        >>> from cgpredict.datasets import load_family
        >>> from cgpredict.evaluation import evaluate_transfer, summarize
        >>> rows = evaluate_transfer({"encoder": {"epochs": 5}}, load_family("nasbench101", task="cifar10"),
        ...                          load_family("nasbench201", task="cifar10"), seeds=[0, 1])
    """
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        raise ValueError(f"unknown setting(s) {bad}; choose from {list(SETTINGS)}")
    if source.labels is None or target.labels is None:
        raise ValueError(f"both families need labels (source {source.label!r}, target {target.label!r})")
    make = _factory(predictor)
    say = log or (lambda _msg: None)
    source, target = source.with_cgs(progress=False), target.with_cgs(progress=False)
    unlabelled = list(unlabelled or [])
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        train, _, test = source_split(source, seed, split)
        t0 = time.perf_counter()
        model = make(seed).fit(train.cgs(progress=False), train.labels, unlabelled=unlabelled or None)
        fit_s = time.perf_counter() - t0
        say(f"seed {seed}: fitted on {len(train)} {source.label} nets in {fit_s:.0f}s")
        rows += evaluate_model(model, test, setting="in-family test", target=source.label, seed=seed,
                               n_eval=len(test), fit_s=fit_s)[0]
        for setting in settings:
            t0 = time.perf_counter()
            if setting == "zero-shot":
                tuned, evaluated, label = model, target, setting
            else:
                tuned, _, evaluated = few_shot(model, target, shots, seed, finetune_epochs, finetune_batch,
                                               weight_folds)
                label = f"{shots}-shot"
            rows += evaluate_model(tuned, evaluated, zero_shot=setting == "zero-shot", setting=label,
                                   target=target.label, seed=seed, n_eval=len(evaluated),
                                   fit_s=time.perf_counter() - t0)[0]
            say(f"seed {seed}: {label} on {target.label} done in {time.perf_counter() - t0:.0f}s")
    return rows

"""Evaluate predictors on labelled families: splits, per-method scores and a source → target run.

Pipeline position: model → CG → features → predictor → **evaluation** → ranking/search.

* :func:`evaluate_transfer` — train on a labelled source family, score in-family, zero-shot and
  after k-shot fine-tuning on a target family, next to FLOPs, params and the table's proxy columns.
* :func:`summarize` — mean ± std over seeds per (setting, target, method).
* :func:`load_labelled` — a registered labelled family by ``"family/task"``, CGs in memory.
* :func:`split_indices`, :func:`shot_indices`, :func:`subset_indices` — the seeded splits.
* :func:`evaluate_model`, :func:`few_shot`, :func:`predictor_scores`, :func:`baseline_scores`,
  :func:`score_rows` — the steps, for protocols of your own.

The metrics themselves are in :mod:`cgpredict.metrics`. The repository's GENNAPE benchmark
(presets, every family/task as targets, leave-one-family-out, fit caches, markdown reports) is
``benchmarks/transfer.py``, built on this package.

Example:
    >>> from cgpredict.datasets import Family
    >>> from cgpredict.evaluation import evaluate_transfer, summarize
    >>> source = Family.from_cgs(my_cgs, my_accuracies, name="mine")
    >>> target = Family.from_cgs(their_cgs, their_accuracies, name="theirs")
    >>> rows = evaluate_transfer({"encoder": {"epochs": 5}}, source, target, shots=20, seeds=[0, 1])
    >>> summarize(rows)[("zero-shot", "theirs")][0]["spearman"]     # (mean, std) of the first method
"""

from __future__ import annotations

from cgpredict.evaluation.data import load_labelled, parse_spec
from cgpredict.evaluation.scoring import (AGREEMENT_ENSEMBLE, ENSEMBLE, METRIC_COLUMNS, PAPER_ENSEMBLE,
                                          baseline_scores, finetuned, method_kind, predictor_scores, score_rows)
from cgpredict.evaluation.splits import shot_indices, split_indices, stable_seed, subset_indices
from cgpredict.evaluation.summary import summarize
from cgpredict.evaluation.transfer import SETTINGS, evaluate_model, evaluate_transfer, few_shot, source_split

__all__ = ["AGREEMENT_ENSEMBLE", "ENSEMBLE", "METRIC_COLUMNS", "PAPER_ENSEMBLE", "SETTINGS", "baseline_scores",
           "evaluate_model", "evaluate_transfer", "few_shot", "finetuned", "load_labelled", "method_kind", "parse_spec", "predictor_scores",
           "score_rows", "shot_indices", "source_split", "split_indices", "stable_seed", "subset_indices",
           "summarize"]

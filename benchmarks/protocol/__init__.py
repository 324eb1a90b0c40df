"""The GENNAPE transfer protocol: train on one labelled family, evaluate on the others.

Pipeline position: benchmark around model → CG → features → predictor → **evaluation across
families** → report. Run it with ``benchmarks/transfer.py``; the library part it is built on
(splits, per-method scores, fine-tuning a copy, a generic source → target run) is
:mod:`cgpredict.evaluation`.

Protocol (per seed ``s``):

1. **Source**: the labelled NB-101 nets are split 80/10/10 (train/val/test, seeded by ``s``).
   The :class:`~cgpredict.predictor.Predictor` is trained on the train split; its contrastive
   encoder may additionally see ``n_unlabelled`` unlabelled NB-101 CGs sampled from the builder,
   and — in the *transductive* setting, reported separately — the target family's unlabelled CGs
   (``Predictor.fit(..., unlabelled=...)``, then ``Predictor.adapt`` re-fits the heads' input
   standardisation to the target CGs; the heads are still trained on the labelled source nets only).
   With ``shared_encoder`` the encoder is instead pre-trained once, label-free, on the
   ``n_unlabelled`` CGs alone (as GENNAPE pre-trains on 50k unlabelled NB-101 CGs) and shared by
   every seed, whose fit then trains the heads only; the transductive setting then continues that
   encoder's training on the target CGs plus as many unlabelled source CGs (``adapt_epochs``). The test
   split gives the in-family figures; the validation split is held out (unused by the default
   options, which do no FCM grid search). With ``bags = K > 1`` the predictor is a
   :class:`~cgpredict.predictor.PredictorBag` of K fits on the same train split (seeds ``s``,
   ``s + 1000``, …), each cached on its own, so the ``K = 1`` fit is shared with unbagged runs.
2. **Zero-shot**: every labelled net of each target family/task is scored without any target label.
3. **k-shot fine-tuning** (default 50): ``shots`` target nets are drawn with a seed derived from
   ``(s, target)`` only — so they are the same nets for every method — the predictor is
   fine-tuned on them (``finetune_epochs`` epochs at ``finetune_batch``), and every method is
   evaluated on the remaining nets of the target.
4. **Leave-one-family-out** (optional): train on all labelled families except the target's
   (labels z-scored per family/task so that different label scales can be pooled), evaluate
   zero-shot on the target.

Every method is scored on exactly the same nets: the baselines FLOPs and params (of the CG),
each zero-cost proxy column of the data table (:attr:`Family.extra`), every ensemble member and
the GENNAPE ensemble. With the optional ``Proxy`` member in ``members`` the ensemble has seven
members, and the paper's six alone (same weights, renormalised) are reported as
:data:`~cgpredict.evaluation.PAPER_ENSEMBLE`. Targets (``--targets all``) and the default
leave-one-family-out sources come from the family registry: every registered family/task whose
label table is in the data folder.

Modules: :mod:`.config` (options, presets, targets), :mod:`.cli` (command-line options),
:mod:`.fits` (fitting, fit cache, shared encoder), :mod:`.run` (the loop, score dumps),
:mod:`.report` (markdown, ``--json`` rows, ``--merge``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from typing import Any

from .cli import add_arguments, config_from_args
from .config import DEFAULT_TARGETS, PRESETS, SETTINGS, SOURCE, TransferConfig, labelled_targets, parse_target
from .report import merged_rows, to_markdown, write_outputs
from .run import load_labelled, run_transfer, unlabelled_source_cgs

__all__ = ["DEFAULT_TARGETS", "PRESETS", "SETTINGS", "SOURCE", "TransferConfig", "add_arguments", "config_from_args",
           "labelled_targets", "load_labelled", "merged_rows", "parse_target", "run_protocol", "run_transfer",
           "to_markdown", "unlabelled_source_cgs", "write_outputs"]


def run_protocol(args: argparse.Namespace, command: str) -> str:
    """Run seed by seed, rewriting ``--out`` (and ``--json``) after each seed; returns the markdown."""
    config = config_from_args(args)
    unlabelled = unlabelled_source_cgs(config)  # loaded once, shared by the one-seed runs
    rows: list[dict[str, Any]] = []
    text = ""
    start = time.perf_counter()
    for seed in range(config.first_seed, config.first_seed + config.seeds):
        one = replace(config, seeds=1, first_seed=seed)
        rows += run_transfer(one, log=lambda m: print(m, file=sys.stderr, flush=True), unlabelled=unlabelled)
        done = seed - config.first_seed + 1
        notes = [f"seeds finished: {done} of {config.seeds}; wall time {time.perf_counter() - start:.0f} s"]
        text = to_markdown(rows, config, command, notes)
        write_outputs(args.out, args.json, text, rows)
    return text

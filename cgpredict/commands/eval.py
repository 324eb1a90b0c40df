"""``cgpredict eval``: run the GENNAPE transfer protocol and write a markdown table.

Pipeline position: model → CG → features → predictor → **evaluation across families**.

Trains the predictor on labelled NB-101 nets (80/10/10 split per seed), evaluates zero-shot and
after k-shot fine-tuning on each target family/task, next to FLOPs, params and the zero-cost proxy
columns of the data tables (see :mod:`cgpredict.transfer`). Needs the labelled data
(``$CGPREDICT_DATA`` or ``--data-dir``).

Examples::

    cgpredict eval --quick                                  # smoke test, about a minute
    cgpredict eval --targets nasbench201/cifar10 --seeds 2 --preset reduced -o nb201.md
    cgpredict eval --targets all --seeds 5 --settings zero-shot few-shot lofo -o full.md
    # fit each seed's NB-101 predictor once; later runs with the same options load it
    cgpredict eval --settings zero-shot --cache-dir ~/.cache/cgpredict/fits --scores-dir scores/ -o zs.md
    # leave-one-family-out on one task per family, 300 nets each
    cgpredict eval --settings lofo --lofo-sources nasbench101/cifar10 nasbench201/cifar10 \
        nasbench301/cifar10 transbench101_micro/class_scene --lofo-max 300 -o lofo.md
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "config_from_args", "register", "run_protocol"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the protocol options to ``p`` (shared by ``cgpredict eval`` and ``benchmarks/transfer.py``)."""
    from cgpredict.predictor import ALL_MEMBERS, MEMBERS
    from cgpredict.transfer import ALL_TARGETS, PRESETS, SOURCE

    p.add_argument("--source", default=SOURCE, help="labelled training family/task (default %(default)s)")
    p.add_argument("--targets", nargs="+", default=None, metavar="FAMILY/TASK",
                   help="targets, or 'all' (default: nasbench201/cifar10 nasbench301/cifar10; "
                        f"all = {' '.join(ALL_TARGETS)})")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (default %(default)s)")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (default %(default)s)")
    p.add_argument("--settings", nargs="+", default=["zero-shot", "few-shot"],
                   choices=["zero-shot", "few-shot", "transductive", "lofo"],
                   help="protocol settings (default: zero-shot few-shot)")
    p.add_argument("--shots", type=int, default=50, help="labelled target nets for fine-tuning (default %(default)s)")
    p.add_argument("--finetune-epochs", type=int, default=100)
    p.add_argument("--finetune-batch", type=int, default=1, help="fine-tuning batch (default %(default)s, as the protocol asks)")
    p.add_argument("--weight-folds", type=int, default=2,
                   help="folds of the cross-fitted Kendall τ behind the fine-tuned ensemble weights (0 = in-sample; default 2)")
    p.add_argument("--n-unlabelled", type=int, default=0,
                   help="extra unlabelled source CGs sampled from the builder for the encoder (default 0)")
    p.add_argument("--shared-encoder", action="store_true",
                   help="pre-train the encoder once, label-free, on the --n-unlabelled CGs and share it across seeds "
                        "(the paper's 50k-CG pre-training; cached in --cache-dir)")
    p.add_argument("--adapt-epochs", type=int, default=5,
                   help="with --shared-encoder: encoder epochs on the target CGs in the transductive setting")
    p.add_argument("--bags", type=int, default=1,
                   help="train this many source predictors per seed (seeds s + 1000k) and average them "
                        "(cgpredict.PredictorBag; zero-shot and few-shot only; default 1)")
    p.add_argument("--members", nargs="+", default=list(MEMBERS), choices=list(ALL_MEMBERS))
    p.add_argument("--preset", default="full", choices=sorted(PRESETS),
                   help="predictor sizes: full (library defaults), reduced (fewer epochs), quick (tiny)")
    p.add_argument("--predictor", default="{}", help='JSON overrides of Predictor options, e.g. \'{"kgnn": {"epochs": 50}}\'')
    p.add_argument("--max-source", type=int, default=None, help="cap on source nets (seeded subset)")
    p.add_argument("--max-target", type=int, default=None, help="cap on nets per target (seeded subset)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: quick preset, 1 seed, 80 source / 60 target nets, 10 shots, 5 fine-tuning epochs")
    p.add_argument("--data-dir", default=None, help="labelled-data folder (default $CGPREDICT_DATA)")
    p.add_argument("-o", "--out", default=None, help="markdown file to write (default: print)")
    p.add_argument("--json", default=None, help="also write every per-seed row to this JSON file")
    p.add_argument("--lofo-sources", nargs="+", default=None, metavar="FAMILY/TASK",
                   help="training sets of the lofo setting (default: every labelled family/task except the target's family)")
    p.add_argument("--lofo-max", type=int, default=None, help="cap on nets per lofo training set (seeded subset)")
    p.add_argument("--cache-dir", default=None,
                   help="save fitted source predictors here and reuse them in later runs with the same inputs and code")
    p.add_argument("--scores-dir", default=None, help="write every evaluation's per-net scores here (.npz)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> Any:
    """A :class:`cgpredict.transfer.TransferConfig` from parsed options (``--quick`` shrinks sizes)."""
    from cgpredict.transfer import TransferConfig

    targets = args.targets or ["nasbench201/cifar10", "nasbench301/cifar10"]
    if targets == ["all"]:
        from cgpredict.transfer import ALL_TARGETS

        targets = list(ALL_TARGETS)
    try:
        overrides = json.loads(args.predictor)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--predictor is not valid JSON: {exc}") from exc
    if not isinstance(overrides, dict):
        raise ValueError("--predictor must be a JSON object")
    cfg: dict[str, Any] = dict(
        source=args.source, targets=list(targets), seeds=args.seeds, first_seed=args.first_seed,
        settings=list(args.settings), shots=args.shots, finetune_epochs=args.finetune_epochs,
        finetune_batch=args.finetune_batch, weight_folds=args.weight_folds, n_unlabelled=args.n_unlabelled,
        shared_encoder=args.shared_encoder, adapt_epochs=args.adapt_epochs, bags=args.bags, members=list(args.members),
        preset=args.preset, predictor=overrides, max_source=args.max_source, max_target=args.max_target,
        lofo_sources=args.lofo_sources, lofo_max=args.lofo_max, data_dir=args.data_dir, cache_dir=args.cache_dir, scores_dir=args.scores_dir,
        progress=not args.no_progress)
    if args.quick:
        cfg.update(preset="quick", seeds=1, max_source=args.max_source or 80, max_target=args.max_target or 60,
                   shots=min(args.shots, 10), finetune_epochs=min(args.finetune_epochs, 5))
    return TransferConfig(**cfg)


def run_protocol(args: argparse.Namespace, command: str) -> str:
    """Run seed by seed, rewriting ``--out`` (and ``--json``) after each seed; returns the markdown."""
    from dataclasses import replace

    from cgpredict.transfer import run_transfer, to_markdown, unlabelled_source_cgs

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
        write_outputs(args, text, rows)
    return text


def write_outputs(args: argparse.Namespace, text: str, rows: list[dict[str, Any]]) -> None:
    """Write the report to ``--out`` and the per-seed rows to ``--json``, where given."""
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))


def _run(args: argparse.Namespace) -> int:
    command = "cgpredict eval " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else "cgpredict eval"
    text = run_protocol(args, command)
    if args.out:
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``eval`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "eval", help="run the transfer protocol (train on NB-101, evaluate on other families)",
        description="GENNAPE transfer protocol: zero-shot and k-shot fine-tuned ranking quality per target "
                    "family, next to FLOPs, params and zero-cost proxies.")
    add_arguments(parser)
    parser.set_defaults(func=_run)
    return parser

"""Command-line options of the transfer protocol (``benchmarks/transfer.py``).

Pipeline position: benchmark around model → CG → features → predictor → **evaluation across
families**. Every default comes from :class:`~protocol.config.TransferConfig` (written once there).
"""

from __future__ import annotations

import argparse
from typing import Any

from cgpredict.evaluation.transfer import parse_options
from cgpredict.predictor import ALL_MEMBERS

from .config import PRESETS, QUICK, SETTINGS, TransferConfig, labelled_targets, parse_target

#: The defaults (one instance; the options below print and use its values).
DEFAULTS = TransferConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the protocol options to ``p``."""
    d = DEFAULTS
    p.add_argument("--source", default=d.source, help="labelled training family/task (default %(default)s)")
    p.add_argument("--targets", nargs="+", default=None, metavar="FAMILY/TASK",
                   help=f"targets, or 'all': every labelled family/task of the registry whose table is in the data "
                        f"folder, less the source's family (default: {' '.join(d.targets)})")
    p.add_argument("--seeds", type=int, default=d.seeds, help="number of seeds (default %(default)s)")
    p.add_argument("--first-seed", type=int, default=d.first_seed, help="first seed (default %(default)s)")
    p.add_argument("--settings", nargs="+", default=list(d.settings), choices=list(SETTINGS),
                   help=f"protocol settings (default: {' '.join(d.settings)})")
    p.add_argument("--shots", type=int, default=d.shots,
                   help="labelled target nets for fine-tuning (default %(default)s)")
    p.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs)
    p.add_argument("--finetune-batch", type=int, default=d.finetune_batch,
                   help="fine-tuning batch (default %(default)s, as the protocol asks)")
    p.add_argument("--weight-folds", type=int, default=d.weight_folds,
                   help="folds of the cross-fitted Kendall τ behind the fine-tuned ensemble weights "
                        "(0 = in-sample; default %(default)s)")
    p.add_argument("--n-unlabelled", type=int, default=d.n_unlabelled,
                   help="extra unlabelled source CGs sampled from the builder for the encoder (default %(default)s)")
    p.add_argument("--shared-encoder", action="store_true",
                   help="pre-train the encoder once, label-free, on the --n-unlabelled CGs and share it across seeds "
                        "(the paper's 50k-CG pre-training; cached in --cache-dir)")
    p.add_argument("--adapt-epochs", type=int, default=d.adapt_epochs,
                   help="with --shared-encoder: encoder epochs on the target CGs in the transductive setting")
    p.add_argument("--bags", type=int, default=d.bags,
                   help="train this many source predictors per seed (seeds s + 1000k) and average them "
                        "(cgpredict.PredictorBag; zero-shot and few-shot only; default %(default)s)")
    p.add_argument("--members", nargs="+", default=list(d.members), choices=list(ALL_MEMBERS))
    p.add_argument("--preset", default=d.preset, choices=sorted(PRESETS),
                   help="predictor sizes: full (library defaults), reduced (fewer epochs), quick (tiny)")
    p.add_argument("--predictor", default="{}", help='JSON overrides of Predictor options, e.g. \'{"kgnn": {"epochs": 50}}\'')
    p.add_argument("--max-source", type=int, default=d.max_source, help="cap on source nets (seeded subset)")
    p.add_argument("--max-target", type=int, default=d.max_target, help="cap on nets per target (seeded subset)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: quick preset, 1 seed, {QUICK['max_source']} source / {QUICK['max_target']} "
                        f"target nets, {QUICK['shots']} shots, {QUICK['finetune_epochs']} fine-tuning epochs")
    p.add_argument("--data-dir", default=d.data_dir, help="labelled-data folder (default $CGPREDICT_DATA)")
    p.add_argument("-o", "--out", default=None, help="markdown file to write (default: print)")
    p.add_argument("--json", default=None, help="also write every per-seed row to this JSON file")
    p.add_argument("--lofo-sources", nargs="+", default=d.lofo_sources, metavar="FAMILY/TASK",
                   help="training sets of the lofo setting (default: every labelled family/task except the target's family)")
    p.add_argument("--lofo-max", type=int, default=d.lofo_max, help="cap on nets per lofo training set (seeded subset)")
    p.add_argument("--cache-dir", default=d.cache_dir,
                   help="save fitted source predictors here and reuse them in later runs with the same inputs and code")
    p.add_argument("--scores-dir", default=d.scores_dir, help="write every evaluation's per-net scores here (.npz)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> TransferConfig:
    """A :class:`TransferConfig` from parsed options (``--quick`` shrinks sizes, see :data:`QUICK`)."""
    targets = args.targets or list(DEFAULTS.targets)
    if targets == ["all"]:
        targets = labelled_targets(args.data_dir, exclude_family=parse_target(args.source)[0])
    overrides = parse_options(args.predictor)
    cfg: dict[str, Any] = dict(
        source=args.source, targets=list(targets), seeds=args.seeds, first_seed=args.first_seed,
        settings=list(args.settings), shots=args.shots, finetune_epochs=args.finetune_epochs,
        finetune_batch=args.finetune_batch, weight_folds=args.weight_folds, n_unlabelled=args.n_unlabelled,
        shared_encoder=args.shared_encoder, adapt_epochs=args.adapt_epochs, bags=args.bags, members=list(args.members),
        preset=args.preset, predictor=overrides, max_source=args.max_source, max_target=args.max_target,
        lofo_sources=args.lofo_sources, lofo_max=args.lofo_max, data_dir=args.data_dir, cache_dir=args.cache_dir,
        scores_dir=args.scores_dir, progress=not args.no_progress)
    if args.quick:
        cfg.update(preset=QUICK["preset"], seeds=QUICK["seeds"], max_source=args.max_source or QUICK["max_source"],
                   max_target=args.max_target or QUICK["max_target"], shots=min(args.shots, QUICK["shots"]),
                   finetune_epochs=min(args.finetune_epochs, QUICK["finetune_epochs"]))
    return TransferConfig(**cfg)

"""``cgpredict eval``: train on one labelled family, evaluate in-family, zero-shot and k-shot on another.

Pipeline position: model → CG → features → predictor → **evaluation across families**.

A thin command over :func:`cgpredict.evaluation.evaluate_transfer`: the source and target are
registered ``family/task`` names whose label tables are in the data folder (``--data-dir`` or
``$CGPREDICT_DATA``). It prints, per setting, each method's Spearman, Kendall τ, NDCG@10 and MAE
(mean ± std over seeds) next to FLOPs, params and the table's zero-cost proxy columns. The full
GENNAPE benchmark (presets, every family as target, transductive and leave-one-family-out
settings, fit caches, markdown reports) is ``benchmarks/transfer.py`` in the repository.

Examples::

    cgpredict eval --source nasbench101/cifar10 --target nasbench201/cifar10 --max-source 300 --shots 20
    cgpredict eval --target nasbench301/cifar10 --seeds 3 --predictor '{"encoder": {"epochs": 5}}' -o rows.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from typing import Any

__all__ = ["register"]

#: Columns of the printed table (each ``mean ± std`` over seeds).
COLUMNS: tuple[str, ...] = ("spearman", "kendall_tau", "ndcg@10", "mae")


def _defaults() -> dict[str, Any]:
    """The keyword defaults of :func:`~cgpredict.evaluation.evaluate_transfer` (written once, there)."""
    from cgpredict.evaluation import evaluate_transfer

    return {name: p.default for name, p in inspect.signature(evaluate_transfer).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _run(args: argparse.Namespace) -> int:
    from cgpredict.evaluation import evaluate_transfer, load_labelled, summarize
    from cgpredict.evaluation.transfer import parse_options
    from cgpredict.fileio import atomic_write, check_output
    from cgpredict.ranking import format_table

    if args.output:
        check_output(args.output, force=args.force)
    options = parse_options(args.predictor)
    progress = not args.quiet
    source = load_labelled(args.source, args.data_dir, args.max_source, progress=progress)
    target = load_labelled(args.target, args.data_dir, args.max_target, progress=progress)
    log = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    rows = evaluate_transfer({**options, "progress": False}, source, target, seeds=range(args.first_seed, args.first_seed + args.seeds), shots=args.shots,
                             settings=args.settings, finetune_epochs=args.finetune_epochs, log=log)
    for (setting, name), table in summarize(rows).items():
        print(f"\n{setting} — {name} ({table[0]['n_eval']} nets, {table[0]['seeds']} seed(s))")
        shown = [{"method": e["method"], "kind": e["kind"],
                  **{c: "—" if e[c][0] != e[c][0] else f"{e[c][0]:.3f} ± {e[c][1]:.3f}" for c in COLUMNS}}
                 for e in table]
        print(format_table(shown, [("method", "method", ""), ("kind", "kind", ""),
                                   *[(c, c, "") for c in COLUMNS]]))
    if args.output:
        atomic_write(args.output, json.dumps(rows, indent=1, default=float))
        print(f"\nwrote {args.output}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``eval`` sub-command to ``subparsers``."""
    from cgpredict.evaluation import SETTINGS

    d = _defaults()
    parser = subparsers.add_parser(
        "eval", help="train on one labelled family, evaluate in-family, zero-shot and k-shot on another",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="nasbench101/cifar10", metavar="FAMILY/TASK",
                        help="labelled training family/task (default %(default)s)")
    parser.add_argument("--target", required=True, metavar="FAMILY/TASK", help="labelled target family/task")
    parser.add_argument("--seeds", type=int, default=len(d["seeds"]), help="number of seeds (default %(default)s)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default %(default)s)")
    parser.add_argument("--settings", nargs="+", default=list(d["settings"]), choices=list(SETTINGS),
                        help="settings besides the in-family test (default: %(default)s)")
    parser.add_argument("--shots", type=int, default=d["shots"], help="labelled target nets to fine-tune on (default %(default)s)")
    parser.add_argument("--finetune-epochs", type=int, default=d["finetune_epochs"], help="default %(default)s")
    parser.add_argument("--max-source", type=int, default=None, help="cap on source nets (seeded subset)")
    parser.add_argument("--max-target", type=int, default=None, help="cap on target nets (seeded subset)")
    parser.add_argument("--predictor", default="{}",
                        help='JSON Predictor options, e.g. \'{"encoder": {"epochs": 5}}\' (default: the library defaults)')
    parser.add_argument("--data-dir", default=None, help="labelled-data folder (default $CGPREDICT_DATA)")
    parser.add_argument("-o", "--output", default=None, metavar="JSON", help="also write every per-seed row as JSON")
    parser.add_argument("--force", action="store_true", help="replace an existing --output")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log lines")
    parser.set_defaults(func=_run)
    return parser

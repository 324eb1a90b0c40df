"""``cgpredict search``: predictor-guided local search for a better network under a FLOPs budget.

Pipeline position: model → CG → features → predictor → ranking/**search**.

Example::

    cgpredict search "nasbench201:(0, 2, 3, 2, 3, 1)" --flops-budget 0.8 -o out/
    cgpredict search torchvision:resnet18 --flops-budget 0.8 --iterations 6 --topk 10 --no-proxies -o out/
    cgpredict search torchvision:resnet18 --pretrained nb101 -o out/        # the GENNAPE predictor
    cgpredict search "nasbench201:(0, 2, 3, 2, 3, 1)" --predictor my_predictor/ --method evolution -o out/

The scorer is by default the shipped generalist (``GeneralistPredictor.pretrained("generalist")``),
else a saved predictor folder (``--predictor DIR``: a generalist, a GENNAPE ``Predictor`` or a
``PredictorBag``) or another shipped one (``--pretrained nb101``: the GENNAPE predictor, which
predicts accuracies). A generalist scores every candidate against **one fixed reference group**,
the stored training group nearest in FLOPs to the start network, so scores of different batches
(and runs) are comparable; they are ranking scores, not accuracies. It runs the proxy bank on
every candidate (disk-cached; seconds per ImageNet-size network) unless ``--no-proxies``
(graph-only ranker, fast); ``--executor local:N`` scores each round's candidates in N processes.
Writes ``rank01/`` … (``model.cg.json``, ``model.py``,
``model.onnx``, ``diff.txt``), ``results.csv``, ``pareto.csv``, ``search.json`` and ``search.png``
(trajectory and Pareto front) to the output folder, plus a manifest of those entries. The folder
is checked before the search: an existing one is replaced only with ``--force``, and only if it
holds nothing but an earlier search's outputs (so no stale ``rankNN/`` survive and no other file
is removed); it is written whole and swapped in.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cgpredict.commands import predictor_args

__all__ = ["register"]


def _scorer(args: argparse.Namespace, executor: Any = None) -> Callable[[list], np.ndarray]:
    """The batch scorer the options name: a :class:`GeneralistScorer` (anchor it on the start; its proxy
    bank runs on ``executor`` when one is given) or a GENNAPE predictor's ``predict``."""
    from cgpredict.commands.predict import load_predictor
    from cgpredict.ranking import GeneralistScorer, predicts_accuracy

    predictor = load_predictor(args.predictor, progress=False, pretrained=args.pretrained)
    if predicts_accuracy(predictor):
        return predictor.predict
    if executor is not None:
        predictor.executor = executor
    return GeneralistScorer(predictor, use_proxies=not args.no_proxies)


def _check_args(args: argparse.Namespace) -> Path:
    """Validate the options before any work; returns the output folder."""
    from cgpredict.commands.checks import check_executor_spec, check_folder_output, check_model_arg
    from cgpredict.commands.predictor_args import check_kind_options, is_generalist, predictor_folder
    from cgpredict.errors import UsageError
    from cgpredict.search.export import check_search_folder

    spec = check_model_arg(args.model)
    generalist = is_generalist(predictor_folder(args.predictor, args.pretrained, flag="--predictor"))
    check_kind_options(args, generalist, generalist_only={"no_proxies": "--no-proxies", "executor": "--executor"})
    check_executor_spec(args.executor)
    for name in ("iterations", "topk", "mutants"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.flops_budget is not None and not args.flops_budget > 0:
        raise UsageError(f"--flops-budget must be a fraction > 0 of the start's MACs, got {args.flops_budget}")
    spec_file = spec.rpartition(":")[0] if ".py:" in spec else spec
    out = check_folder_output(args.output, inputs=[spec_file, args.predictor], folders=[args.predictor],
                              force=args.force)
    return check_search_folder(out)


def _run(args: argparse.Namespace) -> int:
    from cgpredict.quiet import progress_wanted
    from cgpredict.search import resolve_start, search_cg, write_results

    out = _check_args(args)
    progress = progress_wanted(not args.quiet)
    start = resolve_start(args.model, args.input_shape)  # a bad start fails before the predictor loads
    executor = None
    if args.executor is not None:
        from cgpredict.executors import get_executor

        executor = get_executor(args.executor)
    try:
        scorer = _scorer(args, executor)
        what = "predicted"
        if hasattr(scorer, "anchor"):
            group = scorer.anchor(start)
            what = "score"
            if not args.quiet:
                print(f"generalist scores against the training group {group!r} (nearest in FLOPs to the start); "
                      "scores rank networks, they are not accuracies")
        mutations = [m.strip() for m in args.mutations.split(",")] if args.mutations else None
        with warnings.catch_warnings():  # said once below, in the CLI's own words
            warnings.simplefilter("ignore", UserWarning)
            result = search_cg(start, scorer, flops_budget=args.flops_budget, penalty=args.penalty,
                               method=args.method, iterations=args.iterations, topk=args.topk, mutants=args.mutants,
                               max_queries=args.max_queries, mutations=mutations, flops_mode=args.flops_mode,
                               run_check=args.run_check, explore=args.explore, seed=args.seed, progress=progress)
    finally:
        if executor is not None:
            executor.close()
    rows = write_results(result, start, out, onnx=not args.no_onnx, progress=progress)
    if not rows:
        print(f"cgpredict search: no candidate met the budget after {result.queries} queries (moves that apply to "
              f"{start.name}: {', '.join(result.start_moves)}); raise --flops-budget, --iterations or use --penalty",
              file=sys.stderr)
        return 1
    if not args.quiet:
        s = result.start
        print(f"start {start.name}: {what} {s.pred:.3f}, {start.flops / 1e6:.1f} MMACs, {start.params / 1e6:.3f} M params")
        for r in rows:
            note = "" if r.get("runs", True) else " (does not run)"
            print(f"#{r['rank']:>2}: {what} {r['pred']:.3f}, {r['macs'] / 1e6:.1f} MMACs, "
                  f"{r['params'] / 1e6:.3f} M params{note}")
        skipped = {r["skipped"] for r in rows if r.get("skipped")}
        for msg in skipped:
            print(f"note: {msg}", file=sys.stderr)
        print(f"{result.queries} predictor queries; wrote {len(rows)} networks to {args.output}")
    message = result.below_start()
    if message:
        print(f"cgpredict search: warning: {message}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``search`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "search",
        help="mutate a network's CG towards a higher predicted score within a FLOPs budget",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL",
                        help="torchvision:NAME, path.py:Class, model.onnx, cg.json or FAMILY:ARCH")
    parser.add_argument("--input-shape", default=None, help="e.g. 1,3,224,224 (default: the model's own)")
    predictor_args.add_arguments(parser, folder_flag="--predictor")
    parser.add_argument("--flops-budget", type=float, default=None,
                        help="MACs budget as a fraction of the start's (e.g. 0.8); default: none")
    parser.add_argument("--penalty", type=float, default=0.0, help="0 = hard budget, >0 = soft penalty weight")
    parser.add_argument("--method", choices=("local", "evolution", "random"), default="local")
    parser.add_argument("--iterations", type=int, default=6, help="local-search rounds (default 6)")
    parser.add_argument("--topk", type=int, default=10, help="networks kept per round and returned (default 10)")
    parser.add_argument("--mutants", type=int, default=16, help="mutants per kept network per round (default 16)")
    parser.add_argument("--explore", type=float, default=0.5,
                        help="local search, hard budget: share of parents kept over the budget (default 0.5)")
    parser.add_argument("--max-queries", type=int, default=None, help="stop after this many predictor queries")
    parser.add_argument("--executor", default=None, metavar="SPEC",
                        help="generalist only: run the proxy bank on each round's candidates on this executor: "
                             "'local:N' (N processes) or 'ray' / 'ray:ADDRESS'; same scores")
    parser.add_argument("--mutations", default=None, help="comma-separated mutation names (default: all)")
    parser.add_argument("--flops-mode", default="torchvision", help="MAC counting mode of the budget")
    parser.add_argument("--run-check", action="store_true", help="build and run every candidate (slow)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export of the results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument("-f", "--force", action="store_true",
                        help="replace an earlier search's output folder (never a folder holding other files)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    parser.set_defaults(func=_run)
    return parser

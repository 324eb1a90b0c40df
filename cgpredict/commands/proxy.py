"""``cgpredict proxy``: score networks with the GenNAS / Eproxy regression proxies, write a CSV.

Pipeline position: model → **proxy score** → features → predictor → ranking/search.

Example::

    cgpredict proxy torchvision:resnet18 torchvision:mobilenet_v2 --method eproxy -o scores.csv
    cgpredict proxy "nasbench201:(0, 2, 3, 2, 3, 1)" --method gennas --preset combo -o s.csv

One row per network: ``model``, ``method``, ``preset``, ``score`` (= −loss, higher is better),
``loss``, ``adjusted_loss``, ``initial_loss``, ``loss_drop``, ``loss_stage1..N`` (per used tap,
shallowest first), ``taps`` (their module paths), ``iterations``, ``seconds`` and ``error`` (empty
on success). A network that fails gets a row with its error; the
exit code is 1 if every network failed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "write_csv"]


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write result rows to ``path`` (columns: union of the rows' keys, first-seen order)."""
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    # keep timing and error last whatever the per-tap columns are
    for tail in ("iterations", "seconds", "error"):
        if tail in columns:
            columns.remove(tail)
            columns.append(tail)
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _run(args: argparse.Namespace) -> int:
    from cgpredict.proxies import score_many
    from cgpredict.proxies.specs import load_model

    builders = [lambda spec=spec: load_model(spec) for spec in args.models]
    results = score_many(
        builders,
        method=args.method,
        preset=args.preset,
        iterations=args.iterations,
        target_size=args.target_size,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
        input_size=args.input_size,
        inputs=args.inputs,
        names=list(args.models),
        concurrency=args.concurrency,
        flops_alpha=args.flops_alpha,
        progress=not args.quiet,
    )
    write_csv([r.to_row() for r in results], args.output)
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"cgpredict proxy: {r.name}: {r.error}", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {len(results)} rows ({len(failed)} failed) to {args.output}")
    return 1 if results and len(failed) == len(results) else 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``proxy`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "proxy",
        help="score networks with the GenNAS / Eproxy regression proxies",
        description="Train each network briefly on synthetic regression targets; lower loss = better (score = -loss).",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="torchvision:NAME, path.py:Class or nasbench201:ARCH")
    parser.add_argument("--method", choices=("gennas", "eproxy"), default="gennas")
    parser.add_argument("--preset", default=None, help="gennas: combo|single|sin_local|raw; eproxy: default|sine|dot|raw")
    parser.add_argument("--iterations", type=int, default=None, help="SGD steps (default: 100 gennas, 10 eproxy)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--target-size", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--inputs", choices=("natural", "noise"), default="natural")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=None, help="networks trained at once (default 4 on CUDA, 1 on CPU)")
    parser.add_argument("--flops-alpha", type=float, default=0.0, help="FLOPs factor: loss*(1+alpha*norm(MACs)); 0 = off")
    parser.add_argument("-o", "--output", required=True, help="CSV file to write")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=_run)
    return parser

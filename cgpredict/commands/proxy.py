"""``cgpredict proxy``: score networks with the GenNAS / Eproxy regression proxies, write a CSV.

Pipeline position: model → **proxy score** → features → predictor → ranking/search.

Example::

    cgpredict proxy torchvision:resnet18 torchvision:mobilenet_v2 --method eproxy -o scores.csv
    cgpredict proxy "nasbench201:(0, 2, 3, 2, 3, 1)" --method gennas --preset combo -o s.csv
    cgpredict proxy --family nasbench201 --task cifar10 --n 50 --method eproxy,gennas -o nb201.csv

Family mode (``--family``) scores ``--n`` networks of a family — a seeded subset of its labelled
table when ``CGPREDICT_DATA`` has one (a ``label`` column is then written), else ``--n`` sampled
architectures — through their CGs (``CG.to_module()``) with the proxy-feature disk cache
(:mod:`cgpredict.proxies.features`), so an interrupted run resumes where it stopped. One row per
net: ``arch``, ``label``, then per method ``<method>_score``, ``<method>_loss``,
``<method>_stage1..N``, ``<method>_seconds``, ``<method>_error``.

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


def _methods(text: str) -> list[str]:
    methods = [m.strip() for m in str(text).split(",") if m.strip()]
    bad = [m for m in methods if m not in ("gennas", "eproxy")]
    if not methods or bad:
        raise argparse.ArgumentTypeError(f"--method takes gennas, eproxy or a comma list of them, got {text!r}")
    return methods


def _family_rows(args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """Score ``--n`` nets of ``--family``; returns the rows and the number of failed scores."""
    import numpy as np
    from tqdm.auto import tqdm

    from cgpredict.datasets import load_family
    from cgpredict.proxies.features import ProxyConfig, proxy_features

    fam = None
    try:
        fam = load_family(args.family, task=args.task)
    except (FileNotFoundError, ValueError):
        fam = None
    if fam is not None and fam.labels is not None and len(fam) > args.n:
        rng = np.random.default_rng(args.seed)
        fam = fam.subset(np.sort(rng.choice(len(fam), size=args.n, replace=False)))
    elif fam is None:
        fam = load_family(args.family, task=args.task, n=args.n, seed=args.seed)
    cgs = fam.cgs(progress=not args.quiet)
    configs = {m: ProxyConfig(method=m, preset=args.preset, iterations=args.iterations, batch_size=args.batch_size,
                              target_size=args.target_size, seed=args.seed, inputs=args.inputs)
               for m in args.method}
    rows, failed = [], 0
    bar = tqdm(total=len(cgs) * len(configs), unit="net", desc=f"proxy {args.family}", disable=args.quiet)
    for i, cg in enumerate(cgs):
        row: dict[str, Any] = {"arch": fam.key(i)}
        if fam.labels is not None:
            row["label"] = float(fam.labels[i])
        for method, config in configs.items():
            feats = proxy_features(cg, config, cache=not args.no_cache)
            row[f"{method}_score"] = feats.score
            row[f"{method}_loss"] = feats.loss
            for k, value in enumerate(feats.stage_losses, start=1):
                row[f"{method}_stage{k}"] = value
            row[f"{method}_seconds"] = round(feats.seconds, 4)
            row[f"{method}_error"] = feats.error or ""
            failed += not feats.ok
            bar.update(1)
            bar.set_postfix(failed=failed)
        rows.append(row)
    bar.close()
    return rows, failed


def _run(args: argparse.Namespace) -> int:
    from cgpredict.proxies import score_many
    from cgpredict.proxies.specs import load_model

    if isinstance(args.method, str):
        args.method = _methods(args.method)
    if args.family:
        if args.models:
            print("cgpredict proxy: give either MODEL arguments or --family, not both", file=sys.stderr)
            return 2
        if args.n is None or args.n < 1:
            print("cgpredict proxy: --family needs --n N (N >= 1)", file=sys.stderr)
            return 2
        rows, failed = _family_rows(args)
        write_csv(rows, args.output)
        if not args.quiet:
            print(f"wrote {len(rows)} rows ({failed} failed scores) to {args.output}")
        return 1 if rows and failed == len(rows) * len(args.method) else 0
    if not args.models:
        print("cgpredict proxy: give MODEL arguments or --family", file=sys.stderr)
        return 2
    if len(args.method) != 1:
        print("cgpredict proxy: several methods are only supported with --family", file=sys.stderr)
        return 2

    builders = [lambda spec=spec: load_model(spec) for spec in args.models]
    results = score_many(
        builders,
        method=args.method[0],
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
    parser.add_argument("models", nargs="*", metavar="MODEL", help="torchvision:NAME, path.py:Class or nasbench201:ARCH")
    parser.add_argument("--family", default=None, help="score --n nets of this architecture family instead of MODELs (CPU, at the family's "
                        "input size; --device/--input-size/--concurrency/--flops-alpha apply to MODELs only)")
    parser.add_argument("--task", default=None, help="family task (default: the family's first)")
    parser.add_argument("--n", type=int, default=None, help="number of family nets to score")
    parser.add_argument("--no-cache", action="store_true", help="family mode: ignore the proxy-feature disk cache")
    parser.add_argument("--method", type=_methods, default=["gennas"],
                        help="gennas, eproxy, or (family mode) a comma list such as eproxy,gennas")
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

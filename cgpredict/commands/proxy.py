"""``cgpredict proxy``: score networks with the training-free proxy bank or the regression proxies, write a CSV.

Pipeline position: model → **proxy score** → features → predictor → ranking/search.

Training-free proxies (the bank, :mod:`cgpredict.proxies.bank`: synflow, naswot, snip, grad_norm,
fisher, jacov, zico, meco, expressivity, progressivity, trainability, complexity; ``all`` = every one
of them, ``az`` = the four AZ-NAS scores)::

    cgpredict proxy torchvision:resnet18 --method synflow,meco --resolution 64 -o scores.csv
    cgpredict proxy --family nasbench201 --n 100 --method all -o nb201.csv

write one row per network: ``model`` (or ``arch`` and ``label`` in family mode), one column per
proxy (higher is better, empty/NaN where it failed), ``az_nas`` (AZ-NAS's rank aggregate over the
networks of this CSV, when its four scores are asked for), ``seconds`` and ``error``
(``proxy: reason`` for each failed proxy). Scores are cached on disk per (CG, configuration); a rerun pays nothing.
A MODEL is converted to its CG first (at ``--input-shape``, else ``--input-size``, or its family's
input size) and scored on the module rebuilt from it; a non-image input (``N,C,L`` signals, ``N,D``
features) is scored on seeded noise of its shape.

Regression proxies (``--method gennas`` / ``eproxy``, a trained few-step proxy; alone, MODELs are
trained as modules, not CGs)::

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

#: ``--loss`` choices (:data:`cgpredict.proxies.zc_pass.LOSSES`, named here so the parser does not import torch).
BANK_LOSSES: tuple[str, ...] = ("cross_entropy", "mse", "l1")

REGRESSION = ("gennas", "eproxy")


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write result rows to ``path`` atomically (columns: union of the rows' keys, first-seen order)."""
    from cgpredict.fileio import atomic_writer

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
    with atomic_writer(Path(path), binary=False) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _methods(text: str) -> list[str]:
    from cgpredict.proxies.bank import parse_methods

    try:
        return list(parse_methods(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--method: {exc}") from exc


def _input_shape(text: str) -> tuple[int, ...]:
    from cgpredict.model_spec import parse_input_shape

    try:
        return parse_input_shape(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _is_bank(methods: list[str]) -> bool:
    """Whether the bank path runs (any training-free proxy asked for)."""
    return any(m not in REGRESSION for m in methods)


def _bank_config(args: argparse.Namespace) -> Any:
    from cgpredict.proxies.bank import BankConfig

    extra = {"batch_size": args.batch_size} if args.batch_size is not None else {}
    return BankConfig(resolution=args.resolution, seed=args.seed, inputs=args.inputs,
                      regression_iterations=args.iterations, loss=args.loss, **extra)


def _load_sample(args: argparse.Namespace) -> Any:
    """``--n`` nets of ``--family``: a seeded subset of its labelled table, else sampled architectures."""
    import numpy as np

    from cgpredict.datasets import load_family

    try:
        fam = load_family(args.family, task=args.task)
    except (FileNotFoundError, ValueError):
        fam = None
    if fam is not None and fam.labels is not None and len(fam) > args.n:
        rng = np.random.default_rng(args.seed)
        fam = fam.subset(np.sort(rng.choice(len(fam), size=args.n, replace=False)))
    elif fam is None:
        fam = load_family(args.family, task=args.task, n=args.n, seed=args.seed)
    return fam


def _model_cg(spec: str, input_size: int, input_shape: tuple[int, ...] | None = None) -> Any:
    """The CG of a MODEL spec: converted at ``input_shape`` when given, else a family arch at its family's
    input size, else at ``(1, 3, input_size, input_size)``."""
    from cgpredict.converters import from_torch
    from cgpredict.proxies.specs import _family, load_model

    kind, sep, rest = spec.partition(":")
    family = _family(kind) if sep and rest and not kind.endswith(".py") else None
    shape = input_shape or (tuple(family.INPUT_SHAPE) if family is not None else (1, 3, input_size, input_size))
    if spec.endswith(".onnx"):
        from cgpredict.model_spec import spec_to_cg

        return spec_to_cg(spec, input_shape=input_shape)
    return from_torch(load_model(spec), input_shape=shape, name=spec)


def _bank_rows(args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """Score MODELs or ``--n`` nets of ``--family`` with the bank; returns rows and failed nets."""
    import math

    from cgpredict.quiet import progress_bar

    from cgpredict.proxies.bank import bank_scores

    config = _bank_config(args)
    if args.family:
        fam = _load_sample(args)
        cgs = fam.cgs(progress=not args.quiet)
        items = [({"arch": fam.key(i), **({"label": float(fam.labels[i])} if fam.labels is not None else {})}, cg)
                 for i, cg in enumerate(cgs)]
    else:
        items = []
        for spec in args.models:
            try:
                items.append(({"model": spec}, _model_cg(spec, args.input_size, args.input_shape)))
            except Exception as exc:  # noqa: BLE001 - a model that cannot be loaded or converted is a failed row
                items.append(({"model": spec}, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]))
    done: dict[int, Any] = {}
    if getattr(args, "executor", None) is not None:  # compute on the executor first, cached here
        from cgpredict.proxies.bank import bank_scores_many

        ready = [i for i, (_, cg) in enumerate(items) if not isinstance(cg, str)]
        results = bank_scores_many([items[i][1] for i in ready], args.method, config, cache=not args.no_cache,
                                   progress=not args.quiet, executor=args.executor,
                                   names=[items[i][0].get("model") or items[i][0]["arch"] for i in ready])
        done = dict(zip(ready, results))
    rows, failed = [], 0
    bar = progress_bar(items, unit="net", desc="proxy bank", progress=not (args.quiet or done))
    for index, (head, cg) in enumerate(bar):
        row = dict(head)
        if index in done:
            row.update(done[index].row(args.method))
        elif isinstance(cg, str):
            row.update({m: math.nan for m in args.method})
            row.update({"seconds": 0.0, "error": f"load: {cg}"})
        else:
            result = bank_scores(cg, args.method, config, cache=not args.no_cache, name=head.get("model"))
            row.update(result.row(args.method))
        failed += bool(row["error"])
        rows.append(row)
        bar.set_postfix(failed=failed)
    az = ("expressivity", "progressivity", "trainability", "complexity")
    if rows and all(m in args.method for m in az):  # AZ-NAS's set-level rank aggregate over these networks
        from cgpredict.proxies.zc_aznas import aggregate

        for row, value in zip(rows, aggregate({m: [float(r[m]) for r in rows] for m in az})):
            row["az_nas"] = float(value)
    return rows, failed


def _family_rows(args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """Score ``--n`` nets of ``--family``; returns the rows and the number of failed scores."""
    from cgpredict.quiet import progress_bar

    from cgpredict.proxies.features import ProxyConfig, proxy_features

    fam = _load_sample(args)
    cgs = fam.cgs(progress=not args.quiet)
    configs = {m: ProxyConfig(method=m, preset=args.preset, iterations=args.iterations, batch_size=args.batch_size or 16,
                              target_size=args.target_size, seed=args.seed, inputs=args.inputs)
               for m in args.method}
    rows, failed = [], 0
    bar = progress_bar(total=len(cgs) * len(configs), unit="net", desc=f"proxy {args.family}", progress=not args.quiet)
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

    from cgpredict.fileio import OutputExistsError, check_output

    if isinstance(args.method, str):
        args.method = _methods(args.method)
    try:
        check_output(args.output, inputs=args.models, force=args.force)
    except OutputExistsError as exc:
        print(f"cgpredict proxy: {exc}", file=sys.stderr)
        return 2
    if args.family and args.models:
        print("cgpredict proxy: give either MODEL arguments or --family, not both", file=sys.stderr)
        return 2
    if args.family and (args.n is None or args.n < 1):
        print("cgpredict proxy: --family needs --n N (N >= 1)", file=sys.stderr)
        return 2
    if _is_bank(args.method):
        if not args.family and not args.models:
            print("cgpredict proxy: give MODEL arguments or --family", file=sys.stderr)
            return 2
        rows, failed = _bank_rows(args)
        write_csv(rows, args.output)
        for row in rows:
            if row["error"] and not args.quiet:
                print(f"cgpredict proxy: {row.get('model', row.get('arch'))}: {row['error']}", file=sys.stderr)
        if not args.quiet:
            print(f"wrote {len(rows)} rows ({failed} with a failed proxy) to {args.output}")
        return 1 if rows and all(all(row[m] != row[m] for m in args.method) for row in rows) else 0
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
    if args.input_shape is not None:
        print(f"cgpredict proxy: --input-shape applies to the training-free proxies of the bank, not to "
              f"{args.method[0]} (it trains MODELs on square images of --input-size); name bank proxies, e.g. "
              "--method all or --method synflow,naswot,meco", file=sys.stderr)
        return 2

    builders = [lambda spec=spec: load_model(spec) for spec in args.models]
    results = score_many(
        builders,
        method=args.method[0],
        preset=args.preset,
        iterations=args.iterations,
        target_size=args.target_size,
        batch_size=args.batch_size or 16,
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
        help="score networks with training-free proxies (SynFlow, NASWOT, MeCo, AZ-NAS…) or GenNAS / Eproxy",
        description="Training-free proxy scores (higher is better) of MODELs or of --n nets of a --family, as a CSV; "
                    "gennas/eproxy alone train each network briefly on synthetic regression targets (score = -loss).",
    )
    parser.add_argument("models", nargs="*", metavar="MODEL", help="torchvision:NAME, path.py:Class or nasbench201:ARCH")
    parser.add_argument("--family", default=None, help="score --n nets of this architecture family instead of MODELs (CPU, at the family's "
                        "input size; --device/--input-size/--concurrency/--flops-alpha apply to MODELs only)")
    parser.add_argument("--task", default=None, help="family task (default: the family's first)")
    parser.add_argument("--n", type=int, default=None, help="number of family nets to score")
    parser.add_argument("--no-cache", action="store_true", help="ignore the proxy disk caches (family mode and the bank)")
    parser.add_argument("--method", type=_methods, default=["gennas"],
                        help="comma list of proxies: synflow, naswot, snip, grad_norm, fisher, jacov, zico, meco, expressivity, "
                             "progressivity, trainability, complexity (all: every one; az: the four AZ-NAS scores), gennas, eproxy")
    parser.add_argument("--preset", default=None, help="gennas: combo|single|sin_local|raw; eproxy: default|sine|dot|raw")
    parser.add_argument("--iterations", type=int, default=None, help="SGD steps (default: 100 gennas, 10 eproxy)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per batch (default: the bank's shared pass 32 in two halves; gennas/eproxy 16)")
    parser.add_argument("--resolution", type=int, default=None,
                        help="training-free proxies: input side (default: the network's own; smaller = faster for "
                             "ImageNet-size nets)")
    parser.add_argument("--target-size", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--input-shape", type=_input_shape, default=None, metavar="N,C,...",
                        help="training-free proxies: convert MODELs at this input shape, batch first (e.g. "
                             "1,40,100 for a 1-D conv net; non-image inputs are scored on seeded noise)")
    parser.add_argument("--inputs", choices=("natural", "noise"), default="natural")
    parser.add_argument("--loss", choices=BANK_LOSSES, default="cross_entropy",
                        help="bank: the gradient proxies' loss against random targets (cross_entropy for class "
                             "or segmentation outputs, mse/l1 for regression outputs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=None, help="networks trained at once (default 4 on CUDA, 1 on CPU)")
    parser.add_argument("--flops-alpha", type=float, default=0.0, help="FLOPs factor: loss*(1+alpha*norm(MACs)); 0 = off")
    parser.add_argument("-o", "--output", required=True, help="CSV file to write (refused if it exists, unless --force)")
    parser.add_argument("--force", action="store_true", help="replace an existing --output")
    parser.add_argument("--executor", default=None, metavar="SPEC",
                        help="training-free proxies only: score on this executor ('local:N', 'ray', 'ray:auto', "
                             "'ray:HOST:PORT'); results are cached here")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=_run)
    return parser

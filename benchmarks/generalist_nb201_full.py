"""Zero-shot ranking of all 15,625 NAS-Bench-201 networks by the shipped ``generalist_demo`` (issue 23).

Pipeline position: the 200-epoch NB-201 table → CGs → proxy bank (disk-cached; ``--executor`` for the
uncached) → raw generalist columns → ``GeneralistPredictor.pretrained("generalist_demo")``, trained
without any NB-201-cell family (NB-201, NATS size space, TransNAS micro), so every NB-201 label here
is unseen → Spearman / Kendall τ / NDCG@10 against the 200-epoch test accuracies on CIFAR-10,
CIFAR-100 and ImageNet16-120, beside FLOPs, params, every proxy of the bank alone, the AZ-NAS rank
aggregate and the mean rank of all proxies, all on the same networks.

Two set sizes: the whole space ranked as one set, and ``--sets`` seeded random sets of ``--set-size``
networks (a user's typical candidate pool; the leave-one-family-out tables rank 60–200 nets), where
the per-set Spearman is averaged.

Example (the bank cache filled by ``benchmarks/proxies.py --bank --tables nb201_200ep --n-200ep 15625
--inputs noise``; cold, about 50 min on 2 cores)::

    CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=1 python benchmarks/generalist_nb201_full.py \\
        --executor local:2 --report benchmarks/results/generalist_nb201_full.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Tasks of the 200-epoch table (``load_family("nasbench201", task=..., table="nb201_200ep")``) and their names.
TASKS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "ImageNet16-120": "ImageNet16-120"}


def load(data_dir: str, n: int | None, seed: int) -> tuple[list, dict[str, np.ndarray]]:
    """CGs of the 200-epoch table (all, or a seeded subsample of ``n``) and their labels per task."""
    from proxy_bank_report import sample_indices

    from cgpredict.datasets import load_family

    fams = {task: load_family("nasbench201", task=task, table="nb201_200ep", data_dir=data_dir) for task in TASKS}
    first = next(iter(fams.values()))
    if any(f.archs != first.archs for f in fams.values()):
        raise SystemExit("the 200-epoch table's tasks list different networks")
    idx = sample_indices(len(first), n, seed)
    labels = {task: np.asarray(f.labels, dtype=float)[idx] for task, f in fams.items()}
    return first.subset(idx).cgs(progress=False), labels


def task_metrics(model, cgs: list, labels: dict[str, np.ndarray], executor: str | None  # noqa: ANN001
                 ) -> tuple[dict[str, dict[str, tuple[float, float, float]]], np.ndarray, int]:
    """Per task, the metrics of every ranking of the whole set: ``model`` with and without proxies and
    the LOFO benchmark's baselines (:func:`generalist.baselines`); also the raw columns (for the
    per-set rankings) and the number of nets with a failed proxy."""
    from generalist import TableData, baselines, metrics

    from cgpredict.generalist import FEATURE_PROXIES

    model.executor = executor  # the bank scores the uncached nets there
    results = model.bank_results(cgs)
    raw = model.columns(cgs, bank=results)
    scores = {m: np.array([r.scores.get(m, np.nan) for r in results]) for m in FEATURE_PROXIES}
    failed = sum(any(m in r.errors for m in FEATURE_PROXIES) for r in results)
    ranked = {"generalist_demo": model.predict(cgs, raw=raw),
              "generalist_demo --no-proxies": model.predict(cgs, raw=raw, use_proxies=False)}
    out = {}
    for task, y in labels.items():
        out[task] = {name: metrics(y, pred) for name, pred in ranked.items()}
        out[task].update(baselines(TableData(task, "NB-201", raw, scores, y, failed)))
    return out, raw, failed


def per_set(model, raw: np.ndarray, labels: dict[str, np.ndarray], size: int, sets: int,  # noqa: ANN001
            seed: int) -> dict:
    """Mean ± std over ``sets`` random sets of ``size`` nets of ``model``'s Spearman, FLOPs' and each
    single proxy's, per task."""
    from generalist import metrics

    from cgpredict.generalist import FEATURE_PROXIES

    rng = np.random.default_rng(seed)
    picks = [np.sort(rng.choice(len(raw), size, replace=False)) for _ in range(sets)]
    out: dict = {}
    for task, y in labels.items():
        rows: dict[str, list[float]] = {}
        for idx in picks:
            pred = model.predict([None] * size, raw=raw[idx])
            rows.setdefault("generalist_demo", []).append(metrics(y[idx], pred)[0])
            rows.setdefault("FLOPs", []).append(metrics(y[idx], raw[idx, model.column_names.index("log_flops")])[0])
            for m in FEATURE_PROXIES:
                rows.setdefault(m, []).append(metrics(y[idx], raw[idx, model.column_names.index(m)])[0])
        out[task] = {k: (float(np.mean(v)), float(np.std(v))) for k, v in rows.items()}
    return out


def report(all_metrics: dict, sets: dict, n: int, failed: int, args: argparse.Namespace, seconds: float) -> str:
    """The markdown report."""
    from cgpredict.generalist import FEATURE_PROXIES
    from cgpredict.provenance import code_line

    cmd = "CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=1 python benchmarks/generalist_nb201_full.py " + " ".join(
        sys.argv[1:])
    lines = ["# `generalist_demo` zero-shot on NAS-Bench-201 (200-epoch labels)", "", "Reproduce with:", "", "```",
             cmd, "```", "", code_line(), "",
             f"{n} NB-201 networks (`load_family('nasbench201', table='nb201_200ep')`, 200-epoch test accuracy; "
             f"{failed} with a failed proxy, which gets the neutral value and a mask). `generalist_demo` is the "
             "shipped checkpoint trained without any NB-201-cell family, so none of these labels — nor any "
             "other network built from the NB-201 cell — was seen in training. Proxy bank inputs: "
             f"{args.inputs} (the checkpoint's `bank`), batch 32, seed 0. Baselines rank NaN lowest. Wall time "
             f"{seconds:.0f} s.", "", f"## All {n} networks ranked as one set", "",
             "| ranking | " + " | ".join(f"{t} ρ" for t in TASKS.values()) + " | "
             + " | ".join(f"{t} τ" for t in TASKS.values()) + " | CIFAR-10 NDCG@10 |",
             "|---|" + "---|" * (2 * len(TASKS) + 1)]
    for name in all_metrics[next(iter(TASKS))]:
        rho = [all_metrics[t][name][0] for t in TASKS]
        tau = [all_metrics[t][name][1] for t in TASKS]
        lines.append(f"| {name} | " + " | ".join(f"{v:+.3f}" for v in rho) + " | "
                     + " | ".join(f"{v:+.3f}" for v in tau) + f" | {all_metrics['cifar10'][name][2]:.3f} |")
    if sets:
        lines += ["", f"## Random sets of {args.set_size} networks ({args.sets} sets, seed {args.seed}): "
                  "Spearman ρ, mean ± std over sets", "",
                  "| ranking | " + " | ".join(TASKS.values()) + " |", "|---|" + "---|" * len(TASKS)]
        for name in ("generalist_demo", "FLOPs", *FEATURE_PROXIES):
            lines.append(f"| {name} | " + " | ".join(f"{sets[t][name][0]:+.3f} ± {sets[t][name][1]:.3f}"
                                                     for t in TASKS) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run and print (and optionally write) the report; returns an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("CGPREDICT_DATA", ""))
    parser.add_argument("--n", type=int, default=None, help="a seeded subsample of the table (default: all 15,625)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsample and of the random sets")
    parser.add_argument("--inputs", default="noise", choices=("natural", "noise"),
                        help="must match the checkpoint's bank inputs (a check, not a switch)")
    parser.add_argument("--set-size", type=int, default=100)
    parser.add_argument("--sets", type=int, default=50, help="random sets of --set-size nets (0: skip)")
    parser.add_argument("--executor", default=None, help="score uncached nets there (e.g. local:2)")
    parser.add_argument("--report", default=None, help="markdown report to write")
    args = parser.parse_args(argv)
    if not args.data_dir or not (Path(args.data_dir) / "nb201_200ep").is_dir():
        print("needs the 200-epoch NB-201 table: set CGPREDICT_DATA or pass --data-dir", file=sys.stderr)
        return 2
    from cgpredict.generalist import GeneralistPredictor
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    model = GeneralistPredictor.pretrained("generalist_demo", progress=sys.stderr.isatty())
    if model.bank.get("inputs", "natural") != args.inputs:
        print(f"generalist_demo scores with {model.bank.get('inputs', 'natural')!r} inputs, not {args.inputs!r}",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    cgs, labels = load(args.data_dir, args.n, args.seed)
    all_metrics, raw, failed = task_metrics(model, cgs, labels, args.executor)
    size = min(args.set_size, len(cgs))
    sets = per_set(model, raw, labels, size, args.sets, args.seed) if args.sets and size < len(cgs) else {}
    text = report(all_metrics, sets, len(cgs), failed, args, time.perf_counter() - t0)
    from report_io import emit_report

    emit_report(text, args.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

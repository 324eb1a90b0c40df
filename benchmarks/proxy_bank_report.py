"""The proxy bank on every labelled table: Spearman table, agreement with NAS-Bench-Suite-Zero, cost.

Pipeline position: model → CG → **proxy bank scores** → (checked against) benchmark labels and the
tables' own zero-cost columns. Called by ``benchmarks/proxies.py --bank`` (see its docstring).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

#: Our proxy → the NAS-Bench-Suite-Zero column of the same proxy in the NASLib tables.
TABLE_COLUMN = {"synflow": "synflow", "naswot": "nwot", "snip": "snip", "grad_norm": "grad_norm",
                "fisher": "fisher", "jacov": "jacov", "complexity": "flops"}

#: Published label-free Spearman figures quoted in issue 22 (proxy → table → figure).
PUBLISHED = {
    "az_nas": {"nb201_c10": "0.91", "nb201_c100": "0.90", "nb201_in16": "0.89", "nb201_200ep": "0.91", "nb301": "0.70"},
    "meco": {"nb201_c10": "0.89", "nb201_200ep": "0.89", "nb301": "0.71"},
    "zico": {"nb201_c10": "0.78–0.81", "nb201_c100": "0.78–0.81", "nb201_in16": "0.78–0.81", "nb201_200ep": "0.78–0.81"},
    "naswot": {"nb201_c10": "0.77–0.80", "nb201_c100": "0.77–0.80", "nb201_in16": "0.77–0.80", "nb301": "0.47"},
}

TRANSNAS_TASKS = ("class_scene", "class_object", "autoencoder", "normal", "jigsaw", "room_layout", "segmentsemantic")


@dataclass(frozen=True)
class Table:
    """One labelled table: a short name, the family, its task and where the labels come from."""

    name: str
    family: str
    task: str
    source: str = "naslib"  # or "nb201_200ep" / "nats_sss"


def all_tables() -> list[Table]:
    """Every labelled table this repository knows, in report order (cheapest families first)."""
    out = [Table("nb201_c10", "nasbench201", "cifar10"), Table("nb201_c100", "nasbench201", "cifar100"),
           Table("nb201_in16", "nasbench201", "ImageNet16-120"), Table("nb201_200ep", "nasbench201", "cifar10", "nb201_200ep"),
           Table("nb301", "nasbench301", "cifar10")]
    out += [Table(f"tnb_{t}", "transbench101_micro", t) for t in TRANSNAS_TASKS]
    out += [Table("nb101", "nasbench101", "cifar10")]
    out += [Table(f"nats_{t}", "nats_sss", t, "nats_sss") for t in ("cifar10", "cifar100", "ImageNet16-120")]
    return out


def _load(table: Table, data_dir: str):  # noqa: ANN202 - a cgpredict Family
    from cgpredict.datasets import list_families, load_family

    if table.family not in list_families():
        raise LookupError(f"family {table.family!r} is not in this branch")
    if table.source == "nb201_200ep":
        return load_family(table.family, task=table.task, table="nb201_200ep", data_dir=data_dir)
    return load_family(table.family, task=table.task, data_dir=data_dir)


def sample_indices(total: int, n: int | None, seed: int) -> np.ndarray:
    """The benchmarks' seeded subsample rule: ``min(n, total)`` sorted indices of a table (all of them
    when ``n`` is ``None``)."""
    if n is None:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, min(n, total), replace=False))


def table_column(fam, proxy: str) -> np.ndarray | None:  # noqa: ANN001 - a cgpredict Family
    """The NAS-Bench-Suite-Zero column of the same proxy in ``fam``'s table (``None`` when absent)."""
    col = TABLE_COLUMN.get(proxy)
    ref = fam.table_flops if col == "flops" else fam.extra.get(col) if col else None
    return None if ref is None or np.isnan(ref).all() else np.asarray(ref, dtype=float)


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    a2 = np.where(np.isneginf(a), -1e300, a)  # -inf (AZ-NAS identity blocks) ranks lowest
    ok = np.isfinite(a2) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    return float(spearmanr(a2[ok], b[ok]).statistic)


def _fmt(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.3f}"


def run_bank_report(args: argparse.Namespace) -> int:
    """Score the tables, print and (with ``--report``) write the markdown report."""
    from cgpredict.proxies.bank import DEFAULT_METHODS, BankConfig, bank_scores_many
    from cgpredict.proxies.zc_aznas import aggregate

    if not args.data_dir:
        print("set CGPREDICT_DATA or pass --data-dir", file=sys.stderr)
        return 2
    wanted = set(args.tables.split(",")) if args.tables else None
    tables = [t for t in all_tables() if wanted is None or t.name in wanted]
    from cgpredict.provenance import code_line

    args.code_line = code_line()  # the code that starts the run (the report is rewritten as tables finish)
    methods = list(DEFAULT_METHODS)
    sections, summary = [], []
    start = time.perf_counter()
    for table in tables:
        try:
            fam = _load(table, args.data_dir)
        except (LookupError, FileNotFoundError, ImportError, ValueError) as exc:
            print(f"{table.name}: skipped ({exc})")
            summary.append((table, None))
            continue
        n = (args.n_200ep or 3 * args.n) if table.source == "nb201_200ep" else args.n
        for item in filter(None, (getattr(args, "sizes", "") or "").split(",")):
            prefix, _, size = item.partition("=")
            if table.name.startswith(prefix.strip()):
                n = int(size)
        fam = fam.subset(sample_indices(len(fam), n, args.sample_seed))
        config = BankConfig(seed=args.seed, inputs=args.inputs, init=getattr(args, "init", "default"),
                            **({"batch_size": args.bank_batch} if args.bank_batch else {}))
        task_network = getattr(args, "transnas_task_network", False)
        cgs, loss = scored_networks(table, fam, args.transnas_resolution, task_network)
        config = dataclasses.replace(config, loss=loss)
        if table.family != "transbench101_micro":
            config = dataclasses.replace(config, resolution=getattr(args, "resolution", None))
        t0 = time.perf_counter()
        results = bank_scores_many(cgs, methods, config, progress=False, executor=getattr(args, "executor", None))
        print(f"{table.name}: {len(cgs)} nets in {time.perf_counter() - t0:.0f} s", flush=True)
        labels = np.asarray(fam.labels, dtype=float)
        scores = {m: np.array([r.scores.get(m, math.nan) for r in results]) for m in methods}
        scores["az_nas"] = aggregate(scores)
        failed = {m: sum(m in r.errors for r in results) for m in methods}
        cpu = {g: float(np.mean([r.seconds.get(f"{g}:cpu", math.nan) for r in results]))
               for g in ("synflow", "data")}
        rows = []
        for m in [*methods, "az_nas"]:
            ref = table_column(fam, m)
            rows.append((m, _rho(scores[m], labels), _rho(ref, labels) if ref is not None else math.nan,
                         _rho(scores[m], ref) if ref is not None else math.nan,
                         PUBLISHED.get(m, {}).get(table.name, ""), failed.get(m, 0)))
        summary.append((table, {**{row[0]: row[1] for row in rows}, **{f"agree:{row[0]}": row[3] for row in rows},
                                "cpu": cpu["synflow"] + cpu["data"]}))
        side = f"{args.transnas_resolution}×{args.transnas_resolution}"
        scored_as = ((f", its own network at {side} with loss {config.loss}" if task_network
                      else f", scored as the class_scene network at {side}")
                     if table.family == "transbench101_micro" else "")
        if config.resolution:
            scored_as = f", inputs {config.resolution}×{config.resolution}"
        lines = [f"### {table.name} — {table.family} / {table.task} ({len(cgs)} nets{scored_as}, "
                 f"batch {config.batch_size})", "",
                 "| proxy | ρ with labels | table column ρ | ρ(ours, table column) | published | failed |",
                 "|---|---|---|---|---|---|"]
        for m, rho, ref_rho, agree, pub, fail in rows:
            lines.append(f"| {m} | {_fmt(rho)} | {_fmt(ref_rho)} | {_fmt(agree)} | {pub} | {fail} |")
        lines += ["", f"CPU seconds per network: synflow {cpu['synflow']:.3f}, shared data pass {cpu['data']:.3f} "
                  f"(means over the nets computed in this run or cached from an earlier one).", ""]
        errors = sorted({e for r in results for e in r.errors.values()})
        if errors:
            lines += ["Errors: " + "; ".join(errors[:5]), ""]
        sections.append("\n".join(lines))
        print("\n".join(lines), flush=True)
        if args.report:  # after every table: an interrupted run leaves what it finished
            _write(args, methods, summary, sections, time.perf_counter() - start)
    if args.report:
        _write(args, methods, summary, sections, time.perf_counter() - start, final=True)
    return 0


#: The loss each TransNAS-Bench-101 micro task trains with (Duan et al., 2021), used as the bank's
#: random-target loss when a task's own network is scored.
TRANSNAS_LOSS = {"class_scene": "cross_entropy", "class_object": "cross_entropy", "jigsaw": "cross_entropy",
                 "segmentsemantic": "cross_entropy", "room_layout": "mse", "autoencoder": "l1", "normal": "l1"}


def scored_networks(table: Table, fam, transnas_resolution: int,  # noqa: ANN001
                    transnas_task_network: bool = False) -> tuple[list, str]:
    """The CGs a table's sampled nets are scored as, and the bank's loss for them: a TransNAS table's
    per :func:`_transnas_cgs` (its task's loss for its own network, else cross-entropy), every other
    table its own CGs with cross-entropy."""
    if table.family != "transbench101_micro":
        return fam.cgs(progress=False), "cross_entropy"
    cgs = _transnas_cgs(fam, transnas_resolution, transnas_task_network)
    return cgs, TRANSNAS_LOSS[table.task] if transnas_task_network else "cross_entropy"


def _transnas_cgs(fam, resolution: int, task_network: bool = False) -> list:  # noqa: ANN001
    """TransNAS-Bench-101 micro nets, converted at ``resolution`` (the scored size is the CG's own, as in
    every earlier run, so the bank's cache keys stay the same).

    By default each is the class_scene network (the encoder every task shares, with a classifier head),
    whatever the table's task: one set of scores serves all seven tables. ``task_network=True`` converts
    the table's own network instead (decoders for autoencoder / normal / segmentsemantic, the 9-tile
    encoder for jigsaw at its native 64×64 tiles); score it with ``BankConfig(loss=TRANSNAS_LOSS[task])``.
    """
    from cgpredict.converters import from_torch
    from cgpredict.datasets import build

    task = fam.task if task_network else "class_scene"
    shape = (1, 9, 3, 64, 64) if task == "jigsaw" else (1, 3, resolution, resolution)
    tag = "x".join(str(v) for v in shape[1:]) if task_network else str(resolution)
    suffix = f"/{task}" if task_network else ""
    return [from_torch(build("transbench101_micro", arch, task), input_shape=shape,
                       name=f"transbench101_micro/{arch}{suffix}@{tag}") for arch in fam.archs]


def _write(args: argparse.Namespace, methods: list[str], summary: list, sections: list[str], seconds: float,
           final: bool = False) -> None:
    from cgpredict.fileio import atomic_write

    head = ["# Training-free proxy bank on the labelled tables", "",
            "Reproduce with:", "", "```", "CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=1 python benchmarks/proxies.py --bank "
            + " ".join(a for a in sys.argv[1:] if a != "--bank"), "```", "", args.code_line, "",
            f"Spearman ρ of each proxy with the table's labels on a seeded subsample (sample seed "
            f"{args.sample_seed}, proxy seed {args.seed}, {args.inputs} inputs); `az_nas` = AZ-NAS's rank "
            "aggregate of expressivity, progressivity, trainability and complexity over the subsample. "
            "*table column ρ*: the NAS-Bench-Suite-Zero column of the same proxy in the table, same nets; "
            "*ρ(ours, table column)*: agreement of our score with that column. Published figures are the "
            "ones quoted in issue 22 (full tables, real CIFAR batches). "
            f"Wall time of this run{'' if final else ' so far (still running)'}: {seconds:.0f} s.", ""]
    overview = ["## Overview: ρ with labels", "", "| proxy | " + " | ".join(t.name for t, s in summary if s) + " |",
                "|---|" + "---|" * sum(1 for _, s in summary if s)]
    for m in [*methods, "az_nas"]:
        overview.append(f"| {m} | " + " | ".join(_fmt(s[m]) for _, s in summary if s) + " |")
    overview.append("| CPU s/net (whole bank) | " + " | ".join(f"{s['cpu']:.2f}" for _, s in summary if s) + " |")
    agree = [m for m in methods if m in TABLE_COLUMN]
    overview += ["", "## Overview: agreement ρ(ours, NAS-Bench-Suite-Zero column)", "",
                 "| proxy | " + " | ".join(t.name for t, s in summary if s) + " |",
                 "|---|" + "---|" * sum(1 for _, s in summary if s)]
    for m in agree:
        overview.append(f"| {m} ({TABLE_COLUMN[m]}) | " + " | ".join(_fmt(s[f'agree:{m}']) for _, s in summary if s) + " |")
    skipped = [t.name for t, s in summary if s is None]
    if skipped:
        overview += ["", f"Skipped (family not available in this branch): {', '.join(skipped)}."]
    text = "\n".join(head + overview + ["", "## Per table", ""] + sections) + "\n"
    atomic_write(args.report, text)
    if final:
        print(f"wrote {args.report}")


if __name__ == "__main__":  # pragma: no cover - use benchmarks/proxies.py --bank
    print("run benchmarks/proxies.py --bank", file=sys.stderr)
    sys.exit(2)

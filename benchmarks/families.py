"""Check every family builder against its benchmark table, then print CG statistics per family.

Pipeline position: **model** builders (checked here) → CG → features → predictor → ranking/search.

Part 1, for each labelled family and task in ``$CGPREDICT_DATA`` (or ``--data-dir``): converts
every row's network (cached, see :mod:`cgpredict.datasets.cache`) and compares the CG's parameter
count with the table's ``params`` column (tolerance 1%) and its MACs under the family's
``FLOPS_MODE`` counting mode with the ``flops`` column (tolerance 2%), printing the worst relative
error and the number of rows outside the tolerance per family/task.

With ``--params-exact`` part 1 is replaced by an exact parameter check that needs no CG: every
row's network is built on the meta device and ``sum(p.numel())`` is compared with the ``params``
column rounded to whole parameters (the columns are millions with 6 decimals), printing the number
of rows that match exactly and the worst difference (a few minutes for the 32,768 NATS-Bench
size-space rows, where CG conversion would take ten times longer).

Part 2, for every family: builds and converts ``--n`` random samples (seed ``--seed``) and prints
nodes and MACs (torchvision convention, in M) min / median / max.

A family whose builder module is missing or broken is reported and skipped; the exit code is 1 if
any check failed or any family was unavailable.

Example::

    CGPREDICT_DATA=/work/shared/data python benchmarks/families.py --families nasbench201 hiaml --n 50
    python benchmarks/families.py --skip-tables --n 200         # only the sampled CG statistics
    python benchmarks/families.py --limit 100 --jobs 4          # first 100 rows per table, 4 processes
    python benchmarks/families.py --families nats_sss --params-exact --skip-samples   # all rows, exact
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

PARAMS_TOL = 0.01
FLOPS_TOL = 0.02


def _convert_worker(job: tuple[str, str | None, str]) -> dict[str, Any]:
    """Build and convert one arch in a worker process; returns the CG as a plain dict."""
    from cgpredict.converters import from_torch
    from cgpredict.datasets import registry

    family, task, arch_text = job
    module = registry.family_module(family)
    arch = module.parse_arch(arch_text)
    return from_torch(module.build(arch, task), input_shape=module.input_shape(task)).to_dict()


def family_cgs(fam: Any, jobs: int, progress: bool = True) -> list[Any]:
    """``fam.cgs()``, filling the cache with ``jobs`` worker processes first when ``jobs > 1``."""
    from cgpredict.cg import CG
    from cgpredict.quiet import progress_bar

    store = fam.cache()
    if jobs > 1 and store is not None:
        keys = [fam.key(i) for i in range(len(fam))]
        missing = [i for i, cg in enumerate(store.get_many(keys)) if cg is None]
        if missing:
            work = [(fam.name, fam.task, keys[i]) for i in missing]
            try:
                with ProcessPoolExecutor(max_workers=jobs) as pool:
                    results = pool.map(_convert_worker, work, chunksize=4)
                    for i, data in progress_bar(zip(missing, results), total=len(missing), desc=f"convert {fam.name}", progress=progress):
                        store.put(keys[i], CG.from_dict(data))
            finally:
                store.flush()
    return fam.cgs(progress=progress)


def relative_errors(ours: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``|ours - table| / |table|`` where the table has a value (NaN elsewhere)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(ours - table) / np.abs(table)


def labelled_tables(families: Sequence[str], data_dir: str | None) -> Iterator[tuple[str, str, Any, Any]]:
    """``(family, task, module, Family)`` for every task with a label table; prints a line for a
    family whose module cannot be imported (yielded with ``None``) and for a missing table."""
    from cgpredict.datasets import load_family, registry

    for name in families:
        try:
            module = registry.family_module(name)
        except registry.FamilyUnavailableError as exc:
            print(f"{name:<38} UNAVAILABLE: {exc}")
            yield name, "", None, None
            continue
        for task in module.TASKS:
            try:
                fam = load_family(name, task=task, data_dir=data_dir)
            except FileNotFoundError:
                print(f"{name + '/' + task:<38} no table in the data folder")
                continue
            yield name, task, module, fam


def check_tables(families: Sequence[str], data_dir: str | None, limit: int | None, jobs: int) -> bool:
    """Part 1: compare params and FLOPs of every table row; returns whether all are within tolerance."""
    from cgpredict.datasets import registry

    if registry.resolve_data_dir(data_dir) is None:
        print(f"== tables: skipped (no data folder: pass --data-dir or set ${registry.DATA_ENV})")
        return True
    ok = True
    print(f"== tables: params within {PARAMS_TOL:.0%}, flops within {FLOPS_TOL:.0%} of the benchmark's columns")
    print(f"{'family/task':<38} {'rows':>5} {'params worst':>12} {'>tol':>5} {'flops worst':>12} {'>tol':>5}  time")
    for name, task, module, fam in labelled_tables(families, data_dir):
        if fam is None:  # the family's module cannot be imported
            ok = False
            continue
        start = time.perf_counter()
        if limit is not None:
            fam = fam.subset(range(min(limit, len(fam))))
        cgs = family_cgs(fam, jobs)
        params = np.array([cg.params for cg in cgs], dtype=float) / 1e6
        flops = np.array([cg.macs(module.FLOPS_MODE) for cg in cgs], dtype=float) / 1e6
        cells = [f"{name + '/' + task:<38} {len(fam):>5}"]
        for ours, table, tol in ((params, fam.table_params, PARAMS_TOL), (flops, fam.table_flops, FLOPS_TOL)):
            if table is None or not np.isfinite(table).any():
                cells.append(f"{'(no column)':>12} {'':>5}")
                continue
            err = relative_errors(ours, table)
            finite = np.isfinite(err)
            worst = int(np.nanargmax(np.where(finite, err, -1)))
            bad = int((err[finite] > tol).sum())
            ok &= bad == 0
            cells.append(f"{err[worst]:>11.3%}{'!' if bad else ' '} {bad:>5}")
            if bad:
                cells.append(f"[worst: {fam.key(worst)} ours {ours[worst]:.4f} vs table {table[worst]:.4f}]")
        print(" ".join(cells), f" {time.perf_counter() - start:.0f}s", flush=True)
    return ok


def module_params(module: Any, arch: Any, task: str | None) -> int:
    """Parameters of ``module.build(arch, task)``, built on the meta device (no weights allocated)."""
    import torch

    with torch.device("meta"):
        model = module.build(arch, task)
    return sum(p.numel() for p in model.parameters())


def check_params_exact(families: Sequence[str], data_dir: str | None, limit: int | None) -> bool:
    """Part 1 with ``--params-exact``: every row's built network against the ``params`` column, to the parameter."""
    from cgpredict.datasets import registry
    from cgpredict.quiet import progress_bar

    if registry.resolve_data_dir(data_dir) is None:
        print(f"== params: skipped (no data folder: pass --data-dir or set ${registry.DATA_ENV})")
        return True
    ok = True
    print("== params: sum(p.numel()) of the built network == round(params column × 1e6), every row")
    print(f"{'family/task':<38} {'rows':>6} {'exact':>6} {'worst diff':>10}  time")
    for name, task, module, fam in labelled_tables(families, data_dir):
        if fam is None:  # the family's module cannot be imported
            ok = False
            continue
        start = time.perf_counter()
        if fam.table_params is None:
            print(f"{name + '/' + task:<38} {len(fam):>6} (no params column)")
            continue
        if limit is not None:
            fam = fam.subset(range(min(limit, len(fam))))
        rows = [i for i in range(len(fam)) if np.isfinite(fam.table_params[i])]
        ours = np.array([module_params(module, fam.archs[i], task) for i in progress_bar(rows, desc=f"params {name}/{task}")])
        table = np.rint(fam.table_params[rows] * 1e6).astype(np.int64)
        diff = ours - table
        exact = int((diff == 0).sum())
        worst = int(np.argmax(np.abs(diff))) if len(rows) else 0
        ok &= exact == len(rows)
        line = f"{name + '/' + task:<38} {len(rows):>6} {exact:>6} {int(diff[worst]) if len(rows) else 0:>+10}"
        if exact != len(rows):
            line += f" [worst: {fam.key(rows[worst])} ours {ours[worst]} vs table {table[worst]}]"
        print(line, f" {time.perf_counter() - start:.0f}s", flush=True)
    return ok


def sample_stats(families: Sequence[str], n: int, seed: int, jobs: int) -> bool:
    """Part 2: convert ``n`` samples per family and print node / MAC statistics."""
    from cgpredict.datasets import load_family, registry

    ok = True
    print(f"\n== {n} random samples per family (seed {seed}): CG nodes and MACs (torchvision convention)")
    print(f"{'family':<20} {'n':>4} {'nodes min':>9} {'median':>7} {'max':>6} {'MMACs min':>10} {'median':>9} {'max':>9}  time")
    for name in families:
        start = time.perf_counter()
        try:
            registry.family_module(name)
            fam = load_family(name, n=n, seed=seed)
            cgs = family_cgs(fam, jobs)
        except registry.FamilyUnavailableError as exc:
            print(f"{name:<20} UNAVAILABLE: {exc}")
            ok = False
            continue
        nodes = np.array([cg.num_nodes for cg in cgs])
        macs = np.array([cg.flops for cg in cgs]) / 1e6
        print(
            f"{name:<20} {len(cgs):>4} {nodes.min():>9} {np.median(nodes):>7.0f} {nodes.max():>6} "
            f"{macs.min():>10.1f} {np.median(macs):>9.1f} {macs.max():>9.1f}  {time.perf_counter() - start:.0f}s",
            flush=True,
        )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    """Run both parts; returns 0 if every check passed and every family was available."""
    from cgpredict.datasets import list_families

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list_families(), help="families to check (default: all)")
    parser.add_argument("--n", type=int, default=200, help="random samples per family for the CG statistics")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--data-dir", default=None, help="labelled-data folder (default: $CGPREDICT_DATA)")
    parser.add_argument("--limit", type=int, default=None, help="check only the first LIMIT rows of each table")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for conversion")
    parser.add_argument("--skip-tables", action="store_true", help="skip part 1 (table checks)")
    parser.add_argument("--params-exact", action="store_true",
                        help="part 1 checks the params column exactly, from the built networks (no CGs, no flops)")
    parser.add_argument("--skip-samples", action="store_true", help="skip part 2 (sample statistics)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.families) - set(list_families()))
    if unknown:
        parser.error(f"unknown families {unknown}; known: {', '.join(list_families())}")

    ok = True
    if not args.skip_tables and args.params_exact:
        ok &= check_params_exact(args.families, args.data_dir, args.limit)
    elif not args.skip_tables:
        ok &= check_tables(args.families, args.data_dir, args.limit, args.jobs)
    if not args.skip_samples:
        ok &= sample_stats(args.families, args.n, args.seed, args.jobs)
    return 0 if ok else 1


if __name__ == "__main__":
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    sys.exit(main())

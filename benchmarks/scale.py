"""Scaling out: networks/second of zero-cost proxy scoring locally and on 1 and 2 Ray workers.

Pipeline position: model → CG → **proxy score** (throughput of the executor seam,
:mod:`cgpredict.executors`).

Scores ``--n`` sampled NAS-Bench-201 CGs with a zero-cost proxy (``--proxy``, SynFlow by default)
three ways in one run: the local executor in this process (the baseline), then a fresh local Ray
session of 1 and of 2 CPUs (``ray.init(num_cpus=W)``; CGs travel as JSON, ``--chunk`` networks per
task). For each it prints networks/second (after a warm-up that starts the workers), checks the
scores are bit-identical to the baseline, and projects the time for 100k networks per worker. The
per-task overhead is measured with empty tasks: one round trip at a time (latency) and many in
flight through the executor (amortised cost per task). Writes a Markdown report with ``--out``.

Example::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/scale.py --n 200 --out benchmarks/results/scale.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

PROJECTED = 100_000


def _noop(item: Any) -> Any:
    """The empty task body (overhead measurement)."""
    return item


def _rate(executor: Any, scorer: Any, cgs: list, chunk: int | None) -> tuple[float, list[str]]:
    """(networks/second, bit text of each score) of one timed run."""
    from cgpredict.executors import cg_from_json, cg_to_json

    start = time.perf_counter()
    outcomes = executor.map(scorer, cgs, chunk, encode=cg_to_json, decode=cg_from_json)
    elapsed = time.perf_counter() - start
    return len(cgs) / elapsed, [float(o.value).hex() if o.ok else f"error {o.error}" for o in outcomes]


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; returns an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="NB-201 networks per measurement")
    parser.add_argument("--proxy", default="synflow", choices=["synflow", "naswot"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts (num_cpus)")
    parser.add_argument("--chunk", type=int, default=None, help="networks per task (default: the executor's)")
    parser.add_argument("--overhead-tasks", type=int, default=200, help="empty tasks per overhead measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the report (Markdown) here")
    args = parser.parse_args(argv)
    try:
        import ray
    except ImportError:
        print("benchmarks/scale.py needs ray: pip install cgpredict[ray]", file=sys.stderr)
        return 2
    import torch

    from cgpredict.datasets import load_family
    from cgpredict.executors import LocalExecutor
    from cgpredict.executors.base import MAX_CHUNK, default_chunk_size
    from cgpredict.executors.ray_backend import RayExecutor
    from cgpredict.fileio import atomic_write
    from cgpredict.provenance import code_line
    from cgpredict.proxies.zero_cost import ZERO_COST

    torch.set_num_threads(1)  # the same thread count as every Ray task: identical scores
    scorer = ZERO_COST[args.proxy]
    cgs = load_family("nasbench201", n=args.n, seed=args.seed).cgs(progress=False)
    command = "OMP_NUM_THREADS=1 python benchmarks/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    log = ["## `benchmarks/scale.py`", "", f"Command: `{command}`", "", code_line(), "",
           f"{len(cgs)} sampled NAS-Bench-201 CGs (seed {args.seed}), proxy {args.proxy}, ray {ray.__version__}, "
           f"{os.cpu_count()} CPU cores; load average at start {os.getloadavg()[0]:.1f} (shared machine).", "",
           "| executor | warm-up s | networks/s | per worker | chunk | identical to local | "
           f"{PROJECTED // 1000}k nets, one worker | {PROJECTED // 1000}k nets, these workers |",
           "|---|---|---|---|---|---|---|---|"]

    def row(name: str, warm: float, rate: float, workers: int, chunk: str, same: str) -> None:
        per_worker = rate / workers
        log.append(f"| {name} | {warm:.1f} | {rate:.1f} | {per_worker:.1f} | {chunk} | {same} | "
                   f"{PROJECTED / per_worker / 3600:.2f} h | {PROJECTED / rate / 3600:.2f} h |")
        print(log[-1], flush=True)

    print("\n".join(log), flush=True)
    local = LocalExecutor()
    start = time.perf_counter()
    local.map(scorer, cgs[:2])
    warm = time.perf_counter() - start
    cpu = time.process_time()
    base_rate, base_bits = _rate(local, scorer, cgs, None)
    cpu_ms = 1000 * (time.process_time() - cpu) / len(cgs)
    row("local (this process)", warm, base_rate, 1, "-", "baseline")
    overhead = []
    for workers in args.workers:
        start = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = time.perf_counter() - start
        try:
            executor = RayExecutor()
            start = time.perf_counter()
            executor.map(scorer, cgs[: 2 * workers], 1)  # start every worker and import torch there
            warm = started + time.perf_counter() - start
            rate, bits = _rate(executor, scorer, cgs, args.chunk)
            size = args.chunk or default_chunk_size(len(cgs), executor.workers)
            row(f"ray, {workers} worker(s)", warm, rate, workers, f"{size}{'' if args.chunk else ' (default)'}",
                "yes" if bits == base_bits else "**no**")
            remote = ray.remote(_noop)
            ray.get(remote.remote(0))
            start = time.perf_counter()
            for i in range(args.overhead_tasks):
                ray.get(remote.remote(i))
            latency = (time.perf_counter() - start) / args.overhead_tasks
            start = time.perf_counter()
            executor.map(_noop, list(range(args.overhead_tasks)), 1)
            amortised = (time.perf_counter() - start) / args.overhead_tasks
            overhead.append((workers, latency, amortised))
        finally:
            ray.shutdown()
    log += ["", "Per-task overhead (empty tasks):", "",
            "| Ray workers | one round trip at a time, ms | many in flight via the executor, ms/task |", "|---|---|---|"]
    log += [f"| {w} | {1000 * lat:.2f} | {1000 * am:.2f} |" for w, lat, am in overhead]
    per_net_ms = 1000 / base_rate
    worst = max(max(lat, am) for _, lat, am in overhead) * 1000 if overhead else 0.0
    log += ["", f"One {args.proxy} score costs {per_net_ms:.1f} ms wall clock ({cpu_ms:.1f} ms CPU) here; the slowest task overhead above "
            f"({worst:.2f} ms) is {100 * worst / (MAX_CHUNK * per_net_ms):.2f}% of a full chunk of {MAX_CHUNK} "
            f"networks and {100 * worst / per_net_ms:.1f}% of a one-network task. Warm-up = Ray start + starting "
            "the workers (each imports torch), paid once per session. Networks/s on this shared machine "
            "depend on what else runs (load average above); W workers cannot beat the free cores."]
    text = "\n".join(log)
    print("\n".join(log[-(len(overhead) + 6):]))
    if args.out:
        atomic_write(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    sys.exit(main())

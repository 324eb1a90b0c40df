"""Speed of the regression proxies: milliseconds per network, one at a time vs several at once.

Pipeline position: model → **proxy score** (throughput check).

Scores ``--n`` NAS-Bench-201 networks (``cgpredict.datasets.nasbench201.build``; a small local
ResNet-like net if that module is unavailable) with :func:`cgpredict.proxies.score_many`, first
with ``concurrency=1``, then with ``--concurrency`` networks trained at once (worker threads; on
CUDA each on its own stream), on whatever device is present (or ``--device``). Prints ms/network
(wall clock and process CPU time, the latter being meaningful on a shared machine) and the
speed-up for each method.

Example::

    OMP_NUM_THREADS=1 python benchmarks/proxy_speed.py --n 6 --methods eproxy --concurrency 2

``--bank`` instead times the training-free proxy bank (:mod:`cgpredict.proxies.bank`) on ``--n``
sampled networks of each of ``--families`` (default NB-201, NB-301, NB-101; CGs converted first,
not timed): the whole bank per network (no cache), SynFlow's pass, and each data proxy alone (the
part of the shared pass it needs, plus its reduction) — CPU seconds of this thread (meaningful on a
shared machine) and networks per CPU second. Networks run one at a time: different architectures
cannot share one batch, and with one core per process threads add nothing, so there is no
"batched" column for the bank::

    OMP_NUM_THREADS=1 python benchmarks/proxy_speed.py --bank --n 5

The whole-bank line also gives the system share of those CPU seconds: mostly page faults, as glibc
hands the pass's freed activations back to the kernel and faults them in again on the next pass.
The allocator's own settings (not the code) remove it, e.g.
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4000000000`` in the environment, which the
report's command line then shows.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn


def _local_net() -> nn.Module:
    """A small ResNet-like stand-in (three stages, 16/32/64 channels)."""

    def block(c_in: int, c_out: int, stride: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        )

    return nn.Sequential(block(3, 16, 1), block(16, 32, 2), block(32, 64, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def _builders(n: int, seed: int) -> tuple[list, str]:
    try:
        from cgpredict.datasets import nasbench201
    except ImportError:
        return [_local_net for _ in range(n)], "local ResNet-like net"
    archs = nasbench201.sample(n, seed)
    return [lambda a=a: nasbench201.build(a) for a in archs], "NAS-Bench-201 networks"


def main(argv: list[str] | None = None) -> int:
    """Run the timing; returns an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="networks per measurement")
    parser.add_argument("--methods", nargs="+", default=["eproxy", "gennas"])
    parser.add_argument("--iterations", type=int, default=None, help="override the preset's iterations")
    parser.add_argument("--concurrency", type=int, default=None, help="networks at once (default 4 on CUDA, 2 on CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bank", action="store_true", help="time the training-free proxy bank instead")
    parser.add_argument("--families", nargs="+", default=["nasbench201", "nasbench301", "nasbench101"])
    parser.add_argument("--batch-size", type=int, default=None, help="--bank: shared-pass batch (default: the bank's)")
    parser.add_argument("--report", default=None, help="--bank: also write the figures as markdown here")
    parser.add_argument("--machine", action="store_true", help="--bank: also the wall seconds per net of the whole "
                        "bank using every core: one net at a time with torch on all cores, and across nets with "
                        "one worker process per core (executor local:N, start-up included)")
    parser.add_argument("--machine-n", type=int, default=24, help="--machine: networks per family")
    parser.add_argument("--dump", default=None, help="--bank: instead of timing, write every net's scores and node "
                        "statistics to this .npz (run it with another checkout's Python for a reference)")
    parser.add_argument("--compare", default=None, help="--bank: instead of timing, check this code's scores and node "
                        "statistics against a --dump .npz (relative 1e-5, |v| < 1e-12 as 0, NaN where NaN); exit 1 on a difference")
    args = parser.parse_args(argv)
    if args.bank and (args.dump or args.compare):
        return _bank_values(args)
    if args.bank:
        return _bank_speed(args)

    from cgpredict.proxies import score_many

    width = args.concurrency or (4 if args.device.startswith("cuda") else 2)
    builders, what = _builders(args.n, args.seed)
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"CPU ({torch.get_num_threads()} torch threads)"
    print(f"{args.n} {what} on {device_name}")
    for method in args.methods:
        timings = {}
        for conc in (1, width):
            start, cpu_start = time.perf_counter(), time.process_time()
            results = score_many(builders, method=method, iterations=args.iterations, device=args.device, concurrency=conc, progress=False)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            cpu_ms = 1000 * (time.process_time() - cpu_start) / len(results)
            timings[conc] = 1000 * elapsed / len(results)
            failed = sum(not r.ok for r in results)
            iters = results[0].iterations if results else 0
            print(
                f"{method:<8} {iters:>4} it  concurrency {conc}: {timings[conc]:8.1f} ms/net wall, "
                f"{cpu_ms:8.1f} ms/net CPU time  ({failed} failed)"
            )
        print(f"{method:<8} speed-up x{timings[1] / timings[width]:.2f} with concurrency {width}")
    return 0


#: Each data proxy's share of the shared pass: (activations, gradients, jacobian, blocks).
_ALONE = {"naswot": (1, 0, 0, 0), "meco": (1, 0, 0, 0), "snip": (0, 1, 0, 0), "grad_norm": (0, 1, 0, 0),
          "fisher": (0, 1, 0, 0), "zico": (0, 1, 0, 0), "jacov": (0, 0, 1, 0), "expressivity": (0, 0, 0, 1),
          "progressivity": (0, 0, 0, 1), "trainability": (0, 0, 0, 1)}


def _bank_values(args: argparse.Namespace) -> int:
    """``--dump``/``--compare``: the bank's numbers on ``--n`` nets of each family, written or checked.

    Checks that a faster bank keeps the numbers the disk cache holds: dump with the old code's
    Python, compare with the new (``/old/.venv/bin/python benchmarks/proxy_speed.py --bank --dump ref.npz``).
    """
    import json
    import math

    import numpy as np

    from cgpredict.datasets import load_family
    from cgpredict.proxies import bank

    config = bank.BankConfig(seed=args.seed, **({"batch_size": args.batch_size} if args.batch_size else {}))
    arrays: dict[str, np.ndarray] = {}
    for family in args.families:
        for i, cg in enumerate(load_family(family, n=args.n, seed=args.seed).cgs(progress=False)):
            res = bank.bank_scores(cg, bank.DEFAULT_METHODS, config, cache=False)
            key = f"{family}/{i}/{cg.hash()}"
            names = sorted(res.scores)
            arrays[f"{key}/scores"] = np.array([res.scores[m] for m in names], dtype=np.float64)
            arrays[f"{key}/names"] = np.array(json.dumps(names))
            for stat, values in res.node.items():
                arrays[f"{key}/node/{stat}"] = np.asarray(values, dtype=np.float32)
            print(key, res.errors or "", flush=True)
    if args.dump:
        from cgpredict.fileio import atomic_writer

        with atomic_writer(args.dump) as handle:
            np.savez(handle, **arrays)
        print(f"wrote {len(arrays)} arrays to {args.dump}")
        return 0
    with np.load(args.compare) as ref:
        stored = {k: ref[k] for k in ref.files}
    problems, worst = [], 0.0
    if stored.keys() != arrays.keys():
        problems.append(f"different nets or statistics: {sorted(stored.keys() ^ arrays.keys())[:5]}")
    for k in sorted(stored.keys() & arrays.keys()):
        if k.endswith("/names"):
            if str(stored[k]) != str(arrays[k]):
                problems.append(f"{k}: {stored[k]} != {arrays[k]}")
            continue
        a, b = stored[k].astype(np.float64), arrays[k].astype(np.float64)
        if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
            problems.append(f"{k}: shapes or NaN positions differ")
            continue
        both = ~np.isnan(a) & (a != b) & (np.maximum(np.abs(a), np.abs(b)) > 1e-12)  # below: rounding noise of 0
        rel = np.abs(a[both] - b[both]) / np.maximum(np.maximum(np.abs(a[both]), np.abs(b[both])), 1e-300)
        if rel.size:
            worst = max(worst, float(np.nan_to_num(rel.max(), nan=math.inf)))
            if rel.max() > 1e-5 or not np.isfinite(rel).all():
                problems.append(f"{k}: relative difference {rel.max():.3g} at {int((rel > 1e-5).sum())} value(s)")
    print(f"{len(stored)} arrays compared; worst relative difference {worst:.3g}; {len(problems)} problem(s)")
    for line in problems[:20]:
        print("  " + line)
    return 1 if problems else 0


def _machine_lines(cgs: list, config) -> list[str]:  # noqa: ANN001
    """Wall seconds per net of the whole bank on the whole machine (``--machine``), printed and returned."""
    import os

    from cgpredict.proxies import bank

    cores = os.cpu_count() or 1
    before = torch.get_num_threads()
    torch.set_num_threads(cores)
    try:
        bank.bank_scores(cgs[0], bank.DEFAULT_METHODS, config, cache=False)  # warm-up at this thread count
        start = time.perf_counter()
        for cg in cgs:
            bank.bank_scores(cg, bank.DEFAULT_METHODS, config, cache=False)
        one = (time.perf_counter() - start) / len(cgs)
    finally:
        torch.set_num_threads(before)
    start = time.perf_counter()
    bank.bank_scores_many(cgs, bank.DEFAULT_METHODS, config, cache=False, progress=False, executor=f"local:{cores}")
    many = (time.perf_counter() - start) / len(cgs)
    lines = [f"  whole bank, {cores} cores: one net at a time on {cores} torch threads {one:.3f} s/net wall; "
             f"{cores} worker processes across the {len(cgs)} nets {many:.3f} s/net wall ({1 / many:.2f} nets/s, "
             "start-up included)"]
    print(lines[0], flush=True)
    return lines


def _thread_sys() -> float:
    """System CPU seconds of this thread so far (0 where the platform cannot tell)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_THREAD).ru_stime
    except (ImportError, AttributeError, OSError):
        return 0.0


def _bank_speed(args: argparse.Namespace) -> int:
    """CPU seconds per network of the whole bank and of each proxy alone, per family."""
    import statistics

    from cgpredict.datasets import load_family
    from cgpredict.proxies import bank
    from cgpredict.proxies.zc_aznas import find_blocks
    from cgpredict.proxies.zc_pass import PassNeeds, build_net, run_pass
    from cgpredict.proxies.zc_synflow import synflow_pass

    from cgpredict.provenance import code_line

    config = bank.BankConfig(seed=args.seed, **({"batch_size": args.batch_size} if args.batch_size else {}))
    out = [f"proxy bank, batch {config.batch_size}, {torch.get_num_threads()} torch thread(s); CPU s/net (nets per CPU s)"]
    print(out[0])
    code = code_line()
    for family in args.families:
        cgs = load_family(family, n=args.n, seed=args.seed).cgs(progress=False)
        cost: dict[str, list[float]] = {}

        def clock(name: str, fn, cost=cost) -> None:  # noqa: ANN001
            start, sys_start = time.thread_time(), _thread_sys()
            fn()
            cost.setdefault(name, []).append(time.thread_time() - start)
            cost.setdefault(f"{name}:sys", []).append(_thread_sys() - sys_start)

        bank.bank_scores(cgs[0], bank.DEFAULT_METHODS, config, cache=False)  # warm-up: input batch, first-call costs
        for cg in cgs:  # the bank alone over the nets first, as a user runs it
            clock("whole bank", lambda cg=cg: bank.bank_scores(cg, bank.DEFAULT_METHODS, config, cache=False))
        for cg in cgs:
            clock("synflow", lambda cg=cg: synflow_pass(cg, config.seed))
            blocks = find_blocks(cg)
            images = bank._images(cg, config)
            for name, flags in _ALONE.items():
                def one(cg=cg, name=name, flags=flags) -> None:
                    data = run_pass(cg, build_net(cg, config.seed), images, config.seed, PassNeeds(*map(bool, flags)), blocks)
                    bank._DATA_FNS[name](data, cg.num_nodes)
                clock(name, one)
        out.append(f"{family} ({len(cgs)} nets, {statistics.mean(c.num_nodes for c in cgs):.0f} nodes on average):")
        print(out[-1])
        for name, values in cost.items():
            if name.endswith(":sys"):
                continue
            mean = statistics.mean(values)
            line = f"  {name:<14} {mean:7.3f} s/net  ({1 / mean:6.2f} nets/s)  max {max(values):.3f}"
            if name == "whole bank":
                line += f"  (system {statistics.mean(cost[name + ':sys']):.3f} s/net)"
            out.append(line)
            print(out[-1], flush=True)
        if args.machine:
            out.extend(_machine_lines(load_family(family, n=args.machine_n, seed=args.seed).cgs(progress=False), config))
    if args.report:
        import os

        from cgpredict.fileio import atomic_write

        malloc = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_"))
        command = (f"OMP_NUM_THREADS=1 {malloc + ' ' if malloc else ''}python benchmarks/proxy_speed.py "
                   + " ".join(sys.argv[1:]))
        atomic_write(args.report, "\n".join(["# Proxy bank cost per network (CPU)", "", "Reproduce with:", "", "```", command,
                                               "```", "", code, "", "```", *out, "```", ""]))
    return 0


if __name__ == "__main__":
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    sys.exit(main())

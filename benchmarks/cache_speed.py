"""Benchmark: loading a family's CGs from the on-disk cache vs converting them again.

Pipeline position: model → **CG (cached on disk)** → features → predictor.

Converts ``--n`` sampled NAS-Bench-201 networks with the PyTorch converter (no cache, the
baseline), writes them to a fresh :class:`cgpredict.datasets.cache.CGCache` bundle in a temporary
directory, then times a cold load of the whole bundle in a new ``CGCache`` object (read, gunzip,
decode every CG). Prints CPU and wall seconds per network for both, their ratio, and the load time
extrapolated to the 725-network bundles the transfer protocol reads per target (the design goal
is well under 2 s CPU for those). No labelled data needed.

Example::

    python benchmarks/cache_speed.py --n 200 --repeats 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="nasbench201", help="a registered family with a builder (default nasbench201)")
    parser.add_argument("--n", type=int, default=200, help="sampled networks (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="cold loads to time; the best is reported")
    args = parser.parse_args(argv)

    import torch

    from cgpredict.datasets import load_family
    from cgpredict.datasets.cache import CGCache

    torch.set_num_threads(1)
    fam = load_family(args.family, n=args.n, seed=args.seed)
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    cgs = fam.cgs(progress=True, cache=False)
    convert_cpu, convert_wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    nodes = sum(cg.num_nodes for cg in cgs) / len(cgs)

    with tempfile.TemporaryDirectory() as root:
        store = CGCache("bench", fam.task, fam.input_shape, root=root)
        keys = [f"net{i}" for i in range(len(cgs))]
        for key, cg in zip(keys, cgs):
            store.put(key, cg)
        store.flush()
        best_cpu = best_wall = float("inf")
        for _ in range(args.repeats):
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            loaded = CGCache("bench", fam.task, fam.input_shape, root=root).get_many(keys)
            best_cpu = min(best_cpu, time.process_time() - start_cpu)
            best_wall = min(best_wall, time.perf_counter() - start_wall)
        if [cg.hash() for cg in loaded] != [cg.hash() for cg in cgs]:  # type: ignore[union-attr]
            raise SystemExit("cache round trip changed a CG")

    n = len(cgs)
    print(f"\n{args.family}: {n} networks, {nodes:.0f} CG nodes on average, 1 torch thread")
    print(f"{'':<22} {'CPU ms/net':>10} {'wall ms/net':>11}")
    print(f"{'convert (from_torch)':<22} {1e3 * convert_cpu / n:>10.2f} {1e3 * convert_wall / n:>11.2f}")
    print(f"{'load from cache':<22} {1e3 * best_cpu / n:>10.2f} {1e3 * best_wall / n:>11.2f}")
    print(f"cache load is {convert_wall / best_wall:.0f}x faster (wall) than converting again")
    print(f"extrapolated cold load of 725 networks: {725 * best_cpu / n:.2f} s CPU, {725 * best_wall / n:.2f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cost of filling the CG caches of the large tables, projected from a seeded sample.

Pipeline position: model → **CG** (conversion and its on-disk cache) → features → predictor →
ranking/search.

For each table (NB-101 30k, NB-201 15,625, NATS size space 32,768) this converts a seeded sample of
networks into a *temporary* cache folder (the shared cache is not touched) and measures per network:
conversion (build on the meta device + trace), encoding into the bundle, the bundle's gzip-JSON
write, its size on disk, reading it back (decode) and the memory the decoded CGs hold (without the bundle's raw entries). It then
projects the time to fill the bundles of every task of the table (one bundle per task: the class
count and input size differ) with one process.

Run (about 3 minutes of one core for 200 networks per table):
    CGPREDICT_DATA=../shared/data OMP_NUM_THREADS=1 nice -n 10 python benchmarks/table_cache_cost.py --n 200
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
import tracemalloc

import numpy as np


def measure(family: str, table: str | None, task: str, n: int, seed: int, tasks: int) -> dict[str, float]:
    """Per-network costs of ``family``/``task`` (``table``) on ``n`` seeded networks, and the projection."""
    from cgpredict.datasets import load_family
    from cgpredict.datasets.cache import CGCache

    fam = load_family(family, task=task, table=table)
    total = len(fam)
    idx = np.sort(np.random.default_rng(seed).permutation(total)[:n])
    sub = fam.subset(idx)
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        cgs = [sub.convert(i) for i in range(len(sub))]
        convert = (time.perf_counter() - t0) / n
        store = CGCache(sub.cache_name, sub.task, sub.input_shape, root=root)
        t0 = time.perf_counter()
        for i, cg in enumerate(cgs):
            store.put(sub.key(i), cg)
        encode = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        store.flush()
        write = (time.perf_counter() - t0) / n
        size = store.path.stat().st_size / n
        del store
        gc.collect()
        t0 = time.perf_counter()
        fresh = CGCache(sub.cache_name, sub.task, sub.input_shape, root=root)
        loaded = fresh.get_many([sub.key(i) for i in range(len(sub))])
        read = (time.perf_counter() - t0) / n
        assert all(cg is not None for cg in loaded)
        del loaded, fresh
        gc.collect()
        tracemalloc.start()
        again = CGCache(sub.cache_name, sub.task, sub.input_shape, root=root)
        held = again.get_many([sub.key(i) for i in range(len(sub))])
        del again  # the bundle's raw entries go; the decoded CGs stay
        gc.collect()
        memory = tracemalloc.get_traced_memory()[0] / n
        tracemalloc.stop()
        del held
    nodes = float(np.mean([len(cg.nodes) for cg in cgs]))
    per_net = convert + encode + write
    return {"total": total, "tasks": tasks, "nodes": nodes, "convert_s": convert, "encode_s": encode,
            "write_s": write, "read_s": read, "bytes": size, "memory_bytes": memory,
            "fill_h": per_net * total * tasks / 3600, "load_s": read * total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="networks per table (seeded sample)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not os.environ.get("CGPREDICT_DATA"):
        raise SystemExit("set CGPREDICT_DATA to the labelled-data folder")
    import torch

    torch.set_num_threads(1)
    cases = [("nasbench101", "nb101_30k", "cifar10", 1), ("nasbench201", "nb201_200ep", "cifar10", 3),
             ("nats_sss", None, "cifar10", 3)]
    print("| table | nets × tasks | CG nodes | convert ms/net | encode+write ms/net | bundle KB/net | "
          "read ms/net | memory KB/CG | fill, 1 process (h) | load one task's bundle (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for family, table, task, tasks in cases:
        m = measure(family, table, task, args.n, args.seed, tasks)
        name = table or f"{family} (default table)"
        print(f"| {name} | {m['total']:,} × {tasks} | {m['nodes']:.0f} | {1e3 * m['convert_s']:.1f} | "
              f"{1e3 * (m['encode_s'] + m['write_s']):.2f} | {m['bytes'] / 1e3:.1f} | {1e3 * m['read_s']:.2f} | "
              f"{m['memory_bytes'] / 1e3:.0f} | {m['fill_h']:.2f} | {m['load_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

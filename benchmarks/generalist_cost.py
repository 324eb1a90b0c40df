"""Cost of the shipped generalist on the 2-core CPU (issue 23's cost targets).

Pipeline position: model → CG → (proxy bank) → **GeneralistPredictor** → ranking; this script times it.

Measures, on NB-201-size networks (sampled NB-201 CIFAR-10 architectures, 32×32):

1. inference without proxies (graph-only ranker): CGs/second on ``--n-fast`` CGs already converted
   (best of 3 calls; target ≥ 2,000 CGs/s);
2. ``cgpredict rank --family nasbench201 --task cifar10 --n N`` with proxies: sampling N nets (with
   ``$CGPREDICT_DATA`` set, the labelled table instead — 725 nets in NAS-Bench-Suite-Zero's NB-201
   CIFAR-10 table, so unset it to time 1,000), conversion, proxy bank on
   ``--executor`` and ranking, in a *fresh* cache folder (cold; target ≤ 10 min for 1,000 nets) and
   then again with that cache (warm; target ≤ 10 s). Each is a separate process (``python -m cgpredict.cli rank``),
   timed whole.
   ``--keep-cache`` then copies the proxy-bank entries the cold run computed into the user cache
   (content-keyed files; existing ones are kept), so other benchmarks can read those nets for free.

Example::

    OMP_NUM_THREADS=1 python benchmarks/generalist_cost.py --n 1000 --executor local:2 --keep-cache \\
        --report benchmarks/results/generalist_cost.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def fast_inference(n: int) -> tuple[float, int]:
    """Best-of-3 CGs/second of ``predict(use_proxies=False)`` on ``n`` NB-201 CGs (converted first)."""
    from cgpredict.datasets import load_family
    from cgpredict.generalist import GeneralistPredictor

    fam = load_family("nasbench201", n=n, seed=0)
    cgs = fam.cgs(progress=False)
    model = GeneralistPredictor.pretrained(progress=False)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        scores = model.predict(cgs, use_proxies=False)
        best = min(best, time.perf_counter() - t0)
    assert np.isfinite(scores).all()
    return len(cgs) / best, len(cgs)


def rank_run(n: int, executor: str | None, cache: str) -> tuple[float, str]:
    """Wall seconds of one ``cgpredict rank`` process on ``n`` sampled NB-201 nets, and its output tail."""
    cmd = [sys.executable, "-m", "cgpredict.cli", "rank", "--family", "nasbench201", "--task", "cifar10", "--n", str(n),
           "--top", "3"]
    if executor:
        cmd += ["--executor", executor]
    env = {**os.environ, "CGPREDICT_CACHE": cache}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr[-2000:]}")
    lines = [line for line in out.stdout.splitlines() if "SRCC" in line or "Spearman" in line]
    return seconds, lines[-1].strip() if lines else ""


def keep_bank_entries(cache: str) -> int:
    """Copy the proxy-bank files of cache folder ``cache`` into the user cache (no overwrite); returns how many."""
    from cgpredict.fileio import atomic_write
    from cgpredict.proxies.bank import cache_root

    src = Path(cache) / cache_root().relative_to(cache_root().parents[1])
    dest = cache_root()
    copied = 0
    for path in src.rglob("*"):
        target = dest / path.relative_to(src)
        if path.is_file() and not target.exists() and not path.name.startswith("."):
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, path.read_bytes())
            copied += 1
    return copied


def main(argv: list[str] | None = None) -> int:
    """Run the measurements; returns an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="nets ranked with proxies (cold, then warm)")
    parser.add_argument("--n-fast", type=int, default=2000, help="CGs for the no-proxy inference rate")
    parser.add_argument("--executor", default="local:2", help="where the bank runs cold nets ('' = in process)")
    parser.add_argument("--skip-rank", action="store_true", help="only the no-proxy inference rate")
    parser.add_argument("--keep-cache", action="store_true",
                        help="copy the cold run's proxy-bank entries into the user cache afterwards")
    parser.add_argument("--report", default=None)
    args = parser.parse_args(argv)
    from cgpredict.provenance import code_line

    rate, count = fast_inference(args.n_fast)
    lines = ["# Generalist cost on this CPU (issue 23)", "", "Reproduce with:", "", "```",
             ("CGPREDICT_DATA=/work/shared/data " if os.environ.get("CGPREDICT_DATA") else "")
             + "OMP_NUM_THREADS=1 python benchmarks/generalist_cost.py " + " ".join(sys.argv[1:]), "```", "",
             code_line(), f"CPU cores: {os.cpu_count()}.", "",
             f"- Inference without proxies (graph-only ranker, `predict(use_proxies=False)`), {count} NB-201 CGs "
             f"already converted, best of 3: **{rate:,.0f} CGs/s** (target ≥ 2,000)."]
    print(lines[-1], flush=True)
    if not args.skip_rank:
        with tempfile.TemporaryDirectory(prefix="cgpredict-cost-") as cache:
            cold, tail_cold = rank_run(args.n, args.executor or None, cache)
            print(f"cold: {cold:.0f} s", flush=True)
            warm, tail_warm = rank_run(args.n, args.executor or None, cache)
            print(f"warm: {warm:.1f} s", flush=True)
            if args.keep_cache:
                print(f"copied {keep_bank_entries(cache)} proxy-bank entries into the user cache", flush=True)
        labelled = ("the labelled NB-201 CIFAR-10 table, or all of it if smaller" if os.environ.get("CGPREDICT_DATA")
                    else "sampled, unlabelled NB-201 nets")
        lines += [f"- `cgpredict rank --family nasbench201 --task cifar10 --n {args.n}"
                  + (f" --executor {args.executor}" if args.executor else "")
                  + f"` ({labelled}) with proxies, fresh cache folder (cold: table, conversion, proxy bank, "
                  "ranking): "
                  f"**{cold:.0f} s** ({cold / 60:.1f} min; target ≤ 10 min).",
                  f"- The same command again with that cache (warm): **{warm:.1f} s** (target ≤ 10 s).",
                  *([f"- Its ranking against the labels: {tail_warm}"] if tail_warm else []),
                  "", "Both are whole processes (Python start-up and imports included)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.report:
        from cgpredict.fileio import atomic_write

        atomic_write(args.report, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

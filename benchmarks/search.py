"""Acceptance benchmark of predictor-guided search (issue 6): labelled NB-201, free-form, throughput.

Pipeline position: model → CG → features → predictor → ranking/**search** (checked against labels).

Three parts (``--parts`` picks them):

``labelled``
    Search space = the 725 labelled NAS-Bench-201 CIFAR-10 networks of
    ``$CGPREDICT_DATA/naslib/nasbench201__cifar10.csv`` (200-epoch validation accuracy). Moves are
    NB-201's own edit (change one edge's op); a move that leaves the labelled set goes to the nearest
    labelled arch in Hamming distance (:class:`cgpredict.search.CellSpace`). Over ``--seeds`` seeds
    and the same number of predictor queries (``--queries``), compare the true accuracy of the net
    each method returns as best: (a) GENNAPE local search with the predictor, (b) regularized
    evolution (population 50, tournament 10) with the predictor, (c) random search with the
    predictor; also the rank of that net among the 725 (1 = best). The predictor is
    ``Predictor.pretrained("nb101")`` when shipped, else a small Predictor fitted on
    ``--fit-n`` labelled NB-201 nets (said so in the output).
``freeform``
    Local search on CGs from torchvision resnet18, mobilenet_v2 and the best labelled NB-201 net with
    a hard budget (``--budget`` × start MACs); every returned net must build and run
    (``CG.to_module``), respect the budget, and its ONNX export must pass ``onnx.checker`` and
    re-convert to the same network; predicted accuracy is compared with the start's.
``throughput``
    Candidates per second (mutate + shape check + predictor query, batches of 64) on NB-201 CGs;
    also with a real forward pass of every candidate (``run_check``).

Example::

    CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=1 python benchmarks/search.py --out benchmarks/results/search_cpu.md
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np


_PREDICTORS: dict[tuple[int, int], tuple] = {}


def get_predictor(fam, fit_n: int, seed: int, log: list[str]):  # noqa: ANN001, ANN201
    """The pretrained NB-101 predictor if shipped, else a small one fitted on ``fit_n`` NB-201 nets
    (fitted once per process)."""
    if (fit_n, seed) not in _PREDICTORS:
        note: list[str] = []
        _PREDICTORS[(fit_n, seed)] = (*_make_predictor(fam, fit_n, seed, note), note)
    pred, fitted_on, note = _PREDICTORS[(fit_n, seed)]
    log += [line for line in note if line not in log]
    return pred, fitted_on


def _make_predictor(fam, fit_n: int, seed: int, log: list[str]):  # noqa: ANN001, ANN202
    from cgpredict.predictor import Predictor

    try:
        pred = Predictor.pretrained("nb101", progress=False)
        log.append("\nFree-form and throughput predictor: `Predictor.pretrained('nb101')` (trained on NAS-Bench-101, "
                   "zero-shot here; `.predict`)")
        return pred, set()
    except (FileNotFoundError, ValueError) as exc:
        log.append(f"\nFree-form and throughput predictor: no usable pretrained checkpoint ({str(exc).splitlines()[0][:120]}); ")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(fam.archs), size=fit_n, replace=False)
    cgs = fam.cgs(progress=False)
    t = time.time()
    pred = Predictor(members=["CL+T", "k-GNN"], encoder={"epochs": 30, "batch_size": 64, "branch_dim": 32},
                     regressor={"epochs": 200, "hidden": 64}, kgnn={"epochs": 100, "batch_size": 16},
                     seed=seed, progress=False).fit([cgs[i] for i in idx], fam.labels[idx])
    log[-1] += (f"fitted `Predictor(members=['CL+T','k-GNN'])` on {fit_n} labelled NB-201 nets "
                f"(seed {seed}, {time.time() - t:.0f} s); those nets stay in the search space")
    return pred, {fam.archs[i] for i in idx}


def labelled_scores(name: str, fam, cgs, args: argparse.Namespace) -> tuple[np.ndarray, str]:  # noqa: ANN001
    """Scores of all labelled nets under one scorer configuration, and a description of it."""
    from cgpredict.predictor import Predictor

    rng = np.random.default_rng(0)
    if name == "oracle":
        return np.asarray(fam.labels, float), "the true labels (reference: how good each search algorithm is)"
    if name in ("pretrained-predict", "pretrained-score"):
        pred = Predictor.pretrained("nb101", progress=False)
        if name == "pretrained-predict":
            return pred.predict(cgs), "`Predictor.pretrained('nb101').predict` zero-shot (regressed accuracy)"
        return pred.score(cgs), ("`Predictor.pretrained('nb101').score` zero-shot (ensemble rank score, computed "
                                 "over all 725 nets in one batch)")
    if name == "pretrained-finetuned":
        idx = rng.choice(len(cgs), size=args.finetune_n, replace=False)
        pred = Predictor.pretrained("nb101", progress=False).finetune([cgs[i] for i in idx], fam.labels[idx])
        return pred.predict(cgs), (f"`Predictor.pretrained('nb101')` fine-tuned on {args.finetune_n} random "
                                   "labelled NB-201 nets (seed 0), `.predict`")
    if name in ("proxy-zero-shot", "proxy-finetuned"):
        from cgpredict.commands.proxy_member_args import CPU_GENNAS

        pred = Predictor.pretrained("nb101", progress=False).add_proxy_member(CPU_GENNAS, ("synflow",))
        what = ("`Predictor.pretrained('nb101').add_proxy_member(<CPU GenNAS-combo>, ('synflow',))`, "
                "7-member ensemble `.score`")
        if name == "proxy-zero-shot":
            return pred.score(cgs), what + " zero-shot (equal weights)"
        idx = rng.choice(len(cgs), size=args.finetune_n, replace=False)
        pred.finetune([cgs[i] for i in idx], fam.labels[idx])
        weights = ", ".join(f"{k} {v:.2f}" for k, v in pred.weights.items())
        return pred.score(cgs), (what + f" fine-tuned on {args.finetune_n} random labelled NB-201 nets (seed 0; "
                                 f"2-fold cross-fitted τ weights: {weights})")
    if name == "nb201-fit":
        idx = rng.choice(len(cgs), size=args.fit_n, replace=False)
        pred = Predictor(members=["CL+T", "k-GNN"], encoder={"epochs": 30, "batch_size": 64, "branch_dim": 32},
                         regressor={"epochs": 200, "hidden": 64}, kgnn={"epochs": 100, "batch_size": 16},
                         seed=0, progress=False).fit([cgs[i] for i in idx], fam.labels[idx])
        return pred.predict(cgs), (f"small `Predictor(members=['CL+T','k-GNN'])` fitted on {args.fit_n} random "
                                   "labelled NB-201 nets (seed 0; they stay in the search space)")
    raise ValueError(f"unknown scorer {name!r}")


def part_labelled(args: argparse.Namespace, log: list[str]) -> None:
    from cgpredict.datasets import load_family
    from cgpredict.metrics import spearman
    from cgpredict.search import CellSpace, Objective, local_search, random_search, regularized_evolution

    fam = load_family("nasbench201", task="cifar10")
    cgs = fam.cgs(progress=True)
    order = np.argsort(-fam.labels, kind="stable")
    rank_of = {fam.archs[i]: r + 1 for r, i in enumerate(order)}
    truth = dict(zip(fam.archs, fam.labels))
    log.append("")
    log.append(f"### Labelled NB-201 (CIFAR-10, {len(fam.archs)} nets, 200-epoch val acc), {args.seeds} seeds")
    log.append("")
    log.append("Space: the labelled nets only; move = change one edge op, landing on the nearest labelled arch. "
               "Local search: top-k 5, 4 mutants per parent, from a random labelled start (seed-dependent). "
               "Evolution: population 50, tournament 10. Same predictor-query budget for all three. "
               f"Best labelled net {fam.labels.max():.2f} (rank 1), median {np.median(fam.labels):.2f}.")
    for scorer in args.scorers:
        t = time.time()
        try:
            scores, what = labelled_scores(scorer, fam, cgs, args)
        except FileNotFoundError as exc:
            log.append(f"\n(scorer {scorer} skipped: {str(exc).splitlines()[0]})")
            continue
        table = dict(zip(fam.archs, scores))
        top1 = fam.archs[int(np.argmax(scores))]
        log.append("")
        log.append(f"#### Scorer `{scorer}`: {what}")
        log.append("")
        log.append(f"Spearman ρ(score, true) over the 725 = {spearman(fam.labels, scores):+.3f}; the scorer's own "
                   f"top-1 has {truth[top1]:.2f} (rank {rank_of[top1]}); setup {time.time() - t:.0f} s.")
        log.append("")
        log.append("| queries | method | true acc of returned best (mean ± std) | rank among 725 (mean / median) "
                   "| queries used (mean) |")
        log.append("|---|---|---|---|---|")
        space = CellSpace(6, 5, lambda archs, tb=table: np.array([tb[tuple(a)] for a in archs]), allowed=fam.archs)
        for q in args.queries:
            results: dict[str, list[tuple[float, int, int]]] = {"local": [], "evolution": [], "random": []}
            for seed in range(args.seeds):
                start = fam.archs[int(np.random.default_rng(1000 + seed).integers(len(fam.archs)))]
                runs = {
                    "local": local_search(space, start, Objective(), iterations=10 ** 6, topk=args.topk,
                                          mutants=args.mutants, max_queries=q, seed=seed, progress=False),
                    "evolution": regularized_evolution(space, None, Objective(), population=50, tournament=10,
                                                       max_queries=q, seed=seed, progress=False),
                    "random": random_search(space, None, Objective(), max_queries=q, seed=seed, progress=False),
                }
                for name, res in runs.items():
                    best = res.best.item
                    assert res.queries <= q
                    results[name].append((float(truth[best]), rank_of[best], res.queries))
            for name, rows in results.items():
                acc = np.array([r[0] for r in rows])
                rank = np.array([r[1] for r in rows])
                label = {"local": "(a) local search", "evolution": "(b) reg. evolution",
                         "random": "(c) random search"}[name]
                used = np.mean([r[2] for r in rows])
                log.append(f"| {q} | {label} | {acc.mean():.2f} ± {acc.std():.2f} | "
                           f"{rank.mean():.0f} / {np.median(rank):.0f} | {used:.0f} |")


def part_freeform(args: argparse.Namespace, log: list[str]) -> None:
    from cgpredict.datasets import load_family
    from cgpredict.search import resolve_start, search_cg, write_results

    fam = load_family("nasbench201", task="cifar10")
    best_arch = fam.archs[int(np.argmax(fam.labels))]
    predictor, _ = get_predictor(fam, args.fit_n, 0, log)
    starts = {"torchvision:resnet18": None, "torchvision:mobilenet_v2": None,
              f"nasbench201:{best_arch}": None}
    log.append("")
    log.append(f"### Free-form local search (hard budget × start MACs, T={args.iterations}, "
               f"top-k {args.free_topk}, {args.free_mutants} mutants/parent, explore {args.explore})")
    log.append("")
    log.append("Over-budget mutants are scored too (counted in `queries`); repair rounds until the budget is met "
               "are not counted in T.")
    log.append("")
    log.append("| start | budget | start pred | start MMACs | best pred | best MMACs | returned | all run | all ≤ budget | "
               "ONNX checker + same CG | pred ≥ start | queries | search s | export s |")
    log.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out_root = Path(args.export_dir)
    notes = []
    for spec in starts:
        start = resolve_start(spec)
        for budget_frac in args.budgets:
            t = time.time()
            with warnings.catch_warnings():  # reported in the table and the notes below
                warnings.simplefilter("ignore", UserWarning)
                res = search_cg(start, predictor.predict, flops_budget=budget_frac, iterations=args.iterations,
                                topk=args.free_topk, mutants=args.free_mutants, explore=args.explore, seed=0,
                                progress=False)
            t_search = time.time() - t
            t = time.time()
            folder = out_root / f"{spec.replace(':', '_').replace(' ', '')}_{budget_frac}"
            rows = write_results(res, start, folder, progress=False)
            t_export = time.time() - t
            budget = budget_frac * start.flops
            runs = all(r.get("runs") for r in rows)
            under = all(r["macs"] <= budget for r in rows)
            onnx_ok = all(r.get("onnx") and r.get("onnx_same_cg") for r in rows)
            ge = sum(r["pred"] >= res.start.pred for r in rows)
            b = res.best
            log.append(f"| {spec} | {budget_frac} | {res.start.pred:.2f} | {start.flops / 1e6:.1f} | "
                       f"{b.pred if b else float('nan'):.2f} | {(b.flops if b else math.nan) / 1e6:.1f} | "
                       f"{len(rows)} | {runs} | {under} | {onnx_ok} | {ge}/{len(rows)} | {res.queries} | "
                       f"{t_search:.0f} | {t_export:.0f} |")
            warning = res.below_start()
            if warning:
                notes.append(f"- **warning** for `{spec}` at {budget_frac}: {warning}")
            if b is not None:
                notes.append(f"- best for `{spec}` at {budget_frac}: " + "; ".join(b.moves))
    log.append("")
    log += notes


def part_throughput(args: argparse.Namespace, log: list[str]) -> None:
    from cgpredict.converters import from_torch
    from cgpredict.datasets import load_family
    from cgpredict.datasets import nasbench201 as nb
    from cgpredict.search import mutate
    from cgpredict.search.algorithms import gc_paused
    from cgpredict.search.graph_edit import canonical_key
    from cgpredict.search.spaces import run_check

    fam = load_family("nasbench201", task="cifar10")
    predictor, _ = get_predictor(fam, args.fit_n, 0, log)
    start = from_torch(nb.build((0, 2, 3, 2, 4, 1)), input_shape=nb.input_shape("cifar10"))
    rng = np.random.default_rng(0)
    predictor.predict([start])  # warm-up

    def run(n: int, forward: bool) -> tuple[float, float]:
        done, t, cpu = 0, time.time(), time.process_time()
        parent = start
        while done < n:
            batch = []
            while len(batch) < 64:
                child = mutate(parent, rng)
                if child is None:
                    continue
                if forward:
                    run_check(child)
                canonical_key(child)  # the search's dedup key is part of each candidate's cost
                batch.append(child)
                if rng.random() < 0.2:
                    parent = child
            predictor.predict(batch)
            done += len(batch)
        return done / (time.time() - t), done / (time.process_time() - cpu)

    with gc_paused():  # as inside the search algorithms
        rate = run(args.throughput_n, False)
    log.append("")
    log.append("### Throughput on NB-201-size CGs (~250 nodes)")
    log.append("")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    log.append(f"- mutate + shape check + dedup key + predictor query (batches of 64): **{rate[0]:.0f} candidates/s "
               f"wall-clock**, {rate[1]:.0f} per CPU-second of this process ({'meets' if rate[0] >= 100 else 'misses'} "
               f"the ≥ 100/s target on wall-clock), torch threads = {args.threads}, load average {load:.1f} on "
               f"{os.cpu_count()} cores while measuring")
    with gc_paused():
        rate_fwd = run(128, True)
    log.append(f"- with a real forward pass of every candidate (CG.to_module + 1×3×32×32 input): "
               f"{rate_fwd[0]:.1f} candidates/s wall-clock, {rate_fwd[1]:.1f} per CPU-second")


def main(argv: list[str] | None = None) -> int:
    """Run the requested parts and print (and optionally write) a Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["labelled", "freeform", "throughput"],
                        choices=["labelled", "freeform", "throughput"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--queries", type=int, nargs="+", default=[50, 100, 200],
                        help="predictor queries per method and seed (one table per value)")
    parser.add_argument("--topk", type=int, default=5, help="local search top-k on the labelled space")
    parser.add_argument("--mutants", type=int, default=4)
    parser.add_argument("--fit-n", type=int, default=50, help="NB-201 nets to fit a predictor on if none shipped")
    parser.add_argument("--finetune-n", type=int, default=20, help="NB-201 nets to fine-tune the pretrained one on")
    parser.add_argument("--scorers", nargs="+", default=["pretrained-predict", "pretrained-score",
                                                          "pretrained-finetuned", "nb201-fit", "oracle"],
                        help="labelled part: scorer configurations to compare (also: proxy-zero-shot, "
                             "proxy-finetuned — the pretrained predictor with the Proxy member)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.8, 1.0],
                        help="free-form hard budgets as fractions of the start's MACs")
    parser.add_argument("--free-mutants", type=int, default=16)
    parser.add_argument("--explore", type=float, default=0.5, help="free-form local search: over-budget parent share")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--free-topk", type=int, default=10)
    parser.add_argument("--throughput-n", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--export-dir", default="/tmp/cgpredict_search_bench")
    parser.add_argument("--out", default=None, help="also write the report (Markdown) here")
    args = parser.parse_args(argv)
    if not os.environ.get("CGPREDICT_DATA"):
        print("set CGPREDICT_DATA to the labelled-data folder (e.g. /work/shared/data)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    log = ["## `benchmarks/search.py`", "",
           "Command: `CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=1 python benchmarks/search.py "
           + " ".join(argv if argv is not None else sys.argv[1:]) + "`", ""]
    t0 = time.time()
    shown = 0
    for part in args.parts:
        {"labelled": part_labelled, "freeform": part_freeform, "throughput": part_throughput}[part](args, log)
        print("\n".join(log[shown:]), flush=True)
        shown = len(log)
    log.append("")
    log.append(f"Total {time.time() - t0:.0f} s on CPU ({os.cpu_count()} cores shared).")
    text = "\n".join(log)
    print("\n".join(log[shown:]))
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    sys.exit(main())

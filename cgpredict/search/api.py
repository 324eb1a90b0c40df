"""One-call search from a model: resolve the start, search, plot, export the top-k.

Pipeline position: model → CG → features → predictor → ranking/**search** (user entry point; the
``cgpredict search`` command is a thin wrapper around :func:`search_cg` and :func:`write_results`).

Example:
    >>> from cgpredict.predictor import Predictor
    >>> from cgpredict.search import resolve_start, search_cg, write_results
    >>> start = resolve_start("torchvision:resnet18")
    >>> result = search_cg(start, Predictor.pretrained("nb101").predict, flops_budget=0.8)
    >>> rows = write_results(result, start, "out/")      # top-k: CG JSON, model.py, ONNX, diff
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgpredict.cg import CG
from cgpredict.fileio import atomic_write, atomic_writer
from cgpredict.quiet import progress_bar
from cgpredict.search.algorithms import METHODS, SearchResult
from cgpredict.search.export import export_cg, relocate, search_output_folder
from cgpredict.search.mutations import applicable
from cgpredict.search.objective import Objective
from cgpredict.search.spaces import CGSpace


def resolve_start(spec: str, input_shape: tuple[int, ...] | str | None = None) -> CG:
    """The start CG of a search from a model spec.

    Accepts a CG JSON file (``*.json``), a family architecture ``FAMILY:ARCH`` (e.g.
    ``nasbench201:(0, 2, 3, 2, 3, 1)``, built with the family's own input shape), or anything
    :func:`cgpredict.model_spec.spec_to_cg` accepts (``torchvision:NAME``, ``file.py:Class``,
    ``model.onnx``).
    """
    text = spec.strip()
    if text.endswith(".json"):
        return CG.from_json(Path(text))
    kind, sep, rest = text.partition(":")
    if sep and rest and kind not in ("torchvision", "timm") and not kind.endswith(".py"):
        from cgpredict.datasets import registry

        if kind in registry.list_families():
            from cgpredict.converters import from_torch
            from cgpredict.model_spec import parse_input_shape

            family = registry.family_module(kind)
            arch = family.parse_arch(rest)
            shape = parse_input_shape(input_shape) if isinstance(input_shape, str) else input_shape
            return from_torch(family.build(arch), input_shape=tuple(shape or family.input_shape()),
                              name=f"{kind}:{family.format_arch(arch)}")
    from cgpredict.model_spec import spec_to_cg

    return spec_to_cg(text, input_shape)


def search_cg(start: CG, scorer: Callable[[list[CG]], np.ndarray], flops_budget: float | None = None,
              penalty: float = 0.0, method: str = "local", iterations: int = 6, topk: int = 10, mutants: int = 16,
              max_queries: int | None = None, population: int = 50, tournament: int = 10,
              mutations: Sequence[str] | None = None, flops_mode: str = "torchvision", run_check: bool = False,
              explore: float = 0.5, seed: int = 0, progress: bool = True) -> SearchResult:
    """Search CGs around ``start`` for higher predicted accuracy within a FLOPs budget.

    Args:
        start: the network to improve.
        scorer: batch scorer of CGs (e.g. ``Predictor.predict``); higher is better.
        flops_budget: budget as a fraction of the start's MACs (e.g. 0.8), ``None`` = none.
        penalty: 0 = hard budget, > 0 = soft penalty weight (see :mod:`cgpredict.search.objective`).
        method: ``local`` (GENNAPE local search), ``evolution`` or ``random``.
        iterations, topk, mutants: local-search rounds, kept parents, children per parent.
        explore: local search under a hard budget: share of parents kept over the budget once
            feasible candidates exist (see :func:`~cgpredict.search.algorithms.local_search`).
        max_queries: predictor-query budget (default: local search is bounded by its rounds,
            evolution/random get ``iterations * topk * mutants``).
        population, tournament: regularized evolution settings.
        mutations: mutation names to use (default: all, see :mod:`cgpredict.search.mutations`).
        flops_mode: MAC counting mode of the budget.
        run_check: build and run every candidate (slow) instead of checking shapes only.
        seed: RNG seed (same seed, same result).
        progress: tqdm progress bars.

    Warns (``UserWarning``, text from :meth:`SearchResult.below_start`) when the best candidate
    within the budget predicts less than the start.
    """
    if method not in METHODS:
        raise ValueError(f"unknown search method {method!r}; choose from {', '.join(METHODS)}")
    if flops_budget is not None and not flops_budget > 0:
        raise ValueError(f"flops budget must be a positive fraction of the start's MACs, got {flops_budget}")
    space = CGSpace(start, scorer, mutations=mutations, flops_mode=flops_mode, run_check=run_check)
    moves = applicable(start, space.mutations)
    if not moves:
        raise ValueError(f"no mutation applies to {start.name or 'the start network'}: the moves edit 2-D "
                         "convolutions ((N, C, H, W) maps; widths also 1-D ones), activations and residual adds; "
                         f"asked for: {', '.join(m.name for m in space.mutations)}")
    budget = None if flops_budget is None else flops_budget * start.macs(flops_mode)
    objective = Objective(budget, penalty)
    if method == "local":
        result = METHODS["local"](space, start, objective, iterations=iterations, topk=topk, mutants=mutants,
                                  max_queries=max_queries, explore=explore, seed=seed, progress=progress)
    else:
        queries = max_queries or iterations * topk * mutants
        if method == "evolution":
            result = METHODS["evolution"](space, start, objective, population=population, tournament=tournament,
                                          max_queries=queries, topk=topk, seed=seed, progress=progress)
        else:
            result = METHODS["random"](space, start, objective, max_queries=queries, topk=topk, seed=seed,
                                       progress=progress)
    result.start_moves = moves
    message = result.below_start()
    if message:
        warnings.warn(f"{start.name or 'start'}: {message}", UserWarning, stacklevel=2)
    return result


def plot_search(result: SearchResult, path: str | Path, title: str = "") -> Path:
    """Two panels: best objective per query (trajectory) and all candidates with the Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    traj = result.trajectory()
    if traj.size:
        finite = np.where(np.isfinite(traj), traj, np.nan)
        ax1.plot(np.arange(1, traj.size + 1), finite, lw=1.5)
    ax1.set_xlabel("predictor queries")
    ax1.set_ylabel("best objective so far")
    ax1.set_title(f"{result.method} search trajectory")
    scored = [c for c in result.history if c.query > 0]
    ax2.scatter([c.flops / 1e6 for c in scored], [c.pred for c in scored], s=8, c=[c.query for c in scored],
                cmap="viridis", alpha=0.7, label="candidates")
    front = result.pareto()
    ax2.plot([c.flops / 1e6 for c in front], [c.pred for c in front], "r.-", label="Pareto front")
    if result.start is not None and math.isfinite(result.start.pred):
        ax2.scatter([result.start.flops / 1e6], [result.start.pred], marker="*", s=150, c="k", label="start")
    if result.objective.flops_budget is not None:
        ax2.axvline(result.objective.flops_budget / 1e6, ls="--", c="gray", label="budget")
    ax2.set_xlabel("MMACs")
    ax2.set_ylabel("predicted accuracy")
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format=Path(path).suffix.lstrip(".") or "png")
    atomic_write(path, buffer.getvalue())
    plt.close(fig)
    return path


def write_results(result: SearchResult, start: CG, outdir: str | Path, onnx: bool = True,
                  progress: bool = True) -> list[dict[str, Any]]:
    """Write the top-k (``rank01/`` …, see :func:`~cgpredict.search.export.export_cg`), ``results.csv``,
    ``pareto.csv``, ``search.json`` and ``search.png`` to ``outdir``; returns one row per top-k net.

    The folder is written whole and swapped in (:func:`~cgpredict.search.export.search_output_folder`):
    it replaces an earlier search's output, never a folder holding other files
    (:class:`~cgpredict.fileio.OutputExistsError`)."""
    out = Path(outdir)
    rows: list[dict[str, Any]] = []
    start_pred = result.start.pred if result.start is not None else math.nan
    with search_output_folder(out) as tmp:
        for rank, cand in enumerate(progress_bar(result.top, desc="export", progress=progress, leave=False), start=1):
            info = {"rank": rank, "pred": cand.pred, "macs": int(cand.flops), "params": int(cand.params),
                    "objective": cand.value, "query": cand.query, "moves": " | ".join(cand.moves)}
            rec = export_cg(cand.item, tmp / f"rank{rank:02d}", start=start, onnx=onnx, info=info)
            rows.append(relocate(rec, tmp, out))
        columns = ["rank", "pred", "macs", "params", "objective", "query", "runs", "onnx", "onnx_same_cg", "dir",
                   "skipped", "moves"]
        with atomic_writer(tmp / "results.csv", binary=False) as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", restval="")
            writer.writeheader()
            writer.writerows(rows)
        with atomic_writer(tmp / "pareto.csv", binary=False) as handle:
            writer = csv.writer(handle)
            writer.writerow(["pred", "macs", "params", "query", "moves"])
            for c in result.pareto():
                writer.writerow([c.pred, int(c.flops), int(c.params), c.query, " | ".join(c.moves)])
        summary = {"method": result.method, "queries": result.queries, "flops_budget": result.objective.flops_budget,
                   "penalty": result.objective.penalty, "warning": result.below_start(),
                   "start": {"name": start.name, "pred": start_pred, "macs": start.flops, "params": start.params},
                   "top": [{k: r.get(k) for k in columns} for r in rows]}
        atomic_write(tmp / "search.json", json.dumps(summary, indent=1, default=str))
        plot_search(result, tmp / "search.png", title=start.name)
    return rows

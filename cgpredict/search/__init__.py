"""Predictor-guided search over computation graphs (model → CG → features → predictor → **search**).

* :mod:`~cgpredict.search.mutations` — shape-preserving CG mutations (kernel size, separable /
  inverted-residual / dense swaps, width, skips, blocks, activations).
* :mod:`~cgpredict.search.spaces` — :class:`CGSpace` (free-form CGs) and :class:`CellSpace`
  (a cell benchmark's own encoding, optionally restricted to labelled archs).
* :mod:`~cgpredict.search.algorithms` — GENNAPE local search, regularized evolution, random search.
* :mod:`~cgpredict.search.objective` — predicted accuracy under a hard / penalised FLOPs budget,
  Pareto front.
* :mod:`~cgpredict.search.export` / :mod:`~cgpredict.search.api` — diffs, PyTorch/ONNX exports,
  plots, and the one-call :func:`search_cg`.
"""

from cgpredict.search.algorithms import (
    Candidate,
    SearchResult,
    local_search,
    random_search,
    regularized_evolution,
)
from cgpredict.search.api import plot_search, resolve_start, search_cg, write_results
from cgpredict.search.export import diff_cgs, export_cg
from cgpredict.search.mutations import MUTATIONS, Mutation, get_mutations, mutate
from cgpredict.search.objective import Objective, pareto_front
from cgpredict.search.spaces import CellSpace, CGSpace, SearchSpace

__all__ = [
    "MUTATIONS", "CGSpace", "Candidate", "CellSpace", "Mutation", "Objective", "SearchResult", "SearchSpace",
    "diff_cgs", "export_cg", "get_mutations", "local_search", "mutate", "pareto_front", "plot_search",
    "random_search", "regularized_evolution", "resolve_start", "search_cg", "write_results",
]

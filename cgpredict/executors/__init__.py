"""One executor seam for per-network work: here (``local``) or on a Ray cluster (``ray``).

Where it sits: beside the pipeline (model → CG → features → predictor → ranking/search). Family
conversion, proxy scoring and ranking run one independent, seeded job per network; an
:class:`Executor` runs such a job over many networks in chunks and returns one :class:`Outcome`
per network (its value, or the error it raised). :class:`ResultStore` keys results by CG hash and
configuration, so a cluster run fills the same cache a local run reads and an interrupted run
resumes.

Example:
    >>> from cgpredict.executors import score_cgs
    >>> from cgpredict.proxies.zero_cost import synflow
    >>> outcomes = score_cgs(cgs, synflow, executor="local")    # or "ray", "ray:auto", "ray:HOST:PORT"
"""

from cgpredict.executors.api import SPEC_HELP, get_executor, score_cgs
from cgpredict.executors.base import Executor, ExecutorError, Outcome, cg_from_json, cg_to_json, task_device
from cgpredict.executors.local import LocalExecutor
from cgpredict.executors.store import ResultStore, run_cached, values

__all__ = ["SPEC_HELP", "Executor", "ExecutorError", "LocalExecutor", "Outcome", "ResultStore", "cg_from_json",
           "cg_to_json", "get_executor", "run_cached", "score_cgs", "task_device", "values"]


def __getattr__(name: str) -> object:
    if name == "RayExecutor":  # imported on demand: `ray` is optional
        from cgpredict.executors.ray_backend import RayExecutor

        return RayExecutor
    raise AttributeError(f"module 'cgpredict.executors' has no attribute {name!r}")

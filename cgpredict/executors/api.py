"""Choosing an executor by name, and scoring CGs through one.

Where it sits: beside the pipeline (model → CG → features → predictor → ranking/search); the entry
point that proxy scoring, family conversion and ranking call with their ``executor=`` argument.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cgpredict.executors.base import Executor, Outcome, cg_from_json, cg_to_json
from cgpredict.executors.local import LocalExecutor
from cgpredict.executors.store import ResultStore, run_cached

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG

#: What :func:`get_executor` accepts, for error messages and CLI help.
SPEC_HELP = "'local', 'local:N' (N processes), 'ray' (a local Ray session), 'ray:auto' or 'ray:HOST:PORT'"


def get_executor(spec: str | Executor | None = None, **options: Any) -> Executor:
    """The executor named by ``spec``; an :class:`Executor` is returned as it is.

    ``None`` or ``"local"`` — this process; ``"local:N"`` — N worker processes; ``"ray"`` — the
    Ray session of this process, or a new local one; ``"ray:auto"`` — the cluster started on this
    machine with ``ray start --head``; ``"ray:HOST:PORT"`` — the cluster whose head is there.
    ``options`` go to the executor's constructor (e.g. ``num_gpus_per_task=0.25``).

    Raises:
        ValueError: an unknown spec.
        ExecutorError: ``ray`` is not installed (the message names ``pip install cgpredict[ray]``)
            or the cluster cannot be reached.
    """
    if spec is None:
        return LocalExecutor(**options)
    if not isinstance(spec, str):
        if isinstance(spec, Executor):
            if options:
                raise ValueError(f"get_executor: options {sorted(options)} given with an executor object {spec!r}")
            return spec
        raise TypeError(f"get_executor: expected a spec string or an Executor, got {type(spec).__name__}")
    kind, _, rest = spec.strip().partition(":")
    if kind == "local":
        if rest:
            try:
                options.setdefault("workers", int(rest))
            except ValueError:
                raise ValueError(f"executor spec {spec!r}: 'local:N' needs a number of processes") from None
        return LocalExecutor(**options)
    if kind == "ray":
        from cgpredict.executors.ray_backend import RayExecutor

        return RayExecutor(address=rest or None, **options)
    raise ValueError(f"unknown executor spec {spec!r}; expected {SPEC_HELP}")


def score_cgs(cgs: Sequence[CG], scorer: Callable[[CG], Any], executor: str | Executor | None = None, *,
              store: ResultStore | None = None, config_key: str | None = None, chunk_size: int | None = None,
              progress: bool = False) -> list[Outcome]:
    """``scorer(cg)`` for every CG on ``executor``; one :class:`Outcome` per CG, in input order.

    A CG whose scorer raises gets an outcome with the exception's text and the run goes on. With
    ``store`` (and ``config_key`` naming the scorer's configuration), results are content-addressed
    by CG hash: only missing ones are computed and each is written as it arrives (see
    :func:`~cgpredict.executors.store.run_cached`). An executor made here from a spec string is
    closed at the end (a Ray session it started is shut down); pass an :class:`Executor` to reuse one.

    Example:
        >>> from cgpredict.proxies.zero_cost import synflow
        >>> outcomes = score_cgs(cgs, synflow, "ray:auto")       # doctest: +SKIP
        >>> [o.value for o in outcomes if o.ok][:3]              # doctest: +SKIP
    """
    if store is not None and not config_key:
        raise ValueError("score_cgs: a store needs config_key= naming the scorer's configuration (e.g. 'synflow|seed=0')")
    owned = not isinstance(executor, Executor)
    runner = get_executor(executor)
    try:
        if store is not None:
            return run_cached(runner, scorer, cgs, config_key or "", store, chunk_size=chunk_size, progress=progress)
        return runner.map(scorer, cgs, chunk_size, encode=cg_to_json, decode=cg_from_json)
    finally:
        if owned:
            runner.close()

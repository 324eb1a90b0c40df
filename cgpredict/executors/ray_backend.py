"""The Ray executor: the same chunks as the local one, run as Ray tasks on a machine or a cluster.

Where it sits: beside the pipeline (model → CG → features → predictor → ranking/search); chosen
with ``get_executor("ray")`` / ``"ray:auto"`` / ``"ray:HOST:PORT"`` (optional extra:
``pip install cgpredict[ray]``; ``ray`` is imported only when this executor starts).

Ray is the scheduler; this module only cuts the work into chunks (one task each, large enough
that the task round trip is small next to the work), sends each chunk's items in their transport
form (CGs as JSON text, see :func:`~cgpredict.executors.base.cg_to_json`), keeps at most two
chunks per worker in flight, and gathers the results on the driver. A worker process that dies is
handled by Ray's task retries (``max_retries``); a chunk that still fails becomes *fault* outcomes
(never cached), while an item whose function raises is an ordinary per-item error, as locally.
A fraction of a GPU per task is requested only when the cluster has GPUs; CPU-only clusters run
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from cgpredict.executors.base import (ExecutorBase, ExecutorError, Outcome, chunk_ranges, default_chunk_size,
                                      error_text, run_chunk)

INSTALL_HINT = "pip install cgpredict[ray]"


def import_ray() -> Any:
    """The ``ray`` module; :class:`ExecutorError` naming the extra to install when it is absent."""
    try:
        import ray
    except ImportError as exc:
        raise ExecutorError(f"the Ray executor needs the optional dependency `ray` ({exc}); "
                            f"install it with `{INSTALL_HINT}`") from exc
    return ray


def _last_line(exc: BaseException) -> str:
    """The last non-empty line of an error's text (where Ray's wrapped tracebacks name the cause)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:500]


class RayExecutor(ExecutorBase):
    """Run items as chunked Ray tasks.

    Args:
        address: ``None`` — use the Ray session already started in this process, else start a
            local one (``num_cpus``); ``"auto"`` — join the cluster running on this machine
            (``ray start --head``); ``"HOST:PORT"`` — join that cluster's head. When this process
            already has a Ray session, that session is used whatever ``address`` says.
        num_cpus: CPUs of a local Ray session this executor starts (``None``: all of them).
        cpus_per_task: CPUs Ray reserves per task; torch runs that many threads in it.
        num_gpus_per_task: fraction of a GPU reserved per task when the cluster has GPUs (e.g.
            0.25: four tasks share one GPU); ignored on a CPU-only cluster.
        max_retries: times Ray reruns a task whose worker process died.
        max_in_flight: chunks submitted at once (default: twice the worker count).
        init_kwargs: extra arguments of ``ray.init`` (e.g. ``runtime_env``) when it is started here.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_task: float = 1,
                 num_gpus_per_task: float = 0.0, max_retries: int = 3, max_in_flight: int | None = None,
                 init_kwargs: dict[str, Any] | None = None) -> None:
        if cpus_per_task <= 0:
            raise ValueError(f"RayExecutor: cpus_per_task must be > 0, got {cpus_per_task}")
        if not 0 <= num_gpus_per_task <= 1:
            raise ValueError(f"RayExecutor: num_gpus_per_task must be a fraction in [0, 1], got {num_gpus_per_task}")
        if max_retries < 0:
            raise ValueError(f"RayExecutor: max_retries must be >= 0, got {max_retries}")
        self.ray = import_ray()
        self.address = address
        self.cpus_per_task = cpus_per_task
        self.max_retries = int(max_retries)
        self._started = False
        if not self.ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, **(init_kwargs or {})}
            if address is None:
                kwargs["num_cpus"] = num_cpus
            else:
                kwargs["address"] = address
            try:
                self.ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = "a local Ray session" if address is None else f"the Ray cluster at {address!r}"
                raise ExecutorError(f"could not start or join {where}: {error_text(exc)} (start one with "
                                    "`ray start --head`, or join with `ray start --address=HEAD:6379`)") from exc
            self._started = True
        resources = self.ray.cluster_resources()
        self.cluster_gpus = float(resources.get("GPU", 0.0))
        self.num_gpus_per_task = float(num_gpus_per_task) if self.cluster_gpus > 0 else 0.0
        slots = float(resources.get("CPU", 1.0)) / cpus_per_task
        if self.num_gpus_per_task > 0:
            slots = min(slots, self.cluster_gpus / self.num_gpus_per_task)
        self._workers = max(1, int(slots))
        self.max_in_flight = max_in_flight or 2 * self._workers
        threads = max(1, int(cpus_per_task))
        self._threads = threads
        self._task = self.ray.remote(run_chunk).options(
            num_cpus=cpus_per_task, num_gpus=self.num_gpus_per_task, max_retries=self.max_retries,
            retry_exceptions=False, name="cgpredict.run_chunk")

    @property
    def workers(self) -> int:
        """Tasks the cluster runs at once (its CPUs, or GPU fractions, per task)."""
        return self._workers

    def __repr__(self) -> str:
        gpu = f", num_gpus_per_task={self.num_gpus_per_task}" if self.num_gpus_per_task else ""
        return f"RayExecutor(address={self.address!r}, workers={self._workers}{gpu})"

    def map_chunks(self, fn: Callable[[Any], Any], items: Sequence[Any], chunk_size: int | None = None, *,
                   encode: Callable[[Any], Any] | None = None,
                   decode: Callable[[Any], Any] | None = None) -> Iterator[tuple[int, Outcome]]:
        """``(index, Outcome)`` per item, as their chunks finish on the cluster."""
        ray = self.ray
        if not items:
            return
        size = chunk_size or default_chunk_size(len(items), self._workers)
        todo = list(chunk_ranges(len(items), size))
        todo.reverse()
        fn_ref = ray.put(fn)  # shipped once, not once per chunk
        decode_ref = ray.put(decode)
        running: dict[Any, range] = {}
        try:
            while todo or running:
                while todo and len(running) < self.max_in_flight:
                    chunk = todo.pop()
                    payloads = [encode(items[i]) if encode is not None else items[i] for i in chunk]
                    running[self._task.remote(fn_ref, payloads, decode_ref, self._threads)] = chunk
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    chunk = running.pop(ref)
                    try:
                        results = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # run_chunk itself failed: fn or decode unusable
                        cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
                        raise ExecutorError(f"ray executor: a worker could not run {getattr(fn, '__name__', fn)!r} "
                                            f"(is cgpredict, and the function's module, importable on every node?): "
                                            f"{_last_line(cause)}") from exc
                    except ray.exceptions.RayError as exc:  # the worker or node died after every retry
                        for index in chunk:
                            yield index, Outcome(error=f"WorkerCrashed: {error_text(exc)}", fault=True)
                        continue
                    for index, (value, error) in zip(chunk, results):
                        yield index, Outcome(value=value, error=error)
        finally:
            for ref in running:  # an interrupted run: stop the chunks still out
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already finished or its worker gone
                    pass

    def close(self) -> None:
        """Shut down the Ray session if this executor started it (a joined cluster keeps running)."""
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False

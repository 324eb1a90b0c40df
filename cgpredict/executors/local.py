"""The local executor: today's behaviour, in the calling process or in a pool of processes.

Where it sits: beside the pipeline (model → CG → features → predictor → ranking/search), the
default backend of :func:`cgpredict.executors.get_executor`.

``workers=1`` runs every item here, one after the other (no encoding, no copies). ``workers > 1``
uses spawned worker processes like ``Family.cgs(workers=N)`` (fork is unsafe once torch has
started threads): items go in chunks, at most two chunks per worker are in flight (so a long run
never holds every encoded item at once), each worker runs torch on ``threads`` thread(s), and a
pool broken by a dead worker is restarted and its chunks resent, up to ``max_retries`` times. The
pool outlives one ``map`` call: a caller that maps many small batches (a search scores one batch
per round) pays the workers' start-up (spawn + ``import torch``, seconds) once, until
:meth:`~LocalExecutor.close` (or the end of a ``with`` block).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from cgpredict.executors.base import (ExecutorBase, ExecutorError, Outcome, chunk_ranges, default_chunk_size,
                                      error_text, run_chunk)


class LocalExecutor(ExecutorBase):
    """Run items in this process (``workers=1``) or in ``workers`` spawned processes.

    Args:
        workers: processes at once; 1 runs everything in the calling process.
        threads: torch threads in each worker process (default 1; the calling process is left as
            it is when ``workers=1``).
        max_retries: times a chunk is resent after its worker process died.
    """

    name = "local"

    def __init__(self, workers: int = 1, threads: int | None = 1, max_retries: int = 3) -> None:
        if workers < 1:
            raise ValueError(f"LocalExecutor: workers must be >= 1, got {workers}")
        if max_retries < 0:
            raise ValueError(f"LocalExecutor: max_retries must be >= 0, got {max_retries}")
        self._workers = int(workers)
        self.threads = threads
        self.max_retries = int(max_retries)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        """Items that run at once."""
        return self._workers

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self._workers}, threads={self.threads})"

    def map_chunks(self, fn: Callable[[Any], Any], items: Sequence[Any], chunk_size: int | None = None, *,
                   encode: Callable[[Any], Any] | None = None,
                   decode: Callable[[Any], Any] | None = None) -> Iterator[tuple[int, Outcome]]:
        """``(index, Outcome)`` per item: in order with one worker, as chunks finish with several."""
        if self._workers == 1 or len(items) <= 1:
            for index, item in enumerate(items):
                ((value, error),) = run_chunk(fn, [item])
                yield index, Outcome(value=value, error=error)
            return
        yield from self._in_processes(fn, items, chunk_size, encode, decode)

    def _in_processes(self, fn: Callable[[Any], Any], items: Sequence[Any], chunk_size: int | None,
                      encode: Callable[[Any], Any] | None,
                      decode: Callable[[Any], Any] | None) -> Iterator[tuple[int, Outcome]]:
        try:
            pickle.dumps((fn, decode))
        except Exception as exc:  # noqa: BLE001 - anything unpicklable
            raise ExecutorError(f"local executor: {getattr(fn, '__name__', fn)!r} cannot be sent to worker "
                                f"processes ({error_text(exc)}); use a module-level function, or workers=1") from exc
        size = chunk_size or default_chunk_size(len(items), self._workers)
        todo = list(chunk_ranges(len(items), size))
        todo.reverse()  # pop() from the end sends chunks in input order
        tries: dict[int, int] = {}
        while todo:
            pool = self._live_pool()
            running: dict[concurrent.futures.Future, range] = {}
            broken: list[range] = []
            finished = False
            try:
                while todo or running:
                    while todo and len(running) < 2 * self._workers and not broken:
                        chunk = todo.pop()
                        payloads = [encode(items[i]) if encode is not None else items[i] for i in chunk]
                        running[pool.submit(run_chunk, fn, payloads, decode, self.threads)] = chunk
                    if not running:
                        break
                    done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in done:
                        chunk = running.pop(future)
                        try:
                            results = future.result()
                        except BrokenProcessPool:
                            broken.append(chunk)
                            continue
                        except Exception as exc:  # noqa: BLE001 - the function could not run at all
                            raise ExecutorError(f"local executor: a worker could not run "
                                                f"{getattr(fn, '__name__', fn)!r}: {error_text(exc)}") from exc
                        for index, (value, error) in zip(chunk, results):
                            yield index, Outcome(value=value, error=error)
                finished = True
            finally:  # interrupted (Ctrl-C, consumer gone) or broken: drop the pool, without waiting for chunks out
                for future in running:
                    future.cancel()
                if not finished or broken:
                    self._drop_pool(wait=False)
            for chunk in broken:  # the pool died under these chunks: resend or give up on them
                tries[chunk.start] = tries.get(chunk.start, 0) + 1
                if tries[chunk.start] > self.max_retries:
                    for index in chunk:
                        yield index, Outcome(error=f"WorkerCrashed: worker process died {tries[chunk.start]} "
                                                   "times running this item's chunk", fault=True)
                else:
                    todo.append(chunk)

    def _live_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        """The worker pool, started on first use (spawned: fork is unsafe once torch runs threads)."""
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=self._workers, mp_context=context)
        return self._pool

    def _drop_pool(self, wait: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def close(self) -> None:
        """Stop the worker processes (a later ``map`` starts new ones)."""
        self._drop_pool(wait=True)

"""What every executor shares: per-item outcomes, the chunk runner, the CG transport, chunk sizes.

Where it sits: beside the pipeline (model → CG → features → predictor → ranking/search). Family
conversion, proxy scoring and ranking send independent per-network work through an
:class:`Executor` (:mod:`~cgpredict.executors.local` or :mod:`~cgpredict.executors.ray_backend`);
this module holds the parts both backends use, so a run gives the same numbers on either.

* :class:`Outcome` — one item's result: a value, or the text of the exception it raised, or a
  *fault* (the worker running it died more often than the retries allow).
* :func:`run_chunk` — the worker side: decode each payload, call the function, catch a failure per
  item (the chunk goes on with the next item).
* :func:`cg_to_json` / :func:`cg_from_json` — the transport of CGs: they travel as their JSON
  text, never as pickled modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cgpredict.errors import CGError

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG

#: Most items in one chunk by default (a chunk is one task: one round trip to a worker).
MAX_CHUNK = 50
#: Longest error text kept per item.
MAX_ERROR_CHARS = 500


class ExecutorError(CGError, RuntimeError):
    """The executor itself cannot run the work (a backend missing, a function that cannot be sent
    to or loaded by a worker); failures of single items are :class:`Outcome` errors instead."""


@dataclass(frozen=True)
class Outcome:
    """The result of one item.

    Attributes:
        value: what the function returned (``None`` on failure).
        error: ``"ExceptionType: message"`` when the function raised for this item, else ``None``.
        fault: ``True`` when no worker could finish the item's chunk (a crash after every retry);
            such an outcome is not a property of the item and is never cached.
    """

    value: Any = None
    error: str | None = None
    fault: bool = False

    @property
    def ok(self) -> bool:
        """Whether the function returned a value for this item."""
        return self.error is None


def error_text(exc: BaseException) -> str:
    """``"Type: first line of the message"``, at most :data:`MAX_ERROR_CHARS` characters."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {message}"[:MAX_ERROR_CHARS]


def run_chunk(fn: Callable[[Any], Any], payloads: Sequence[Any], decode: Callable[[Any], Any] | None = None,
              threads: int | None = None) -> list[tuple[Any, str | None]]:
    """Worker side of every executor: ``(value, None)`` or ``(None, error text)`` per payload.

    ``decode`` turns a payload back into the item (e.g. :func:`cg_from_json`); a payload that fails
    to decode is a failed item like one whose ``fn`` raises. ``threads`` sets torch's intra-op
    thread count first (worker processes use 1, so a score does not depend on where it ran).
    """
    if threads is not None:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    out: list[tuple[Any, str | None]] = []
    for payload in payloads:
        try:
            item = decode(payload) if decode is not None else payload
            out.append((fn(item), None))
        except Exception as exc:  # noqa: BLE001 - one failing item must not stop the chunk
            out.append((None, error_text(exc)))
    return out


def default_chunk_size(n: int, workers: int) -> int:
    """Items per task: about four chunks per worker, at most :data:`MAX_CHUNK` (as ``Family.cgs``)."""
    return max(1, min(MAX_CHUNK, math.ceil(n / (4 * max(1, workers)))))


def chunk_ranges(n: int, size: int) -> list[range]:
    """``range`` of item indices of each chunk of ``size`` over ``n`` items."""
    if size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {size}")
    return [range(start, min(n, start + size)) for start in range(0, n, size)]


def cg_to_json(cg: CG) -> str:
    """The transport form of a CG (driver side): its JSON text."""
    return cg.to_json()


def cg_from_json(text: str) -> CG:
    """Inverse of :func:`cg_to_json` (worker side)."""
    from cgpredict.cg import CG

    return CG.from_json(text)


def task_device() -> str:
    """``"cuda"`` when the current task may use a GPU, else ``"cpu"``.

    Ray hides the GPUs from a task that did not ask for one (``CUDA_VISIBLE_DEVICES=""``), so a
    scorer calling this uses the fraction of a GPU its executor requested and the CPU otherwise.
    """
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@runtime_checkable
class Executor(Protocol):
    """Runs one function over many independent items, in chunks, on some workers.

    ``map_chunks`` yields ``(index, Outcome)`` as chunks finish (any order), so a caller can store
    results while the run goes on; ``map`` gathers them in input order. ``encode`` runs on the
    driver per item when its chunk is sent (e.g. :func:`cg_to_json`), ``decode`` on the worker;
    an executor that runs in the calling process may skip both.
    """

    name: str

    @property
    def workers(self) -> int:
        """How many items can run at once."""
        ...

    def map_chunks(self, fn: Callable[[Any], Any], items: Sequence[Any], chunk_size: int | None = None, *,
                   encode: Callable[[Any], Any] | None = None,
                   decode: Callable[[Any], Any] | None = None) -> Iterator[tuple[int, Outcome]]:
        """``(index, Outcome)`` of every item, as their chunks finish."""
        ...

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], chunk_size: int | None = None, *,
            encode: Callable[[Any], Any] | None = None,
            decode: Callable[[Any], Any] | None = None) -> list[Outcome]:
        """The :class:`Outcome` of every item, in input order."""
        ...

    def close(self) -> None:
        """Release the workers (and a Ray session this executor started)."""
        ...


class ExecutorBase:
    """``map`` and context-manager support on top of a subclass's ``map_chunks``."""

    name = "base"

    def map_chunks(self, fn: Callable[[Any], Any], items: Sequence[Any], chunk_size: int | None = None, *,
                   encode: Callable[[Any], Any] | None = None,
                   decode: Callable[[Any], Any] | None = None) -> Iterator[tuple[int, Outcome]]:
        raise NotImplementedError

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], chunk_size: int | None = None, *,
            encode: Callable[[Any], Any] | None = None,
            decode: Callable[[Any], Any] | None = None) -> list[Outcome]:
        """The :class:`Outcome` of every item, in input order."""
        out: list[Outcome | None] = [None] * len(items)
        for index, outcome in self.map_chunks(fn, items, chunk_size, encode=encode, decode=decode):
            out[index] = outcome
        missing = [i for i, o in enumerate(out) if o is None]
        if missing:  # pragma: no cover - a backend bug, not a user error
            raise ExecutorError(f"{self.name} executor returned no outcome for items {missing[:10]}")
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Release the workers (nothing to do by default)."""

    def __enter__(self) -> ExecutorBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Converting a family's architectures to CGs in worker processes (``Family.cgs(workers=...)``).

Pipeline position: model (a family of networks) → **CG** (converted in parallel) → features →
predictor → ranking/search.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG
    from cgpredict.datasets.family import Family


def _convert_chunk(family: Family, indices: list[int]) -> list[CG]:
    """Worker-process side of :meth:`Family.cgs` with ``workers > 1``."""
    import torch

    torch.set_num_threads(1)
    return [family.convert(i) for i in indices]


class ConvertToJSON:
    """``index → family.convert(index).to_json()``: the task an :mod:`cgpredict.executors` executor
    runs for :meth:`Family.cgs` (CGs travel back as their JSON, decoded on the driver)."""

    def __init__(self, family: Family) -> None:
        self.family = family

    def __call__(self, index: int) -> str:
        return self.family.convert(index).to_json()


def convert_with_executor(family: Family, indices: list[int], executor: Any) -> Iterator[tuple[int, CG]]:
    """Convert ``indices`` on ``executor`` (an :class:`cgpredict.executors.Executor` or a spec such as
    ``"ray:auto"``), yielding ``(index, CG)`` as chunks finish; a net that fails raises
    :class:`ValueError` naming its architecture and the worker's error."""
    from cgpredict.cg import CG
    from cgpredict.executors import get_executor

    runner = get_executor(executor)
    try:
        for position, outcome in runner.map_chunks(ConvertToJSON(family), indices):
            index = indices[position]
            if not outcome.ok:
                raise ValueError(f"family {family.name!r}: converting {family.key(index)!r} failed on the "
                                 f"{runner.name} executor: {outcome.error or 'worker lost after every retry'}")
            yield index, CG.from_json(outcome.value)
    finally:
        if runner is not executor:  # an executor made here from a spec is closed here
            runner.close()


def convert_in_processes(family: Family, indices: list[int], workers: int) -> Iterator[tuple[int, CG]]:
    """Convert ``indices`` in ``workers`` spawned processes (fork is unsafe once torch has started
    threads), in chunks, yielding results as chunks finish."""
    size = max(1, min(50, len(indices) // (4 * workers)))
    chunks = [indices[i : i + size] for i in range(0, len(indices), size)]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_convert_chunk, family, chunk): chunk for chunk in chunks}
        try:
            for future in concurrent.futures.as_completed(futures):
                yield from zip(futures[future], future.result())
        finally:
            for future in futures:
                future.cancel()

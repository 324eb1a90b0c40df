"""Converting a family's architectures to CGs on an executor (``Family.cgs(workers=N)`` uses
:class:`cgpredict.executors.LocalExecutor` with N spawned processes; ``executor=`` any other).

Pipeline position: model (a family of networks) → **CG** (converted in parallel) → features →
predictor → ranking/search.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG
    from cgpredict.datasets.family import Family


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

"""Pause Python's cyclic garbage collector around allocation-heavy CG work.

Sits beside the pipeline (model → **CG** → features → predictor → ranking/search): decoding cached
CGs (:mod:`cgpredict.datasets.cache`) and mutating CGs in a search (:mod:`cgpredict.search.algorithms`)
create 10⁵–10⁶ small containers; with torch loaded, the collections they trigger (each re-scanning
every young object) cost more than the work itself (~2× on NB-201 CGs). CGs hold no reference
cycles, so reference counting frees them while the collector is paused.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector; its previous state is restored on exit.

    A context manager, and a decorator when called: ``@gc_paused()``.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

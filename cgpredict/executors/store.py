"""Content-addressed results: one file per (CG hash, configuration), and runs that resume.

Where it sits: beside the pipeline (model → CG → features → predictor → ranking/search); proxy
scoring and ranking keep per-network results here, whichever executor computed them.

A result is keyed by the CG's structural hash (:meth:`cgpredict.cg.CG.hash`) and a configuration
key naming everything else the value depends on (proxy, seed, version…). Each entry is one small
JSON file written atomically by the driver (:func:`cgpredict.fileio.atomic_write_json`), so a
write is idempotent, two runs writing the same entry agree, a shared cache folder merges without
locks, and a killed run leaves only whole entries. :func:`run_cached` computes only the missing
entries and writes each as it arrives: an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any


from cgpredict.executors.base import Executor, Outcome, cg_from_json, cg_to_json
from cgpredict.fileio import atomic_write_json
from cgpredict.quiet import progress_bar

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG

#: Version of the entry format (part of every entry).
STORE_VERSION = 1


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def normalise(value: Any) -> Any:
    """``value`` as the store gives it back (a JSON round trip: tuples become lists, floats stay
    bit-exact, NaN stays NaN), so a fresh result equals a cached one."""
    return json.loads(json.dumps(_jsonable(value)))


class ResultStore:
    """Per-network results on disk, keyed by (CG hash, configuration key).

    Layout: ``ROOT/<config digest>/<hash[:2]>/<hash>.json``, each file holding the hash, the
    configuration key, the value (JSON) and the error text. Faults (a worker that kept dying) are
    never stored.

    Args:
        root: the folder (default ``results/`` under the cgpredict cache, ``$CGPREDICT_CACHE``).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if root is None:
            from cgpredict.datasets.cache import cache_dir  # the one cache-folder lookup

            root = cache_dir() / "results"
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.root)!r})"

    def folder(self, config_key: str) -> Path:
        """The folder of one configuration's entries."""
        if not config_key:
            raise ValueError("ResultStore: the configuration key must be a non-empty string")
        return self.root / hashlib.sha256(config_key.encode()).hexdigest()[:16]

    def path(self, cg_hash: str, config_key: str) -> Path:
        """The file of one entry."""
        return self.folder(config_key) / cg_hash[:2] / f"{cg_hash}.json"

    def get(self, cg_hash: str, config_key: str) -> Outcome | None:
        """The stored outcome, or ``None`` when absent (or unreadable: then it is recomputed)."""
        path = self.path(cg_hash, config_key)
        try:
            entry = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if entry.get("version") != STORE_VERSION or entry.get("cg") != cg_hash or entry.get("config") != config_key:
            return None
        return Outcome(value=entry.get("value"), error=entry.get("error"))

    def put(self, cg_hash: str, config_key: str, outcome: Outcome) -> Path:
        """Write one entry atomically; returns its path. Faults are refused (they are retried)."""
        if outcome.fault:
            raise ValueError(f"ResultStore: refusing to store a fault for CG {cg_hash[:12]} ({outcome.error})")
        entry = {"version": STORE_VERSION, "cg": cg_hash, "config": config_key,
                 "value": _jsonable(outcome.value), "error": outcome.error}
        return atomic_write_json(self.path(cg_hash, config_key), entry, indent=None)

    def hashes(self, config_key: str) -> list[str]:
        """Hashes of the CGs stored for ``config_key`` (sorted)."""
        folder = self.folder(config_key)
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*/*.json"))


def run_cached(executor: Executor, fn: Callable[[CG], Any], cgs: Sequence[CG], config_key: str,
               store: ResultStore, *, chunk_size: int | None = None, progress: bool = False) -> list[Outcome]:
    """``fn(cg)`` for every CG, computing only what ``store`` lacks; outcomes in input order.

    CGs with the same hash are computed once. Missing CGs are sent to ``executor`` as JSON text;
    each result is written to ``store`` on the driver as it arrives, so after an interruption
    (``Ctrl-C``, ``kill -9``, a lost cluster) the next call computes only what is still missing.
    Values come back as the store holds them (:func:`normalise`). Faults are returned, not stored.

    Args:
        executor: where to compute (:func:`cgpredict.executors.get_executor`).
        fn: ``CG -> value`` (a JSON-representable value); it must be importable by the workers.
        cgs: the networks.
        config_key: everything besides the CG that the value depends on (e.g. ``"synflow|seed=0"``).
        store: where results live.
        chunk_size: items per task (default: the executor's).
        progress: show a tqdm bar of the missing networks.
    """
    hashes = [cg.hash() for cg in cgs]
    first: dict[str, int] = {}
    for index, h in enumerate(hashes):
        first.setdefault(h, index)
    known: dict[str, Outcome] = {}
    todo: list[int] = []
    for h, index in first.items():
        cached = store.get(h, config_key)
        if cached is None:
            todo.append(index)
        else:
            known[h] = cached
    if todo:
        bar = progress_bar(total=len(todo), desc=f"{executor.name}: {config_key}"[:60], unit="net", progress=progress)
        try:
            for position, outcome in executor.map_chunks(fn, [cgs[i] for i in todo], chunk_size,
                                                         encode=cg_to_json, decode=cg_from_json):
                h = hashes[todo[position]]
                if outcome.ok:
                    try:
                        outcome = Outcome(value=normalise(outcome.value))
                    except (TypeError, ValueError) as exc:  # the value cannot be stored: this item failed
                        outcome = Outcome(error=f"{type(exc).__name__}: result of {type(outcome.value).__name__} "
                                                f"is not JSON-representable ({exc})"[:500])
                if not outcome.fault:
                    store.put(h, config_key, outcome)
                known[h] = outcome
                bar.update()
        finally:
            bar.close()
    return [known[h] for h in hashes]


def values(outcomes: Sequence[Outcome], missing: float = math.nan) -> list[Any]:
    """The value of each outcome, ``missing`` where it failed."""
    return [o.value if o.ok else missing for o in outcomes]

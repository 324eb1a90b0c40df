"""On-disk cache of converted computation graphs, one file per family/task bundle.

Why one module over 400 lines: the bundle format, its integrity checks (per-entry key and checksum, size-capped decompression) and its locked merge-on-write must change together.

Pipeline position: model → **CG** (cached here) → features → predictor → ranking/search.

Converting hundreds of networks to CGs takes minutes; loading them back takes about a second. A
bundle file holds the CGs of one family, task and input shape, keyed by the canonical arch text,
written with the current :data:`CONVERTER_VERSION` (a bundle of another version is ignored and
rewritten). Location: ``$CGPREDICT_CACHE`` or ``~/.cache/cgpredict``.

File format: gzip-compressed JSON (never pickle) ``{"format", "layout", "version", "family", "task",
"input_shape", "entries": {arch_text: {"key": arch_text, "sha256": ..., "cg": text}}}``, each CG
stored column-wise (one list per node field, rarely-set fields sparsely) as JSON text, so that a
725-network bundle loads in about a second and only the CGs asked for are decoded.

Integrity: every entry carries the key it was written for and the SHA-256 of its text. An entry
that fails either check, or does not decode (edited by hand, truncated, nested too deeply), is
dropped, reported once (:class:`CacheWarning`) and recomputed by the caller; the next write
removes it from the file. A bundle that is not gzip JSON, or that decompresses to more than
:func:`max_bundle_bytes` (a gzip bomb), is treated as empty the same way.

Writes go to a temporary file in the same folder and are moved into place with ``os.replace``
(:func:`cgpredict.fileio.atomic_writer`), so a reader never sees a half-written file and an
interrupted write leaves the previous file intact. Each write holds an exclusive lock
(``fcntl.flock`` on ``.NAME.lock`` beside the bundle) while it re-reads the file, merges its new
entries in and replaces it, so concurrent processes filling the same bundle never lose each
other's entries; temporary files of killed writers are removed (:func:`cgpredict.fileio.remove_orphans`).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cgpredict import __version__
from cgpredict.cg import CG, SCHEMA_NAME, SCHEMA_VERSION, Node, _jsonable
from cgpredict.errors import CacheEntryError, CGSchemaError
from cgpredict.features import FEATURE_VERSION
from cgpredict.fileio import atomic_writer, remove_orphans
from cgpredict.gc_pause import gc_paused

try:  # POSIX: writers of one bundle take turns
    import fcntl
except ImportError:  # pragma: no cover - no advisory locks on this platform
    fcntl = None  # type: ignore[assignment]
from cgpredict.ops import OP_INDEX, OP_TYPES

#: Revision of the converters' output at a fixed schema: bumped whenever a model converts to a different
#: CG (2: ``leaky_relu`` became a ``relu`` node with ``attrs["negative_slope"]`` instead of ``unknown``).
CONVERTER_REVISION = 2
#: Identifies the converter output: a bundle written under another version is not reused.
CONVERTER_VERSION = f"cgpredict-{__version__}+cg{SCHEMA_VERSION}+feat{FEATURE_VERSION}+conv{CONVERTER_REVISION}"

#: Environment variable overriding the cache folder.
CACHE_ENV = "CGPREDICT_CACHE"

#: Environment variable capping the decompressed size of a bundle, in MiB.
MAX_BYTES_ENV = "CGPREDICT_CACHE_MAX_MB"
#: Default cap of a bundle's decompressed size (a full 15,625-net NB-201 bundle is ~180 MB).
DEFAULT_MAX_MB = 512

_FORMAT = "cgpredict.cg-cache"
#: Layout version of the bundle (entries with key + checksum, CG columns as text); part of the
#: file name, so bundles of other layouts are separate files and never fought over.
_LAYOUT = 3


class CacheWarning(UserWarning):
    """A cache entry or file was unreadable or failed its check; it is dropped and recomputed."""


_REPORTED: set[str] = set()
#: Distinct cache files reported per process before the reports stop (one last note says so).
MAX_REPORTS = 5


def report_cache_problem(path: str | os.PathLike[str], reason: str) -> None:
    """Warn (:class:`CacheWarning`) that a cache file or entry at ``path`` was dropped, once per
    path and process (at most :data:`MAX_REPORTS` paths); the caller recomputes what it held."""
    where = str(path)
    if where in _REPORTED or len(_REPORTED) > MAX_REPORTS:
        return
    _REPORTED.add(where)
    if len(_REPORTED) > MAX_REPORTS:
        warnings.warn("more bad cache entries were dropped and recomputed; not reported one by one",
                      CacheWarning, stacklevel=3)
        return
    warnings.warn(f"cache {where}: {reason}; dropped and recomputed (reported once)", CacheWarning, stacklevel=3)


def max_bundle_bytes() -> int:
    """Decompressed-size cap of a bundle: ``$CGPREDICT_CACHE_MAX_MB`` MiB, default :data:`DEFAULT_MAX_MB`."""
    try:
        mb = float(os.environ.get(MAX_BYTES_ENV, DEFAULT_MAX_MB))
    except ValueError:
        mb = DEFAULT_MAX_MB
    return int(max(mb, 1) * 2**20)


def read_gzip_capped(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The decompressed content of gzip file ``path``, read in 1 MiB chunks.

    Raises:
        CacheEntryError: it decompresses to more than ``limit`` bytes (default
            :func:`max_bundle_bytes`): a gzip bomb is refused after reading ``limit`` bytes, not
            held in memory whole.
        OSError, EOFError, zlib.error: not gzip, or truncated.
    """
    limit = max_bundle_bytes() if limit is None else limit
    chunks, total = [], 0
    with gzip.open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise CacheEntryError(f"decompresses to more than {limit / 2**20:.0f} MiB "
                                      f"(${MAX_BYTES_ENV} raises the cap)")
            chunks.append(chunk)
    return b"".join(chunks)


def _digest(key: str, text: str) -> str:
    return hashlib.sha256(f"{key}\n{text}".encode()).hexdigest()


def make_entry(key: str, encoded: dict[str, Any]) -> dict[str, Any]:
    """The stored form of one encoded CG: its key, its JSON text and their SHA-256."""
    text = json.dumps(encoded, separators=(",", ":"))
    return {"key": key, "sha256": _digest(key, text), "cg": text}


def check_entry(key: str, entry: Any) -> str:
    """The JSON text of a stored entry after checking its key and checksum (:class:`CacheEntryError` if not)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("cg"), str):
        raise CacheEntryError("malformed entry")
    if entry.get("key") != key:
        raise CacheEntryError(f"entry was written for another key ({str(entry.get('key'))[:60]!r})")
    if entry.get("sha256") != _digest(key, entry["cg"]):
        raise CacheEntryError("entry fails its checksum (edited or damaged)")
    return entry["cg"]
#: Node fields stored as one column (a list with one value per node).
_DENSE: tuple[str, ...] = ("op", "inputs", "out_shape", "name", "macs", "params")
#: Node fields stored sparsely (``{node index: value}``) because most nodes keep the default.
_SPARSE_DEFAULTS: dict[str, Any] = {
    "source_op": "",
    "weight_shape": None,
    "kernel": (),
    "stride": (),
    "padding": (),
    "dilation": (),
    "groups": 1,
    "bias": False,
    "attrs": {},
}
_TUPLE_FIELDS = frozenset({"weight_shape", "kernel", "stride", "padding", "dilation"})


def cache_dir() -> Path:
    """The cache folder: ``$CGPREDICT_CACHE`` if set, else ``~/.cache/cgpredict``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cgpredict"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-") or "none"


def _encode(cg: CG) -> dict[str, Any]:
    """Column encoding of a CG: dense columns plus sparse non-default fields; ``in_shapes`` are
    implied by the inputs' ``out_shape`` (a CG convention checked by :meth:`CG.validate`)."""
    nodes = cg.nodes
    for index, node in enumerate(nodes):
        if node.id != index:
            raise ValueError(f"CG {cg.name!r}: node {index} has id {node.id}; only built CGs can be cached")
    data: dict[str, Any] = {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "name": cg.name,
        "meta": _jsonable(cg.meta),
        "op": [OP_INDEX[n.op] for n in nodes],
        "inputs": [list(n.inputs) for n in nodes],
        "out_shape": [list(n.out_shape) for n in nodes],
        "node_name": [n.name for n in nodes],
        "macs": [int(n.macs) for n in nodes],
        "params": [int(n.params) for n in nodes],
    }
    sparse: dict[str, dict[str, Any]] = {}
    for key, default in _SPARSE_DEFAULTS.items():
        column = {}
        for index, node in enumerate(nodes):
            value = getattr(node, key)
            if value != default and not (key in _TUPLE_FIELDS and value is not None and tuple(value) == default):
                column[str(index)] = list(value) if key in _TUPLE_FIELDS and value is not None else _jsonable(value)
        if column:
            sparse[key] = column
    data["sparse"] = sparse
    return data


def _decode(data: dict[str, Any]) -> CG:
    """Inverse of :func:`_encode` (nodes are created without re-running the dataclass ``__init__``)."""
    if data.get("schema") != SCHEMA_NAME or data.get("version") != SCHEMA_VERSION:
        raise CGSchemaError(f"cached CG has schema {data.get('schema')!r} version {data.get('version')!r}")
    ops = data["op"]
    inputs = data["inputs"]
    shapes = [tuple(s) for s in data["out_shape"]]
    names = data["node_name"]
    macs = data["macs"]
    params = data["params"]
    if not (len(ops) == len(inputs) == len(shapes) == len(names) == len(macs) == len(params)):
        raise CGSchemaError("cached CG columns have different lengths")
    sparse = data.get("sparse", {})
    new = object.__new__
    op_types = OP_TYPES
    nodes = []
    for index, (op, srcs, shape, name, node_macs, node_params) in enumerate(zip(ops, inputs, shapes, names, macs, params)):
        node = new(Node)
        node.__dict__ = {
            "id": index,
            "op": op_types[op],
            "inputs": srcs,
            "in_shapes": [shapes[i] for i in srcs],
            "out_shape": shape,
            "name": name,
            "source_op": "",
            "weight_shape": None,
            "kernel": (),
            "stride": (),
            "padding": (),
            "dilation": (),
            "groups": 1,
            "bias": False,
            "macs": node_macs,
            "params": node_params,
            "attrs": {},
        }
        nodes.append(node)
    for key, column in sparse.items():
        if key not in _SPARSE_DEFAULTS:
            raise CGSchemaError(f"cached CG has unknown node field {key!r}")
        for index, value in column.items():
            if key in _TUPLE_FIELDS and value is not None:
                value = tuple(value)
            setattr(nodes[int(index)], key, value)
    return CG(nodes=nodes, name=data.get("name", ""), meta=dict(data.get("meta", {})))


class CGCache:
    """The cached CGs of one family/task/input-shape bundle.

    Example:
        >>> cache = CGCache("hiaml", None, (1, 3, 32, 32))
        >>> cg = cache.get("...")  # None when absent
        >>> cache.put("...", cg); cache.flush()
    """

    def __init__(
        self,
        family: str,
        task: str | None,
        input_shape: Iterable[int],
        root: str | os.PathLike[str] | None = None,
        version: str = CONVERTER_VERSION,
    ) -> None:
        self.family = str(family)
        self.task = task
        self.input_shape = tuple(int(v) for v in input_shape)
        self.version = version
        self.root = Path(root) if root is not None else cache_dir()
        shape = "x".join(str(v) for v in self.input_shape)
        name = f"{_slug(self.family)}__{_slug(str(task))}__{shape}.v{_LAYOUT}.json.gz"
        self.path = self.root / _slug(version) / name
        self._raw: dict[str, dict[str, Any]] | None = None  # stored entries from disk + new ones
        self._decoded: dict[str, CG] = {}
        self._dirty: set[str] = set()
        self._dropped: set[str] = set()  # bad entries to remove from the file on the next flush

    # ------------------------------------------------------------------ reading
    def _read_disk(self) -> dict[str, dict[str, Any]]:
        """Stored entries of the bundle file, or ``{}`` when it is absent, of another version, or
        unreadable (reported once: not gzip JSON, truncated, nested too deeply, over the size cap)."""
        try:
            raw = read_gzip_capped(self.path)
            with gc_paused():
                data = json.loads(raw)
        except FileNotFoundError:
            return {}
        except CacheEntryError as exc:
            report_cache_problem(self.path, str(exc))
            return {}
        except (OSError, EOFError, zlib.error, ValueError, RecursionError) as exc:
            report_cache_problem(self.path, f"unreadable ({type(exc).__name__})")
            return {}
        if (
            not isinstance(data, dict)
            or data.get("format") != _FORMAT
            or data.get("version") != self.version
            or data.get("layout") != _LAYOUT
            or data.get("family") != self.family
            or data.get("task") != self.task
            or not isinstance(data.get("input_shape"), list)
            or tuple(data.get("input_shape", ())) != self.input_shape
        ):
            report_cache_problem(self.path, "header is not this bundle's (format, version, family, task or shape)")
            return {}
        entries = data.get("entries")
        if not isinstance(entries, dict):
            report_cache_problem(self.path, "no entries table")
            return {}
        return entries

    def _entries(self) -> dict[str, dict[str, Any]]:
        if self._raw is None:
            self._raw = self._read_disk()
        return self._raw

    def keys(self) -> list[str]:
        """The arch keys held (on disk or added since)."""
        return list(self._entries())

    def __contains__(self, key: str) -> bool:
        return key in self._entries()

    def __len__(self) -> int:
        return len(self._entries())

    def get(self, key: str) -> CG | None:
        """The cached CG of ``key``, or ``None`` if absent or bad (a bad entry — wrong key, failed
        checksum, undecodable — is dropped and reported once; the caller recomputes it)."""
        if key in self._decoded:
            return self._decoded[key]
        entries = self._entries()
        entry = entries.get(key)
        if entry is None:
            return None
        try:
            text = check_entry(key, entry)
            try:
                cg = _decode(json.loads(text))
            except RecursionError:
                raise CacheEntryError("entry is nested too deeply") from None
            except (CGSchemaError, IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise CacheEntryError(f"entry does not decode ({type(exc).__name__}: {str(exc)[:80]})") from None
        except CacheEntryError as exc:
            del entries[key]
            self._dirty.discard(key)
            self._dropped.add(key)
            report_cache_problem(self.path, f"entry {key[:80]!r}: {exc}")
            return None
        self._decoded[key] = cg
        return cg

    def get_many(self, keys: Iterable[str]) -> list[CG | None]:
        """:meth:`get` for several keys at once (faster: the garbage collector is paused)."""
        with gc_paused():
            return [self.get(key) for key in keys]

    # ------------------------------------------------------------------ writing
    def put(self, key: str, cg: CG) -> None:
        """Add a CG in memory; :meth:`flush` writes it."""
        self._entries()[key] = make_entry(key, _encode(cg))
        self._decoded[key] = cg
        self._dirty.add(key)
        self._dropped.discard(key)

    @property
    def dirty(self) -> bool:
        """Whether entries were added (or bad ones dropped) since the last flush."""
        return bool(self._dirty or self._dropped)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the bundle's exclusive write lock (``fcntl.flock`` on ``.NAME.lock``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            yield
            return
        with open(self.path.parent / f".{self.path.name}.lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def flush(self) -> None:
        """Write the bundle if anything changed: under the write lock, what is on disk now is
        re-read, this cache's new entries are merged in (bad entries left out) and the file is
        replaced atomically, so concurrent writers never lose each other's entries."""
        if not self.dirty:
            return
        entries = self._entries()
        with self._locked():
            merged = self._read_disk()
            for key in self._dropped:
                stored = merged.get(key)
                if stored is not None:
                    try:
                        check_entry(key, stored)  # another process may have rewritten it meanwhile
                    except CacheEntryError:
                        merged.pop(key)
            merged.update({k: entries[k] for k in self._dirty})
            for key, value in merged.items():
                if key not in self._dropped:
                    entries.setdefault(key, value)
            document = {
                "format": _FORMAT,
                "layout": _LAYOUT,
                "version": self.version,
                "family": self.family,
                "task": self.task,
                "input_shape": list(self.input_shape),
                "entries": merged,
            }
            atomic_write_gzip_json(self.path, document)
            remove_orphans(self.path.parent, self.path.name, older_than=0)  # only lock holders write them
        self._dirty.clear()
        self._dropped.clear()

    def clear(self) -> None:
        """Delete the bundle file and forget the entries."""
        self._raw = {}
        self._decoded.clear()
        self._dirty.clear()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def atomic_write_gzip_json(path: str | os.PathLike[str], document: Any) -> None:
    """Write ``document`` as gzip JSON to ``path`` atomically (:func:`cgpredict.fileio.atomic_writer`)."""
    with atomic_writer(path) as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) as gz:
        gz.write(json.dumps(document, separators=(",", ":")).encode("utf-8"))

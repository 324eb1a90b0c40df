"""On-disk cache of converted computation graphs, one file per family/task bundle.

Pipeline position: model → **CG** (cached here) → features → predictor → ranking/search.

Converting hundreds of networks to CGs takes minutes; loading them back takes about a second. A
bundle file holds the CGs of one family, task and input shape, keyed by the canonical arch text,
written with the current :data:`CONVERTER_VERSION` (a bundle of another version is ignored and
rewritten). Location: ``$CGPREDICT_CACHE`` or ``~/.cache/cgpredict``.

File format: gzip-compressed JSON (never pickle) ``{"format", "version", "family", "task",
"input_shape", "entries": {arch_text: encoded CG}}``, each CG stored column-wise (one list per
node field, rarely-set fields sparsely) so that a 725-network bundle loads in about a second. Writes go
to a temporary file in the same folder and are moved into place with ``os.replace``, so a reader
never sees a half-written file and an interrupted write leaves the previous file intact. Entries
already on disk are merged in before each write, so two processes filling the same bundle do not
erase each other's work.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cgpredict import __version__
from cgpredict.cg import CG, SCHEMA_NAME, SCHEMA_VERSION, Node, _jsonable
from cgpredict.errors import CGSchemaError
from cgpredict.features import FEATURE_VERSION
from cgpredict.fileio import atomic_writer
from cgpredict.gc_pause import gc_paused
from cgpredict.ops import OP_INDEX, OP_TYPES

#: Identifies the converter output: a bundle written under another version is not reused.
CONVERTER_VERSION = f"cgpredict-{__version__}+cg{SCHEMA_VERSION}+feat{FEATURE_VERSION}"

#: Environment variable overriding the cache folder.
CACHE_ENV = "CGPREDICT_CACHE"

_FORMAT = "cgpredict.cg-cache"
#: Layout version of the per-CG column encoding below (part of every bundle's header).
_LAYOUT = 2
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
        self.path = self.root / _slug(version) / f"{_slug(self.family)}__{_slug(str(task))}__{shape}.json.gz"
        self._raw: dict[str, dict[str, Any]] | None = None  # encoded entries from disk + new ones
        self._decoded: dict[str, CG] = {}
        self._dirty: set[str] = set()

    # ------------------------------------------------------------------ reading
    def _read_disk(self) -> dict[str, dict[str, Any]]:
        """Entries of the bundle file, or ``{}`` when it is absent, unreadable or of another version."""
        try:
            with gzip.open(self.path, "rb") as handle, gc_paused():
                data = json.loads(handle.read())
        except FileNotFoundError:
            return {}
        except (OSError, EOFError, ValueError):
            return {}  # corrupt file (e.g. written by a crashed foreign tool): rebuild it
        if (
            not isinstance(data, dict)
            or data.get("format") != _FORMAT
            or data.get("version") != self.version
            or data.get("layout") != _LAYOUT
            or data.get("family") != self.family
            or data.get("task") != self.task
            or tuple(data.get("input_shape", ())) != self.input_shape
        ):
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

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
        """The cached CG of ``key``, or ``None`` if absent (or unreadable)."""
        if key in self._decoded:
            return self._decoded[key]
        raw = self._entries().get(key)
        if raw is None:
            return None
        try:
            cg = _decode(raw)
        except (CGSchemaError, IndexError, KeyError, TypeError, ValueError):
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
        self._entries()[key] = _encode(cg)
        self._decoded[key] = cg
        self._dirty.add(key)

    @property
    def dirty(self) -> bool:
        """Whether entries were added since the last flush."""
        return bool(self._dirty)

    def flush(self) -> None:
        """Atomically write the bundle (merged with what is on disk now) if anything was added."""
        if not self._dirty:
            return
        merged = self._read_disk()
        entries = self._entries()
        merged.update({k: entries[k] for k in self._dirty})
        for key, value in merged.items():
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
        self._dirty.clear()

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

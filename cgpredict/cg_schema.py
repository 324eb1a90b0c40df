"""The schema of a serialized CG: what ``CG.from_json`` / ``CG.from_dict`` accept, checked field by field.

Pipeline position: **CG** (model → CG → features → predictor → ranking/search) — the gate through
which a CG file, a cache entry or a user's JSON becomes a :class:`~cgpredict.cg.CG`. Anything outside
the schema (unknown fields, ops outside the vocabulary, control characters in names, non-integer
shapes, attrs that are not plain JSON or nest too deeply) raises a :class:`CGSchemaError` naming the
node and field, so nothing a file carries reaches generated code or the predictor unchecked.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from cgpredict.cg import Node
from cgpredict.errors import CGSchemaError
from cgpredict.ops import OP_INDEX

#: Longest node / graph name or source-op text a CG document may carry.
MAX_TEXT = 1000
#: Deepest nesting of an ``attrs`` or ``meta`` value (lists and dicts).
MAX_DEPTH = 6
#: Largest value of a shape entry, MAC or parameter count.
MAX_INT = 2**62
_ATTR_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NODE_FIELDS = frozenset(f.name for f in fields(Node))
_DOC_FIELDS = frozenset({"schema", "version", "name", "meta", "nodes"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_text(value: Any, where: str) -> str:
    """``value`` if it is a string of at most :data:`MAX_TEXT` characters without control
    characters (newlines included), else :class:`CGSchemaError` naming ``where``."""
    if not isinstance(value, str):
        raise CGSchemaError(f"{where} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise CGSchemaError(f"{where} is {len(value)} characters long (at most {MAX_TEXT})")
    bad = _CONTROL.search(value)
    if bad:
        raise CGSchemaError(f"{where} contains the control character {bad.group()!r}")
    return value


def _check_ints(value: Any, where: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, list) or not all(_is_int(v) and 0 <= v <= MAX_INT for v in value):
        raise CGSchemaError(f"{where} must be a list of non-negative integers, got {value!r:.80}")


def check_json_value(value: Any, where: str, depth: int = 0) -> None:
    """Raise :class:`CGSchemaError` unless ``value`` is plain JSON data (strings without control
    characters, numbers, booleans, null, lists, objects with identifier-like keys) nested at most
    :data:`MAX_DEPTH` deep."""
    if depth > MAX_DEPTH:
        raise CGSchemaError(f"{where} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, int, float)):
        return
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_json_value(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not _ATTR_KEY.match(key):
                raise CGSchemaError(f"{where} has the key {key!r:.80}, not an identifier-like name")
            check_json_value(item, f"{where}.{key}", depth + 1)
    else:
        raise CGSchemaError(f"{where} holds a {type(value).__name__}, not JSON data")


def check_node_dict(data: Any, index: int | None = None) -> None:
    """Raise :class:`CGSchemaError` naming the node and field of ``data`` that is outside the node
    schema: unknown fields, an op outside the vocabulary, names with control characters, shapes
    and counts that are not non-negative integers, ``attrs`` that are not plain JSON data."""
    where = "node" if index is None else f"node {index}"
    if not isinstance(data, dict):
        raise CGSchemaError(f"{where} must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _NODE_FIELDS)
    if unknown:
        raise CGSchemaError(f"{where} has unknown field(s) {', '.join(map(repr, unknown))[:200]}")
    for key in ("id", "op"):
        if key not in data:
            raise CGSchemaError(f"{where} has no {key!r} field")
    if not _is_int(data["id"]) or (index is not None and data["id"] != index):
        raise CGSchemaError(f"{where}: field 'id' is {data['id']!r:.40}, expected its position {index}")
    if not isinstance(data["op"], str) or data["op"] not in OP_INDEX:
        raise CGSchemaError(f"{where}: field 'op' {data['op']!r:.80} is not an op of the vocabulary")
    for key in ("name", "source_op"):
        if key in data:
            check_text(data[key], f"{where}: field {key!r}")
    _check_ints(data.get("inputs", []), f"{where}: field 'inputs'")
    for key in ("out_shape", "kernel", "stride", "padding", "dilation"):
        _check_ints(data.get(key, []), f"{where}: field {key!r}")
    _check_ints(data.get("weight_shape"), f"{where}: field 'weight_shape'", optional=True)
    shapes = data.get("in_shapes", [])
    if not isinstance(shapes, list):
        raise CGSchemaError(f"{where}: field 'in_shapes' must be a list of shapes")
    for slot, shape in enumerate(shapes):
        _check_ints(shape, f"{where}: field 'in_shapes'[{slot}]")
    for key in ("groups", "macs", "params"):
        if key in data and not (_is_int(data[key]) and 0 <= data[key] <= MAX_INT):
            raise CGSchemaError(f"{where}: field {key!r} must be a non-negative integer, got {data[key]!r:.40}")
    if "bias" in data and not isinstance(data["bias"], bool):
        raise CGSchemaError(f"{where}: field 'bias' must be true or false, got {data['bias']!r:.40}")
    attrs = data.get("attrs", {})
    if not isinstance(attrs, dict):
        raise CGSchemaError(f"{where}: field 'attrs' must be a JSON object")
    check_json_value(attrs, f"{where}: field 'attrs'")


def check_cg_document(data: Any) -> None:
    """Raise :class:`CGSchemaError` naming the first field of a CG document (``CG.to_dict``)
    outside the schema; the schema name and version are checked by :meth:`CG.from_dict`."""
    if not isinstance(data, dict):
        raise CGSchemaError(f"a CG document must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _DOC_FIELDS)
    if unknown:
        raise CGSchemaError(f"CG document has unknown field(s) {', '.join(map(repr, unknown))[:200]}")
    check_text(data.get("name", ""), "CG field 'name'")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise CGSchemaError("CG field 'meta' must be a JSON object")
    check_json_value(meta, "CG field 'meta'")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise CGSchemaError("CG field 'nodes' must be a non-empty list of nodes")
    for index, node in enumerate(nodes):
        check_node_dict(node, index)

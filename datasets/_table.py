"""Validated reading of label tables (CSV) for architecture families.

Pipeline position: **model** (labelled families) → CG → features → predictor → ranking/search.

Every row is checked: the key column (an architecture or a file name) must parse, the label must be
a finite number, and an architecture may not appear twice with different labels. Any violation
raises :class:`cgpredict.errors.LabelFileError` (a ``ValueError``) naming the file and the line;
nothing is dropped silently (exact duplicates with equal labels are kept once, with a warning).

The label column is found by name, never by position: one of :data:`LABEL_COLUMNS`, or the name
the caller gives (``--label-column``). A first line that looks like data (a number where a column
name belongs) is reported as a missing header instead of being read as one, and so is a file that
is not CSV text (binary, NUL bytes, a folder, a field beyond the CSV size limit).
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgpredict.errors import LabelFileError

#: Accepted names of the label column, in order of preference.
LABEL_COLUMNS: tuple[str, ...] = ("val_accuracy", "label", "accuracy", "y")


@dataclass
class Table:
    """The validated content of a label table."""

    keys: list[Any]
    labels: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)


def _number(text: str) -> float:
    """Parse a numeric cell; raises ValueError for non-numeric text."""
    return float(text.strip())


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_header(path: Path, header: list[str], key_column: str) -> None:
    """Raise :class:`LabelFileError` when line 1 of ``path`` is not a header: too few columns,
    duplicate or empty names, or a cell that is a number (the file starts with data)."""
    if len(header) < 2:
        raise LabelFileError(f"{path}, line 1: header {header} needs a key column and a label column "
                             f"(e.g. `{key_column},val_accuracy`)")
    numeric = [h for h in header if _looks_numeric(h)]
    if numeric:
        raise LabelFileError(
            f"{path}, line 1: the file has no header (line 1 holds the value {numeric[0]!r}, not a column name); "
            f"add a first line naming the columns, e.g. `{key_column},val_accuracy`")
    if any(not h for h in header):
        raise LabelFileError(f"{path}, line 1: header {header} has an empty column name")
    if len(set(header)) != len(header):
        raise LabelFileError(f"{path}, line 1: duplicate column names in header {header}")


def label_index(path: Path, header: list[str], label_column: str | None) -> int:
    """Index of the label column in ``header``: ``label_column`` if given, else the first of
    :data:`LABEL_COLUMNS` present; :class:`LabelFileError` listing the recognised names otherwise."""
    if label_column is not None:
        if label_column not in header:
            raise LabelFileError(f"{path}, line 1: no label column {label_column!r} in header {header}")
        return header.index(label_column)
    found = [c for c in LABEL_COLUMNS if c in header]
    if not found:
        raise LabelFileError(
            f"{path}, line 1: no label column in header {header}; name it one of {', '.join(LABEL_COLUMNS)} "
            "or choose it with --label-column NAME (label_column=...)")
    return header.index(found[0])


def read_table(
    path: str | Path,
    parse: Callable[[str], Hashable],
    key_column: str = "arch",
    label_column: str | None = None,
) -> Table:
    """Read and validate a ``<key>,<label>[,<numeric columns>...]`` CSV file.

    Args:
        path: the CSV file; the first line is the header.
        parse: turns the key cell into a hashable key (``ValueError`` if malformed).
        key_column: name of the key column (``arch`` or ``file``); else the first column is used.
        label_column: name of the label column; by default the first of :data:`LABEL_COLUMNS`
            present (a table without one is refused, never read by position).

    Raises:
        FileNotFoundError: the file does not exist.
        LabelFileError: a malformed header or row (a ``ValueError``), naming the file and the line.
    """
    path = Path(path)
    if path.is_dir():
        raise LabelFileError(f"label table {path} is a folder, not a CSV file")
    if not path.is_file():
        raise FileNotFoundError(f"label table {path} does not exist")
    reader = None
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            return _read_rows(path, reader, parse, key_column, label_column)
    except UnicodeDecodeError as exc:
        raise LabelFileError(f"{path}: not UTF-8 CSV text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 1
        raise LabelFileError(f"{path}, line {max(line, 1)}: not valid CSV ({exc})") from None


def _read_rows(path: Path, reader: Any, parse: Callable[[str], Hashable], key_column: str,
               label_column: str | None) -> Table:
    """The body of :func:`read_table` on an open ``csv.reader``."""
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise LabelFileError(f"{path}, line 1: empty file (expected a header such as `{key_column},val_accuracy`)") from None
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]  # a UTF-8 byte-order mark written by spreadsheet programs
    check_header(path, header, key_column)
    key_idx = header.index(key_column) if key_column in header else 0
    label_idx = label_index(path, header, label_column)
    if label_idx == key_idx:
        raise LabelFileError(f"{path}, line 1: the label column {header[label_idx]!r} is also the key column")
    other = [i for i in range(len(header)) if i not in (key_idx, label_idx)]

    keys: list[Any] = []
    labels: list[float] = []
    lines: list[int] = []
    extra: dict[int, list[float]] = {i: [] for i in other}
    first_seen: dict[Any, tuple[int, float]] = {}
    previous_line = 1
    for row in reader:
        line = previous_line + 1  # physical line where this record starts
        previous_line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        where = f"{path}, line {line}"
        if len(row) != len(header):
            raise LabelFileError(f"{where}: {len(row)} fields but the header has {len(header)}")
        key_text = row[key_idx].strip()
        if not key_text:
            raise LabelFileError(f"{where}: empty {header[key_idx]!r}")
        try:
            key = parse(key_text)
        except RecursionError:
            raise LabelFileError(f"{where}: {header[key_idx]} {key_text[:60]!r}... is nested too deeply") from None
        except (ValueError, TypeError, SyntaxError, KeyError, IndexError, MemoryError) as exc:
            raise LabelFileError(f"{where}: cannot parse {header[key_idx]} {key_text[:80]!r}: {exc}") from None
        label_text = row[label_idx].strip()
        if not label_text:
            raise LabelFileError(f"{where}: missing label ({header[label_idx]!r} is empty)")
        try:
            label = _number(label_text)
        except ValueError:
            raise LabelFileError(f"{where}: label {label_text!r} is not a number") from None
        if not math.isfinite(label):
            raise LabelFileError(f"{where}: label {label_text!r} is not a finite number")
        values: dict[int, float] = {}
        for i in other:
            cell = row[i].strip()
            if not cell:
                values[i] = math.nan  # absent value (e.g. a proxy that was not computed)
                continue
            try:
                values[i] = _number(cell)
            except ValueError:
                raise LabelFileError(f"{where}: column {header[i]!r} value {cell!r} is not a number") from None
        if key in first_seen:
            first_line, first_label = first_seen[key]
            if first_label != label:
                raise LabelFileError(
                    f"{where}: {header[key_idx]} {key_text!r} repeats line {first_line} with a different "
                    f"label ({label} vs {first_label})"
                )
            warnings.warn(
                f"{where}: {header[key_idx]} {key_text!r} repeats line {first_line} with the same label; kept once",
                stacklevel=2,
            )
            continue
        first_seen[key] = (line, label)
        keys.append(key)
        labels.append(label)
        lines.append(line)
        for i in other:
            extra[i].append(values[i])
    columns = {header[i]: np.asarray(extra[i], dtype=np.float64) for i in other}
    return Table(keys=keys, labels=np.asarray(labels, dtype=np.float64), columns=columns, lines=lines)

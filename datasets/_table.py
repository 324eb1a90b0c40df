"""Validated reading of label tables (CSV) for architecture families.

Pipeline position: **model** (labelled families) → CG → features → predictor → ranking/search.

Every row is checked: the key column (an architecture or a file name) must parse, the label must be
a finite number, and an architecture may not appear twice with different labels. Any violation
raises ``ValueError`` naming the file and the line; nothing is dropped silently (exact duplicates
with equal labels are kept once, with a warning).
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
            present, else the second column.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a malformed header or row, naming the file and the line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label table {path} does not exist")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{path}, line 1: empty file (expected a header such as `{key_column},val_accuracy`)") from None
        if len(header) < 2:
            raise ValueError(f"{path}, line 1: header {header} needs a key column and a label column")
        if len(set(header)) != len(header):
            raise ValueError(f"{path}, line 1: duplicate column names in header {header}")
        key_idx = header.index(key_column) if key_column in header else 0
        if label_column is not None:
            if label_column not in header:
                raise ValueError(f"{path}, line 1: no label column {label_column!r} in header {header}")
            label_idx = header.index(label_column)
        else:
            found = [c for c in LABEL_COLUMNS if c in header]
            label_idx = header.index(found[0]) if found else (1 if key_idx == 0 else 0)
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
                raise ValueError(f"{where}: {len(row)} fields but the header has {len(header)}")
            key_text = row[key_idx].strip()
            if not key_text:
                raise ValueError(f"{where}: empty {header[key_idx]!r}")
            try:
                key = parse(key_text)
            except (ValueError, TypeError, SyntaxError) as exc:
                raise ValueError(f"{where}: cannot parse {header[key_idx]} {key_text!r}: {exc}") from None
            label_text = row[label_idx].strip()
            if not label_text:
                raise ValueError(f"{where}: missing label ({header[label_idx]!r} is empty)")
            try:
                label = _number(label_text)
            except ValueError:
                raise ValueError(f"{where}: label {label_text!r} is not a number") from None
            if not math.isfinite(label):
                raise ValueError(f"{where}: label {label_text!r} is not a finite number")
            values: dict[int, float] = {}
            for i in other:
                cell = row[i].strip()
                if not cell:
                    values[i] = math.nan  # absent value (e.g. a proxy that was not computed)
                    continue
                try:
                    values[i] = _number(cell)
                except ValueError:
                    raise ValueError(f"{where}: column {header[i]!r} value {cell!r} is not a number") from None
            if key in first_seen:
                first_line, first_label = first_seen[key]
                if first_label != label:
                    raise ValueError(
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

"""User-labelled families: an ``arch,label`` CSV plus a builder, or ONNX files plus ``file,label`` rows.

Pipeline position: **model** (your own labelled networks) → CG → features → predictor →
ranking/search.

Rows are validated like the benchmark tables: an unparsable arch, a missing / NaN / non-numeric
label, a duplicate arch with a different label or a missing ONNX file raises ``ValueError`` naming
the CSV file and line; exact duplicates are kept once with a warning.

Example:
    >>> import torch.nn as nn
    >>> def builder(width):                       # arch = an int parsed from the CSV
    ...     return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
    ...                          nn.Flatten(), nn.Linear(width, 10))
    >>> fam = Family.from_csv("widths.csv", builder=builder, parse=int, input_shape=(1, 3, 32, 32))
    >>> fam = Family.from_onnx_folder("onnx_models/", "onnx_models/labels.csv")
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgpredict.datasets._table import read_table
from cgpredict.datasets.family import Family

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from cgpredict.cg import CG


def _freeze(value: Any) -> Hashable:
    """Lists → tuples recursively, so a parsed literal is hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def parse_literal(text: str) -> Hashable:
    """Default arch parser: a Python literal (``(0, 2, 3)``, ``[[1, 2], [3]]``, ``64``) or else the text itself."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return _freeze(value)


def family_from_csv(
    path: str | os.PathLike[str],
    builder: Callable[[Any], torch.nn.Module],
    parse: Callable[[str], Hashable] | None = None,
    input_shape: Sequence[int] = (1, 3, 224, 224),
    name: str = "custom",
    cache: bool = False,
    label_column: str | None = None,
) -> Family:
    """A labelled family from a CSV of ``arch,label`` rows and a network builder.

    Args:
        path: CSV with a header; the key column is ``arch`` (else the first column), the label
            column ``label_column`` or else one of ``val_accuracy``/``label``/``accuracy``/``y``
            (never a column chosen by position: a table without one is refused); other numeric
            columns go to ``Family.extra`` (``flops``/``params`` to ``table_flops``/``table_params``).
        builder: ``arch → torch.nn.Module``.
        parse: ``text → hashable arch``; default :func:`parse_literal`.
        input_shape: the input shape (batch first) for conversion.
        name: the family name.
        cache: cache the CGs on disk under ``name``. Off by default because a Python builder
            cannot be fingerprinted: turn it on only with a ``name`` unique to this builder.
        label_column: name of the label column (``--label-column``).

    Raises:
        cgpredict.errors.LabelFileError: a malformed table (file and line named).
    """
    if not callable(builder):
        raise TypeError(f"builder must be callable (arch -> torch.nn.Module), got {type(builder).__name__}")
    parse = parse or parse_literal
    table = read_table(path, parse, key_column="arch", label_column=label_column)
    columns = dict(table.columns)
    return Family(
        name=name,
        task=None,
        archs=table.keys,
        labels=table.labels,
        table_flops=columns.pop("flops", None),
        table_params=columns.pop("params", None),
        extra=columns,
        input_shape=tuple(input_shape),
        source=Path(path),
        lines=table.lines,
        builder=builder,
        arch_key=repr,
        cache_name=f"custom-{name}" if cache else None,
    )


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def family_from_onnx_folder(
    folder: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str],
    name: str = "custom",
    label_column: str | None = None,
) -> Family:
    """A labelled family of ONNX files: ``labels_csv`` holds ``file,label`` rows, files relative to ``folder``
    (the label column named ``label_column``, else one of the recognised names).

    CGs come from :func:`cgpredict.converters.from_onnx` and are cached keyed by each file's
    content hash, so editing a file re-converts it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"ONNX folder {folder} does not exist")
    labels_csv = Path(labels_csv)

    root = Path(os.path.normpath(folder))

    def parse_file(text: str) -> str:
        if not Path(os.path.normpath(folder / text)).is_relative_to(root):
            raise ValueError(f"file {text!r} lies outside the ONNX folder {folder}")
        if not (folder / text).is_file():
            raise ValueError(f"ONNX file {folder / text} does not exist")
        return text

    table = read_table(labels_csv, parse_file, key_column="file", label_column=label_column)
    digests = {file: _file_digest(folder / file) for file in table.keys}

    def convert(file: str) -> CG:
        from cgpredict.converters import from_onnx

        return from_onnx(str(folder / file))

    columns = dict(table.columns)
    return Family(
        name=name,
        task=None,
        archs=table.keys,
        labels=table.labels,
        table_flops=columns.pop("flops", None),
        table_params=columns.pop("params", None),
        extra=columns,
        input_shape=(),
        source=labels_csv,
        lines=table.lines,
        converter=convert,
        arch_key=lambda file: f"{file}@{digests[file]}",
        cache_name=f"onnx-{name}",
    )

"""Checks of a command's arguments made before any work: MODEL specs, ``--executor`` specs and ``-o`` outputs.

Pipeline position: beside the CLI (model → CG → features → predictor → ranking/search); every
command that writes calls :func:`check_file_output` or :func:`check_folder_output` first, and every
MODEL argument goes through :func:`check_model_arg`, so a bad path fails in a second, not after
minutes of work, and nothing is overwritten silently. :func:`write_csv_rows` writes CSV atomically.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cgpredict.errors import UsageError
from cgpredict.fileio import OutputExistsError, atomic_writer, check_output

__all__ = ["check_executor_spec", "check_file_output", "check_folder_output", "check_model_arg", "write_csv_rows"]

PathLike = str | os.PathLike[str]


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _common(path: PathLike, inputs: Iterable[PathLike | None], folders: Iterable[PathLike | None],
            force: bool, what: str) -> Path:
    out = Path(path)
    for folder in folders:
        if folder is not None and Path(folder).is_dir() and _inside(out, Path(folder)):
            raise OutputExistsError(f"{what} {out} lies inside the input folder {folder}; refusing to write there")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"{what} {out}: {parent} is a file, not a folder")
    return check_output(out, inputs=[i for i in inputs if i is not None], force=force, what=what)


def check_file_output(path: PathLike, inputs: Iterable[PathLike | None] = (),
                      folders: Iterable[PathLike | None] = (), force: bool = False,
                      what: str = "-o", suffixes: Sequence[str] = ()) -> Path:
    """Validate a file output before the work (see :func:`cgpredict.fileio.check_output`).

    Refuses (even with ``force``) a folder, a path whose parent is a file, one of ``inputs``
    and a path inside one of the input ``folders`` (a checkpoint, a data folder); refuses an
    existing file unless ``force``; with ``suffixes``, a name not ending in one of them.
    """
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{what} {out} is a folder; give a file name")
    if suffixes and out.suffix.lower() not in suffixes:
        raise UsageError(f"{what} {out}: expected a file name ending in {' or '.join(suffixes)}")
    return _common(out, inputs, folders, force, what)


def check_folder_output(path: PathLike, inputs: Iterable[PathLike | None] = (),
                        folders: Iterable[PathLike | None] = (), force: bool = False, what: str = "-o") -> Path:
    """Validate a folder output before the work: not a file, not an input, not inside an input
    folder, not the current folder; an existing folder only with ``force``."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{what} {out} is a file; this command writes a folder")
    if out.exists() and Path.cwd().resolve().is_relative_to(out.resolve()):
        raise OutputExistsError(f"{what} {out} is the current folder (or holds it); give a new folder")
    return _common(out, inputs, folders, force, what)


def check_model_arg(spec: str, what: str = "MODEL") -> str:
    """``spec`` unless it names a folder or a missing ``.py``/``.onnx``/``.json`` file
    (:class:`~cgpredict.errors.UsageError` / ``FileNotFoundError`` saying which)."""
    text = spec.strip()
    if not text:
        raise UsageError(f"{what} is empty")
    if Path(text).is_dir():
        raise UsageError(f"{what} {text} is a folder, not a model; give torchvision:NAME, timm:NAME, "
                         "path/file.py:ClassName, model.onnx or a CG .json file")
    file_part = text.rpartition(":")[0] if ".py:" in text else text
    if file_part.lower().endswith((".py", ".onnx", ".json")):
        if Path(file_part).is_dir():
            raise UsageError(f"{what} {file_part} is a folder, not a file")
        if not Path(file_part).exists():
            raise FileNotFoundError(f"{what} file {file_part} does not exist")
    return text


def check_executor_spec(spec: str | None) -> None:
    """Refuse an ``--executor`` value that names no backend (``local[:N]``, ``ray[:ADDRESS]``), before any
    work: :class:`~cgpredict.errors.UsageError` naming the value and the accepted forms."""
    if spec is not None and spec.partition(":")[0] not in ("local", "ray"):
        from cgpredict.executors.api import SPEC_HELP

        raise UsageError(f"--executor {spec!r}: expected {SPEC_HELP}")


def write_csv_rows(rows: Sequence[dict[str, Any]], path: PathLike) -> Path:
    """Write result rows as CSV (columns of the first row) atomically."""
    with atomic_writer(path, binary=False) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)

"""Every file cgpredict writes goes through here: atomic, never onto an input, never over a user file.

Where it sits: beside the whole pipeline (model → CG → features → predictor → ranking/search); the
CLI's ``-o`` outputs, checkpoints, and the on-disk caches of CGs and proxy scores use these helpers.

* :func:`atomic_writer` / :func:`atomic_write` — write to a temporary file in the target's own folder,
  ``fsync`` it, then ``os.replace`` it onto the target (and ``fsync`` the folder): a reader, or the
  next run after a crash or ``kill -9``, sees the old file or the new one, never a torn one.
* :func:`atomic_directory` — the same for a folder (a checkpoint): it is written whole into a
  temporary sibling and swapped in; the previous folder survives any crash before the swap.
* :func:`check_output` — refuses an existing output unless ``force``, and refuses (even with
  ``force``) an output that is one of the command's own inputs.
* :func:`remove_orphans` — temporary files left by a killed writer (``.NAME.*.tmp``) are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import CGError

TMP_SUFFIX = ".tmp"


class OutputExistsError(CGError, FileExistsError):
    """An output path exists (and ``--force`` was not given) or is one of the command's inputs."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], binary: bool = True, mode: int = 0o644,
                  encoding: str = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": encoding})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600; outputs are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically; returns the path."""
    with atomic_writer(path, binary=True) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], document: Any, indent: int | None = 2) -> Path:
    """Write ``document`` as JSON to ``path`` atomically."""
    text = json.dumps(document, indent=indent, separators=None if indent else (",", ":"))
    return atomic_write(path, text + ("\n" if indent else ""))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on a clean exit it becomes ``path``.

    An existing ``path`` is moved aside first and removed only after the new folder is in place, so
    a crash at any moment leaves either the old folder or the new one (plus a ``.NAME.*.tmp``
    sibling that :func:`remove_orphans` clears).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent))
    try:
        yield tmp
        for child in tmp.iterdir():
            if child.is_file():
                with open(child, "rb") as handle:
                    os.fsync(handle.fileno())
        os.chmod(tmp, 0o755)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", suffix=TMP_SUFFIX, dir=path.parent))
            old.rmdir()
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_orphans(directory: str | os.PathLike[str], name: str | None = None,
                   older_than: float = 3600.0) -> int:
    """Remove temporary files and folders left in ``directory`` by killed writers; returns how many.

    Only names this module creates (``.NAME.*.tmp``) are touched, and only when older than
    ``older_than`` seconds, so a writer still running in another process is left alone.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    pattern = f".{name}.*{TMP_SUFFIX}" if name else f".*{TMP_SUFFIX}"
    now, removed = time.time(), 0
    for entry in directory.glob(pattern):
        try:
            if now - entry.lstat().st_mtime < older_than:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = (),
                 force: bool = False, what: str = "output") -> Path:
    """Validate an output path before any work is done; returns it as a ``Path``.

    Raises :class:`OutputExistsError` when ``path`` is one of ``inputs`` (whatever ``force`` says),
    or when it exists and ``force`` is false. Inputs that are not files (``torchvision:resnet18``)
    are ignored.
    """
    out = Path(path)
    for item in inputs:
        text = os.fspath(item)
        candidate = Path(text.split(":", 1)[0] if ":" in text and not Path(text).exists() else text)
        if _same_file(out, candidate) or (candidate.is_dir() and out.resolve() == candidate.resolve()):
            raise OutputExistsError(f"{what} {out} is also an input of this command; refusing to write onto it")
    if out.exists() and not force:
        kind = "folder" if out.is_dir() else "file"
        raise OutputExistsError(f"{what} {out} exists ({kind}); pass --force to replace it")
    return out

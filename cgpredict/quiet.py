"""Known, harmless third-party warnings that the command-line entry points hide.

Sits outside the pipeline: the ``cgpredict`` CLI and ``python -m cgpredict.demo`` call
:func:`hide_known_warnings` so a user sees cgpredict's own messages, not torch / torch-geometric
notices about their internals. The library itself installs no filter (importing ``cgpredict``
leaves :mod:`warnings` untouched), and every other warning still shows.

Progress bars: every bar of the package is a :func:`progress_bar`, drawn only when asked for
(``progress=True``, not ``--quiet``), ``CGPREDICT_NO_PROGRESS`` is unset and its stream is a terminal
or a notebook, so logs and pipes get no carriage-return junk. :func:`progress_wanted` makes the same
decision for a command up front, and :func:`set_progress` switches the bars of a loaded predictor.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

#: (category, message regex) of each hidden warning, with where it comes from.
KNOWN_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # torch-geometric's import scripts a few helpers with torch.jit.script, which torch 2.14 deprecates
    (FutureWarning, r"`torch\.jit\.script` is deprecated"),
    # models/dedup.py builds sparse CSR class-count matrices (exact; checked in tests)
    (UserWarning, r"Sparse CSR tensor support is in beta"),
    (UserWarning, r"Sparse invariant checks are implicitly disabled"),
)


def hide_known_warnings() -> None:
    """Install ``ignore`` filters for :data:`KNOWN_WARNINGS` (call from an entry point only)."""
    for category, message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


#: Environment variable that turns every progress bar of the command line off (``1``).
NO_PROGRESS_ENV = "CGPREDICT_NO_PROGRESS"


def _off_by_env() -> bool:
    """Whether ``$CGPREDICT_NO_PROGRESS`` turns the bars off (set to anything but ``0``)."""
    return os.environ.get(NO_PROGRESS_ENV, "") not in ("", "0")


def progress_wanted(requested: bool = True, stream: Any = None) -> bool:
    """Whether to draw progress bars: ``requested`` (e.g. not ``--quiet``), ``$CGPREDICT_NO_PROGRESS``
    unset, and ``stream`` (default ``sys.stderr``) a terminal — bars written to a log file or a pipe
    are carriage-return junk, so they are off there."""
    if not requested or _off_by_env():
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def progress_bar(iterable: Any = None, *, progress: bool = True, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar over ``iterable`` (or a manual one with ``total=``), off unless ``progress``,
    ``$CGPREDICT_NO_PROGRESS`` unset and its stream (stderr unless ``file=``) a terminal; in a notebook
    it is the widget. ``kwargs`` go to tqdm (``desc``, ``unit``, ``total``, ``leave``, ...)."""
    from tqdm.auto import tqdm

    off = not progress or _off_by_env()
    return tqdm(iterable, disable=True if off else None, **kwargs)  # None: tqdm's own terminal check


def set_progress(predictor: Any, flag: bool) -> Any:
    """Turn the progress bars of a loaded predictor (or bag) and of its parts on or off; returns it."""
    setter = getattr(predictor, "set_progress", None) or getattr(predictor, "_set_progress", None)
    if callable(setter):
        setter(bool(flag))
    elif hasattr(predictor, "progress"):
        predictor.progress = bool(flag)
    return predictor

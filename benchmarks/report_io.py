"""Printing and writing a benchmark's markdown report (shared by the report scripts under ``benchmarks/``)."""

from __future__ import annotations

from pathlib import Path


def emit_report(text: str, path: str | None) -> None:
    """Print ``text``; with ``path``, also write it there atomically (creating its folder)."""
    print(text)
    if path:
        from cgpredict.fileio import atomic_write

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)

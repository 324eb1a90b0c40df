"""Known, harmless third-party warnings that the command-line entry points hide.

Sits outside the pipeline: the ``cgpredict`` CLI and ``python -m cgpredict.demo`` call
:func:`hide_known_warnings` so a user sees cgpredict's own messages, not torch / torch-geometric
notices about their internals. The library itself installs no filter (importing ``cgpredict``
leaves :mod:`warnings` untouched), and every other warning still shows.
"""

from __future__ import annotations

import warnings

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

"""Which code produced a benchmark report: package version, git commit, torch and threads.

Sits beside the pipeline: the transfer benchmark (``benchmarks/protocol/report.py``) writes
:func:`code_line` into every report, so a committed figure can be traced to the commit that measured it (training
results depend on the code and, through float summation order, on the torch thread count);
:func:`code_fingerprint` keys the transfer protocol's fit cache to the code that made a fit.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import torch

#: The repository root of a source checkout (the folder above the ``cgpredict`` package).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Tracked files whose edits change what runs (git pathspecs; ``*`` also matches ``/``). Reports,
#: README and other text do not: a benchmark rewriting its own tracked report after each seed must
#: not mark the code as changed.
CODE_PATHSPECS: tuple[str, ...] = ("*.py", "pyproject.toml", "Makefile")


def git_commit(root: Path = REPO_ROOT) -> str | None:
    """Short commit hash of ``root``'s checkout, with ``+changes`` when tracked code files
    (:data:`CODE_PATHSPECS`) differ from it; ``None`` outside a git checkout (e.g. an installed
    wheel) or without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHSPECS],
                               cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def package_roots() -> list[Path]:
    """Folders of ``cgpredict`` and of its mapped subpackages (``converters``, ``datasets``,
    ``models``), wherever they are installed."""
    import cgpredict
    import cgpredict.converters
    import cgpredict.datasets
    import cgpredict.models

    return [Path(m.__file__).resolve().parent for m in (cgpredict, cgpredict.converters, cgpredict.datasets,
                                                        cgpredict.models)]


def code_fingerprint(roots: Iterable[Path] | None = None) -> str:
    """Hash (16 hex digits) of the contents of every ``*.py`` file under ``roots`` (default
    :func:`package_roots`), each named by its path below its root's parent: equal exactly when the
    code is. Unlike :func:`git_commit` it also works for an installed wheel and ignores edits to
    reports or documentation."""
    if roots is None:
        return _installed_fingerprint()
    entries = {}
    for root in (Path(r).resolve() for r in roots):
        for f in root.rglob("*.py"):
            entries.setdefault(f.resolve(), f.relative_to(root.parent).as_posix())
    digest = hashlib.sha256()
    for path, name in sorted(entries.items(), key=lambda item: item[1]):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def _installed_fingerprint() -> str:
    return code_fingerprint(package_roots())


def code_line() -> str:
    """One markdown line naming the code and runtime: version, commit, torch, threads."""
    from cgpredict import __version__

    commit = git_commit()
    where = f"git `{commit}`" if commit else "not a git checkout"
    return (f"Code: cgpredict {__version__}, {where}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch thread(s).")

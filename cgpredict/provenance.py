"""Which code produced a benchmark report: package version, git commit, torch and threads.

Sits beside the pipeline: :func:`cgpredict.transfer.to_markdown` writes :func:`code_line` into
every report, so a committed figure can be traced to the commit that measured it (training
results depend on the code and, through float summation order, on the torch thread count).
"""

from __future__ import annotations

import subprocess
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
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHSPECS], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def code_line() -> str:
    """One markdown line naming the code and runtime: version, commit, torch, threads."""
    from cgpredict import __version__

    commit = git_commit()
    where = f"git `{commit}`" if commit else "not a git checkout"
    return (f"Code: cgpredict {__version__}, {where}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch thread(s).")

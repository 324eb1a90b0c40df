"""Shared helpers of the hostile-input battery (tests/test_hostile*.py): snapshots of user files,
a tiny model file, crafted CG documents and a forked writer killed with SIGKILL.

Pipeline position: tests around the whole pipeline (model → CG → features → predictor → ranking/search).
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np

TINY_SOURCE = """
from torch import nn


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        return self.body(x)
"""

def flops_scorer(cgs: list) -> np.ndarray:
    """A deterministic search scorer without a predictor: each CG's MACs."""
    return np.array([float(c.flops) for c in cgs])


#: File name every payload below tries to create; its presence means injected code ran.
MARKER = "PWNED_MARKER"


def payload(marker_dir: Path) -> str:
    """Python statements that create the marker file in ``marker_dir``."""
    return f"__import__('pathlib').Path({str(marker_dir / MARKER)!r}).write_text('ran')"


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256 or 'dir'}`` of everything under ``root`` (symlinks not followed)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir() and not path.is_symlink():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def markers(*roots: Path) -> list[Path]:
    """Marker files found under ``roots`` (should be none)."""
    return [p for root in roots if root.exists() for p in root.rglob(MARKER)]


def run_killed(fn: Callable[[], object], kill_when: Callable[[], None] | None = None) -> int:
    """Run ``fn`` in a forked child and return the signal that ended it (``-1`` if it exited).

    The child installs ``kill_when`` (a patcher that arranges a SIGKILL at the interesting moment)
    before calling ``fn``; nothing of the child's state reaches the parent except the files it wrote.
    """
    pid = os.fork()
    if pid == 0:  # child
        try:
            if kill_when is not None:
                kill_when()
            fn()
        except BaseException:  # noqa: BLE001
            os._exit(3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1


def kill_at(module: object, name: str, after_calls: int = 0) -> Callable[[], None]:
    """A patcher: the ``after_calls+1``-th call of ``module.name`` kills the process with SIGKILL."""
    def patch() -> None:
        real = getattr(module, name)
        calls = {"n": 0}

        def killer(*args: object, **kwargs: object) -> object:
            calls["n"] += 1
            if calls["n"] > after_calls:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        setattr(module, name, killer)
    return patch

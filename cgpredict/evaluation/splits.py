"""Seeded splits of a labelled family: train/val/test, fine-tuning shots, capped subsets.

Pipeline position: model → CG → features → predictor → **evaluation** (which nets train, which
are scored) → ranking/search.

Every split is a function of its arguments only (a SHA-256 of them seeds NumPy's generator), so
the same nets are drawn on any machine, by any method, in any order of calls.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["stable_seed", "split_indices", "shot_indices", "subset_indices"]


def stable_seed(*parts: Any) -> int:
    """A 32-bit seed from the text of ``parts`` (stable across processes, unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "little")


def split_indices(n: int, seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> tuple[np.ndarray, ...]:
    """Seeded random ``(train, val, test)`` index arrays over ``n`` items (sizes rounded down,
    remainder to train).

    Raises:
        ValueError: fewer than 3 items.
    """
    if n < 3:
        raise ValueError(f"cannot split {n} items into train/val/test")
    perm = np.random.default_rng(stable_seed("split", seed)).permutation(n)
    n_val, n_test = int(math.floor(fractions[1] * n)), int(math.floor(fractions[2] * n))
    n_train = n - n_val - n_test
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]


def shot_indices(n: int, shots: int, seed: int, target: str) -> tuple[np.ndarray, np.ndarray]:
    """``(shots, rest)``: the fine-tuning nets of ``target`` for ``seed`` and the evaluation nets
    (both sorted).

    Depends only on ``(n, shots, seed, target)``, so every method sees the same split.

    Raises:
        ValueError: ``shots >= n`` (nothing left to evaluate on).
    """
    if shots >= n:
        raise ValueError(f"target {target} has {n} nets, not enough for {shots}-shot fine-tuning plus evaluation")
    perm = np.random.default_rng(stable_seed("shots", target, seed)).permutation(n)
    return np.sort(perm[:shots]), np.sort(perm[shots:])


def subset_indices(n: int, size: int, *key: Any) -> np.ndarray:
    """A sorted seeded subset of ``size`` of ``range(n)``, drawn with :func:`stable_seed` of ``key``
    (all of ``range(n)`` when ``size >= n``)."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(stable_seed(*key)).permutation(n)[:size])

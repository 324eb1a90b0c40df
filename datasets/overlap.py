"""Which networks of two labelled families are the same network: identity keys, overlap, dedup.

Pipeline position: **model** (labelled families, before any train/test split) → CG → features →
predictor → ranking/search.

Two tables of one family can hold the same network under different encodings: the NASLib NB-101
table stores unpruned 7×7 cells, ``nb101_30k`` pruned ones. :func:`identity_keys` gives every
network a key that is equal exactly when the networks are the same:

* ``nasbench101``: the NB-101 module hash of the pruned cell (:mod:`cgpredict.datasets.nb101_hash`;
  a table's ``nb101_hash`` column is used when present), so isomorphic cells share a key, as in the
  benchmark (which trained each isomorphism class once);
* every other family: the family's canonical arch text. For NB-201 this keeps isomorphic cells
  apart, as the benchmark does (it trained and labelled each of the 15,625 cells separately).

:func:`overlap` finds the shared networks of two families, :func:`drop_overlap` removes from one
family the networks of another (use it before training on one table and testing on the other), and
:func:`dedup` keeps one network per key within a family (e.g. the NASLib NB-101 table's 500 rows are
292 distinct cells).

Example:
    >>> from cgpredict.datasets import load_family
    >>> from cgpredict.datasets.overlap import drop_overlap, overlap
    >>> naslib = load_family("nasbench101")                       # needs CGPREDICT_DATA
    >>> big = load_family("nasbench101", table="nb101_30k")
    >>> len(overlap(naslib, big)[0])                              # 110 rows of the 500
    >>> train = drop_overlap(big, naslib)                         # 30k minus the shared cells
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from cgpredict.datasets.family import Family


def identity_keys(family: Family) -> list[str]:
    """One key per network of ``family``, equal exactly for the same network (see module docstring)."""
    text = getattr(family, "text", {})
    if family.name == "nasbench101":
        if "nb101_hash" in text:
            return list(text["nb101_hash"])
        from cgpredict.datasets.nb101_hash import nb101_hash

        return [nb101_hash(arch) for arch in family.archs]
    return [family.key(i) for i in range(len(family))]


def _check_same_family(a: Family, b: Family) -> None:
    if a.name != b.name:
        raise ValueError(f"cannot match networks of family {a.name!r} against family {b.name!r}: "
                         "identity keys are defined within one family")


def overlap(a: Family, b: Family) -> tuple[np.ndarray, np.ndarray]:
    """``(rows of a, rows of b)`` of the networks both families hold, paired, sorted by ``a``'s row.

    When a key repeats within one family every row carrying it is listed, paired with the first
    row of the other family that carries it.

    Raises:
        ValueError: the families differ.
    """
    _check_same_family(a, b)
    keys_b: dict[str, int] = {}
    for j, key in enumerate(identity_keys(b)):
        keys_b.setdefault(key, j)
    pairs = [(i, keys_b[key]) for i, key in enumerate(identity_keys(a)) if key in keys_b]
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows_a, rows_b = zip(*pairs)
    return np.asarray(rows_a, dtype=np.int64), np.asarray(rows_b, dtype=np.int64)


def drop_overlap(family: Family, *others: Family) -> Family:
    """``family`` without the networks that any of ``others`` holds (order kept).

    Raises:
        ValueError: one of ``others`` is of another family.
    """
    taken: set[str] = set()
    for other in others:
        _check_same_family(family, other)
        taken.update(identity_keys(other))
    keep = [i for i, key in enumerate(identity_keys(family)) if key not in taken]
    return family.subset(np.asarray(keep, dtype=np.int64))


def duplicate_groups(keys: Sequence[str]) -> list[np.ndarray]:
    """Row indices of each distinct key, in order of first appearance."""
    rows: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        rows.setdefault(key, []).append(i)
    return [np.asarray(r, dtype=np.int64) for r in rows.values()]


def dedup(family: Family, labels: Literal["first", "mean"] = "first") -> Family:
    """One row per distinct network of ``family`` (its first row).

    Args:
        family: the family.
        labels: ``"first"`` keeps the first row's label; ``"mean"`` gives each kept row the mean
            label of all rows of its network (isomorphic duplicates of NB-101 are different training
            runs of one cell, so their mean is a less noisy label).

    Raises:
        ValueError: unknown ``labels`` mode.
    """
    if labels not in ("first", "mean"):
        raise ValueError(f"dedup: labels must be 'first' or 'mean', got {labels!r}")
    groups = duplicate_groups(identity_keys(family))
    out = family.subset(np.asarray([g[0] for g in groups], dtype=np.int64))
    if labels == "mean" and family.labels is not None:
        out.labels = np.asarray([family.labels[g].mean() for g in groups], dtype=np.float64)
    return out

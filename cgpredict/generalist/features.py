"""Set-relative proxy features: bank scores, FLOPs and parameters standardised within the ranked set.

Pipeline position: model → CG → proxy bank scores (:mod:`cgpredict.proxies.bank`) → **set-relative
feature matrix** → :class:`~cgpredict.generalist.ranker.ProxyRanker` → ranking of the set.

A user always ranks a *set* of networks, and a proxy's absolute scale differs by family, input size
and number of classes (SynFlow of an NB-101 net is orders of magnitude above an NB-201 one). So every
raw column (each proxy of :data:`FEATURE_PROXIES`, ``log_flops``, ``log_params``) is replaced by its
**rank position within the set**, normalised to ``[0, 1]``: ``(average rank − 1) / (m − 1)`` over the
``m`` networks where the column is defined (0 = lowest of the set, 1 = highest). Consequences:

* any strictly increasing transform of one column across the set (a rescaling, a log, a different
  input size that preserves the order) leaves the features unchanged;
* ``−inf`` (a degenerate network, see the bank) is ranked lowest and set to exactly ``0``, the
  set's minimum;
* ``NaN`` (the proxy failed on that network) gets the neutral value ``0.5`` and a ``1`` in that
  proxy's mask column ``<proxy>:missing``; the network stays rankable from its other columns.

A set of one network has no ranks of its own: pass a :class:`SetReference` (built with
:meth:`SetReference.from_raw` from the raw columns of a reference set, e.g. the training group the
network is closest to, and storable as JSON with :meth:`SetReference.to_dict`). Each value is then
placed at the rank position it would take if it were added to the reference set,
``(#{r < v} + ½·#{r = v}) / m`` over the ``m`` defined reference values, which equals the in-set
formula when the network belongs to the reference set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from cgpredict.proxies.bank import DEFAULT_METHODS

__all__ = ["FEATURE_PROXIES", "NEUTRAL", "SetFeatures", "SetReference", "raw_columns", "set_features"]

#: Proxies of the bank read as features (the training-free ones the bank computes by default).
FEATURE_PROXIES: tuple[str, ...] = tuple(DEFAULT_METHODS)

#: The feature value of a missing (NaN) score.
NEUTRAL = 0.5


@dataclass(frozen=True)
class SetFeatures:
    """The feature matrix of one set of networks.

    Attributes:
        matrix: ``float64 (n, len(names))``: rank positions in ``[0, 1]`` then 0/1 mask columns.
        names: column names: the raw columns, then ``<proxy>:missing`` for each proxy column.
    """

    matrix: np.ndarray
    names: tuple[str, ...]


@dataclass(frozen=True)
class SetReference:
    """Raw column values of a reference set, for placing networks ranked outside any set of their own.

    Attributes:
        names: raw column names.
        values: per column, the sorted defined (non-NaN) values of the reference set (``−inf`` kept).
    """

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]

    @classmethod
    def from_raw(cls, raw: np.ndarray, names: Sequence[str]) -> SetReference:
        """The reference of a set given its raw ``(n, d)`` columns (as from :func:`raw_columns`)."""
        raw = np.asarray(raw, dtype=float)
        if raw.ndim != 2 or raw.shape[1] != len(names):
            raise ValueError(f"raw has shape {raw.shape} but {len(names)} column names were given")
        return cls(tuple(names), tuple(np.sort(col[~np.isnan(col)]) for col in raw.T))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (``−inf`` as the string ``"-inf"``)."""
        return {"names": list(self.names),
                "values": [[("-inf" if v == -math.inf else float(v)) for v in col] for col in self.values]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SetReference:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["names"]), tuple(np.array([float(v) for v in col]) for col in data["values"]))


def raw_columns(scores: Mapping[str, Sequence[float]], flops: Sequence[float], params: Sequence[float],
                proxies: Sequence[str] = FEATURE_PROXIES) -> tuple[np.ndarray, tuple[str, ...]]:
    """Stack the raw columns of a set: each proxy's scores, ``log(1 + FLOPs)``, ``log(1 + params)``.

    Args:
        scores: proxy name → one score per network (higher is better; NaN = failed; −inf = degenerate).
        flops: multiply-accumulates per network (e.g. ``cg.flops``).
        params: parameters per network (e.g. ``cg.params``).
        proxies: which proxies become columns, in order.

    Returns:
        ``(raw, names)``: ``float64 (n, len(proxies) + 2)`` and the column names.

    Raises:
        KeyError: a proxy missing from ``scores``.
        ValueError: columns of different lengths.
    """
    flops_a, params_a = np.asarray(flops, dtype=float), np.asarray(params, dtype=float)
    cols = []
    for name in proxies:
        if name not in scores:
            raise KeyError(f"scores lack proxy {name!r} (have {sorted(scores)})")
        cols.append(np.asarray(scores[name], dtype=float))
    cols += [np.log1p(np.maximum(flops_a, 0.0)), np.log1p(np.maximum(params_a, 0.0))]
    lengths = {len(c) for c in cols}
    if len(lengths) != 1:
        raise ValueError(f"columns of different lengths {sorted(lengths)} (proxies {list(proxies)}, flops, params)")
    return np.stack(cols, axis=1), (*proxies, "log_flops", "log_params")


def _in_set(col: np.ndarray) -> np.ndarray:
    out = np.full(col.shape, NEUTRAL)
    ok = ~np.isnan(col)
    m = int(ok.sum())
    if m >= 2:
        out[ok] = (rankdata(col[ok], method="average") - 1.0) / (m - 1)
    return out


def _against(col: np.ndarray, ref: np.ndarray) -> np.ndarray:
    out = np.full(col.shape, NEUTRAL)
    ok = ~np.isnan(col)
    if ref.size >= 1:
        less = np.searchsorted(ref, col[ok], side="left")
        leq = np.searchsorted(ref, col[ok], side="right")
        out[ok] = (less + 0.5 * (leq - less)) / ref.size
    return out


def set_features(raw: np.ndarray, names: Sequence[str], reference: SetReference | None = None,
                 proxies: Sequence[str] | None = None) -> SetFeatures:
    """Rank-normalised features of a set, with a missing-value mask per proxy column.

    Args:
        raw: ``(n, d)`` raw columns (from :func:`raw_columns`).
        names: the ``d`` column names.
        reference: rank against this reference set instead of the set itself (needed for a set of
            one network; its names must equal ``names``).
        proxies: the columns that get a mask column (default: every column except ``log_flops`` and
            ``log_params``).

    Returns:
        :class:`SetFeatures` (see the module docstring for the rules).

    Raises:
        ValueError: a shape/name mismatch, or a set of one network without a reference.
    """
    raw = np.asarray(raw, dtype=float)
    names = tuple(names)
    if raw.ndim != 2 or raw.shape[1] != len(names):
        raise ValueError(f"raw has shape {raw.shape} but {len(names)} column names were given")
    if reference is None and raw.shape[0] < 2:
        raise ValueError("a set of one network has no ranks of its own: pass a SetReference")
    if reference is not None and reference.names != names:
        raise ValueError(f"reference columns {reference.names} differ from {names}")
    masked = tuple(proxies) if proxies is not None else tuple(n for n in names if n not in ("log_flops", "log_params"))
    cols = []
    for j in range(len(names)):
        col = raw[:, j]
        f = _in_set(col) if reference is None else _against(col, reference.values[j])
        f[np.isneginf(col)] = 0.0
        cols.append(f)
    cols += [np.isnan(raw[:, names.index(p)]).astype(float) for p in masked]
    return SetFeatures(np.stack(cols, axis=1), names + tuple(f"{p}:missing" for p in masked))

"""Cached CG → PyG conversion and batching for the predictors.

Pipeline position: model → CG → **features (cached, batched)** → predictor → ranking/search.

``CG.to_pyg()`` walks every node in Python, so the predictors convert each CG once: the result is
cached per CG object (keyed by identity, dropped when the CG is garbage-collected; not by
``CG.hash()``, which costs several times more than the conversion itself), then many graphs are
collated into one :class:`torch_geometric.data.Batch` per forward pass.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch_geometric.data import Batch, Data
from tqdm.auto import tqdm

from cgpredict.cg import CG

_by_object: dict[int, tuple[weakref.ref, Data]] = {}


def _forget(key: int) -> None:
    _by_object.pop(key, None)


def cg_data(cg: CG) -> Data:
    """``cg.to_pyg()``, cached per CG object (the same object is converted once)."""
    if not isinstance(cg, CG):
        raise TypeError(f"expected a cgpredict.CG, got {type(cg).__name__}")
    key = id(cg)
    hit = _by_object.get(key)
    if hit is not None and hit[0]() is cg:
        return hit[1]
    data = cg.to_pyg()
    _by_object[key] = (weakref.ref(cg, lambda _r, k=key: _forget(k)), data)
    return data


def clear_cache() -> None:
    """Drop all cached conversions."""
    _by_object.clear()


def flops_of(cgs: Sequence[CG]) -> np.ndarray:
    """GMACs (torchvision convention) of each CG, from the cached PyG data."""
    return np.array([float(cg_data(cg).flops) for cg in cgs], dtype=np.float64)


def collate(cgs: Sequence[CG]) -> Batch:
    """One PyG ``Batch`` of the CGs (graph attributes ``flops``/``params`` become ``[B]`` tensors)."""
    return Batch.from_data_list([cg_data(cg) for cg in cgs])


def batches(cgs: Sequence[CG], batch_size: int = 256, order: np.ndarray | None = None, progress: bool = False,
            desc: str = "CGs") -> Iterator[tuple[np.ndarray, Batch]]:
    """Yield ``(indices, Batch)`` chunks of ``cgs`` in ``order`` (default: given order); with
    ``progress``, a tqdm bar counts the chunks when there is more than one."""
    idx = np.arange(len(cgs)) if order is None else np.asarray(order)
    starts = range(0, len(idx), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", leave=False, disable=not progress or len(starts) <= 1):
        chunk = idx[start : start + batch_size]
        yield chunk, collate([cgs[i] for i in chunk])


def dense_nodes(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded node features ``[B, N_max, F]`` and a key-padding mask ``[B, N_max]`` (True = pad)."""
    from torch_geometric.utils import to_dense_batch

    dense, mask = to_dense_batch(batch.x, batch.batch)
    return dense, ~mask

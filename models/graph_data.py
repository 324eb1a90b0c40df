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
from torch_geometric.utils import to_undirected
from tqdm.auto import tqdm

from cgpredict.cg import CG
from cgpredict.models.dedup import row_keys

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
    add_inference_keys(data)
    _by_object[key] = (weakref.ref(cg, lambda _r, k=key: _forget(k)), data)
    return data


def add_inference_keys(data: Data) -> Data:
    """Add what the deduplicated inference path (:mod:`cgpredict.models.dedup`) would otherwise
    recompute per batch: ``row_key`` (a 64-bit hash of each node's feature row) and
    ``undirected_edge_index`` (the data-flow edges in both directions, coalesced)."""
    data.row_key = row_keys(data.x)
    data.undirected_edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)
    return data


def clear_cache() -> None:
    """Drop all cached conversions."""
    _by_object.clear()


def flops_of(cgs: Sequence[CG]) -> np.ndarray:
    """GMACs (torchvision convention) of each CG, from the cached PyG data."""
    return np.array([float(cg_data(cg).flops) for cg in cgs], dtype=np.float64)


def collate(cgs: Sequence[CG]) -> Batch:
    """One PyG ``Batch`` of the CGs (graph attributes ``flops``/``params`` become ``[B]`` tensors)."""
    return collate_data([cg_data(cg) for cg in cgs])


_NODE_KEYS = ("x", "op", "row_key")
_EDGE_KEYS = ("edge_index", "undirected_edge_index")
_GRAPH_KEYS = ("flops", "params")


def collate_data(data: Sequence[Data]) -> Batch:
    """``Batch.from_data_list(data)`` for the Data of :func:`cg_data`, in a fixed number of tensor
    operations instead of several per graph (collation was ~15 % of ``Predictor.predict``); other
    Data fall back to PyG's collation. The result holds the same tensors as PyG's ``Batch``."""
    expected = {*_NODE_KEYS, *_EDGE_KEYS, *_GRAPH_KEYS, "num_nodes"}
    if not data or any(set(d.keys()) != expected for d in data):
        return Batch.from_data_list(list(data))
    counts = torch.tensor([d.num_nodes for d in data], dtype=torch.long)
    ptr = torch.zeros(len(data) + 1, dtype=torch.long)
    torch.cumsum(counts, 0, out=ptr[1:])
    graph = torch.arange(len(data))
    out = {key: torch.cat([d[key] for d in data]) for key in _NODE_KEYS + _GRAPH_KEYS}
    for key in _EDGE_KEYS:
        parts = [d[key] for d in data]
        sizes = torch.tensor([p.shape[1] for p in parts], dtype=torch.long)
        out[key] = torch.cat(parts, dim=1) + ptr[:-1].repeat_interleave(sizes)
    return Batch(batch=graph.repeat_interleave(counts), ptr=ptr, num_nodes=int(ptr[-1]), **out)


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

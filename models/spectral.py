"""Graph spectra of CGs and the spectral similarity weights of the contrastive loss.

Pipeline position: model → CG → features → **predictor** (contrastive pre-training of the CG
encoder). Following GENNAPE (Mills et al., AAAI'23), two CGs are compared by the Euclidean
distance ``σ`` between the ``q`` smallest eigenvalues of the symmetric normalised Laplacian of each
CG's undirected graph (zero-padded when the graph has fewer than ``q`` nodes); the contrastive
loss weighs every other CG ``ℓ`` of a batch by ``α = softmax_ℓ(-σ(i, ℓ))``, so CGs with nearer
spectra get larger weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import weakref

import numpy as np
import torch
from scipy import sparse
from scipy.linalg import eigvalsh
from scipy.sparse.linalg import eigsh

from cgpredict.cg import CG

#: Number of smallest Laplacian eigenvalues kept per CG.
DEFAULT_Q = 21
#: Graphs with at most this many nodes use a dense eigensolver.
DENSE_LIMIT = 400

_cache: dict[tuple[str, int], np.ndarray] = {}
_by_object: dict[tuple[int, int], tuple[weakref.ref, np.ndarray]] = {}


def laplacian_spectrum(num_nodes: int, edges: Sequence[tuple[int, int]], q: int = DEFAULT_Q) -> np.ndarray:
    """The ``q`` smallest eigenvalues (ascending, zero-padded) of ``I - D^-1/2 A D^-1/2`` of the
    undirected simple graph with ``num_nodes`` nodes and the given edges (isolated nodes get a
    zero row, i.e. eigenvalue 1 as networkx's ``normalized_laplacian_matrix``)."""
    if q < 1:
        raise ValueError(f"q must be >= 1, got {q}")
    out = np.zeros(q)
    if num_nodes == 0:
        return out
    pairs = {(min(a, b), max(a, b)) for a, b in edges if a != b}
    rows = np.array([a for a, b in pairs] + [b for a, b in pairs], dtype=np.int64)
    cols = np.array([b for a, b in pairs] + [a for a, b in pairs], dtype=np.int64)
    adj = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(num_nodes, num_nodes))
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    norm_adj = sparse.diags(inv_sqrt) @ adj @ sparse.diags(inv_sqrt)
    lap = sparse.diags((deg > 0).astype(np.float64)) - norm_adj
    k = min(q, num_nodes)
    if num_nodes <= DENSE_LIMIT or k >= num_nodes - 1:
        vals = eigvalsh(lap.toarray())[:k]
    else:
        vals = np.sort(eigsh(lap.tocsc(), k=k, sigma=-1e-3, which="LM", return_eigenvectors=False))
    out[:k] = np.clip(vals, 0.0, 2.0)
    return out


def spectrum(cg: CG, q: int = DEFAULT_Q) -> np.ndarray:
    """The ``q`` smallest normalised-Laplacian eigenvalues of ``cg``'s undirected graph (see
    :func:`laplacian_spectrum`), cached per structure hash and, in front of that, per CG object."""
    obj_key = (id(cg), q)
    seen = _by_object.get(obj_key)
    if seen is not None and seen[0]() is cg:
        return seen[1].copy()
    key = (cg.hash(), q)
    hit = _cache.get(key)
    if hit is None:
        hit = laplacian_spectrum(cg.num_nodes, cg.edges, q)
        _cache[key] = hit
    _by_object[obj_key] = (weakref.ref(cg, lambda _r, k=obj_key: _by_object.pop(k, None)), hit)
    return hit.copy()


def spectra(cgs: Sequence[CG], q: int = DEFAULT_Q) -> np.ndarray:
    """``[len(cgs), q]`` matrix of :func:`spectrum` rows."""
    return np.stack([spectrum(cg, q) for cg in cgs]) if cgs else np.zeros((0, q))


def spectral_distances(spec: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances ``σ(i, ℓ)`` between rows of a ``[B, q]`` spectrum matrix."""
    return torch.cdist(spec, spec)


def spectral_weights(spec: torch.Tensor) -> torch.Tensor:
    """``α[i, ℓ] = softmax_{ℓ ≠ i}(-σ(i, ℓ))``: rows sum to 1, the diagonal is 0, nearer spectra
    weigh more."""
    dist = spectral_distances(spec)
    eye = torch.eye(dist.shape[0], dtype=torch.bool, device=dist.device)
    logits = (-dist).masked_fill(eye, float("-inf"))
    return torch.softmax(logits, dim=1)

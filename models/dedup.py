"""Exact inference shortcuts for CG encoders: compute each distinct node state once.

Pipeline position: model → CG → features → **predictor (inference)** → ranking/search.

CGs repeat themselves: NB-201's 15 cells share a handful of node types, so an NB-201 CG of ~230
nodes has ~33 distinct node-feature rows, and across a batch of CGs the same local structures recur
in every graph. Two shortcuts exploit that without changing what the models compute:

* **Sum-aggregation GNNs** (k-GNN's ``GraphConv``, ``GINConv``): after ``l`` layers a node's state
  depends only on its ``l``-hop neighbourhood, so nodes with the same colour under ``l`` rounds of
  1-dimensional Weisfeiler-Leman refinement (started from identical feature rows) have identical
  states. :func:`sum_aggregation_forward` refines those colour classes (:func:`wl_round`) for a
  whole batch at once, so graphs share classes, and runs each layer on one representative per
  class, aggregating its neighbours through a sparse class-count matrix. Classes are keyed by
  random 64-bit hashes (of a feature row, then of own class plus the multiset of neighbour
  classes): two different keys collide with probability about 2⁻⁶⁴ per pair, and a collision would
  make one class reuse another's state.
* **Self-attention without positions** (the CL encoder's node Transformer): identical rows of one
  graph give identical queries, keys and values, so attention over the distinct rows with an
  additive ``log(multiplicity)`` bias on the keys equals attention over all rows, and a mean
  readout becomes a multiplicity-weighted mean. :func:`unique_rows_per_graph` finds them.

Both are used only in eval mode under ``torch.no_grad()`` (training keeps the plain path, whose
dropout makes duplicate rows differ). ``tests/test_models_dedup.py`` checks the outputs equal the
plain path's to float rounding on real CGs; on the 725 NB-201 CGs the encoder does ~3x less work
(``benchmarks/predict_speed.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch_geometric.nn import GraphConv
from torch_geometric.utils import to_torch_csr_tensor

_HASH_SEED = 0x5EED_C6
_ENABLED = True


def fast_inference_enabled() -> bool:
    """Whether inference uses the shortcuts of this module (and the predictor its parallel jobs)."""
    return _ENABLED


@contextlib.contextmanager
def fast_inference(enabled: bool = True) -> Iterator[None]:
    """Context manager switching the shortcuts (and ``Predictor``'s parallel per-chunk jobs) on or
    off, e.g. ``with fast_inference(False): pred.predict(cgs)`` for the plain per-node path that
    ``benchmarks/predict_speed.py`` compares against. Not thread-safe: it sets a module flag."""
    global _ENABLED
    before, _ENABLED = _ENABLED, enabled
    try:
        yield
    finally:
        _ENABLED = before


def _first_index(inverse: torch.Tensor, k: int) -> torch.Tensor:
    """``[k]`` smallest position at which each class of ``inverse`` occurs."""
    pos = torch.arange(inverse.numel(), device=inverse.device)
    first = torch.full((k,), inverse.numel(), dtype=torch.long, device=inverse.device)
    return first.scatter_reduce_(0, inverse, pos, reduce="amin")


def _random_keys(k: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(-(2**63), 2**63 - 1, (k,), dtype=torch.long, generator=generator)


def _num_classes(classes: torch.Tensor) -> int:
    return int(classes.max()) + 1 if classes.numel() else 0


def row_keys(x: torch.Tensor) -> torch.Tensor:
    """``[num_nodes]`` 64-bit hash of each row's raw float32 bits (random weights, wrapping sums):
    equal rows get equal keys, different rows collide with probability about 2⁻⁶⁴."""
    bits = x.detach().float().contiguous().view(torch.int32).long()
    weights = _random_keys(x.shape[1], torch.Generator().manual_seed(_HASH_SEED))
    return (bits * weights).sum(1)


def row_classes(x: torch.Tensor, keys: torch.Tensor | None = None) -> torch.Tensor:
    """``[num_nodes]`` class of each row of ``x`` (classes ``0..K-1``): equal rows share a class.
    ``keys``: :func:`row_keys` of ``x`` when already known (e.g. cached per CG); hashing is several
    times faster than ``torch.unique(x, dim=0)``."""
    return torch.unique(row_keys(x) if keys is None else keys, return_inverse=True)[1]


def wl_round(classes: torch.Tensor, edge_index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One round of 1-WL refinement: split each class of ``classes [num_nodes]`` by the multiset of
    its nodes' in-neighbour classes along ``edge_index [2, E]`` (messages ``source → target``)."""
    k = _num_classes(classes)
    own, neighbour = _random_keys(k, generator), _random_keys(k, generator)
    src, dst = edge_index
    # int64 sums wrap around: a linear hash of the neighbour multiset, salted by the own class
    key = own[classes].index_add_(0, dst, neighbour[classes[src]])
    return torch.unique(key, return_inverse=True)[1]


def _conv(conv: nn.Module, h: torch.Tensor, adj: torch.Tensor, own: torch.Tensor | None) -> torch.Tensor:
    """``conv((h, h[own]), adj)`` (``own=None``: ``conv(h, adj)``) for a sparse ``adj [K_out, K_in]``.

    For ``GraphConv`` (sum aggregation) both linear maps are applied to the ``K_in`` rows of ``h``
    before the sparse product: ``lin_rel(adj @ h) + lin_root(h[own]) = adj @ (h W_relᵀ) + b +
    (h W_rootᵀ)[own]`` by linearity, which costs fewer rows whenever WL classes multiply from one
    round to the next (the common case)."""
    if isinstance(conv, GraphConv) and conv.aggr == "add" and adj.layout == torch.sparse_csr:
        rel = torch.sparse.mm(adj, nn.functional.linear(h, conv.lin_rel.weight))
        if conv.lin_rel.bias is not None:
            rel += conv.lin_rel.bias
        root = nn.functional.linear(h, conv.lin_root.weight)
        return rel + (root if own is None else root[own])
    return conv(h if own is None else (h, h[own]), adj)


def sum_aggregation_forward(convs: nn.ModuleList, x: torch.Tensor, edge_index: torch.Tensor,
                            start: torch.Tensor | None = None, max_share: float = 0.25) -> torch.Tensor:
    """``relu(conv_L(... relu(conv_1(x, edge_index)) ...))`` per node, ``[num_nodes, hidden]``,
    computing each layer once per WL class while the classes are at most ``max_share`` of the
    nodes, then per node (over a sparse CSR adjacency) for the remaining layers.

    ``convs``: sum-aggregation PyG layers that accept bipartite ``(x_src, x_dst)`` inputs
    (``GraphConv``, ``GINConv``); ``start``: :func:`row_classes` of ``x`` when already known.
    """
    n = x.shape[0]
    generator = torch.Generator().manual_seed(_HASH_SEED)
    prev = row_classes(x) if start is None else start
    h = x[_first_index(prev, _num_classes(prev))]
    src, dst = edge_index
    if dst.numel() > 1 and bool((dst[1:] < dst[:-1]).any()):
        order = torch.argsort(dst, stable=True)
        src, dst = src[order], dst[order]
    # in-neighbours of node v: src[first[v]:first[v + 1]] (messages grouped by target)
    first = torch.zeros(n + 1, dtype=torch.long, device=x.device)
    torch.cumsum(torch.bincount(dst, minlength=n), 0, out=first[1:])
    for layer, conv in enumerate(convs):
        cur = wl_round(prev, edge_index, generator)
        k = _num_classes(cur)
        if k > max_share * n:  # little left to share: expand to nodes and finish per node
            h = h[prev]
            adj = to_torch_csr_tensor(edge_index.flip(0), size=(n, n)) if edge_index.numel() else edge_index
            for rest in convs[layer:]:
                h = torch.relu(_conv(rest, h, adj, None))
            return h
        reps = _first_index(cur, k)
        degree = first[reps + 1] - first[reps]
        ends = torch.cumsum(degree, 0)
        # positions of every representative's in-messages in the target-grouped edge list
        pos = (torch.arange(int(ends[-1]) if k else 0, device=x.device)
               + (first[reps] - ends + degree).repeat_interleave(degree))
        # bipartite quotient adjacency [K_this, K_prev], rows = this round's classes in order: entry
        # (c, c') counts the representative of c's in-neighbours in class c' (repeated column
        # indices of a row are summed by the sparse product, so no coalescing sort is needed)
        crow = torch.zeros(k + 1, dtype=torch.long, device=x.device)
        crow[1:] = ends
        adj = torch.sparse_csr_tensor(crow, prev[src[pos]], torch.ones(pos.numel(), device=x.device),
                                      (k, h.shape[0]), check_invariants=False)
        h = torch.relu(_conv(conv, h, adj, prev[reps]))
        prev = cur
    return h[prev]


def unique_rows_per_graph(row_class: torch.Tensor, graph: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct rows within each graph, given ``row_class`` (:func:`row_classes`) and each node's
    ``graph`` index.

    Returns ``(rows, unique_graph, counts)``: ``rows`` indexes one node per distinct (graph, row)
    pair, sorted by graph; ``unique_graph`` its graph; ``counts`` how many nodes of that graph share
    the row.
    """
    k = max(_num_classes(row_class), 1)
    keys, node_to_unique, counts = torch.unique(graph * k + row_class, return_inverse=True, return_counts=True)
    return _first_index(node_to_unique, keys.numel()), keys // k, counts

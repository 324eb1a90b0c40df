"""Graph neural network encoders over CGs and the end-to-end GNN regression baselines.

Pipeline position: model → CG → features → **predictor** → ranking/search.

:class:`GNNEncoder` stacks message-passing layers of one kind — ``kgnn`` (k-GNN, PyG
``GraphConv``), ``gcn`` (``GCNConv``) or ``gin`` (``GINConv`` with a 2-layer MLP) — over the
node features of :mod:`cgpredict.features`, then mean-pools the nodes. :class:`GraphRegressor` adds
a 4-layer MLP head; :class:`GNNPredictor` wraps it scikit-learn style (``fit(cgs, acc)`` /
``predict(cgs)``) with the FLOPs label transform of :mod:`cgpredict.models.transform`. The GENNAPE
paper's k-GNN baseline is ``GNNPredictor(kind="kgnn", layers=6, hidden=32)``.

CG edges follow the data flow; by default messages travel both ways (the edge set is made
undirected) so that early nodes also see what consumes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GCNConv, GINConv, GraphConv, global_mean_pool
from torch_geometric.utils import to_torch_csr_tensor, to_undirected

from cgpredict.cg import CG
from cgpredict.features import NUM_NODE_FEATURES
from cgpredict.models.dedup import fast_inference_enabled, row_classes, row_keys, sum_aggregation_forward
from cgpredict.models.graph_data import batches, collate, flops_of
from cgpredict.models.training import MLP, fit_loop, regression_loss, set_seed
from cgpredict.models.transform import FlopsTransform

GNN_KINDS = ("kgnn", "gcn", "gin")


def _conv(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    if kind == "kgnn":
        return GraphConv(in_dim, out_dim)  # sum aggregation, as in k-GNN
    if kind == "gcn":
        return GCNConv(in_dim, out_dim)
    if kind == "gin":
        return GINConv(nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim)))
    raise ValueError(f"unknown GNN kind {kind!r}; choose one of {', '.join(GNN_KINDS)}")


class GNNEncoder(nn.Module):
    """``layers`` message-passing layers of width ``hidden`` with ReLU, then mean readout.

    ``forward(batch)`` returns ``[num_graphs, hidden]``.
    """

    def __init__(self, kind: str = "kgnn", layers: int = 6, hidden: int = 32, in_dim: int = NUM_NODE_FEATURES,
                 directed: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"GNNEncoder needs at least one layer, got {layers}")
        self.kind, self.directed = kind, directed
        self.convs = nn.ModuleList(_conv(kind, in_dim if i == 0 else hidden, hidden) for i in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.out_dim = hidden

    def _messages(self, batch: Batch) -> torch.Tensor:
        """The ``[2, E]`` messages passed (data-flow edges, both directions unless ``directed``)."""
        edge_index = batch.edge_index
        if not self.directed and edge_index.numel():
            cached = getattr(batch, "undirected_edge_index", None)  # graph_data.add_inference_keys
            both = cached if cached is not None else to_undirected(edge_index, num_nodes=batch.num_nodes)
            return both.flip(0)  # the same (symmetric) edge set, now sorted by target
        return edge_index

    def deduplicates(self) -> bool:
        """True when inference runs once per WL class (:mod:`cgpredict.models.dedup`): eval mode,
        no autograd, a sum-aggregation kind (k-GNN, GIN)."""
        return (self.kind in ("kgnn", "gin") and not self.training and not torch.is_grad_enabled()
                and fast_inference_enabled())

    def node_embeddings(self, batch: Batch, start: torch.Tensor | None = None) -> torch.Tensor:
        """Per-node outputs of the last layer, ``[total_nodes, hidden]`` (``start``: row classes of
        ``batch.x`` from :func:`~cgpredict.models.dedup.row_classes`, when already known)."""
        if self.deduplicates():
            if start is None:
                start = row_classes(batch.x, getattr(batch, "row_key", None))
            # per-class work saves ∝ hidden² per shared row against a fixed bookkeeping cost per
            # class: measured on NB-201 CGs, worth it at any share for width 64, below 1/4 for 32
            max_share = min(1.0, (self.out_dim / 64) ** 2)
            return sum_aggregation_forward(self.convs, batch.x, self._messages(batch), start, max_share)
        edge_index = self._messages(batch)
        if not torch.is_grad_enabled() and edge_index.numel():
            # inference: one sparse CSR adjacency (adj_t[target, source]) shared by all layers; the
            # sparse-matrix product is ~1.6x faster on CPU than gather/scatter message passing
            edge_index = to_torch_csr_tensor(edge_index.flip(0), size=(batch.num_nodes, batch.num_nodes))
        h = batch.x
        for conv in self.convs:
            h = self.dropout(torch.relu(conv(h, edge_index)))
        return h

    def forward(self, batch: Batch) -> torch.Tensor:
        return global_mean_pool(self.node_embeddings(batch), batch.batch, size=batch.num_graphs)


class GraphRegressor(nn.Module):
    """A :class:`GNNEncoder` followed by an MLP head giving one score per graph."""

    def __init__(self, kind: str = "kgnn", layers: int = 6, hidden: int = 32, head_layers: int = 4,
                 head_hidden: int | None = None, dropout: float = 0.0, in_dim: int = NUM_NODE_FEATURES) -> None:
        super().__init__()
        self.encoder = GNNEncoder(kind, layers, hidden, in_dim=in_dim, dropout=dropout)
        self.head = MLP(hidden, head_hidden or hidden, 1, head_layers)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.head(self.encoder(batch)).squeeze(-1)


class GNNPredictor:
    """scikit-learn-style end-to-end GNN accuracy regressor (k-GNN, GCN or GIN baseline).

    Args:
        kind: ``kgnn``, ``gcn`` or ``gin``.
        layers, hidden: encoder depth and width (paper's k-GNN: 6 and 32).
        epochs, lr, batch_size: Adam training schedule (cosine decay).
        loss: ``mse``, ``hinge`` (pairwise ranking) or ``mse+hinge``.
        flops_transform: regress the FLOPs-normalised target (GENNAPE eq. 5) instead of ``Z(acc)``.
        extra_node_dim: width of extra per-node feature columns (e.g. proxy statistics) appended to
            the CG's node features; ``fit``/``predict`` then take ``node_extra``, one
            ``[num_nodes, extra_node_dim]`` array per CG.
        seed: seeds initialisation and batch order.
    """

    def __init__(self, kind: str = "kgnn", layers: int = 6, hidden: int = 32, epochs: int = 100, lr: float = 1e-3,
                 batch_size: int = 128, loss: str = "mse", flops_transform: bool = True, extra_node_dim: int = 0,
                 seed: int = 0, progress: bool = True) -> None:
        if kind not in GNN_KINDS:
            raise ValueError(f"unknown GNN kind {kind!r}; choose one of {', '.join(GNN_KINDS)}")
        self.kind, self.layers, self.hidden = kind, layers, hidden
        self.epochs, self.lr, self.batch_size, self.loss = epochs, lr, batch_size, loss
        self.flops_transform, self.seed, self.progress = flops_transform, seed, progress
        self.extra_node_dim = int(extra_node_dim)
        set_seed(seed)
        self.module = GraphRegressor(kind, layers, hidden, in_dim=NUM_NODE_FEATURES + self.extra_node_dim)
        self.transform = FlopsTransform(flops_transform)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-ready)."""
        return {"kind": self.kind, "layers": self.layers, "hidden": self.hidden, "epochs": self.epochs,
                "lr": self.lr, "batch_size": self.batch_size, "loss": self.loss,
                "flops_transform": self.flops_transform, "extra_node_dim": self.extra_node_dim, "seed": self.seed}

    def state(self) -> dict[str, Any]:
        """Non-tensor fitted state (JSON-ready)."""
        return {"transform": self.transform.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""
        self.transform = FlopsTransform.from_state(state["transform"])

    def _check_extra(self, cgs: Sequence[CG], node_extra: Sequence[np.ndarray] | None) -> list[torch.Tensor] | None:
        if not self.extra_node_dim:
            if node_extra is not None:
                raise ValueError("node_extra given but this GNNPredictor has extra_node_dim=0")
            return None
        if node_extra is None or len(node_extra) != len(cgs):
            raise ValueError(f"this GNNPredictor needs node_extra: one [num_nodes, {self.extra_node_dim}] array per CG")
        out = []
        for cg, extra in zip(cgs, node_extra):
            arr = np.asarray(extra, dtype=np.float32)
            if arr.shape != (cg.num_nodes, self.extra_node_dim):
                raise ValueError(f"node_extra of {cg.name or 'a CG'} has shape {arr.shape}, "
                                 f"expected ({cg.num_nodes}, {self.extra_node_dim})")
            out.append(torch.from_numpy(arr))
        return out

    @staticmethod
    def _with_extra(batch: Batch, idx: np.ndarray, extra: list[torch.Tensor] | None) -> Batch:
        """Append the extra node columns of CGs ``idx`` to ``batch.x`` (row hashes recomputed)."""
        if extra is not None:
            batch.x = torch.cat([batch.x, torch.cat([extra[i] for i in idx])], dim=1)
            batch.row_key = row_keys(batch.x)
        return batch

    def _batch(self, cgs: Sequence[CG], idx: np.ndarray, extra: list[torch.Tensor] | None) -> Batch:
        return self._with_extra(collate([cgs[i] for i in idx]), idx, extra)

    def fit(self, cgs: Sequence[CG], acc: Sequence[float] | np.ndarray, epochs: int | None = None,
            refit_transform: bool = True, node_extra: Sequence[np.ndarray] | None = None) -> GNNPredictor:
        """Train on CGs and their accuracies (``epochs`` overrides the constructor's, e.g. to
        fine-tune; ``refit_transform=False`` keeps the label statistics of the first fit;
        ``node_extra`` as in the class docstring)."""
        acc = np.asarray(acc, dtype=np.float64)
        if len(cgs) != acc.size:
            raise ValueError(f"{len(cgs)} CGs but {acc.size} labels")
        extra = self._check_extra(cgs, node_extra)
        gflops = flops_of(cgs)
        if refit_transform or self.transform.mean_ is None:
            self.transform.fit(acc, gflops)
        target = torch.tensor(self.transform.transform(acc, gflops), dtype=torch.float32)
        set_seed(self.seed)
        self.module.train()

        def step(idx: np.ndarray) -> torch.Tensor:
            return regression_loss(self.loss, self.module(self._batch(cgs, idx, extra)), target[idx])

        fit_loop(step, self.module.parameters(), len(cgs), self.epochs if epochs is None else epochs,
                 self.batch_size, self.lr, self.seed, f"{self.kind} regressor", progress=self.progress)
        self.module.eval()
        return self

    @torch.no_grad()
    def decision_function(self, cgs: Sequence[CG], batch_size: int = 256,
                          node_extra: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Raw standardised scores (higher = better)."""
        self.module.eval()
        extra = self._check_extra(cgs, node_extra)
        out = np.empty(len(cgs))
        for idx, batch in batches(cgs, batch_size, progress=self.progress, desc=f"{self.kind} scoring"):
            out[idx] = self.module(self._with_extra(batch, idx, extra)).numpy()
        return out

    def predict(self, cgs: Sequence[CG], node_extra: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Predicted accuracies."""
        return self.transform.inverse(self.decision_function(cgs, node_extra=node_extra), flops_of(cgs))

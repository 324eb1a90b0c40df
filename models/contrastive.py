"""Contrastive (CL) pre-training of a CG encoder with spectral soft positives (GENNAPE).

Pipeline position: model → CG → features → **predictor (CG embedding)** → heads → ranking/search.

Reimplemented from the description in Mills et al., "GENNAPE", AAAI'23:

* :class:`CGEncoder` — a 4-layer k-GNN (PyG ``GraphConv``, mean readout) and a 1-layer, 2-head
  Transformer encoder over each CG's nodes (padded batch, key-padding mask, masked mean readout),
  each giving 64 dims; concatenated into a 128-dim CG embedding.
* Two dropout-augmented views of every CG (SimCSE-style: the same graph through the encoder twice
  in training mode), a projection head onto the unit sphere and the loss of
  :func:`spectral_contrastive_loss`.
* An auxiliary head regressing each CG's standardised log FLOPs from the embedding, so that the
  embedding keeps the compute scale.

:class:`ContrastiveEncoder` is the scikit-learn-style wrapper: ``fit(cgs)`` (no labels needed) and
``transform(cgs) -> [N, 128]`` embeddings with dropout off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import global_mean_pool
from torch_geometric.utils import to_dense_batch

from cgpredict.cg import CG
from cgpredict.features import NUM_NODE_FEATURES
from cgpredict.models.dedup import row_classes, unique_rows_per_graph
from cgpredict.models.gnn import GNNEncoder
from cgpredict.models.graph_data import batches, cg_data, collate, dense_nodes, flops_of
from cgpredict.models.spectral import DEFAULT_Q, spectra, spectral_weights
from cgpredict.models.training import MLP, fit_loop, set_seed


class NodeTransformerLayer(nn.Module):
    """One post-norm Transformer encoder layer over the padded nodes of each graph.

    Same computation as ``nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout, batch_first=True)``
    (ReLU feed-forward, LayerNorm after each residual), written with
    ``F.scaled_dot_product_attention`` and a boolean key mask, which runs about twice as fast on CPU
    as the module's fused path with a key-padding mask.
    """

    def __init__(self, dim: int, heads: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"Transformer width {dim} is not divisible by {heads} heads")
        self.heads, self.p = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor, key_bias: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, N, dim]``, ``pad [B, N]`` (True = padding) → ``[B, N, dim]``. ``key_bias [B, N]``
        (optional) is added to every query's attention logits of that key, ``-inf`` at padding
        (``log`` multiplicities of deduplicated rows, see :mod:`cgpredict.models.dedup`)."""
        b, n, d = x.shape
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        keep = (~pad)[:, None, None, :] if key_bias is None else key_bias[:, None, None, :]
        att = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep,
                                                         dropout_p=self.p if self.training else 0.0)
        h = self.norm1(x + self.drop1(self.out(att.transpose(1, 2).reshape(b, n, d))))
        return self.norm2(h + self.drop2(self.ff(h)))


class CGEncoder(nn.Module):
    """k-GNN branch + Transformer branch → concatenated embedding of ``2 * branch_dim`` dims."""

    def __init__(self, branch_dim: int = 64, gnn_layers: int = 4, heads: int = 2, transformer_layers: int = 1,
                 dropout: float = 0.1, in_dim: int = NUM_NODE_FEATURES) -> None:
        super().__init__()
        self.gnn = GNNEncoder("kgnn", gnn_layers, branch_dim, in_dim=in_dim, dropout=dropout)
        self.node_proj = nn.Linear(in_dim, branch_dim)
        self.transformer = nn.ModuleList(NodeTransformerLayer(branch_dim, heads, dropout)
                                         for _ in range(transformer_layers))
        self.out_dim = 2 * branch_dim

    def forward(self, batch: Batch) -> torch.Tensor:
        if self.gnn.deduplicates():
            return self._forward_dedup(batch)
        g = self.gnn(batch)
        dense, pad = dense_nodes(batch)
        h = self.node_proj(dense)
        for layer in self.transformer:
            h = layer(h, pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        t = (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return torch.cat([g, t], dim=1)

    def _forward_dedup(self, batch: Batch) -> torch.Tensor:
        """Inference computing each distinct node state once (:mod:`cgpredict.models.dedup`): the
        k-GNN per WL class of the batch, the Transformer per distinct row of each graph with
        ``log(multiplicity)`` key biases and a multiplicity-weighted mean readout."""
        start = row_classes(batch.x, getattr(batch, "row_key", None))
        g = global_mean_pool(self.gnn.node_embeddings(batch, start), batch.batch, size=batch.num_graphs)
        rows, graph, counts = unique_rows_per_graph(start, batch.batch)
        h, keep = to_dense_batch(self.node_proj(batch.x[rows]), graph, batch_size=batch.num_graphs)
        weight, _ = to_dense_batch(counts.to(h.dtype), graph, batch_size=batch.num_graphs)
        bias = torch.where(keep, weight.clamp(min=1.0).log(), float("-inf"))
        for layer in self.transformer:
            h = layer(h, ~keep, bias)
        t = (h * weight.unsqueeze(-1)).sum(1) / weight.sum(1, keepdim=True).clamp(min=1.0)
        return torch.cat([g, t], dim=1)


class ContrastiveModel(nn.Module):
    """Encoder plus projection head (to the unit sphere) and auxiliary log-FLOPs head."""

    def __init__(self, branch_dim: int = 64, gnn_layers: int = 4, heads: int = 2, dropout: float = 0.1,
                 proj_dim: int = 64) -> None:
        super().__init__()
        self.encoder = CGEncoder(branch_dim, gnn_layers, heads, dropout=dropout)
        dim = self.encoder.out_dim
        self.projection = MLP(dim, dim, proj_dim, layers=2)
        self.flops_head = MLP(dim, dim // 2, 1, layers=2)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(embedding, unit-norm projection, predicted standardised log FLOPs)``."""
        emb = self.encoder(batch)
        proj = nn.functional.normalize(self.projection(emb), dim=1)
        return emb, proj, self.flops_head(emb).squeeze(-1)


def spectral_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, alpha: torch.Tensor,
                              temperature: float = 0.05, spectral_weight: float = 1.0) -> torch.Tensor:
    """Contrastive loss of two views with spectrally weighted soft positives.

    ``z1``, ``z2``: ``[B, d]`` unit-norm projections of the two views of the same B CGs;
    ``alpha``: ``[B, B]`` weights with zero diagonal and rows summing to 1 (from
    :func:`cgpredict.models.spectral.spectral_weights`). Every one of the ``2B`` views is an anchor
    ``a`` with candidates all other ``2B - 1`` views and ``log p(a → c) = log_softmax_c(z_a·z_c / τ)``.
    For anchor ``a`` of CG ``i``::

        loss_a = -log p(a → a's other view)
                 + spectral_weight * Σ_{ℓ≠i} α[i, ℓ] · ½ (-log p(a → ℓ's view 1) - log p(a → ℓ's view 2))

    averaged over anchors: the standard positive pair plus a convex combination over the other CGs
    in which CGs with nearer spectra (larger α) are pulled closer.
    """
    b = z1.shape[0]
    z = torch.cat([z1, z2], dim=0)
    sim = z @ z.t() / temperature
    eye = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    logp = torch.log_softmax(sim.masked_fill(eye, float("-inf")), dim=1)
    logp = logp.masked_fill(eye, 0.0)
    idx = torch.arange(b, device=z.device)
    partner = torch.cat([idx + b, idx])
    positive = -logp[torch.arange(2 * b, device=z.device), partner]
    a2 = torch.cat([alpha, alpha], dim=0)  # [2B, B] weights of anchor's CG over CGs
    soft = -0.5 * ((a2 * logp[:, :b]).sum(1) + (a2 * logp[:, b:]).sum(1))
    return (positive + spectral_weight * soft).mean()


class ContrastiveEncoder:
    """scikit-learn-style contrastive pre-training of :class:`CGEncoder` (no labels needed).

    Args:
        branch_dim: width of each branch (embedding = ``2 * branch_dim``; paper: 64 → 128).
        gnn_layers, heads, dropout: encoder sizes; dropout also makes the two views differ.
        epochs, lr, batch_size: Adam schedule (paper: batch 128).
        temperature: τ of the similarity softmax (paper: 0.05).
        q: number of Laplacian eigenvalues compared (paper: 21).
        spectral_weight: weight of the spectral soft-positive term.
        flops_weight: weight of the auxiliary standardised-log-FLOPs regression.
    """

    def __init__(self, branch_dim: int = 64, gnn_layers: int = 4, heads: int = 2, dropout: float = 0.1,
                 epochs: int = 40, lr: float = 1e-3, batch_size: int = 128, temperature: float = 0.05,
                 q: int = DEFAULT_Q, spectral_weight: float = 1.0, flops_weight: float = 1.0, seed: int = 0,
                 progress: bool = True) -> None:
        self.branch_dim, self.gnn_layers, self.heads, self.dropout = branch_dim, gnn_layers, heads, dropout
        self.epochs, self.lr, self.batch_size = epochs, lr, batch_size
        self.temperature, self.q = temperature, q
        self.spectral_weight, self.flops_weight = spectral_weight, flops_weight
        self.seed, self.progress = seed, progress
        set_seed(seed)
        self.module = ContrastiveModel(branch_dim, gnn_layers, heads, dropout)
        self.log_flops_mean_: float = 0.0
        self.log_flops_std_: float = 1.0
        self.history_: list[float] = []
        self.fitted = False  # True after fit() or load_state()

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self.module.encoder.out_dim

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-ready)."""
        return {"branch_dim": self.branch_dim, "gnn_layers": self.gnn_layers, "heads": self.heads,
                "dropout": self.dropout, "epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                "temperature": self.temperature, "q": self.q, "spectral_weight": self.spectral_weight,
                "flops_weight": self.flops_weight, "seed": self.seed}

    def state(self) -> dict[str, Any]:
        """Non-tensor fitted state (JSON-ready)."""
        return {"log_flops_mean": self.log_flops_mean_, "log_flops_std": self.log_flops_std_}

    def load_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""
        self.log_flops_mean_ = float(state["log_flops_mean"])
        self.log_flops_std_ = float(state["log_flops_std"])
        self.fitted = True

    def fit(self, cgs: Sequence[CG], epochs: int | None = None) -> ContrastiveEncoder:
        """Pre-train the encoder on unlabelled CGs."""
        if len(cgs) < 2:
            raise ValueError(f"contrastive training needs at least 2 CGs, got {len(cgs)}")
        log_flops = np.log(flops_of(cgs) + 1e-6)
        self.log_flops_mean_ = float(log_flops.mean())
        self.log_flops_std_ = float(log_flops.std()) or 1.0
        target = torch.tensor((log_flops - self.log_flops_mean_) / self.log_flops_std_, dtype=torch.float32)
        spec = torch.tensor(spectra(cgs, self.q), dtype=torch.float32)
        set_seed(self.seed)
        self.module.train()

        def step(idx: np.ndarray) -> torch.Tensor:
            batch = collate([cgs[i] for i in idx])
            _, z1, f1 = self.module(batch)
            _, z2, f2 = self.module(batch)
            alpha = spectral_weights(spec[idx])
            loss = spectral_contrastive_loss(z1, z2, alpha, self.temperature, self.spectral_weight)
            aux = 0.5 * (nn.functional.mse_loss(f1, target[idx]) + nn.functional.mse_loss(f2, target[idx]))
            return loss + self.flops_weight * aux

        self.history_ = fit_loop(step, self.module.parameters(), len(cgs), self.epochs if epochs is None else epochs,
                                 self.batch_size, self.lr, self.seed, "contrastive encoder",
                                 progress=self.progress)
        self.module.eval()
        self.fitted = True
        return self

    @torch.no_grad()
    def transform(self, cgs: Sequence[CG], batch_size: int = 256) -> np.ndarray:
        """``[N, dim]`` float32 embeddings (eval mode, no dropout)."""
        self.module.eval()
        out = np.empty((len(cgs), self.dim), dtype=np.float32)
        # batch graphs of similar size together: the Transformer pads to the largest graph of a batch
        order = np.argsort([cg_data(cg).num_nodes for cg in cgs], kind="stable")
        for idx, batch in batches(cgs, batch_size, order, self.progress, "embedding CGs"):
            out[idx] = self.module.encoder(batch).numpy()
        return out

"""Prediction heads on CG embeddings: FCM-mixed MLP regressors and pairwise classifiers.

Pipeline position: model → CG → features → CG embedding (:mod:`cgpredict.models.contrastive`) →
**heads** → ensemble → ranking/search.

* :class:`EmbeddingRegressor` — ``n_clusters = 0``: one MLP on the embedding (GENNAPE's "CL+T");
  ``n_clusters = C``: C MLP heads (4 hidden layers of 256) whose outputs are mixed by the CG's
  fuzzy C-means memberships ("CL+FCM+T"). Targets use the FLOPs transform (eq. 5).
  :func:`grid_search_fcm` picks C and the fuzzifier m on a validation split.
* :class:`PairwiseRanker` — a classifier of "is CG i better than CG j" (hidden 128), optionally
  FCM-mixed; full rankings come from a merge sort (Python's ``sorted``, a merge sort, with
  ``functools.cmp_to_key``) that uses the classifier as comparator. The classifier is
  antisymmetric by construction, ``logit(i, j) = g(x_i, x_j) - g(x_j, x_i)``, so
  ``P(i > j) = 1 - P(j > i)`` and the comparator is consistent.

All inputs are standardised embeddings concatenated with the standardised ``log10(GFLOPs + 1)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from cgpredict.models.fcm import FCMFeatures, FuzzyCMeans
from cgpredict.models.input_fits import InputFits, standardisation
from cgpredict.models.training import fit_loop, regression_loss, set_seed
from cgpredict.models.transform import FlopsTransform

#: The paper's grid for FCM: C in [10, 20], m in {2.0, 2.5, ..., 4.0}.
FCM_GRID_CLUSTERS: tuple[int, ...] = tuple(range(10, 21))
FCM_GRID_M: tuple[float, ...] = (2.0, 2.5, 3.0, 3.5, 4.0)


def _with_unlabelled(emb: np.ndarray, gflops: np.ndarray,
                     unlabelled: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """Labelled inputs stacked with optional unlabelled ``(embeddings, gflops)``."""
    if unlabelled is None or len(unlabelled[0]) == 0:
        return np.asarray(emb), np.asarray(gflops, dtype=np.float64)
    return (np.concatenate([np.asarray(emb), np.asarray(unlabelled[0])]),
            np.concatenate([np.asarray(gflops, dtype=np.float64), np.asarray(unlabelled[1], dtype=np.float64)]))


class MultiHeadMLP(nn.Module):
    """``heads`` independent MLPs evaluated in one batched pass: ``[N, in] -> [N, heads, out]``."""

    def __init__(self, heads: int, in_dim: int, hidden: int = 256, hidden_layers: int = 4, out_dim: int = 1) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * hidden_layers + [out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(heads, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(heads, b).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.einsum("nd,hdk->nhk", x, self.weights[0]) + self.biases[0]
        for w, b in zip(self.weights[1:], self.biases[1:]):
            h = torch.einsum("nhd,hdk->nhk", torch.relu(h), w) + b
        return h


class _EmbeddingModel:
    """Shared input handling: standardisation, optional FCM memberships, JSON state."""

    def __init__(self, n_clusters: int, m: float, pca_dim: int, fcm_backend: str, seed: int) -> None:
        if n_clusters < 0:
            raise ValueError(f"n_clusters must be >= 0 (0 = no FCM), got {n_clusters}")
        self.n_clusters, self.m, self.pca_dim, self.fcm_backend, self.seed = n_clusters, m, pca_dim, fcm_backend, seed
        self.x_mean_: np.ndarray | None = None
        self.x_std_: np.ndarray | None = None
        self.fcm_features: FCMFeatures | None = None
        self.fcm: FuzzyCMeans | None = None

    @property
    def heads(self) -> int:
        return max(1, self.n_clusters)

    def _fit_inputs(self, emb: np.ndarray, gflops: np.ndarray, shared: InputFits | None = None) -> None:
        """Fit the input standardisation and (with FCM) the PCA features and clusters; with
        ``shared`` (heads fitted on the same inputs) each of them is fitted once and shared."""
        shared = InputFits() if shared is None else shared
        self.x_mean_, self.x_std_ = shared.get(("scale",), lambda: standardisation(self._raw(emb, gflops)))
        if self.n_clusters:
            def fit_fcm() -> tuple[FCMFeatures, FuzzyCMeans]:
                features = FCMFeatures(self.pca_dim).fit(emb, gflops)
                fcm = FuzzyCMeans(self.n_clusters, self.m, backend=self.fcm_backend, seed=self.seed)
                return features, fcm.fit(features.transform(emb, gflops))

            key = ("fcm", self.pca_dim, self.n_clusters, self.m, self.fcm_backend, self.seed)
            self.fcm_features, self.fcm = shared.get(key, fit_fcm)

    def standardize_to(self, emb: np.ndarray, gflops: np.ndarray) -> None:
        """Refit only the input standardisation (mean/std of embedding + log-FLOPs columns) to these
        CGs — label-free; FCM clusters and weights are kept. Used to adapt to a target family."""
        self.x_mean_, self.x_std_ = standardisation(self._raw(emb, gflops))

    @staticmethod
    def _raw(emb: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        emb = np.asarray(emb, dtype=np.float64)
        gflops = np.asarray(gflops, dtype=np.float64).ravel()
        if emb.ndim != 2 or emb.shape[0] != gflops.size:
            raise ValueError(f"embeddings of shape {emb.shape} do not match {gflops.size} FLOPs values")
        return np.concatenate([emb, np.log10(gflops + 1.0)[:, None]], axis=1)

    def _inputs(self, emb: np.ndarray, gflops: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised inputs ``[N, d+1]`` and mixing weights ``[N, heads]``."""
        if self.x_mean_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        x = (self._raw(emb, gflops) - self.x_mean_) / self.x_std_
        if self.fcm is not None and self.fcm_features is not None:
            u = self.fcm.predict(self.fcm_features.transform(emb, gflops))
        else:
            u = np.ones((x.shape[0], 1))
        return torch.tensor(x, dtype=torch.float32), torch.tensor(u, dtype=torch.float32)

    def memberships(self, emb: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        """FCM memberships ``[N, C]`` (``[N, 1]`` of ones without FCM)."""
        return self._inputs(emb, gflops)[1].numpy().astype(np.float64)

    def _base_state(self) -> dict[str, Any]:
        return {"x_mean": None if self.x_mean_ is None else self.x_mean_.tolist(),
                "x_std": None if self.x_std_ is None else self.x_std_.tolist(),
                "fcm_features": None if self.fcm_features is None else self.fcm_features.state(),
                "fcm": None if self.fcm is None else self.fcm.state()}

    def _load_base_state(self, state: dict[str, Any]) -> None:
        self.x_mean_ = None if state["x_mean"] is None else np.asarray(state["x_mean"], dtype=np.float64)
        self.x_std_ = None if state["x_std"] is None else np.asarray(state["x_std"], dtype=np.float64)
        self.fcm_features = None if state["fcm_features"] is None else FCMFeatures.from_state(state["fcm_features"])
        self.fcm = None if state["fcm"] is None else FuzzyCMeans.from_state(state["fcm"])


class EmbeddingRegressor(_EmbeddingModel):
    """MLP (or FCM-mixed MLP ensemble) regressor of accuracy from CG embeddings.

    Args:
        in_dim: embedding dimension.
        n_clusters: 0 for one head ("CL+T"), else C FCM clusters/heads ("CL+FCM+T").
        m: FCM fuzzifier. pca_dim: PCA dims of the FCM features (paper: 32).
        hidden, hidden_layers: head sizes (paper: 4 hidden layers of 256).
        epochs, lr, batch_size, loss: training (``mse``, ``hinge`` or ``mse+hinge``).
        flops_transform: use GENNAPE's eq. 5 target transform.
    """

    def __init__(self, in_dim: int = 128, n_clusters: int = 0, m: float = 2.0, hidden: int = 256,
                 hidden_layers: int = 4, epochs: int = 200, lr: float = 1e-3, batch_size: int = 128,
                 loss: str = "mse", flops_transform: bool = True, pca_dim: int = 32, fcm_backend: str = "skfuzzy",
                 seed: int = 0, progress: bool = True) -> None:
        super().__init__(n_clusters, m, pca_dim, fcm_backend, seed)
        self.in_dim, self.hidden, self.hidden_layers = in_dim, hidden, hidden_layers
        self.epochs, self.lr, self.batch_size, self.loss = epochs, lr, batch_size, loss
        self.flops_transform, self.progress = flops_transform, progress
        set_seed(seed)
        self.module = MultiHeadMLP(self.heads, in_dim + 1, hidden, hidden_layers)
        self.transform = FlopsTransform(flops_transform)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-ready)."""
        return {"in_dim": self.in_dim, "n_clusters": self.n_clusters, "m": self.m, "hidden": self.hidden,
                "hidden_layers": self.hidden_layers, "epochs": self.epochs, "lr": self.lr,
                "batch_size": self.batch_size, "loss": self.loss, "flops_transform": self.flops_transform,
                "pca_dim": self.pca_dim, "fcm_backend": self.fcm_backend, "seed": self.seed}

    def state(self) -> dict[str, Any]:
        """Non-tensor fitted state (JSON-ready)."""
        return {**self._base_state(), "transform": self.transform.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""
        self._load_base_state(state)
        self.transform = FlopsTransform.from_state(state["transform"])

    def _mixed(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return (self.module(x).squeeze(-1) * u).sum(1)

    def fit(self, emb: np.ndarray, gflops: np.ndarray, acc: np.ndarray, epochs: int | None = None,
            refit: bool = True, unlabelled: tuple[np.ndarray, np.ndarray] | None = None,
            shared: InputFits | None = None) -> EmbeddingRegressor:
        """Train on embeddings, GFLOPs and accuracies. ``refit=False`` (fine-tuning) keeps the
        input standardisation, FCM clusters and label statistics of the first fit. ``unlabelled``
        = ``(embeddings, gflops)`` of extra CGs: the standardisation and FCM are then fitted on
        these together with the labelled ones (label-free statistics). ``shared``: an
        :class:`InputFits` of the predictor's fit, so heads on the same inputs fit them once."""
        acc = np.asarray(acc, dtype=np.float64)
        gflops = np.asarray(gflops, dtype=np.float64)
        if acc.size != len(emb):
            raise ValueError(f"{len(emb)} embeddings but {acc.size} labels")
        if refit or self.x_mean_ is None:
            self._fit_inputs(*_with_unlabelled(emb, gflops, unlabelled), shared=shared)
            self.transform.fit(acc, gflops)
        x, u = self._inputs(emb, gflops)
        target = torch.tensor(self.transform.transform(acc, gflops), dtype=torch.float32)
        set_seed(self.seed)
        self.module.train()

        def step(idx: np.ndarray) -> torch.Tensor:
            return regression_loss(self.loss, self._mixed(x[idx], u[idx]), target[idx])

        name = "CL+FCM+T" if self.n_clusters else "CL+T"
        fit_loop(step, self.module.parameters(), len(acc), self.epochs if epochs is None else epochs,
                 self.batch_size, self.lr, self.seed, f"{name} heads", progress=self.progress)
        self.module.eval()
        return self

    @torch.no_grad()
    def decision_function(self, emb: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        """Standardised transformed scores."""
        x, u = self._inputs(emb, gflops)
        return self._mixed(x, u).numpy().astype(np.float64)

    def predict(self, emb: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        """Predicted accuracies."""
        return self.transform.inverse(self.decision_function(emb, gflops), gflops)


def grid_search_fcm(emb: np.ndarray, gflops: np.ndarray, acc: np.ndarray,
                    clusters: Sequence[int] = FCM_GRID_CLUSTERS, ms: Sequence[float] = FCM_GRID_M,
                    val_fraction: float = 0.2, seed: int = 0, progress: bool = True,
                    **regressor_kwargs: Any) -> tuple[int, float, dict[str, float]]:
    """Choose ``(C, m)`` for :class:`EmbeddingRegressor` by validation Kendall τ.

    Splits the data (seeded) into train/validation, fits one regressor per grid point on the train
    part and scores it on the validation part. Returns ``(best_C, best_m, {"C=..,m=..": tau})``.
    """
    from cgpredict.metrics import kendall_tau

    n = len(acc)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = max(2, int(round(val_fraction * n)))
    val, train = order[:n_val], order[n_val:]
    if train.size < max(clusters):
        raise ValueError(f"grid search needs more than {max(clusters)} training CGs, got {train.size}")
    scores: dict[str, float] = {}
    best = (-np.inf, clusters[0], ms[0])
    grid = [(c, m) for c in clusters for m in ms]
    for c, m in tqdm(grid, desc="FCM grid search", disable=not progress, leave=False):
        reg = EmbeddingRegressor(emb.shape[1], n_clusters=c, m=m, seed=seed, progress=False, **regressor_kwargs)
        reg.fit(emb[train], gflops[train], acc[train])
        tau = kendall_tau(acc[val], reg.decision_function(emb[val], gflops[val]))
        tau = -1.0 if np.isnan(tau) else tau
        scores[f"C={c},m={m:g}"] = float(tau)
        if tau > best[0]:
            best = (tau, c, m)
    return int(best[1]), float(best[2]), scores


class PairwiseModule(nn.Module):
    """Antisymmetric pairwise scorer: ``logit(i, j) = Σ_h w_h (g_h(x_i, x_j) - g_h(x_j, x_i))``."""

    def __init__(self, heads: int, in_dim: int, hidden: int = 128, hidden_layers: int = 2) -> None:
        super().__init__()
        self.g = MultiHeadMLP(heads, 2 * in_dim, hidden, hidden_layers)

    def forward(self, xi: torch.Tensor, xj: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        forward = self.g(torch.cat([xi, xj], 1)).squeeze(-1)
        backward = self.g(torch.cat([xj, xi], 1)).squeeze(-1)
        return ((forward - backward) * w).sum(1)


class PairwiseRanker(_EmbeddingModel):
    """Pairwise "which CG is better" classifier on embeddings ("CL+Pairwise", "CL+FCM+Pairwise").

    With FCM, the heads are mixed by the mean of the two CGs' memberships (symmetric, so the
    classifier stays antisymmetric). Each epoch draws ``pairs_per_sample * n`` random pairs with
    different labels (seeded); the loss is binary cross-entropy on "i is better".
    """

    def __init__(self, in_dim: int = 128, n_clusters: int = 0, m: float = 2.0, hidden: int = 128,
                 hidden_layers: int = 2, epochs: int = 100, lr: float = 1e-3, batch_size: int = 256,
                 pairs_per_sample: int = 4, pca_dim: int = 32, fcm_backend: str = "skfuzzy", seed: int = 0,
                 progress: bool = True) -> None:
        super().__init__(n_clusters, m, pca_dim, fcm_backend, seed)
        self.in_dim, self.hidden, self.hidden_layers = in_dim, hidden, hidden_layers
        self.epochs, self.lr, self.batch_size, self.pairs_per_sample = epochs, lr, batch_size, pairs_per_sample
        self.progress = progress
        set_seed(seed)
        self.module = PairwiseModule(self.heads, in_dim + 1, hidden, hidden_layers)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-ready)."""
        return {"in_dim": self.in_dim, "n_clusters": self.n_clusters, "m": self.m, "hidden": self.hidden,
                "hidden_layers": self.hidden_layers, "epochs": self.epochs, "lr": self.lr,
                "batch_size": self.batch_size, "pairs_per_sample": self.pairs_per_sample, "pca_dim": self.pca_dim,
                "fcm_backend": self.fcm_backend, "seed": self.seed}

    def state(self) -> dict[str, Any]:
        """Non-tensor fitted state (JSON-ready)."""
        return self._base_state()

    def load_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""
        self._load_base_state(state)

    def fit(self, emb: np.ndarray, gflops: np.ndarray, acc: np.ndarray, epochs: int | None = None,
            refit: bool = True, unlabelled: tuple[np.ndarray, np.ndarray] | None = None,
            shared: InputFits | None = None) -> PairwiseRanker:
        """Train on embeddings, GFLOPs and accuracies (``refit=False`` keeps inputs/FCM: fine-tuning;
        ``unlabelled`` as in :meth:`EmbeddingRegressor.fit`)."""
        acc = np.asarray(acc, dtype=np.float64)
        if acc.size != len(emb):
            raise ValueError(f"{len(emb)} embeddings but {acc.size} labels")
        if np.ptp(acc) == 0:
            raise ValueError("pairwise training needs labels that differ")
        if refit or self.x_mean_ is None:
            self._fit_inputs(*_with_unlabelled(emb, np.asarray(gflops, dtype=np.float64), unlabelled), shared=shared)
        x, u = self._inputs(emb, gflops)
        n = acc.size
        rng = np.random.default_rng(self.seed)
        acc_t = torch.tensor(acc)
        set_seed(self.seed)
        self.module.train()
        n_pairs = self.pairs_per_sample * n

        def step(idx: np.ndarray) -> torch.Tensor:
            i = torch.as_tensor(idx % n)
            j = torch.as_tensor(rng.integers(0, n, idx.size))
            keep = acc_t[i] != acc_t[j]
            i, j = i[keep], j[keep]
            if i.numel() == 0:
                return self.module.g.biases[0].sum() * 0.0
            logit = self.module(x[i], x[j], 0.5 * (u[i] + u[j]))
            return nn.functional.binary_cross_entropy_with_logits(logit, (acc_t[i] > acc_t[j]).float())

        name = "CL+FCM+Pairwise" if self.n_clusters else "CL+Pairwise"
        fit_loop(step, self.module.parameters(), n_pairs, self.epochs if epochs is None else epochs,
                 self.batch_size, self.lr, self.seed, f"{name} classifier", progress=self.progress)
        self.module.eval()
        return self

    @torch.no_grad()
    def prob_better(self, emb_i: np.ndarray, gflops_i: np.ndarray, emb_j: np.ndarray,
                    gflops_j: np.ndarray) -> np.ndarray:
        """``P(CG i is more accurate than CG j)`` for aligned rows of two sets."""
        xi, ui = self._inputs(emb_i, gflops_i)
        xj, uj = self._inputs(emb_j, gflops_j)
        return torch.sigmoid(self.module(xi, xj, 0.5 * (ui + uj))).numpy().astype(np.float64)

    @torch.no_grad()
    def comparator(self, emb: np.ndarray, gflops: np.ndarray) -> Callable[[int, int], int]:
        """A ``cmp(i, j)`` over row indices: -1 when ``i`` is predicted better (sorts best first).

        The first layer is precomputed for all rows, so one comparison costs only the small
        remaining layers; results are memoised.
        """
        x, u = self._inputs(emb, gflops)
        w0, b0 = self.module.g.weights[0], self.module.g.biases[0]
        d = x.shape[1]
        left = torch.einsum("nd,hdk->nhk", x, w0[:, :d]).numpy()  # x as first argument
        right = torch.einsum("nd,hdk->nhk", x, w0[:, d:]).numpy()  # x as second argument
        b0n = b0.detach().numpy()
        rest = [(w.detach().numpy(), b.detach().numpy()) for w, b in zip(self.module.g.weights[1:],
                                                                          self.module.g.biases[1:])]
        un = u.numpy()
        memo: dict[tuple[int, int], int] = {}

        def g(a: int, b: int) -> np.ndarray:
            h = left[a] + right[b] + b0n  # [H, k]
            for w, bias in rest:
                h = np.einsum("hd,hdk->hk", np.maximum(h, 0.0), w) + bias
            return h[:, 0]

        def cmp(i: int, j: int) -> int:
            if i == j:
                return 0
            key = (i, j)
            if key not in memo:
                logit = float(((g(i, j) - g(j, i)) * 0.5 * (un[i] + un[j])).sum())
                memo[key] = -1 if logit > 0 else (1 if logit < 0 else 0)
                memo[(j, i)] = -memo[key]
            return memo[key]

        return cmp

    def rank(self, emb: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        """Indices sorted best first by merge sort with the classifier as comparator."""
        cmp = self.comparator(emb, gflops)
        return np.array(sorted(range(len(emb)), key=functools.cmp_to_key(cmp)), dtype=np.int64)

    def decision_function(self, emb: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        """Scores from the merge-sort ranking: ``n - position`` (best gets ``n``)."""
        order = self.rank(emb, gflops)
        scores = np.empty(len(order))
        scores[order] = np.arange(len(order), 0, -1)
        return scores

"""Fuzzy C-means clustering of CG embeddings, its input features, and out-of-distribution flags.

Pipeline position: model → CG → features → CG embedding → **FCM memberships** → mixture heads →
ranking/search.

GENNAPE (Mills et al., AAAI'23) clusters the training family's CG embeddings with fuzzy C-means and
mixes C regression heads by each CG's memberships. Here:

* :class:`FCMFeatures` — PCA of the embeddings to 32 dims plus the standardised log10(GFLOPs + 1);
  stored as plain arrays (mean, components, scaling), no pickle.
* :class:`FuzzyCMeans` — scikit-fuzzy's ``cmeans`` (ε = 1e-9, up to 10 000 iterations, seeded)
  or the equivalent vectorised NumPy implementation :func:`fcm_numpy`; memberships of new points
  use the closed form ``u_ik = 1 / Σ_j (d_ik / d_jk)^(2/(m-1))`` (what ``cmeans_predict``
  converges to for fixed centres).
* :meth:`FuzzyCMeans.ood` — per CG, its largest membership and its distance to the nearest centre;
  a CG is flagged when that distance exceeds the 99th percentile seen on the training family, and
  a warning is emitted when most of a target family is flagged.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

#: Defaults of the paper's FCM fit.
FCM_ERROR = 1e-9
FCM_MAXITER = 10_000


class OutOfDistributionWarning(UserWarning):
    """A target family lies mostly outside the clusters of the predictor's training family."""


def _distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[N, C]``."""
    sq = (x * x).sum(1)[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


def memberships_from_distances(dist: np.ndarray, m: float) -> np.ndarray:
    """FCM memberships ``[N, C]`` (rows sum to 1) from distances; a point on a centre gets 1 there."""
    dist = np.maximum(dist, np.finfo(np.float64).eps)
    power = -2.0 / (m - 1.0)
    # normalise by the row minimum first to avoid overflow of large powers
    ratio = (dist / dist.min(axis=1, keepdims=True)) ** power
    return ratio / ratio.sum(axis=1, keepdims=True)


def fcm_numpy(x: np.ndarray, c: int, m: float, error: float = FCM_ERROR, maxiter: int = FCM_MAXITER,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Vectorised fuzzy C-means on ``x [N, d]``: returns ``(centers [C, d], u [N, C], iterations)``.

    Same iteration as scikit-fuzzy's ``cmeans`` (random initial memberships normalised per point,
    alternate centre and membership updates, stop when the membership change's Frobenius norm
    falls below ``error`` or after ``maxiter`` iterations).
    """
    rng = np.random.default_rng(seed)
    u = rng.random((x.shape[0], c))
    u /= u.sum(1, keepdims=True)
    it = 0
    for it in range(1, maxiter + 1):
        um = u**m
        centers = (um.T @ x) / um.sum(0)[:, None]
        new_u = memberships_from_distances(_distances(x, centers), m)
        delta = np.linalg.norm(new_u - u)
        u = new_u
        if delta < error:
            break
    um = u**m
    centers = (um.T @ x) / um.sum(0)[:, None]
    return centers, u, it


class FuzzyCMeans:
    """Fuzzy C-means with ``fit(x)``, ``predict(x) -> memberships`` and OOD scores.

    Args:
        n_clusters: C.
        m: fuzzifier (> 1).
        error, maxiter: stopping rule (paper: 1e-9, 10 000).
        backend: ``skfuzzy`` (``skfuzzy.cluster.cmeans``) or ``numpy`` (:func:`fcm_numpy`).
        seed: initial memberships.
    """

    def __init__(self, n_clusters: int = 10, m: float = 2.0, error: float = FCM_ERROR, maxiter: int = FCM_MAXITER,
                 backend: str = "skfuzzy", seed: int = 0) -> None:
        if n_clusters < 1:
            raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
        if m <= 1:
            raise ValueError(f"the fuzzifier m must be > 1, got {m}")
        if backend not in ("skfuzzy", "numpy"):
            raise ValueError(f"unknown FCM backend {backend!r}; use 'skfuzzy' or 'numpy'")
        self.n_clusters, self.m, self.error, self.maxiter = n_clusters, m, error, maxiter
        self.backend, self.seed = backend, seed
        self.centers_: np.ndarray | None = None
        self.n_iter_: int = 0
        self.ood_threshold_: float | None = None

    def fit(self, x: np.ndarray) -> FuzzyCMeans:
        """Cluster ``x [N, d]``; also records the training nearest-centre distance's 99th percentile."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < self.n_clusters:
            raise ValueError(f"FCM needs a [N, d] array with N >= {self.n_clusters} clusters, got shape {x.shape}")
        if self.backend == "skfuzzy":
            from skfuzzy.cluster import cmeans

            centers, u, _, _, _, iters, _ = cmeans(x.T, self.n_clusters, self.m, error=self.error,
                                                  maxiter=self.maxiter, seed=self.seed)
            self.centers_, self.n_iter_ = np.asarray(centers), int(iters)
        else:
            self.centers_, _, self.n_iter_ = fcm_numpy(x, self.n_clusters, self.m, self.error, self.maxiter,
                                                       self.seed)
        self.ood_threshold_ = float(np.quantile(self.distances(x).min(1), 0.99))
        return self

    def _check(self) -> np.ndarray:
        if self.centers_ is None:
            raise RuntimeError("FuzzyCMeans is not fitted; call fit() first")
        return self.centers_

    def distances(self, x: np.ndarray) -> np.ndarray:
        """Distances ``[N, C]`` of points to the centres."""
        centers = self._check()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != centers.shape[1]:
            raise ValueError(f"expected points of dimension {centers.shape[1]}, got shape {x.shape}")
        return _distances(x, centers)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Memberships ``[N, C]`` (rows sum to 1) of new points for the fitted centres."""
        return memberships_from_distances(self.distances(x), self.m)

    def ood(self, x: np.ndarray, warn_fraction: float = 0.5, name: str = "target family") -> dict[str, np.ndarray]:
        """Out-of-distribution scores: ``max_membership``, ``centroid_distance`` and ``flag``
        (distance above the training 99th percentile); warns when more than ``warn_fraction`` of
        the points are flagged."""
        dist = self.distances(x)
        nearest = dist.min(1)
        flag = nearest > (self.ood_threshold_ if self.ood_threshold_ is not None else np.inf)
        if flag.size and flag.mean() > warn_fraction:
            warnings.warn(
                f"{flag.mean():.0%} of the {name} ({flag.size} CGs) lies outside the training clusters "
                f"(nearest-centroid distance above {self.ood_threshold_:.3g}); predictions may not transfer — "
                "fine-tune on a few labelled networks of this family",
                OutOfDistributionWarning, stacklevel=2)
        return {"max_membership": memberships_from_distances(dist, self.m).max(1), "centroid_distance": nearest,
                "flag": flag}

    def state(self) -> dict[str, Any]:
        """JSON-ready state (centres as nested lists)."""
        return {"n_clusters": self.n_clusters, "m": self.m, "error": self.error, "maxiter": self.maxiter,
                "backend": self.backend, "seed": self.seed, "n_iter": self.n_iter_,
                "ood_threshold": self.ood_threshold_,
                "centers": None if self.centers_ is None else self.centers_.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FuzzyCMeans:
        """Inverse of :meth:`state`."""
        obj = cls(int(state["n_clusters"]), float(state["m"]), float(state["error"]), int(state["maxiter"]),
                  str(state["backend"]), int(state["seed"]))
        obj.n_iter_ = int(state["n_iter"])
        obj.ood_threshold_ = None if state["ood_threshold"] is None else float(state["ood_threshold"])
        obj.centers_ = None if state["centers"] is None else np.asarray(state["centers"], dtype=np.float64)
        return obj


class FCMFeatures:
    """PCA of embeddings to ``n_components`` dims plus standardised ``log10(GFLOPs + 1)``."""

    def __init__(self, n_components: int = 32) -> None:
        self.n_components = n_components
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        self.flops_mean_: float = 0.0
        self.flops_std_: float = 1.0

    def fit(self, emb: np.ndarray, gflops: np.ndarray) -> FCMFeatures:
        """Fit the PCA (scikit-learn, full SVD) and the FLOPs standardisation."""
        from sklearn.decomposition import PCA

        emb = np.asarray(emb, dtype=np.float64)
        k = min(self.n_components, emb.shape[0], emb.shape[1])
        pca = PCA(n_components=k, svd_solver="full").fit(emb)
        self.mean_, self.components_ = pca.mean_.copy(), pca.components_.copy()
        lf = np.log10(np.asarray(gflops, dtype=np.float64) + 1.0)
        self.flops_mean_, self.flops_std_ = float(lf.mean()), float(lf.std()) or 1.0
        return self

    def transform(self, emb: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        """``[N, k + 1]`` features."""
        if self.mean_ is None or self.components_ is None:
            raise RuntimeError("FCMFeatures is not fitted; call fit() first")
        emb = np.asarray(emb, dtype=np.float64)
        if emb.ndim != 2 or emb.shape[1] != self.mean_.size:
            raise ValueError(f"expected embeddings of dimension {self.mean_.size}, got shape {emb.shape}")
        pcs = (emb - self.mean_) @ self.components_.T
        lf = (np.log10(np.asarray(gflops, dtype=np.float64) + 1.0) - self.flops_mean_) / self.flops_std_
        return np.concatenate([pcs, lf[:, None]], axis=1)

    def state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"n_components": self.n_components, "flops_mean": self.flops_mean_, "flops_std": self.flops_std_,
                "mean": None if self.mean_ is None else self.mean_.tolist(),
                "components": None if self.components_ is None else self.components_.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FCMFeatures:
        """Inverse of :meth:`state`."""
        obj = cls(int(state["n_components"]))
        obj.flops_mean_, obj.flops_std_ = float(state["flops_mean"]), float(state["flops_std"])
        obj.mean_ = None if state["mean"] is None else np.asarray(state["mean"], dtype=np.float64)
        obj.components_ = None if state["components"] is None else np.asarray(state["components"], dtype=np.float64)
        return obj

"""The ``Proxy`` ensemble member: training-free proxy scores, re-weighted by a ridge on few labels.

Pipeline position: model → CG → proxy scores (GenNAS/Eproxy :mod:`cgpredict.proxies.features`,
SynFlow/NASWOT :mod:`cgpredict.proxies.zero_cost`) → **Proxy member** → ensemble → ranking/search.

Proxy scores transfer across families without training (on NB-201 CIFAR-10 the CPU-sized
GenNAS-combo alone has Spearman 0.83 and SynFlow 0.77, FLOPs 0.74), but the GenNAS score does not
rank NB-101 (−0.04), so a head trained on a source family cannot learn how much to trust each
score on a target family. This member therefore never learns from the source family:

* before :meth:`ProxyRanker.finetune` its score is the mean normalised rank of its proxy columns
  (a CG whose proxy failed ranks last in that column) — a zero-cost baseline, like ``FLOPs``;
* :meth:`ProxyRanker.finetune` fits a ridge regression (scikit-learn ``RidgeCV``, α chosen by
  efficient leave-one-out) from the standardised proxy columns and ``ln GFLOPs`` to the target
  family's labels. A handful of inputs does not over-fit 50 nets, and the ridge's closed-form
  leave-one-out predictions give an honest Kendall τ for the ensemble weights
  (:attr:`ProxyRanker.loo_scores_`). (Using the whole GenNAS graph vector — stage losses,
  relative drop — instead of its final loss made 50-shot NB-201 rankings worse: Spearman 0.78–0.82
  instead of 0.88.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import RidgeCV

from cgpredict.models.ensemble import failed_floor, fill_failed, normalized_ranks

#: α grid of the ridge (inputs are standardised, labels centred by the intercept).
RIDGE_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 4, 25))


class ProxyRanker:
    """Proxy scores (higher = better, one column each), optionally turned into an accuracy
    regressor by :meth:`finetune`.

    Args:
        columns: names of the proxy columns, in order (e.g. ``("gennas", "synflow")``).
    """

    #: No torch module: nothing here is trained by gradient descent.
    module = None

    def __init__(self, columns: Sequence[str]) -> None:
        if not columns:
            raise ValueError("the Proxy member needs at least one proxy column")
        self.columns = tuple(columns)
        self.floor_: np.ndarray | None = None
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.coef_: np.ndarray | None = None
        self.intercept_: float = 0.0
        self.alpha_: float | None = None
        self.loo_scores_: np.ndarray | None = None

    @property
    def finetuned(self) -> bool:
        """Whether :meth:`finetune` fitted the ridge."""
        return self.coef_ is not None

    def _check(self, scores: np.ndarray) -> np.ndarray:
        scores = np.array(scores, dtype=np.float64, ndmin=2)
        if scores.shape[1] != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} proxy columns {self.columns}, got {scores.shape[1]}")
        return scores

    def _design(self, scores: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        return np.concatenate([fill_failed(scores, self.floor_),
                               np.log(np.asarray(gflops, dtype=np.float64) + 1e-6)[:, None]], axis=1)

    def finetune(self, scores: np.ndarray, gflops: np.ndarray, y: np.ndarray) -> ProxyRanker:
        """Fit the ridge on ``[proxy columns, ln GFLOPs]`` → labels (failed proxy runs take the
        column minimum − 1 of these CGs)."""
        scores = self._check(scores)
        y = np.asarray(y, dtype=np.float64)
        if len(y) < 3:
            raise ValueError(f"the Proxy member needs at least 3 labelled CGs to fine-tune, got {len(y)}")
        self.floor_ = failed_floor(scores)
        x = self._design(scores, gflops)
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        z = (x - self.mean_) / self.scale_
        ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(z, y)
        self.coef_ = np.asarray(ridge.coef_, dtype=np.float64)
        self.intercept_ = float(ridge.intercept_)
        self.alpha_ = float(ridge.alpha_)
        # closed-form leave-one-out predictions y_i - r_i / (1 - h_ii); hat matrix with intercept
        zc = z - z.mean(axis=0)
        hat = zc @ np.linalg.solve(zc.T @ zc + self.alpha_ * np.eye(zc.shape[1]), zc.T) + 1.0 / len(y)
        resid = y - (z @ self.coef_ + self.intercept_)
        self.loo_scores_ = y - resid / np.clip(1.0 - np.diag(hat), 1e-9, None)
        return self

    def decision_function(self, scores: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        """Higher = better: the ridge's predicted accuracy after :meth:`finetune`, else the mean
        normalised rank of the proxy columns."""
        scores = self._check(scores)
        if self.finetuned:
            return ((self._design(scores, gflops) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        filled = fill_failed(scores)
        return np.mean([normalized_ranks(col) for col in filled.T], axis=0)

    # ---------------------------------------------------------------- persistence (JSON-ready)
    def state(self) -> dict[str, Any]:
        """Columns and the fitted ridge (``None`` fields before :meth:`finetune`)."""
        arr = (lambda a: None if a is None else a.tolist())
        return {"columns": list(self.columns), "floor": arr(self.floor_), "mean": arr(self.mean_),
                "scale": arr(self.scale_), "coef": arr(self.coef_), "intercept": self.intercept_,
                "alpha": self.alpha_}

    def load_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""
        arr = (lambda a: None if a is None else np.asarray(a, dtype=np.float64))
        if tuple(state.get("columns", self.columns)) != self.columns:
            raise ValueError(f"saved Proxy member uses columns {state.get('columns')}, this one {list(self.columns)}")
        self.floor_, self.mean_ = arr(state.get("floor")), arr(state.get("mean"))
        self.scale_, self.coef_ = arr(state.get("scale")), arr(state.get("coef"))
        self.intercept_ = float(state.get("intercept", 0.0))
        self.alpha_ = state.get("alpha")
        self.loo_scores_ = None

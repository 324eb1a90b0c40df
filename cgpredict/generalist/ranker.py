"""A ranking model on set-relative proxy features, trained on within-group comparisons only.

Pipeline position: proxy bank scores → set-relative features (:mod:`cgpredict.generalist.features`)
→ **ProxyRanker** → one ranking score per network of a set (higher = predicted better).

Training data are *groups* (one family/task each, e.g. NB-301 CIFAR-10, TransNAS-Bench-101 jigsaw):
a feature matrix and labels per group. Labels are never compared across groups, so a group's label
scale and offset (accuracy %, SSIM, negative loss) do not matter, and groups are *balanced*: each
group carries the same total weight (or the weight the caller gives it) whatever its size, so a
30,000-net table does not drown a 700-net one. Three kinds:

* ``ridge`` — weighted ridge regression of within-group standardised labels (``label_transform``
  ``rank``: normal scores of the within-group ranks, robust to the long tail of bad networks;
  ``z``: plain z-scores) on features centred within their group; each sample weighs ``w_g / n_g``.
  ``penalty`` scales the L2 penalty per feature (``alpha · penalty_j``): a large multiplier keeps a
  feature's weight near zero unless the training groups agree strongly that it ranks.
* ``pairwise`` — linear logistic ranker (RankNet with a linear score) on feature differences of
  up to ``pairs_per_group`` seeded random within-group pairs of distinct labels (both orientations),
  each group's pairs summing to weight ``w_g``; no intercept.
* ``mlp`` — the same pairwise logistic loss on a small MLP score (one tanh hidden layer of
  ``hidden`` units, Adam, ``epochs`` full passes over fixed seeded pairs), groups averaged with
  their weights.
* ``consensus`` — no optimisation: each feature's weight is its within-group Spearman correlation
  with the labels, averaged over groups with their weights, and clipped at 0 (a feature that does
  not rank on average across the training groups is dropped); the score is the weighted mean of
  the kept rank features.

Every kind is deterministic given ``seed`` (on CPU). ``predict`` returns scores whose *order*
within the set is the prediction; their scale means nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm, rankdata

__all__ = ["RANKER_KINDS", "ProxyRanker", "within_group_targets"]

RANKER_KINDS = ("ridge", "pairwise", "mlp", "consensus")


def within_group_targets(labels: np.ndarray, transform: str = "rank") -> np.ndarray:
    """Labels standardised within one group (mean 0, std 1; all zeros when constant).

    ``rank``: normal scores ``Φ⁻¹((rank − ½)/n)`` of the average ranks, then standardised;
    ``z``: ``(y − mean) / std``.
    """
    y = np.asarray(labels, dtype=float)
    if transform == "rank":
        y = norm.ppf((rankdata(y, method="average") - 0.5) / len(y))
    elif transform != "z":
        raise ValueError(f"label transform must be 'rank' or 'z', got {transform!r}")
    sd = y.std()
    return (y - y.mean()) / sd if sd > 0 else np.zeros_like(y)


class ProxyRanker:
    """Scores networks of a set from their set-relative features; trained on within-group order.

    Args:
        kind: ``ridge``, ``pairwise`` or ``mlp`` (see the module docstring).
        alpha: L2 penalty (ridge: on the weights, with groups of total weight 1; pairwise: inverse
            of scikit-learn's ``C``; mlp: weight decay).
        penalty: per-feature multipliers of ``alpha`` (ridge only; ``None``: 1 for every feature).
        label_transform: ``rank`` or ``z`` (ridge only).
        pairs_per_group: pairs sampled per group (pairwise, mlp).
        hidden: hidden units (mlp).
        epochs: full-batch Adam steps (mlp).
        lr: Adam learning rate (mlp).
        seed: pair sampling and initialisation.
    """

    def __init__(self, kind: str = "ridge", alpha: float = 0.1, label_transform: str = "rank",
                 pairs_per_group: int = 2000, hidden: int = 16, epochs: int = 300, lr: float = 0.01,
                 seed: int = 0, penalty: Sequence[float] | None = None) -> None:
        self.kind = kind
        self.alpha = alpha
        self.penalty = penalty
        self.label_transform = label_transform
        self.pairs_per_group = pairs_per_group
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.seed = seed

    # ------------------------------------------------------------------ fitting

    def fit(self, features_by_group: Sequence[np.ndarray], labels_by_group: Sequence[np.ndarray],
            group_weights: Sequence[float] | None = None) -> ProxyRanker:
        """Learn from groups of ``(features (n_g, d), labels (n_g,))``; returns ``self``.

        Args:
            features_by_group: one feature matrix per group (same columns in every group).
            labels_by_group: one label vector per group (higher = better; any scale).
            group_weights: total weight of each group (default 1 each).

        Raises:
            ValueError: an unknown kind, mismatched lengths or columns, or no usable group.
        """
        if self.kind not in RANKER_KINDS:
            raise ValueError(f"unknown ranker kind {self.kind!r}; choose from {RANKER_KINDS}")
        xs = [np.asarray(x, dtype=float) for x in features_by_group]
        ys = [np.asarray(y, dtype=float).ravel() for y in labels_by_group]
        ws = np.ones(len(xs)) if group_weights is None else np.asarray(group_weights, dtype=float)
        if not (len(xs) == len(ys) == len(ws)):
            raise ValueError(f"{len(xs)} feature groups, {len(ys)} label groups, {len(ws)} weights")
        dims = {x.shape[1] for x in xs if x.ndim == 2}
        if len(dims) != 1 or any(x.ndim != 2 for x in xs):
            raise ValueError("every group needs a 2-D feature matrix with the same columns "
                             f"(got widths {sorted(dims)})")
        for g, (x, y) in enumerate(zip(xs, ys)):
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"group {g}: {x.shape[0]} feature rows but {y.shape[0]} labels")
            if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
                raise ValueError(f"group {g}: features and labels must be finite (build features with set_features)")
        keep = [g for g, y in enumerate(ys) if len(y) >= 2 and np.ptp(y) > 0 and ws[g] > 0]
        if not keep:
            raise ValueError("no group has two networks with different labels")
        xs, ys, ws = [xs[g] for g in keep], [ys[g] for g in keep], ws[keep]
        self.n_features_in_ = dims.pop()
        if self.penalty is not None:
            pen = np.asarray(self.penalty, dtype=float)
            if pen.shape != (self.n_features_in_,) or not np.all(np.isfinite(pen)) or np.any(pen < 0):
                raise ValueError(f"penalty needs {self.n_features_in_} finite multipliers >= 0, got shape {pen.shape}")
            if self.kind != "ridge":
                raise ValueError(f"a per-feature penalty applies to the ridge kind only, not {self.kind!r}")
        if self.kind == "ridge":
            self._fit_ridge(xs, ys, ws)
        elif self.kind == "consensus":
            self._fit_consensus(xs, ys, ws)
        else:
            pairs = self._pairs(ys)
            if self.kind == "pairwise":
                self._fit_pairwise(xs, pairs, ws)
            else:
                self._fit_mlp(xs, pairs, ws)
        return self

    def _fit_ridge(self, xs: list[np.ndarray], ys: list[np.ndarray], ws: np.ndarray) -> None:
        d = self.n_features_in_
        gram, rhs = np.zeros((d, d)), np.zeros(d)
        for x, y, w in zip(xs, ys, ws):
            xc = x - x.mean(axis=0)
            t = within_group_targets(y, self.label_transform)
            gram += (w / len(y)) * xc.T @ xc
            rhs += (w / len(y)) * xc.T @ t
        pen = np.ones(d) if self.penalty is None else np.asarray(self.penalty, dtype=float)
        self.coef_ = np.linalg.solve(gram + self.alpha * np.diag(pen), rhs)

    def _fit_consensus(self, xs: list[np.ndarray], ys: list[np.ndarray], ws: np.ndarray) -> None:
        rho = np.zeros((len(xs), self.n_features_in_))
        for g, (x, y) in enumerate(zip(xs, ys)):
            ry = rankdata(y) - (len(y) + 1) / 2
            for j in range(x.shape[1]):
                rx = rankdata(x[:, j]) - (len(y) + 1) / 2
                den = np.sqrt((rx @ rx) * (ry @ ry))
                rho[g, j] = (rx @ ry) / den if den > 0 else 0.0
        self.coef_ = np.clip(ws @ rho / ws.sum(), 0.0, None)

    def _pairs(self, ys: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Seeded within-group pairs ``(i, j)`` with ``y_i > y_j`` (all of them when few)."""
        rng = np.random.default_rng(self.seed)
        out = []
        for y in ys:
            n = len(y)
            if n * (n - 1) // 2 <= self.pairs_per_group:
                i, j = np.triu_indices(n, 1)
            else:
                i = rng.integers(0, n, 2 * self.pairs_per_group)
                j = rng.integers(0, n, 2 * self.pairs_per_group)
            ok = y[i] != y[j]
            i, j = i[ok][: self.pairs_per_group], j[ok][: self.pairs_per_group]
            hi, lo = np.where(y[i] > y[j], i, j), np.where(y[i] > y[j], j, i)
            out.append((hi, lo))
        return out

    def _fit_pairwise(self, xs: list[np.ndarray], pairs: list[tuple[np.ndarray, np.ndarray]], ws: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        diffs, targets, weights = [], [], []
        for x, (hi, lo), w in zip(xs, pairs, ws):
            d = x[hi] - x[lo]
            diffs += [d, -d]
            targets += [np.ones(len(d)), np.zeros(len(d))]
            weights += [np.full(2 * len(d), w / (2 * len(d)))] if len(d) else []
        model = LogisticRegression(C=1.0 / max(self.alpha, 1e-12), fit_intercept=False, max_iter=2000)
        model.fit(np.concatenate(diffs), np.concatenate(targets), sample_weight=np.concatenate(weights) * len(ws))
        self.coef_ = model.coef_.ravel().astype(float)

    def _fit_mlp(self, xs: list[np.ndarray], pairs: list[tuple[np.ndarray, np.ndarray]], ws: np.ndarray) -> None:
        import torch

        gen = torch.Generator().manual_seed(self.seed)
        d, h = self.n_features_in_, self.hidden
        w1 = (torch.randn(d, h, generator=gen, dtype=torch.float64) / d**0.5).requires_grad_()
        b1 = torch.zeros(h, dtype=torch.float64, requires_grad=True)
        w2 = (torch.randn(h, 1, generator=gen, dtype=torch.float64) / h**0.5).requires_grad_()
        params = [w1, b1, w2]
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.alpha * 1e-2)
        data = [(torch.as_tensor(x), torch.as_tensor(hi), torch.as_tensor(lo), float(w))
                for x, (hi, lo), w in zip(xs, pairs, ws) if len(hi)]
        total = sum(w for *_, w in data)
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = torch.zeros((), dtype=torch.float64)
            for x, hi, lo, w in data:
                s = (torch.tanh(x @ w1 + b1) @ w2).squeeze(1)
                loss = loss + (w / total) * torch.nn.functional.softplus(s[lo] - s[hi]).mean()
            loss.backward()
            opt.step()
        self.mlp_ = [p.detach().numpy().copy() for p in params]

    # ------------------------------------------------------------------ using

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Ranking scores of one set's networks (``(n, d)`` features from ``set_features``)."""
        x = np.asarray(features, dtype=float)
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError("ProxyRanker is not fitted: call fit() first")
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(f"expected features of shape (n, {self.n_features_in_}), got {x.shape}")
        if self.kind == "mlp":
            w1, b1, w2 = self.mlp_
            return (np.tanh(x @ w1 + b1) @ w2).ravel()
        return x @ self.coef_

    def score(self, features: np.ndarray, labels: np.ndarray) -> float:
        """Spearman correlation of :meth:`predict` with ``labels`` on one set (scikit-learn's convention)."""
        from cgpredict.metrics import spearman

        return spearman(labels, self.predict(features))

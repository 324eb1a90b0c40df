"""A Weisfeiler-Lehman graph kernel on CGs, and the kernel ridge that fine-tuning adds to the generalist.

Pipeline position: CG → **Weisfeiler-Lehman subtree counts** (:func:`wl_features`) → kernel between
networks (:func:`wl_kernel`) → **ShotKernelRidge**, fitted on the few labelled networks of
:meth:`~cgpredict.generalist.GeneralistPredictor.finetune` on top of the generalist's linear score.

The generalist reads each network through ~40 set-relative columns; fine-tuning on a family's own
labels re-weights them. What those columns cannot say is *which* operations sit where: on NB-301, 50
labelled nets fine-tune the linear ranker to 0.753 Spearman, and adding this kernel ridge to 0.819
(``benchmarks/results/generalist_lofo_noise.md``, 5 draws). The kernel is the
Weisfeiler-Lehman subtree kernel (Shervashidze et al., JMLR 2011), used for NAS by NAS-BOWL (Ru et al.,
ICLR 2021): each node starts with a label (op, kernel, stride), which ``iterations`` times becomes the
label of the node together with the sorted labels of its inputs; a network is its bag of labels of
every round, and two networks' kernel is the cosine of their bags.

:class:`ShotKernelRidge` regresses the shots' standardised labels on the kernel ``K_wl + β·s sᵀ``
(``s``: the fine-tuned generalist's standardised score), so ``β`` sets how much of the linear score is
kept and the WL part learns what it misses. ``β`` and the ridge ``λ`` are not tuned on anything but
the shots: every pair of the grid is scored by the Spearman correlation of its exact leave-one-out
predictions with the shots' labels, and the ``top`` best pairs' standardised predictions are averaged.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import spearmanr

from cgpredict.cg import CG
from cgpredict.predictor.base import Estimator, check_is_fitted

__all__ = ["ShotKernelRidge", "wl_features", "wl_kernel"]

#: Weisfeiler-Lehman rounds (label refinements) of :func:`wl_features`.
WL_ITERATIONS = 2
#: Weights ``β`` of the generalist's score in the kernel, tried by :class:`ShotKernelRidge`.
KERNEL_BETAS: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1000.0)
#: Ridge penalties ``λ`` tried by :class:`ShotKernelRidge`.
KERNEL_LAMBDAS: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
#: At most this many shots enter the kernel ridge (a seeded subsample above it): the fit solves
#: ``len(KERNEL_BETAS)`` eigenproblems of this size.
KERNEL_MAX_SHOTS = 2000
#: Networks of the second argument of :func:`wl_kernel` made dense at a time.
_KERNEL_CHUNK = 1024


@functools.lru_cache(maxsize=1 << 12)
def _round0_label(op: str, kernel: tuple, stride: tuple) -> str:
    return f"{op}|{'x'.join(map(str, kernel))}|{'x'.join(map(str, stride))}"


@functools.lru_cache(maxsize=1 << 18)
def _refined(round_: int, signature: str) -> str:
    """The round-``round_`` label of a node whose own and input labels read ``signature``: ``r:`` + a
    BLAKE2 digest (cached: cells repeat within a net and across a family)."""
    return f"{round_}:{hashlib.blake2b(signature.encode(), digest_size=8).hexdigest()}"


def wl_features(cg: CG, iterations: int = WL_ITERATIONS) -> dict[str, int]:
    """The Weisfeiler-Lehman subtree bag of ``cg``: ``{label: count}`` over ``iterations + 1`` rounds.

    Round 0 labels a node by its op, kernel and stride (``conv|3x3|1x1``); round ``r`` labels it by its
    round-``r−1`` label and the sorted round-``r−1`` labels of its inputs (hashed, prefixed ``r:``).
    Deterministic across processes and machines (BLAKE2 digests, not Python's salted ``hash``).
    Channel counts and shapes are left out, so two networks that differ only in width share every label.
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    labels = [_round0_label(n.op, tuple(n.kernel), tuple(n.stride)) for n in cg.nodes]
    bag = Counter(labels)
    inputs = [n.inputs for n in cg.nodes]
    for r in range(1, iterations + 1):
        labels = [_refined(r, labels[i] + "(" + ",".join(sorted([labels[j] for j in ins])) + ")")
                  for i, ins in enumerate(inputs)]
        bag.update(labels)
    return dict(bag)


def _matrix(bags: Sequence[Mapping[str, int]], vocabulary: dict[str, int]) -> np.ndarray:
    out = np.zeros((len(bags), len(vocabulary)))
    for i, bag in enumerate(bags):
        for label, count in bag.items():
            j = vocabulary.get(label)
            if j is not None:
                out[i, j] = count
    return out


def wl_kernel(a: Sequence[Mapping[str, int]], b: Sequence[Mapping[str, int]]) -> np.ndarray:
    """Cosine WL kernel ``(len(a), len(b))`` between two lists of :func:`wl_features` bags (1 on the
    diagonal of ``wl_kernel(a, a)``; 0 for networks with no label in common)."""
    vocabulary: dict[str, int] = {}
    for bag in a:
        for label in bag:
            vocabulary.setdefault(label, len(vocabulary))
    xa = _matrix(a, vocabulary)
    na = np.linalg.norm(xa, axis=1, keepdims=True)
    xa = xa / np.where(na > 0, na, 1.0)
    out = np.zeros((len(a), len(b)))
    for start in range(0, len(b), _KERNEL_CHUNK):  # dense rows of b in chunks: memory ∝ chunk × vocabulary
        part = b[start: start + _KERNEL_CHUNK]
        xb = _matrix(part, vocabulary)
        nb = np.sqrt(np.array([sum(c * c for c in bag.values()) for bag in part], dtype=float)).reshape(-1, 1)
        out[:, start: start + len(part)] = xa @ (xb / np.where(nb > 0, nb, 1.0)).T
    return out


def _standardise(v: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of ``v`` (a deviation of ~0, e.g. a constant score: 1)."""
    sd = float(np.std(v))
    return float(np.mean(v)), sd if sd > 1e-9 * max(1.0, float(np.max(np.abs(v)))) else 1.0


class ShotKernelRidge(Estimator):
    """Kernel ridge on a few labelled networks: WL graph kernel plus the generalist's own score.

    Args:
        betas: weights ``β`` of the standardised base score in the kernel ``K_wl + β·s sᵀ`` (0: the
            graph alone; large: essentially the base score, rescaled).
        lambdas: ridge penalties ``λ``.
        top: the number of best ``(β, λ)`` pairs, by leave-one-out Spearman on the shots, whose
            standardised predictions are averaged.
        iterations: Weisfeiler-Lehman rounds.
        max_shots: shots beyond this many are subsampled (seeded by ``seed``).
        seed: seed of that subsample.

    Fitted attributes: ``bags_`` (the shots' WL bags), ``base_mean_``/``base_std_`` (standardisation
    of the base score), ``coef_`` (``(top, shots)`` dual coefficients), ``base_coef_`` (``(top,)``:
    ``β · sᵀα``), ``scale_`` (``(top,)``: std of each candidate's fitted values) and ``selected_``
    (the ``(β, λ, loo_spearman)`` of each kept candidate).
    """

    def __init__(self, betas: Sequence[float] = KERNEL_BETAS, lambdas: Sequence[float] = KERNEL_LAMBDAS,
                 top: int = 5, iterations: int = WL_ITERATIONS, max_shots: int = KERNEL_MAX_SHOTS,
                 seed: int = 0) -> None:
        self.betas = tuple(betas)
        self.lambdas = tuple(lambdas)
        self.top = top
        self.iterations = iterations
        self.max_shots = max_shots
        self.seed = seed

    def fit(self, bags: Sequence[Mapping[str, int]], base: np.ndarray, y: np.ndarray) -> ShotKernelRidge:
        """Fit on the shots' WL bags, their base scores (the fine-tuned generalist's) and labels; returns self.

        Raises:
            ValueError: mismatched lengths, fewer than 3 shots, or labels all equal.
        """
        base, y = np.asarray(base, dtype=float), np.asarray(y, dtype=float)
        bags = list(bags)
        if not (len(bags) == len(base) == len(y)):
            raise ValueError(f"{len(bags)} graphs, {len(base)} base scores and {len(y)} labels: one of each per shot")
        if len(y) < 3 or np.ptp(y) == 0:
            raise ValueError("the kernel ridge needs at least 3 shots with different labels")
        if not np.all(np.isfinite(base)):
            raise ValueError("base scores must be finite")
        if len(y) > self.max_shots:
            keep = np.sort(np.random.default_rng(self.seed).choice(len(y), self.max_shots, replace=False))
            bags, base, y = [bags[i] for i in keep], base[keep], y[keep]
        self.base_mean_, self.base_std_ = _standardise(base)
        s = (base - self.base_mean_) / self.base_std_
        t = (y - y.mean()) / y.std()
        kwl = wl_kernel(bags, bags)
        candidates = []
        for beta in self.betas:
            w, v = np.linalg.eigh(kwl + beta * np.outer(s, s))
            w = np.clip(w, 0.0, None)
            vt = v.T @ t
            for lam in self.lambdas:
                shrink = w / (w + lam)
                fitted = v @ (shrink * vt)
                leverage = np.einsum("ij,j,ij->i", v, shrink, v)
                loo = t - (t - fitted) / np.clip(1.0 - leverage, 1e-9, None)
                rho = spearmanr(loo, t)[0] if np.ptp(loo) > 0 else -1.0
                alpha = v @ (vt / (w + lam))
                candidates.append((-(rho if np.isfinite(rho) else -1.0), beta, lam, alpha, fitted))
        candidates.sort(key=lambda c: (c[0], -c[1], -c[2]))  # ties: the larger β and λ (closer to the base)
        kept = candidates[: max(1, self.top)]
        self.bags_ = bags
        self.coef_ = np.stack([c[3] for c in kept])
        self.base_coef_ = np.array([c[1] * float(s @ c[3]) for c in kept])
        self.scale_ = np.array([_standardise(c[4])[1] for c in kept])
        self.selected_ = [(float(c[1]), float(c[2]), float(-c[0])) for c in kept]
        return self

    def predict(self, bags: Sequence[Mapping[str, int]], base: np.ndarray) -> np.ndarray:
        """Scores of networks from their WL bags and base scores (higher = predicted better)."""
        check_is_fitted(self, "coef_", "ShotKernelRidge")
        base = np.asarray(base, dtype=float)
        if len(bags) != len(base):
            raise ValueError(f"{len(bags)} graphs and {len(base)} base scores")
        s = (base - self.base_mean_) / self.base_std_
        k = wl_kernel(self.bags_, list(bags)).T  # (networks, shots)
        return np.mean((k @ self.coef_.T + np.outer(s, self.base_coef_)) / self.scale_, axis=1)

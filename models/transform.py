"""The FLOPs label transform of GENNAPE (eq. 5) and its inverse.

Pipeline position: model → CG → features → **predictor (label space)** → ranking/search.

Accuracy grows with compute, so GENNAPE regresses a FLOPs-normalised, standardised target

    y = Z( A / (log10(GFLOPs + 1) + 1) )

where ``A`` is the accuracy, ``GFLOPs`` the CG's giga multiply-accumulates and ``Z`` standardises
with the training set's mean and standard deviation. :meth:`FlopsTransform.inverse` maps
predictions back to accuracies given each CG's FLOPs.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _flops_factor(gflops: np.ndarray) -> np.ndarray:
    g = np.asarray(gflops, dtype=np.float64)
    if np.any(g < 0) or not np.all(np.isfinite(g)):
        raise ValueError("GFLOPs must be finite and non-negative")
    return np.log10(g + 1.0) + 1.0


class FlopsTransform:
    """``fit(acc, gflops)`` stores the mean/std of ``acc / (log10(gflops+1)+1)``;
    ``transform``/``inverse`` map between accuracies and standardised targets.

    With ``use_flops=False`` the transform is plain standardisation (``Z(A)``), which the ablations
    without "+T" use.
    """

    def __init__(self, use_flops: bool = True) -> None:
        self.use_flops = use_flops
        self.mean_: float | None = None
        self.std_: float | None = None

    def _ratio(self, acc: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        acc = np.asarray(acc, dtype=np.float64)
        if not self.use_flops:
            return acc
        factor = _flops_factor(gflops)
        if factor.shape != acc.shape:
            raise ValueError(f"{acc.size} accuracies but {factor.size} FLOPs values")
        return acc / factor

    def fit(self, acc: np.ndarray, gflops: np.ndarray) -> FlopsTransform:
        """Learn the standardisation statistics from training accuracies and GFLOPs."""
        ratio = self._ratio(acc, gflops)
        if ratio.size == 0:
            raise ValueError("FlopsTransform.fit needs at least one label")
        self.mean_ = float(ratio.mean())
        std = float(ratio.std())
        self.std_ = std if std > 0 else 1.0
        return self

    def _check(self) -> None:
        if self.mean_ is None or self.std_ is None:
            raise RuntimeError("FlopsTransform is not fitted; call fit() first")

    def transform(self, acc: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        """Accuracies → standardised targets."""
        self._check()
        return (self._ratio(acc, gflops) - self.mean_) / self.std_

    def inverse(self, y: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        """Standardised targets → accuracies."""
        self._check()
        ratio = np.asarray(y, dtype=np.float64) * self.std_ + self.mean_
        return ratio * _flops_factor(gflops) if self.use_flops else ratio

    def state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"use_flops": self.use_flops, "mean": self.mean_, "std": self.std_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FlopsTransform:
        """Inverse of :meth:`state`."""
        obj = cls(bool(state["use_flops"]))
        obj.mean_ = None if state["mean"] is None else float(state["mean"])
        obj.std_ = None if state["std"] is None else float(state["std"])
        return obj

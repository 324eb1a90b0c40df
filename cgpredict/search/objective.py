"""Search objective and Pareto front: predicted accuracy under a FLOPs budget.

Pipeline position: model → CG → features → predictor (the scorer) → ranking/**search**.

The objective of a candidate with predicted accuracy ``a`` and MACs ``f`` under budget ``B``:

* hard budget (``penalty == 0``, the default): ``a`` if ``f ≤ B`` else infeasible;
* soft budget (``penalty > 0``): ``a − penalty · max(0, f / B − 1)`` (over-budget nets stay
  comparable, the penalty grows with the relative excess);
* no budget: ``a``.

Candidates are ordered by :meth:`Objective.sort_key`: feasible ones by objective, infeasible ones
after them by fewer FLOPs (so a search started above the budget walks towards it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cgpredict.cg import CG

#: Any batch scorer of CGs, e.g. :meth:`cgpredict.predictor.Predictor.predict`.
Scorer = Callable[[list[CG]], np.ndarray]


@dataclass
class Objective:
    """Predicted accuracy with a hard or penalised FLOPs budget.

    Args:
        flops_budget: MACs per sample (absolute) allowed, ``None`` for no budget.
        penalty: 0 for a hard budget; > 0 for the soft penalty weight (see module docstring).
    """

    flops_budget: float | None = None
    penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.flops_budget is not None and not self.flops_budget > 0:
            raise ValueError(f"flops_budget must be positive, got {self.flops_budget}")
        if self.penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {self.penalty}")

    @property
    def hard(self) -> bool:
        """Whether over-budget candidates are infeasible."""
        return self.flops_budget is not None and self.penalty == 0

    def feasible(self, flops: float) -> bool:
        """Whether ``flops`` satisfies a hard budget (always true for soft or no budget)."""
        return not self.hard or flops <= self.flops_budget  # type: ignore[operator]

    def value(self, pred: float, flops: float) -> float:
        """Objective value (``-inf`` when infeasible under a hard budget)."""
        if not self.feasible(flops):
            return -math.inf
        if self.flops_budget is not None and self.penalty > 0:
            return float(pred) - self.penalty * max(0.0, flops / self.flops_budget - 1.0)
        return float(pred)

    def sort_key(self, pred: float, flops: float) -> tuple[int, float]:
        """Larger is better: feasible first by value, then infeasible by fewer FLOPs."""
        if self.feasible(flops):
            return (1, self.value(pred, flops))
        return (0, -float(flops))


def pareto_front(preds: Sequence[float] | np.ndarray, flops: Sequence[float] | np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points (higher prediction, lower FLOPs), by increasing FLOPs.

    A point is dominated when another has prediction ≥ and FLOPs ≤ with one strict; of exact
    duplicates the first is kept. NaN predictions are ignored.
    """
    p = np.asarray(preds, dtype=float)
    f = np.asarray(flops, dtype=float)
    if p.shape != f.shape:
        raise ValueError(f"{p.size} predictions but {f.size} FLOPs values")
    idx = [i for i in np.lexsort((-p, f)) if np.isfinite(p[i])]  # by FLOPs, then best prediction first
    front: list[int] = []
    best = -math.inf
    for i in idx:
        if p[i] > best:
            front.append(int(i))
            best = p[i]
    return np.asarray(front, dtype=int)

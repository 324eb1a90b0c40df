"""Input statistics of the embedding heads, fitted once per predictor fit and shared.

Pipeline position: model → CG → features → CG embedding → **head input statistics**
(standardisation, PCA + fuzzy clusters) → heads → ensemble → ranking/search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std (1 where constant) of the head inputs ``x``."""
    if x.shape[0] == 0:
        raise ValueError("cannot standardise inputs on zero CGs")
    std = x.std(0)
    return x.mean(0), np.where(std > 1e-8, std, 1.0)


class InputFits:
    """Input statistics fitted once and shared by the heads of one predictor fit.

    The CL heads of a predictor read the same embeddings, so their input standardisation, and the
    PCA features and fuzzy clusters of the ``+FCM`` heads with the same options, are the same
    computation; :meth:`get` runs it for the first head and hands the result to the others.
    Only for heads fitted on identical inputs (one :meth:`Predictor.fit` call)."""

    def __init__(self) -> None:
        self._fits: dict[tuple[Any, ...], Any] = {}

    def get(self, key: tuple[Any, ...], fit: Callable[[], Any]) -> Any:
        """The result of ``fit()`` for ``key``, computed on the first call."""
        if key not in self._fits:
            self._fits[key] = fit()
        return self._fits[key]

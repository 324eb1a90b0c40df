"""Compatibility path of :class:`~cgpredict.predictor.PredictorBag` (now ``cgpredict.predictor.bag``).

Pipeline position: model → CG → features → **predictor (bagged)** → ranking/search.
"""

from cgpredict.predictor import BAG_SEED_STRIDE, PredictorBag, load_predictor

__all__ = ["BAG_SEED_STRIDE", "PredictorBag", "load_predictor"]

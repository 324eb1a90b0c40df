"""Accuracy predictors over computation graphs (installed as ``cgpredict.models``).

Pipeline position: model → CG → features → **predictor** → ranking/search. The GENNAPE components
(Mills et al., AAAI'23), reimplemented; :class:`cgpredict.predictor.Predictor` assembles them:

* :mod:`~cgpredict.models.gnn` — k-GNN / GCN / GIN encoders and end-to-end regressors;
* :mod:`~cgpredict.models.contrastive` — contrastive CG encoder (k-GNN + Transformer) with
  spectral soft positives (:mod:`~cgpredict.models.spectral`);
* :mod:`~cgpredict.models.fcm` — fuzzy C-means on embeddings, OOD scores;
* :mod:`~cgpredict.models.heads` — FCM-mixed MLP regressors and pairwise classifiers;
* :mod:`~cgpredict.models.transform` — the FLOPs label transform (eq. 5);
* :mod:`~cgpredict.models.ensemble` — rank averaging and Kendall-τ weights;
* :mod:`~cgpredict.models.dedup` — exact inference shortcuts (each distinct node state once),
  switched by :func:`~cgpredict.models.dedup.fast_inference`;
* :mod:`~cgpredict.models.synthetic` — a toy CG family with a known label, for tests and demos.
"""

from cgpredict.models.contrastive import CGEncoder, ContrastiveEncoder, spectral_contrastive_loss
from cgpredict.models.dedup import fast_inference
from cgpredict.models.fcm import FCMFeatures, FuzzyCMeans, OutOfDistributionWarning
from cgpredict.models.gnn import GNNEncoder, GNNPredictor, GraphRegressor
from cgpredict.models.heads import EmbeddingRegressor, PairwiseRanker, grid_search_fcm
from cgpredict.models.spectral import spectrum
from cgpredict.models.transform import FlopsTransform

__all__ = [
    "CGEncoder",
    "ContrastiveEncoder",
    "EmbeddingRegressor",
    "FCMFeatures",
    "FlopsTransform",
    "FuzzyCMeans",
    "GNNEncoder",
    "GNNPredictor",
    "GraphRegressor",
    "OutOfDistributionWarning",
    "PairwiseRanker",
    "fast_inference",
    "grid_search_fcm",
    "spectral_contrastive_loss",
    "spectrum",
]

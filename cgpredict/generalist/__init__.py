"""The generalist predictor's proxy path: set-relative proxy features and a ranker trained across families.

Pipeline position: model → CG → proxy bank (:mod:`cgpredict.proxies.bank`) → **set-relative features**
(:mod:`~cgpredict.generalist.features`) → **ProxyRanker** (:mod:`~cgpredict.generalist.ranker`) →
ranking of a set of networks. This is the "proxies-only" arm of issue 23's ablation: a model that
learns, from labelled families, how far to trust each training-free proxy, and ranks a family it has
never seen (zero-shot; measured leave-one-family-out by ``benchmarks/generalist.py``).

Example:
    >>> import numpy as np
    >>> from cgpredict.generalist import ProxyRanker, raw_columns, set_features
    >>> rng = np.random.default_rng(0)
    >>> def group(n):
    ...     y = rng.normal(size=n)
    ...     raw, names = raw_columns({"synflow": y + rng.normal(size=n)}, flops=rng.uniform(1, 2, n),
    ...                              params=rng.uniform(1, 2, n), proxies=["synflow"])
    ...     return set_features(raw, names).matrix, y
    >>> xs, ys = zip(*(group(n) for n in (30, 40, 50)))
    >>> ranker = ProxyRanker("ridge").fit(xs, ys)
    >>> x, y = group(200)
    >>> ranker.score(x, y) > 0.4
    True
"""

from cgpredict.generalist.descriptors import CG_COLUMNS, cg_descriptors, pooled_node_stats
from cgpredict.generalist.features import FEATURE_PROXIES, SetFeatures, SetReference, raw_columns, set_features
from cgpredict.generalist.model import GENERALIST_FORMAT, GRAPH_COLUMNS, GeneralistPredictor
from cgpredict.generalist.ranker import RANKER_KINDS, ProxyRanker, within_group_targets

__all__ = ["CG_COLUMNS", "FEATURE_PROXIES", "GENERALIST_FORMAT", "GRAPH_COLUMNS", "GeneralistPredictor",
           "RANKER_KINDS", "ProxyRanker", "SetFeatures", "SetReference", "cg_descriptors", "pooled_node_stats",
           "raw_columns", "set_features", "within_group_targets"]

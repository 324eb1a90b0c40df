"""Training-free proxies (the bank) and regression proxies (GenNAS, Eproxy) whose scores become CG features.

Pipeline position: model → **proxy score** → CG node/graph features → predictor → ranking/search.

The bank (:mod:`~cgpredict.proxies.bank`: :func:`bank_scores`, :data:`PROXIES`) computes SynFlow,
NASWOT, SNIP, grad-norm, Fisher, Jacobian covariance, ZiCo, MeCo and the four AZ-NAS scores from one
shared pass of a network at initialisation, with per-node statistics aligned with ``cg.nodes``.

Both proxies remove a network's classifier, read out its stage feature maps
(:mod:`~cgpredict.proxies.taps`), and train it for a few steps on one batch of images
(:mod:`~cgpredict.proxies.inputs`) to regress synthetic targets — signal bases for GenNAS
(:mod:`~cgpredict.proxies.gennas`, :mod:`~cgpredict.proxies.signals`), an untrained teacher's
features through a frozen barrier layer for Eproxy (:mod:`~cgpredict.proxies.eproxy`). The final
loss ranks architectures: lower loss is better; results expose ``score = -loss``.

A :class:`~cgpredict.cg.CG` works as well as a module: it is rebuilt with ``CG.to_module()`` and
tapped from its shapes (:mod:`~cgpredict.proxies.cg_taps`). :func:`proxy_features` turns a run into
graph- and node-level arrays aligned with ``cg.nodes`` (disk-cached, neutral zero fill for nets
without features), and :func:`search_proxy_task` tunes the proxy task per family by regularized
evolution (:mod:`~cgpredict.proxies.task_search`).

Example:
    >>> import torchvision
    >>> from cgpredict.proxies import score
    >>> r = score(torchvision.models.resnet18(), method="eproxy", iterations=2, batch_size=4)
    >>> r.ok, len(r.stage_losses)
    (True, 3)
"""

from cgpredict.proxies.api import METHODS, apply_flops_factor, score, score_many
from cgpredict.proxies.bank import PROXIES, BankConfig, BankResult, bank_scores, bank_scores_many
from cgpredict.proxies.cg_taps import CGTapModel, find_cg_taps
from cgpredict.proxies.core import NodeStats, ProxyResult
from cgpredict.proxies.features import ProxyConfig, ProxyFeatures, proxy_features, proxy_features_many
from cgpredict.proxies.taps import Tap, TapModel, find_taps
from cgpredict.proxies.task_search import TaskSearchResult, search_proxy_task

__all__ = ["METHODS", "PROXIES", "BankConfig", "BankResult", "CGTapModel", "bank_scores", "bank_scores_many", "NodeStats", "ProxyConfig", "ProxyFeatures", "ProxyResult", "Tap", "TapModel",
           "TaskSearchResult", "apply_flops_factor", "find_cg_taps", "find_taps", "proxy_features",
           "proxy_features_many", "score", "score_many", "search_proxy_task"]

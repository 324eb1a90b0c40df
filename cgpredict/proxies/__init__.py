"""Regression proxies (GenNAS, Eproxy) whose scores become CG features.

Pipeline position: model → **proxy score** → CG node/graph features → predictor → ranking/search.

Both proxies remove a network's classifier, read out its stage feature maps
(:mod:`~cgpredict.proxies.taps`), and train it for a few steps on one batch of images
(:mod:`~cgpredict.proxies.inputs`) to regress synthetic targets — signal bases for GenNAS
(:mod:`~cgpredict.proxies.gennas`, :mod:`~cgpredict.proxies.signals`), an untrained teacher's
features through a frozen barrier layer for Eproxy (:mod:`~cgpredict.proxies.eproxy`). The final
loss ranks architectures: lower loss is better; results expose ``score = -loss``.

Example:
    >>> import torchvision
    >>> from cgpredict.proxies import score
    >>> r = score(torchvision.models.resnet18(), method="eproxy", iterations=2, batch_size=4)
    >>> r.ok, len(r.stage_losses)
    (True, 3)
"""

from cgpredict.proxies.api import METHODS, apply_flops_factor, score, score_many
from cgpredict.proxies.core import NodeStats, ProxyResult
from cgpredict.proxies.taps import Tap, TapModel, find_taps

__all__ = ["METHODS", "NodeStats", "ProxyResult", "Tap", "TapModel", "apply_flops_factor", "find_taps", "score", "score_many"]

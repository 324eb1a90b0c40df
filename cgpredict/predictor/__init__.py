"""The GENNAPE accuracy predictor: fit on one family of CGs, predict/rank any other.

Pipeline position: model → CG → features → **predictor** → ranking/search.

:class:`Predictor` bundles the GENNAPE ensemble (Mills et al., AAAI'23), reimplemented from the
paper's description:

========================  ==================================================================
member                    what it is
========================  ==================================================================
``CL+FCM+T``              contrastive CG embedding → FCM-mixed MLP heads → FLOPs-transformed acc.
``CL+T``                  contrastive CG embedding → one MLP → FLOPs-transformed accuracy
``CL+Pairwise``           contrastive CG embedding → pairwise classifier → merge-sort ranking
``CL+FCM+Pairwise``       the same with FCM-mixed classifier heads
``k-GNN``                 end-to-end k-GNN regressor (6 layers, hidden 32) on the CG
``FLOPs``                 the CG's FLOPs (bigger is better) — a zero-cost baseline
``Proxy`` (optional)      proxy scores (GenNAS/Eproxy loss, SynFlow, NASWOT); after fine-tuning
                          a ridge on [scores, ln GFLOPs] (:mod:`cgpredict.models.proxy_member`)
========================  ==================================================================

* :meth:`Predictor.rank` / :meth:`Predictor.score` use the whole ensemble: each member's scores
  become normalised ranks, averaged with equal weights zero-shot, or after
  :meth:`Predictor.finetune` with weights fitted on the fine-tuning CGs.
  :class:`PredictorBag` averages each member over several predictors trained with different seeds.
* :meth:`Predictor.predict` returns accuracies: the same weights averaged over the members that
  regress accuracy (``CL+FCM+T``, ``CL+T``, ``k-GNN``, a fine-tuned ``Proxy``).
* ``proxy="gennas"`` / ``"eproxy"`` adds regression-proxy features to the CL heads and the k-GNN;
  the optional ``Proxy`` member uses training-free scores (:meth:`Predictor.add_proxy_member`).
* :meth:`Predictor.save` writes a checkpoint folder; :func:`load_predictor` reads a predictor's,
  a bag's or a generalist's (:class:`~cgpredict.generalist.GeneralistPredictor`, the package's
  default predictor: ``load_predictor()`` returns the shipped ``generalist``).

Where each part lives:

=====================================  ===========================================================
module                                 job
=====================================  ===========================================================
:mod:`cgpredict.predictor.base`        estimator contract: get/set_params, ``clone``, fitted check
:mod:`cgpredict.predictor.members`     the ``Member`` protocol and one adapter per member kind
:mod:`cgpredict.predictor.inputs`      the lazy per-call bundle of what members read
:mod:`cgpredict.predictor.weighting`   weighting rules (equal, Kendall, stacked, proxy agreement)
:mod:`cgpredict.predictor.ensemble`    fine-tuning, weighting and inference over member scores
:mod:`cgpredict.predictor.core`        :class:`Predictor`
:mod:`cgpredict.predictor.bag`         :class:`PredictorBag` (composes fitted predictors)
:mod:`cgpredict.predictor.checkpoint`  checkpoint format, versions, manifest, bounds
=====================================  ===========================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cgpredict.predictor.bag import BAG_SEED_STRIDE, PredictorBag
from cgpredict.predictor.base import NotFittedError, check_is_fitted, clone
from cgpredict.predictor.checkpoint import (BAG_CHECKPOINT_FORMAT, CHECKPOINT_DIR, CHECKPOINT_FORMAT,
                                            CHECKPOINT_VERSION, CheckpointError, check_saved_version,
                                            read_checkpoint_config)
from cgpredict.predictor.core import Predictor
from cgpredict.predictor.ensemble import FewLabelsWarning
from cgpredict.predictor.members import (ALL_MEMBERS, CL_MEMBERS, MEMBER_KINDS, MEMBERS, OPTIONAL_MEMBERS,
                                         REGRESSION_MEMBERS)
from cgpredict.predictor.weighting import WEIGHTINGS, WeightingWarning, accuracy_mean

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.generalist.model import GeneralistPredictor

__all__ = ["Predictor", "PredictorBag", "load_predictor", "clone", "check_is_fitted", "NotFittedError",
           "CheckpointError", "FewLabelsWarning", "WeightingWarning", "accuracy_mean", "MEMBERS", "ALL_MEMBERS",
           "OPTIONAL_MEMBERS", "REGRESSION_MEMBERS", "CL_MEMBERS", "MEMBER_KINDS", "WEIGHTINGS",
           "CHECKPOINT_DIR", "CHECKPOINT_FORMAT", "BAG_CHECKPOINT_FORMAT", "CHECKPOINT_VERSION",
           "BAG_SEED_STRIDE", "read_checkpoint_config", "check_saved_version"]


def load_predictor(path: str | Path | None = None,
                   progress: bool = True) -> Predictor | PredictorBag | GeneralistPredictor:
    """Load a checkpoint folder, dispatched on its ``config.json`` ``format``: a generalist
    (:class:`~cgpredict.generalist.GeneralistPredictor`, format ``cgpredict.generalist``), a bag
    (:meth:`PredictorBag.save`) or a GENNAPE predictor (:meth:`Predictor.save`). ``None``: the
    shipped default, ``GeneralistPredictor.pretrained("generalist")``.

    Raises:
        FileNotFoundError: the folder does not exist (or no checkpoint ships with this install).
        CheckpointError: the folder is not a loadable checkpoint.
    """
    from cgpredict.generalist.model import GENERALIST_FORMAT, GeneralistPredictor

    if path is None:
        return GeneralistPredictor.pretrained("generalist", progress=progress)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint folder {path} does not exist (write one with `cgpredict finetune -o {path}`)")
    try:
        fmt = read_checkpoint_config(path).get("format")
    except CheckpointError:
        fmt = None  # Predictor.load reports what is wrong with the folder
    if fmt == GENERALIST_FORMAT:
        return GeneralistPredictor.load(path, progress=progress)
    return (PredictorBag if fmt == BAG_CHECKPOINT_FORMAT else Predictor).load(path, progress=progress)

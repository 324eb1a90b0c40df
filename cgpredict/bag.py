"""A bag of GENNAPE predictors: the same ensemble trained several times with different seeds.

Pipeline position: model → CG → features → **predictor (bagged)** → ranking/search.

Ranking a family the predictor never saw is where the learned members are least stable: on
NAS-Bench-301 the CL members of NB-101 fits that differ only in their seed and split ranked the
same 725 nets at 0.06–0.19 Spearman in one seed and 0.24–0.56 in the others
(``benchmarks/results/transfer_zero_shot.md``). Averaging several fits (bagging, Breiman 1996;
here over training seeds, as deep ensembles do) is meant to remove much of that variance; the
transfer protocol measures it with ``--bags`` (``benchmarks/results/transfer_bagging.md``). :class:`PredictorBag` is a :class:`~cgpredict.predictor.Predictor` whose every
member is the mean of that member over ``bags`` predictors of one configuration, trained with
seeds ``seed + 1000·k`` (:data:`BAG_SEED_STRIDE`):

* a member's score is the mean of the bagged predictors' scores of that member (mean predicted
  accuracy for the regressors; mean merge-sort position — a Borda count — for the pairwise
  members); ``predict``/``score``/``rank`` then combine the bagged members exactly as a single
  predictor does, with the bag's own ensemble weights;
* ``finetune`` fine-tunes every bagged predictor and weighs the bagged members with the same rules
  (stacked or Kendall, cross-fitted on the bag as a whole); ``reweight_by_proxy`` and
  ``add_proxy_member`` work as for one predictor;
* ``ood`` and ``embed`` use the first predictor of the bag (each has its own clusters and
  embedding space).

Costs ``bags`` times the training and inference time of one predictor. The shipped checkpoint is
a single predictor (a bag of three would be about 11 MB).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from cgpredict import __version__
from cgpredict.cg import CG
from cgpredict.models.ensemble import equal_weights
from cgpredict.predictor import (BAG_CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, Predictor,
                                 check_saved_version, read_checkpoint_config)

#: Seed step between the predictors of a bag: predictor ``k`` of a bag with ``seed`` s has seed
#: ``s + BAG_SEED_STRIDE * k`` (so bags of different seeds do not share predictors).
BAG_SEED_STRIDE = 1000


class PredictorBag(Predictor):
    """``bags`` :class:`~cgpredict.predictor.Predictor` objects of one configuration, averaged.

    Args:
        bags: how many predictors (>= 2).
        **options: :class:`~cgpredict.predictor.Predictor` options, shared by every predictor of
            the bag; ``seed`` is the first predictor's seed.

    Example:
        >>> from cgpredict.models.synthetic import toy_family
        >>> cgs, acc = toy_family(64)
        >>> tiny = dict(encoder={"epochs": 2, "branch_dim": 16}, regressor={"epochs": 5, "hidden": 32},
        ...             pairwise={"epochs": 2, "hidden": 16}, kgnn={"epochs": 2}, n_clusters=3)
        >>> bag = PredictorBag(bags=2, progress=False, **tiny).fit(cgs, acc)
        >>> [p.seed for p in bag.predictors]
        [0, 1000]
        >>> bag.predict(cgs[:2]).shape
        (2,)
    """

    def __init__(self, bags: int = 3, **options: Any) -> None:
        if not isinstance(bags, int) or bags < 2:
            raise ValueError(f"a PredictorBag needs bags >= 2 (use Predictor for one), got {bags!r}")
        self.bags = bags
        super().__init__(**options)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        """(Re)create the bagged predictors from the current options (untrained)."""
        options = {**Predictor.config(self), "progress": self.progress}
        self.predictors = [Predictor(**{**options, "seed": self.seed + BAG_SEED_STRIDE * k}) for k in range(self.bags)]
        self.encoder = None
        self.models = {}

    @classmethod
    def from_predictors(cls, predictors: Sequence[Predictor]) -> PredictorBag:
        """A bag of already fitted predictors of one configuration (their seeds may be anything).

        The bag's options are the first predictor's. Raises ``ValueError`` when they differ in
        anything but the seed, the FCM options a grid search picked, or how fine-tuning weighs the
        members (``weighting``, ``weight_temperature``: the bag weighs its own members), or are
        not fitted."""
        predictors = list(predictors)
        if len(predictors) < 2:
            raise ValueError(f"a PredictorBag needs at least 2 predictors, got {len(predictors)}")
        if any(isinstance(p, PredictorBag) or not p.fitted for p in predictors):
            raise ValueError("from_predictors() takes fitted single Predictor objects")
        free = ("seed", "n_clusters", "m", "weighting", "weight_temperature")
        first = {k: v for k, v in predictors[0].config().items() if k not in free}
        for i, p in enumerate(predictors[1:], 1):
            other = {k: v for k, v in p.config().items() if k not in free}
            if other != first:
                diff = sorted(k for k in first if first[k] != other.get(k))
                raise ValueError(f"predictor {i} differs from predictor 0 in {diff}; a bag needs one configuration")
        bag = cls(bags=len(predictors), progress=predictors[0].progress, **predictors[0].config())
        bag.predictors = predictors
        bag.members = list(predictors[0].members)
        bag.weights, bag.taus_ = equal_weights(bag.members), {}
        bag.fitted = True
        return bag

    def config(self) -> dict[str, Any]:
        """Constructor options (JSON-ready), ``bags`` included."""
        return {**super().config(), "bags": self.bags}

    def modules(self) -> nn.ModuleDict:
        """Every bagged predictor's trainable modules, under ``bag0``, ``bag1``, …"""
        return nn.ModuleDict({f"bag{k}": p.modules() for k, p in enumerate(self.predictors)})

    def _set_progress(self, flag: bool) -> None:
        self.progress = flag
        for p in self.predictors:
            p._set_progress(flag)

    # ------------------------------------------------------------------ training
    def fit(self, cgs: Sequence[CG], labels: Sequence[float] | np.ndarray,
            unlabelled: Sequence[CG] | None = None, refit_encoder: bool = True) -> PredictorBag:
        """Fit every bagged predictor from scratch (see :meth:`Predictor.fit`); equal weights."""
        self._check(cgs, labels)
        if not refit_encoder:
            raise ValueError("a PredictorBag trains one encoder per predictor: refit_encoder=False is not supported")
        self._build()
        for p in self.predictors:
            p.fit(cgs, labels, unlabelled=unlabelled)
        self.members = list(self.predictors[0].members)
        self.weights, self.taus_ = equal_weights(self.members), {}
        self.fitted = True
        return self

    def adapt(self, cgs: Sequence[CG]) -> PredictorBag:
        """:meth:`Predictor.adapt` for every bagged predictor."""
        self._require_fitted()
        for p in self.predictors:
            p.adapt(cgs)
        return self

    def _finetune_members(self, cgs: Sequence[CG], y: np.ndarray, epochs: int, adapt: bool) -> None:
        for p in self.predictors:
            p._finetune_members(cgs, y, epochs, adapt)

    def _in_sample_scores(self, cgs: Sequence[CG]) -> dict[str, np.ndarray]:
        return _mean_scores([p._in_sample_scores(cgs) for p in self.predictors])

    def add_proxy_member(self, proxy: Any = "gennas", zero_cost: Sequence[str] = ("synflow",)) -> PredictorBag:
        """:meth:`Predictor.add_proxy_member` for every bagged predictor (one proxy run per CG:
        the proxy scores are disk-cached); weights return to equal."""
        self._require_fitted()
        for p in self.predictors:
            p.add_proxy_member(proxy, zero_cost)
        first = self.predictors[0]
        self.proxy, self.proxy_inputs, self.zero_cost = first.proxy, first.proxy_inputs, first.zero_cost
        self.members = list(first.members)
        self.weights, self.taus_ = equal_weights(self.members), {}
        return self

    # ------------------------------------------------------------------ inference
    def member_scores(self, cgs: Sequence[CG]) -> dict[str, np.ndarray]:
        """Each member's mean score over the bagged predictors (see the module docstring)."""
        self._require_fitted()
        self._check(cgs)
        return _mean_scores([p.member_scores(cgs) for p in self.predictors])

    def accuracy_members(self) -> list[str]:
        return self.predictors[0].accuracy_members()

    def _accuracy_scores(self, cgs: Sequence[CG], names: Sequence[str]) -> dict[str, np.ndarray]:
        return _mean_scores([p._accuracy_scores(cgs, names) for p in self.predictors])

    def embed(self, cgs: Sequence[CG]) -> np.ndarray:
        """The first bagged predictor's contrastive embedding."""
        self._require_fitted()
        return self.predictors[0].embed(cgs)

    def ood(self, cgs: Sequence[CG], name: str = "target family") -> dict[str, np.ndarray]:
        """The first bagged predictor's out-of-distribution report (see :meth:`Predictor.ood`)."""
        self._require_fitted()
        return self.predictors[0].ood(cgs, name=name)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``path/config.json`` (the bag: options, weights) and ``path/bag<k>/`` (each
        predictor's checkpoint); returns the directory."""
        self._require_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for k, p in enumerate(self.predictors):
            p.save(path / f"bag{k}")
        doc = {"format": BAG_CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "cgpredict_version": __version__,
               "config": self.config(), "weights": self.weights, "taus": self.taus_}
        (path / "config.json").write_text(json.dumps(doc, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path, progress: bool = True) -> PredictorBag:
        """Load a directory written by :meth:`save` (each predictor with :meth:`Predictor.load`)."""
        path = Path(path)
        doc = read_checkpoint_config(path)
        if doc.get("format") != BAG_CHECKPOINT_FORMAT or doc.get("format_version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"{path} is not a bag of predictors (format {doc.get('format')!r}); "
                                  "load it with cgpredict.Predictor.load or cgpredict.load_predictor")
        check_saved_version(path, doc)
        bags = int(doc["config"]["bags"])
        bag = cls.from_predictors([Predictor.load(path / f"bag{k}", progress=progress) for k in range(bags)])
        bag.weights = {k: float(v) for k, v in doc["weights"].items()}
        bag.taus_ = dict(doc.get("taus", {}))
        return bag


def load_predictor(path: str | Path, progress: bool = True) -> Predictor:
    """Load a checkpoint directory written by :meth:`Predictor.save` or :meth:`PredictorBag.save`."""
    try:
        is_bag = read_checkpoint_config(Path(path)).get("format") == BAG_CHECKPOINT_FORMAT
    except (CheckpointError, AttributeError):
        is_bag = False  # Predictor.load reports what is wrong with the folder
    return (PredictorBag if is_bag else Predictor).load(path, progress=progress)


def _mean_scores(per_predictor: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Member-wise mean of several predictors' score dicts (same members, same CGs)."""
    return {name: np.mean([np.asarray(s[name], dtype=np.float64) for s in per_predictor], axis=0)
            for name in per_predictor[0]}

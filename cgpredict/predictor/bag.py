"""A bag of GENNAPE predictors: the same ensemble trained several times with different seeds.

Pipeline position: model → CG → features → **predictor (bagged)** → ranking/search.

Ranking a family the predictor never saw is where the learned members are least stable: on
NAS-Bench-301 the CL members of NB-101 fits that differ only in their seed and split ranked the
same 725 nets at 0.06–0.19 Spearman in one seed and 0.24–0.56 in the others
(``benchmarks/results/transfer_zero_shot.md``). Averaging several fits (bagging, Breiman 1996;
here over training seeds, as deep ensembles do) is meant to remove much of that variance; the
transfer protocol measures it with ``--bags`` (``benchmarks/results/transfer_bagging.md``).

:class:`PredictorBag` holds ``bags`` fitted :class:`~cgpredict.predictor.Predictor` objects of one
configuration (seeds ``seed + 1000·k``, :data:`BAG_SEED_STRIDE`) and is itself an
:class:`~cgpredict.predictor.ensemble.Ensemble` over the bagged members:

* a member's score is the mean of the bagged predictors' scores of that member (mean predicted
  accuracy for the regressors; mean merge-sort position — a Borda count — for the pairwise
  members); ``predict``/``score``/``rank`` then combine the bagged members exactly as a single
  predictor does, with the bag's own ensemble weights;
* ``finetune`` fine-tunes every bagged predictor and weighs the bagged members with the same rules
  (stacked or Kendall, cross-fitted on the bag as a whole); ``reweight_by_proxy`` and
  ``add_proxy_member`` work as for one predictor;
* ``ood`` and ``embed`` use the first predictor of the bag (each has its own clusters and
  embedding space).

Costs ``bags`` times the training and inference time of one predictor.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from cgpredict.cg import CG
from cgpredict.predictor import checkpoint
from cgpredict.predictor.core import Predictor
from cgpredict.predictor.ensemble import Ensemble
from cgpredict.predictor.inputs import check_cgs
from cgpredict.predictor.members import MEMBERS

#: Seed step between the predictors of a bag: predictor ``k`` of a bag with ``seed`` s has seed
#: ``s + BAG_SEED_STRIDE * k`` (so bags of different seeds do not share predictors).
BAG_SEED_STRIDE = 1000


class PredictorBag(Ensemble):
    """``bags`` :class:`~cgpredict.predictor.Predictor` objects of one configuration, averaged.

    Args:
        bags: how many predictors (>= 2).
        **options: :class:`~cgpredict.predictor.Predictor` options, shared by every predictor of
            the bag; ``seed`` is the first predictor's seed. (Their names are the bag's
            parameters: :meth:`get_params` lists ``bags`` and every Predictor option.)

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
        self.bags = bags
        self.options = dict(options)
        self.predictors: list[Predictor] = []

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        return ["bags", *Predictor._param_names()]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """``bags`` and the shared Predictor options (defaults filled in)."""
        return {"bags": self.bags, **Predictor(**self.options).get_params(deep=deep)}

    def set_params(self, **params: Any) -> PredictorBag:
        """Set ``bags`` or shared Predictor options (``encoder__epochs=5`` too)."""
        if "bags" in params:
            self.bags = params.pop("bags")
        template = Predictor(**self.options).set_params(**params)
        self.options.update({k: template.get_params(deep=False)[k] for k in {p.partition("__")[0] for p in params}})
        return self

    def _option(self, name: str, default: Any) -> Any:
        return self.options.get(name, default)

    members = property(lambda self: list(self.predictors[0].members) if self.predictors
                       else list(self._option("members", MEMBERS)), doc="The members (the first predictor's).")
    seed = property(lambda self: self._option("seed", 0), doc="The first predictor's seed.")
    proxy = property(lambda self: self.predictors[0].proxy if self.predictors else self._option("proxy", None))
    proxy_inputs = property(lambda self: self.predictors[0].proxy_inputs if self.predictors
                            else self._option("proxy_inputs", True))
    canonical = property(lambda self: self.predictors[0].canonical if self.predictors
                         else self._option("canonical", True),
                         doc="Whether the members read canonical CGs (see :class:`Predictor`).")
    zero_cost = property(lambda self: self.predictors[0].zero_cost if self.predictors
                         else tuple(self._option("zero_cost", ())))

    @property
    def weighting(self) -> str:
        """How :meth:`finetune` weighs the bagged members (the bag's own rule)."""
        return self._option("weighting", "stacked")

    @weighting.setter
    def weighting(self, value: str) -> None:
        self.options["weighting"] = value

    @property
    def weight_temperature(self) -> float:
        """Temperature of the bag's Kendall-τ softmax and proxy-agreement weights."""
        return self._option("weight_temperature", 0.1)

    @weight_temperature.setter
    def weight_temperature(self, value: float) -> None:
        self.options["weight_temperature"] = value

    @property
    def progress(self) -> bool:
        return self._option("progress", True)

    def config(self) -> dict[str, Any]:
        """Options (JSON-ready), ``bags`` included: the first predictor's, with the bag's weighting."""
        base = self.predictors[0].config() if self.predictors else Predictor(**self.options).config()
        return {**base, "weighting": self.weighting, "weight_temperature": self.weight_temperature,
                "seed": self.seed, "bags": self.bags}

    def modules(self) -> nn.ModuleDict:
        """Every bagged predictor's trainable modules, under ``bag0``, ``bag1``, …"""
        return nn.ModuleDict({f"bag{k}": p.modules() for k, p in enumerate(self.predictors)})

    def _set_progress(self, flag: bool) -> None:
        self.options["progress"] = flag
        for p in self.predictors:
            p._set_progress(flag)

    @staticmethod
    def _check_bags(bags: Any) -> None:
        if not isinstance(bags, int) or isinstance(bags, bool) or bags < 2:
            raise ValueError(f"a PredictorBag needs bags >= 2 (use Predictor for one), got {bags!r}")

    # ------------------------------------------------------------------ construction from predictors
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
        if any(not isinstance(p, Predictor) or not p.fitted for p in predictors):
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
        bag._reset_weights()
        return bag

    # ------------------------------------------------------------------ training
    def fit(self, cgs: Sequence[CG], labels: Sequence[float] | np.ndarray,
            unlabelled: Sequence[CG] | None = None, refit_encoder: bool = True) -> PredictorBag:
        """Fit every bagged predictor from scratch (see :meth:`Predictor.fit`); equal weights."""
        self._check_bags(self.bags)
        self._validate_weighting()
        check_cgs(cgs, labels)
        if not refit_encoder:
            raise ValueError("a PredictorBag trains one encoder per predictor: refit_encoder=False is not supported")
        self.predictors = [Predictor(**{**self.options, "seed": self.seed + BAG_SEED_STRIDE * k})
                           for k in range(self.bags)]
        for p in self.predictors:
            p.fit(cgs, labels, unlabelled=unlabelled)
        self._reset_weights()
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
        self._reset_weights()
        return self

    # ------------------------------------------------------------------ inference
    def member_scores(self, cgs: Sequence[CG]) -> dict[str, np.ndarray]:
        """Each member's mean score over the bagged predictors (see the module docstring)."""
        self._require_fitted()
        check_cgs(cgs)
        return _mean_scores([p.member_scores(cgs) for p in self.predictors])

    def accuracy_members(self) -> list[str]:
        """The first predictor's accuracy members (all predictors of a bag have the same)."""
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
        """Write ``path/config.json`` (the bag: options, weights), ``path/bag<k>/`` (each
        predictor's checkpoint) and the manifest, atomically; returns the directory."""
        self._require_fitted()
        doc = {**checkpoint.header(checkpoint.BAG_CHECKPOINT_FORMAT), "config": self.config(),
               "weights": self.weights_, "taus": self.taus_}

        def write(folder: Path) -> None:
            for k, p in enumerate(self.predictors):
                checkpoint.write_predictor(p, folder / f"bag{k}")
                checkpoint.write_manifest(folder / f"bag{k}")
            checkpoint.write_files(folder, doc, None)

        return checkpoint.save_folder(path, write)

    @classmethod
    def load(cls, path: str | Path, progress: bool = True) -> PredictorBag:
        """Load a directory written by :meth:`save` (each predictor with :meth:`Predictor.load`)."""
        path = Path(path)
        doc = checkpoint.open_checkpoint(path, checkpoint.BAG_CHECKPOINT_FORMAT)
        bags = doc["config"].get("bags")
        if not isinstance(bags, int):
            raise checkpoint.CheckpointError(f"{path / 'config.json'}: config field bags = {bags!r} is not an integer")
        bag = cls.from_predictors([Predictor.load(path / f"bag{k}", progress=progress) for k in range(bags)])
        bag.weights_ = {str(k): float(v) for k, v in doc["weights"].items()}
        bag.taus_ = {str(k): float(v) for k, v in doc.get("taus", {}).items()}
        return bag


def _mean_scores(per_predictor: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Member-wise mean of several predictors' score dicts (same members, same CGs)."""
    return {name: np.mean([np.asarray(s[name], dtype=np.float64) for s in per_predictor], axis=0)
            for name in per_predictor[0]}

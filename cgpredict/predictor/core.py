"""The GENNAPE accuracy predictor as one estimator: fit on one family of CGs, predict/rank any other.

Pipeline position: model → CG → features → **predictor** → ranking/search.

:class:`Predictor` holds the options, the contrastive encoder (``encoder_``) and one member
adapter per ensemble member (``members_``, :mod:`cgpredict.predictor.members`); each call builds
one lazy :class:`~cgpredict.predictor.inputs.Inputs` bundle for its CGs. Weighting, fine-tuning
and inference over the members' scores come from :class:`~cgpredict.predictor.ensemble.Ensemble`,
the proxy option and the ``Proxy`` member from :class:`~cgpredict.predictor.proxy.ProxyWiring`,
saving and loading from :mod:`cgpredict.predictor.checkpoint`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from cgpredict.cg import CG
from cgpredict.models.contrastive import ContrastiveEncoder
from cgpredict.models.heads import grid_search_fcm
from cgpredict.models.input_fits import InputFits
from cgpredict.predictor import checkpoint, inputs as inp
from cgpredict.predictor.ensemble import Ensemble
from cgpredict.predictor.inputs import Inputs, check_cgs
from cgpredict.predictor.members import ALL_MEMBERS, CL_MEMBERS, MEMBER_KINDS, MEMBERS, BuildSpec, Member
from cgpredict.predictor.proxy import ProxyWiring

if TYPE_CHECKING:
    from cgpredict.generalist.model import GeneralistPredictor
    from cgpredict.proxies.features import ProxyConfig


class Predictor(ProxyWiring, Ensemble):
    """The GENNAPE ensemble behind one object: ``fit``, ``finetune``, ``predict``, ``rank``, ``ood``.

    Args:
        members: which members to build (subset of :data:`ALL_MEMBERS`; default the paper's six).
        encoder, regressor, pairwise, kgnn: keyword options of the contrastive encoder, the CL
            regressors, the pairwise rankers and the k-GNN (also settable as ``encoder__epochs=5``
            with :meth:`set_params`).
        n_clusters, m: FCM clusters and fuzzifier of the ``+FCM`` members.
        fcm_grid: ``None`` to use ``n_clusters``/``m`` as given, or ``{"clusters": [...], "ms": [...],
            "epochs": ...}`` to grid-search them on a validation split (``{}``: the paper's grid);
            the choice is ``n_clusters_``/``m_``.
        min_train_accuracy: drop training CGs below this accuracy (the paper drops NB-101 < 80%).
        weight_temperature: temperature of the Kendall-τ softmax (``weighting="kendall"``) and of
            :meth:`reweight_by_proxy` (default 0.1, about the standard error of τ over 50 nets).
        weighting: how :meth:`finetune` weighs the members: ``"stacked"`` (default; non-negative
            least squares on cross-fitted ranks, needs ``weight_folds >= 2``) or ``"kendall"``.
        proxy: ``None``, ``"gennas"``, ``"eproxy"``, a :class:`~cgpredict.proxies.ProxyConfig` or its
            keyword dict: regression-proxy features as extra graph (CL heads) and node (k-GNN)
            inputs, disk-cached per CG (normalised to a ProxyConfig on assignment).
        proxy_inputs: with ``proxy``, also feed its features to the CL heads and the k-GNN
            (``False``: only the ``Proxy`` member uses them).
        zero_cost: zero-cost proxies (``"synflow"``, ``"naswot"``) scored for the ``Proxy`` member.
        canonical: the members read the canonical form of every CG
            (:func:`cgpredict.canonical.canonicalize`: batch norm folded into its conv/linear,
            pools, pads and splits normalised), so every source of one network — ``from_torch``,
            ONNX dynamo, legacy and optimised exports — gets one prediction. Cached per CG object;
            the proxies still run the CG as given. Checkpoints saved without this option (before
            it existed) load with ``canonical=False``, the form they were trained on.
        seed: seeds every member. progress: tqdm progress bars.

    The constructor only stores these; ``fit`` validates them and builds the members.

    Example:
        >>> from cgpredict.models.synthetic import toy_family
        >>> cgs, acc = toy_family(64)
        >>> tiny = dict(encoder={"epochs": 2, "branch_dim": 16}, regressor={"epochs": 5, "hidden": 32},
        ...             pairwise={"epochs": 2, "hidden": 16}, kgnn={"epochs": 2}, n_clusters=3)
        >>> p = Predictor(progress=False, **tiny).fit(cgs, acc)
        >>> p.predict(cgs[:2]).shape
        (2,)
    """

    _param_attrs = {"encoder": "encoder_kwargs", "regressor": "regressor_kwargs", "pairwise": "pairwise_kwargs",
                    "kgnn": "kgnn_kwargs"}

    def __init__(self, members: Sequence[str] = MEMBERS, encoder: dict[str, Any] | None = None,
                 regressor: dict[str, Any] | None = None, pairwise: dict[str, Any] | None = None,
                 kgnn: dict[str, Any] | None = None, n_clusters: int = 10, m: float = 2.0,
                 fcm_grid: dict[str, Any] | None = None, min_train_accuracy: float | None = None,
                 weight_temperature: float = 0.1, weighting: str = "stacked",
                 proxy: str | ProxyConfig | dict[str, Any] | None = None, proxy_inputs: bool = True,
                 zero_cost: Sequence[str] = (), canonical: bool = True, seed: int = 0,
                 progress: bool = True) -> None:
        self.members = list(members)
        self.encoder_kwargs, self.regressor_kwargs = dict(encoder or {}), dict(regressor or {})
        self.pairwise_kwargs, self.kgnn_kwargs = dict(pairwise or {}), dict(kgnn or {})
        self.n_clusters, self.m, self.fcm_grid = n_clusters, m, fcm_grid
        self.min_train_accuracy, self.weight_temperature, self.weighting = min_train_accuracy, weight_temperature, weighting
        self.proxy, self.proxy_inputs, self.zero_cost = proxy, proxy_inputs, tuple(zero_cost)
        self.canonical, self.seed, self.progress = canonical, seed, progress
        self.encoder_: ContrastiveEncoder | None = None
        self.members_: dict[str, Member] = {}

    # ------------------------------------------------------------------ options and parts
    @property
    def encoder(self) -> ContrastiveEncoder | None:
        """The contrastive encoder (``encoder_``; built untrained on first access when a member
        needs one, so it can be pre-trained before ``fit(refit_encoder=False)``)."""
        if self.encoder_ is None and CL_MEMBERS.intersection(self.members):
            self.encoder_ = self._new_encoder()
        return self.encoder_

    @encoder.setter
    def encoder(self, value: ContrastiveEncoder | None) -> None:
        self.encoder_ = value

    @property
    def models(self) -> dict[str, Any]:
        """The members' model objects (heads, k-GNN, ProxyRanker), by member name."""
        return {n: m.model for n, m in self.members_.items() if m.model is not None}

    def _new_encoder(self) -> ContrastiveEncoder:
        return ContrastiveEncoder(**{**self.encoder_kwargs, "seed": self.seed, "progress": self.progress})

    def config(self) -> dict[str, Any]:
        """Constructor options (JSON-ready; FCM options are the ones in use after a grid search)."""
        return {"members": list(self.members), "encoder": self.encoder_kwargs, "regressor": self.regressor_kwargs,
                "pairwise": self.pairwise_kwargs, "kgnn": self.kgnn_kwargs,
                "n_clusters": int(getattr(self, "n_clusters_", self.n_clusters)), "m": float(getattr(self, "m_", self.m)),
                "fcm_grid": self.fcm_grid, "min_train_accuracy": self.min_train_accuracy,
                "weight_temperature": self.weight_temperature, "weighting": self.weighting,
                "proxy": None if self.proxy is None else inp.proxy_dict(self.proxy), "proxy_inputs": self.proxy_inputs,
                "zero_cost": list(self.zero_cost), "canonical": self.canonical, "seed": self.seed}

    def modules(self) -> nn.ModuleDict:
        """All trainable torch modules, keyed by member (``encoder`` for the CL encoder)."""
        mods = nn.ModuleDict()
        if self.encoder_ is not None:
            mods["encoder"] = self.encoder_.module
        for name, member in self.members_.items():
            if member.module is not None:
                mods[name] = member.module
        return mods

    def _validate_params(self) -> None:
        validate_options(self)

    def _build(self, keep_encoder: bool) -> None:
        """(Re)create the members (and, unless kept, the encoder) from the options, untrained."""
        if not keep_encoder:
            self.encoder_ = self._new_encoder() if CL_MEMBERS.intersection(self.members) else None
        self.members_ = {}
        for name in self.members:
            self.members_[name] = self._new_member(name)

    def _new_member(self, name: str) -> Member:
        """An untrained member ``name`` built from the current options."""
        graph_dim, node_dim = self._proxy_dims()
        spec = BuildSpec(self.encoder_.dim + graph_dim if self.encoder_ is not None else 0, node_dim,
                         self.regressor_kwargs, self.pairwise_kwargs, self.kgnn_kwargs,
                         int(getattr(self, "n_clusters_", self.n_clusters)), float(getattr(self, "m_", self.m)),
                         self.seed, self.progress, self.proxy_columns())
        member = MEMBER_KINDS[name]()
        member.build(spec)
        return member

    # ------------------------------------------------------------------ training
    def fit(self, cgs: Sequence[CG], labels: Sequence[float] | np.ndarray,
            unlabelled: Sequence[CG] | None = None, refit_encoder: bool = True) -> Predictor:
        """Train every member on a labelled family (from scratch).

        ``unlabelled``: extra CGs without labels; the contrastive encoder trains on them too, and
        the heads' input standardisation and FCM clusters are fitted on labelled + unlabelled
        embeddings (with ``proxy`` set, on the labelled ones only, to avoid proxy runs).
        ``refit_encoder=False`` keeps an already trained encoder (e.g. one pre-trained with
        :meth:`fit_encoder`) and trains only the heads and the k-GNN.
        """
        self._validate_params()
        y = check_cgs(cgs, labels)
        unlabelled = list(unlabelled or [])
        if unlabelled:
            check_cgs(unlabelled)
        if self.min_train_accuracy is not None:
            keep = np.flatnonzero(y >= self.min_train_accuracy)
            if keep.size < 4:
                raise ValueError(f"only {keep.size} training CGs reach min_train_accuracy={self.min_train_accuracy}")
            cgs, y = [cgs[i] for i in keep], y[keep]
        keep_encoder = not refit_encoder and self.encoder_ is not None and self.encoder_.fitted
        if not refit_encoder and not keep_encoder:
            raise RuntimeError("refit_encoder=False needs an encoder that is already trained")
        self.n_clusters_, self.m_, self.grid_scores_ = int(self.n_clusters), float(self.m), {}
        self._build(keep_encoder)
        data = Inputs(self, cgs)
        unlabelled = inp.member_cgs(unlabelled, self.canonical)
        if self.encoder_ is not None and not keep_encoder:
            self.encoder_.fit(data.cgs + unlabelled)
        extra = None
        if unlabelled and data.emb is not None and self.proxy is None:
            extra = (self.encoder_.transform(unlabelled), inp.gflops_of(unlabelled))
        if self.fcm_grid is not None and data.emb is not None and any(getattr(m, "fcm", False)
                                                                      for m in self.members_.values()):
            self.n_clusters_, self.m_, self.grid_scores_ = fcm_grid_search(self, data, y)
            self._build(keep_encoder=True)  # heads with the chosen C and m, same trained encoder
        shared = InputFits()
        for member in self.members_.values():
            member.fit(data, y, extra, shared)
        self._reset_weights()
        return self

    def fit_encoder(self, cgs: Sequence[CG]) -> Predictor:
        """Pre-train the contrastive encoder alone on (unlabelled) CGs, read as the members read
        them (canonical forms with ``canonical``); then ``fit(..., refit_encoder=False)``."""
        check_cgs(cgs)
        if self.encoder is None:
            raise RuntimeError("this Predictor has no contrastive member, so no encoder to pre-train")
        self.encoder.fit(inp.member_cgs(cgs, self.canonical))
        return self

    def adapt(self, cgs: Sequence[CG]) -> Predictor:
        """Label-free adaptation to a target family: re-fit the CL heads' input standardisation
        (per-column mean/std of embedding and log-FLOPs) to these CGs; weights, FCM clusters and
        label statistics are unchanged (the *transductive* setting; :meth:`finetune` can do it
        on its fine-tuning CGs)."""
        self._require_fitted()
        check_cgs(cgs)
        if len(cgs) < 2:
            raise ValueError("adapt() needs at least 2 CGs to estimate a spread")
        data = Inputs(self, cgs)
        for member in self.members_.values():
            member.adapt(data)
        return self

    def _finetune_members(self, cgs: Sequence[CG], y: np.ndarray, epochs: int, adapt: bool) -> None:
        """:meth:`finetune`'s training step: heads and k-GNN ``epochs`` more epochs, ``Proxy``'s ridge."""
        data = Inputs(self, cgs)
        for member in self.members_.values() if adapt else ():
            member.adapt(data)
        for member in self.members_.values():
            member.finetune(data, y, epochs)

    def _in_sample_scores(self, cgs: Sequence[CG]) -> dict[str, np.ndarray]:
        """Member scores on the fine-tuning CGs for in-sample τ (``Proxy``: its leave-one-out scores)."""
        scores = self.member_scores(cgs)
        for name, member in self.members_.items():
            honest = member.in_sample_scores()
            if honest is not None:
                scores[name] = honest
        return scores

    def _set_progress(self, flag: bool) -> None:
        """Switch the progress bars of this predictor and its parts on or off."""
        self.progress = flag
        for part in (self.encoder_, *self.models.values()):
            if part is not None and hasattr(part, "progress"):
                part.progress = flag

    # ------------------------------------------------------------------ inference
    def embed(self, cgs: Sequence[CG]) -> np.ndarray:
        """Contrastive CG embeddings ``[N, dim]`` (needs a CL member; proxy features not included)."""
        if self.encoder_ is None:
            raise RuntimeError("this Predictor has no contrastive member, so no embeddings")
        check_cgs(cgs)
        return self.encoder_.transform(inp.member_cgs(cgs, self.canonical))

    def member_scores(self, cgs: Sequence[CG]) -> dict[str, np.ndarray]:
        """Each member's scores (higher = better): accuracies for the regressors, merge-sort
        positions for the pairwise members, GFLOPs for ``FLOPs``, ``-log loss`` (or, fine-tuned,
        accuracies) for ``Proxy``."""
        self._require_fitted()
        check_cgs(cgs)
        data = Inputs(self, cgs)
        data.prepare(self.members)
        return {name: member.score(data) for name, member in self.members_.items()}

    def accuracy_members(self) -> list[str]:
        """Members whose scores are accuracies: ``CL+FCM+T``, ``CL+T``, ``k-GNN`` and a fine-tuned ``Proxy``."""
        return [n for n, member in self.members_.items() if member.regresses]

    def _accuracy_scores(self, cgs: Sequence[CG], names: Sequence[str]) -> dict[str, np.ndarray]:
        """The predicted accuracies of the accuracy members ``names`` (no pairwise merge sorts)."""
        data = Inputs(self, cgs)
        data.prepare(names)
        return {name: self.members_[name].score(data) for name in names}

    def ood(self, cgs: Sequence[CG], name: str = "target family") -> dict[str, np.ndarray]:
        """Per CG: ``max_membership`` (largest FCM membership), ``centroid_distance`` (to the nearest
        FCM centre) and ``flag`` (distance above the training family's 99th percentile). Emits an
        :class:`~cgpredict.models.fcm.OutOfDistributionWarning` when most CGs are flagged."""
        self._require_fitted()
        check_cgs(cgs)
        fcm_member = next((m.model for m in self.members_.values() if getattr(m, "fcm", False)), None)
        if fcm_member is None or fcm_member.fcm is None:
            raise RuntimeError("ood() needs an FCM member (CL+FCM+T or CL+FCM+Pairwise)")
        data = Inputs(self, cgs)
        return fcm_member.fcm.ood(fcm_member.fcm_features.transform(data.emb, data.gflops), name=name)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the checkpoint folder (``config.json``, ``weights.pt``, ``manifest.json``) atomically."""
        self._require_fitted()
        return checkpoint.save_predictor(self, path)

    @classmethod
    def load(cls, path: str | Path, progress: bool = True) -> Predictor:
        """Load a folder written by :meth:`save` (no pickle: ``weights_only=True`` + JSON)."""
        return checkpoint.load_predictor_folder(cls, path, progress)

    @classmethod
    def pretrained(cls, name: str = "generalist", progress: bool = True) -> Predictor | GeneralistPredictor:
        """Load the checkpoint shipped in ``cgpredict/checkpoints/<name>/``.

        The default, ``generalist``, is the package's default predictor: a
        :class:`~cgpredict.generalist.GeneralistPredictor` (ranking scores, not accuracies), returned
        for any shipped folder of the generalist format (``generalist``, ``generalist_demo``).
        ``Predictor.pretrained("nb101")`` is the GENNAPE predictor pre-trained on NAS-Bench-101.
        """
        from cgpredict.generalist.model import GENERALIST_FORMAT, GeneralistPredictor

        path = checkpoint.pretrained_path(name)
        if checkpoint.read_checkpoint_config(path).get("format") == GENERALIST_FORMAT:
            return GeneralistPredictor.load(path, progress=progress)
        return cls.load(path, progress=progress)


def validate_options(pred: Predictor) -> None:
    """Check a predictor's options (``fit`` and loading call it): known members, a source of
    proxy scores for ``Proxy``, known zero-cost proxies, a boolean ``canonical``, a weighting rule
    and temperature."""
    from cgpredict.proxies.zero_cost import check_names

    unknown = [name for name in pred.members if name not in ALL_MEMBERS]
    if unknown or not pred.members:
        raise ValueError(f"unknown ensemble member(s) {unknown}; choose from {', '.join(ALL_MEMBERS)}")
    pred.members = [name for name in ALL_MEMBERS if name in pred.members]
    pred.zero_cost = check_names(pred.zero_cost)
    if not isinstance(pred.canonical, bool):
        raise ValueError(f"canonical must be True or False, not {pred.canonical!r}")
    if "Proxy" in pred.members and pred.proxy is None and not pred.zero_cost:
        raise ValueError("the 'Proxy' member needs proxy scores: pass proxy='gennas' (or 'eproxy', a "
                         "ProxyConfig, a dict) and/or zero_cost=('synflow',)")
    pred._validate_weighting()


def fcm_grid_search(pred: Predictor, data: Inputs, y: np.ndarray) -> tuple[int, float, dict[str, float]]:
    """``(C, m, scores)`` of the ``fcm_grid`` search on the training inputs (see :class:`Predictor`)."""
    grid = dict(pred.fcm_grid)
    search = {k: grid.pop(k) for k in ("clusters", "ms", "val_fraction") if k in grid}
    kwargs = {k: v for k, v in pred.regressor_kwargs.items() if k not in ("n_clusters", "m", "seed", "progress")}
    kwargs.update(grid)  # any other entry (e.g. epochs) overrides the regressor options during the search
    return grid_search_fcm(data.emb, data.gflops, y, seed=pred.seed, progress=pred.progress, **search, **kwargs)

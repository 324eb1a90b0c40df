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
  :meth:`Predictor.finetune` with weights fitted on the fine-tuning CGs (stacked on the members'
  cross-fitted ranks by default, or GENNAPE's ``softmax`` of Kendall τ;
  :mod:`cgpredict.models.ensemble`). :class:`cgpredict.bag.PredictorBag` averages each member over
  several predictors trained with different seeds.
* :meth:`Predictor.predict` returns accuracies: the same weights averaged over the members that
  regress accuracy (``CL+FCM+T``, ``CL+T``, ``k-GNN``).
* Fine-tuning keeps the contrastive encoder, input scalings, FCM clusters and label statistics
  fixed (``adapt=True`` first re-fits the heads' input standardisation to the fine-tuning CGs, see
  :meth:`Predictor.adapt`) and trains the heads (and the k-GNN) further on the new labels.
* :meth:`Predictor.fit` takes optional ``unlabelled`` CGs of the training family: the contrastive
  encoder trains on them too and the heads' input standardisation / FCM clusters are fitted on
  all of them (label-free), as GENNAPE pre-trains on 50k unlabelled NB-101 CGs.
* ``proxy="gennas"`` / ``"eproxy"`` (or a :class:`~cgpredict.proxies.ProxyConfig`) adds regression-proxy
  features (:func:`cgpredict.proxies.proxy_features`, disk-cached): the graph-level vector is
  appended to the CL members' embedding, the node-level statistics (+ a mask column) to the
  k-GNN's node features. A net the proxy cannot run gets the neutral fill and stays predictable.
  ``proxy_inputs=False`` skips that wiring (the heads then need no proxy runs on the training
  family). The optional ``Proxy`` member uses training-free scores — the proxy's final loss and
  the ``zero_cost`` proxies (:mod:`cgpredict.proxies.zero_cost`) — directly zero-shot, and fits a
  ridge on them at :meth:`Predictor.finetune`; :meth:`Predictor.add_proxy_member` adds it to a
  fitted or pretrained predictor.
* :meth:`Predictor.save` writes a directory with ``weights.pt`` (one ``state_dict``, loaded with
  ``weights_only=True``) and ``config.json`` (versions, constructor options, scalers, PCA and FCM
  state as arrays); no pickle. :meth:`Predictor.load` refuses checkpoints of another checkpoint
  format, feature version or cgpredict minor version.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import nn

from cgpredict import __version__
from cgpredict.cg import CG
from cgpredict.errors import CGError
from cgpredict.features import FEATURE_VERSION
from cgpredict.models.contrastive import ContrastiveEncoder
from cgpredict.models.dedup import fast_inference_enabled
from cgpredict.models.ensemble import (combine, equal_weights, kendall_weights, proxy_agreement_weights,
                                       softmax_weights, stacked_weights)
from cgpredict.models.gnn import GNNPredictor
from cgpredict.models.graph_data import flops_of
from cgpredict.models.heads import EmbeddingRegressor, PairwiseRanker, grid_search_fcm
from cgpredict.models.proxy_member import ProxyRanker

if TYPE_CHECKING:
    from cgpredict.proxies.features import ProxyConfig

#: Every member, in the paper's order.
MEMBERS: tuple[str, ...] = ("CL+FCM+T", "CL+T", "CL+Pairwise", "CL+FCM+Pairwise", "k-GNN", "FLOPs")
#: Members outside the paper's ensemble, added on request (``Proxy`` needs ``proxy`` or ``zero_cost``).
OPTIONAL_MEMBERS: tuple[str, ...] = ("Proxy",)
ALL_MEMBERS: tuple[str, ...] = MEMBERS + OPTIONAL_MEMBERS
#: How :meth:`Predictor.finetune` weighs the members (see the ``weighting`` argument).
WEIGHTINGS: tuple[str, ...] = ("kendall", "stacked")
#: Members that regress accuracy (used by :meth:`Predictor.predict`; ``Proxy`` too once fine-tuned).
REGRESSION_MEMBERS: frozenset[str] = frozenset({"CL+FCM+T", "CL+T", "k-GNN"})
CL_MEMBERS: frozenset[str] = frozenset({"CL+FCM+T", "CL+T", "CL+Pairwise", "CL+FCM+Pairwise"})
CHECKPOINT_FORMAT = "cgpredict.predictor"
BAG_CHECKPOINT_FORMAT = "cgpredict.predictor_bag"
CHECKPOINT_VERSION = 1
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


class _Inputs(NamedTuple):
    """What the members read for a list of CGs."""

    emb: np.ndarray | None  #: CL heads' inputs: the embedding (+ the proxy graph vector with proxy_inputs)
    gflops: np.ndarray  #: GMACs per CG
    nodes: list[np.ndarray] | None  #: the k-GNN's extra node columns (proxy statistics), if any
    proxy_scores: np.ndarray | None  #: :meth:`Predictor.proxy_scores` with a Proxy member
    accuracies: dict[str, np.ndarray]  #: predicted accuracies of the regressing members asked for


def _in_parallel(jobs: Sequence[Callable[[], Any]]) -> list[Any]:
    """``[job() for job in jobs]``, spread over ``torch.get_num_threads()`` Python threads that each
    run torch single-threaded (torch releases the GIL inside its kernels).

    At inference the CL encoder and the k-GNN are chains of small operators that two cores split
    poorly inside each operator; independent jobs on one core each measured 1.3x faster on
    2 cores (``benchmarks/predict_speed.py``). ``torch.set_num_threads`` in a worker sets that
    thread's count and also the default of threads started later, so the caller's count is set
    again afterwards (threads started later, e.g. by the proxies, then get it too)."""
    workers = min(torch.get_num_threads(), len(jobs))
    if workers < 2 or not fast_inference_enabled():
        return [job() for job in jobs]

    def single_threaded(job: Callable[[], Any]) -> Any:
        torch.set_num_threads(1)
        return job()

    threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(single_threaded, jobs))
    finally:
        torch.set_num_threads(threads)


def _halves(n: int, parts: int) -> list[slice]:
    """``parts`` contiguous slices covering ``range(n)`` (fewer when ``n`` is small)."""
    bounds = np.linspace(0, n, max(1, min(parts, n)) + 1).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


class CheckpointError(CGError, ValueError):
    """A saved predictor cannot be loaded: missing files, another format or incompatible versions."""


def _minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


class Predictor:
    """The GENNAPE ensemble behind one object: ``fit``, ``finetune``, ``predict``, ``rank``, ``ood``.

    Args:
        members: which members to build (subset of :data:`ALL_MEMBERS`; default the paper's six,
            :data:`MEMBERS`).
        encoder: keyword arguments of :class:`~cgpredict.models.contrastive.ContrastiveEncoder`.
        regressor: keyword arguments of :class:`~cgpredict.models.heads.EmbeddingRegressor`
            (both ``CL+T`` and ``CL+FCM+T``).
        pairwise: keyword arguments of :class:`~cgpredict.models.heads.PairwiseRanker`.
        kgnn: keyword arguments of :class:`~cgpredict.models.gnn.GNNPredictor`.
        n_clusters, m: FCM clusters and fuzzifier of the ``+FCM`` members.
        fcm_grid: ``None`` to use ``n_clusters``/``m`` as given, or a dict
            ``{"clusters": [...], "ms": [...], "epochs": ...}`` to grid-search them on a validation
            split of the training family (``{}`` = the paper's grid C ∈ [10, 20], m ∈ {2, …, 4}).
        min_train_accuracy: drop training CGs below this accuracy (the paper drops NB-101 nets
            below 80%).
        weight_temperature: temperature of the Kendall-τ softmax of ``weighting="kendall"`` and of
            the label-free :meth:`reweight_by_proxy` (default 0.1, about the standard error of τ
            over 50 nets, so a member must rank clearly better to dominate; at 1.0 the weights of
            members with τ 0.5–0.7 differ by under 25 %).
        weighting: how :meth:`finetune` weighs the members: ``"stacked"`` (default;
            :func:`~cgpredict.models.ensemble.stacked_weights`: non-negative least squares of the
            labels' ranks on the members' cross-fitted ranks; needs ``weight_folds >= 2``) or
            ``"kendall"`` (the paper's rule, ``softmax(τ / weight_temperature)``). Stacked weights
            ranked 50-shot NB-201 better (`benchmarks/results/weight_rules.md`).
        proxy: ``None`` (CG features only), ``"gennas"``, ``"eproxy"``, a
            :class:`~cgpredict.proxies.ProxyConfig` or its keyword dict: regression-proxy features
            as extra graph (CL heads) and node (k-GNN) inputs. Every CG given to ``fit``/``predict``
            is then run through the proxy once (cached on disk by CG hash and config).
        proxy_inputs: with ``proxy`` set, also feed its features to the CL heads and the k-GNN
            (``False``: only the ``Proxy`` member uses them, so fitting on a training family needs
            no proxy runs).
        zero_cost: names of zero-cost proxies (``"synflow"``, ``"naswot"``) scored for the ``Proxy``
            member, after the regression proxy's loss.
        seed: seeds every member.
        progress: tqdm progress bars.

    Example:
        >>> from cgpredict.models.synthetic import toy_family
        >>> cgs, acc = toy_family(64)
        >>> tiny = dict(encoder={"epochs": 2, "branch_dim": 16}, regressor={"epochs": 5, "hidden": 32},
        ...             pairwise={"epochs": 2, "hidden": 16}, kgnn={"epochs": 2}, n_clusters=3)
        >>> p = Predictor(progress=False, **tiny).fit(cgs, acc)
        >>> p.predict(cgs[:2]).shape
        (2,)
    """

    def __init__(self, members: Sequence[str] = MEMBERS, encoder: dict[str, Any] | None = None,
                 regressor: dict[str, Any] | None = None, pairwise: dict[str, Any] | None = None,
                 kgnn: dict[str, Any] | None = None, n_clusters: int = 10, m: float = 2.0,
                 fcm_grid: dict[str, Any] | None = None, min_train_accuracy: float | None = None,
                 weight_temperature: float = 0.1, weighting: str = "stacked",
                 proxy: str | ProxyConfig | dict[str, Any] | None = None,
                 proxy_inputs: bool = True, zero_cost: Sequence[str] = (), seed: int = 0,
                 progress: bool = True) -> None:
        unknown = [name for name in members if name not in ALL_MEMBERS]
        if unknown or not members:
            raise ValueError(f"unknown ensemble member(s) {unknown}; choose from {', '.join(ALL_MEMBERS)}")
        from cgpredict.proxies.zero_cost import check_names

        zero_cost = check_names(zero_cost)
        if "Proxy" in members and proxy is None and not zero_cost:
            raise ValueError("the 'Proxy' member needs proxy scores: pass proxy='gennas' (or 'eproxy', a "
                             "ProxyConfig, a dict) and/or zero_cost=('synflow',)")
        self.members = [name for name in ALL_MEMBERS if name in members]
        self.encoder_kwargs = dict(encoder or {})
        self.regressor_kwargs = dict(regressor or {})
        self.pairwise_kwargs = dict(pairwise or {})
        self.kgnn_kwargs = dict(kgnn or {})
        self.n_clusters, self.m = int(n_clusters), float(m)
        self.fcm_grid = None if fcm_grid is None else dict(fcm_grid)
        self.min_train_accuracy = min_train_accuracy
        if not weight_temperature > 0:
            raise ValueError(f"weight_temperature must be > 0, got {weight_temperature!r}")
        self.weight_temperature = weight_temperature
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
        self.weighting = weighting
        self.seed, self.progress = seed, progress
        self.proxy = _proxy_config(proxy)
        self.proxy_inputs = bool(proxy_inputs)
        self.zero_cost = tuple(zero_cost)
        self.weights: dict[str, float] = equal_weights(self.members)
        self.taus_: dict[str, float] = {}
        self.crossfit_scores_: dict[str, np.ndarray] = {}
        self.crossfit_folds_: np.ndarray | None = None
        self.grid_scores_: dict[str, float] = {}
        self.fitted = False
        self._build()

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        """(Re)create the member objects from the current options."""
        common = {"seed": self.seed, "progress": self.progress}
        self.encoder = (ContrastiveEncoder(**{**self.encoder_kwargs, **common})
                        if CL_MEMBERS.intersection(self.members) else None)
        graph_dim, node_dim = self._proxy_dims()
        dim = self.encoder.dim + graph_dim if self.encoder is not None else 0
        self.models: dict[str, Any] = {}
        for name in self.members:
            fcm = {"n_clusters": self.n_clusters, "m": self.m} if "FCM" in name else {"n_clusters": 0}
            if name in ("CL+FCM+T", "CL+T"):
                self.models[name] = EmbeddingRegressor(dim, **{**self.regressor_kwargs, **fcm, **common})
            elif name in ("CL+Pairwise", "CL+FCM+Pairwise"):
                self.models[name] = PairwiseRanker(dim, **{**self.pairwise_kwargs, **fcm, **common})
            elif name == "k-GNN":
                self.models[name] = GNNPredictor("kgnn", **{**self.kgnn_kwargs, "extra_node_dim": node_dim, **common})
            elif name == "Proxy":
                self.models[name] = ProxyRanker(self.proxy_columns())

    def _rebuild(self, keep_encoder: bool) -> None:
        """:meth:`_build`, optionally carrying the trained contrastive encoder over."""
        old = self.encoder if keep_encoder else None
        self._build()
        if old is not None:
            self.encoder = old

    def config(self) -> dict[str, Any]:
        """Constructor options (JSON-ready; FCM options are the ones in use after a grid search)."""
        return {"members": list(self.members), "encoder": self.encoder_kwargs, "regressor": self.regressor_kwargs,
                "pairwise": self.pairwise_kwargs, "kgnn": self.kgnn_kwargs, "n_clusters": self.n_clusters,
                "m": self.m, "fcm_grid": self.fcm_grid, "min_train_accuracy": self.min_train_accuracy,
                "weight_temperature": self.weight_temperature, "weighting": self.weighting,
                "proxy": None if self.proxy is None else _proxy_dict(self.proxy), "proxy_inputs": self.proxy_inputs,
                "zero_cost": list(self.zero_cost), "seed": self.seed}

    def modules(self) -> nn.ModuleDict:
        """All trainable torch modules, keyed by member (``encoder`` for the CL encoder)."""
        mods = nn.ModuleDict()
        if self.encoder is not None:
            mods["encoder"] = self.encoder.module
        for name, model in self.models.items():
            if model.module is not None:
                mods[name] = model.module
        return mods

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _check(cgs: Sequence[CG], labels: Sequence[float] | np.ndarray | None = None) -> np.ndarray | None:
        if len(cgs) == 0:
            raise ValueError("no CGs given")
        for i, cg in enumerate(cgs):
            if not isinstance(cg, CG):
                raise TypeError(f"item {i} is a {type(cg).__name__}, not a cgpredict.CG")
        if labels is None:
            return None
        y = np.asarray(labels, dtype=np.float64).ravel()
        if y.size != len(cgs):
            raise ValueError(f"{len(cgs)} CGs but {y.size} labels")
        if not np.all(np.isfinite(y)):
            bad = int(np.flatnonzero(~np.isfinite(y))[0])
            raise ValueError(f"label {bad} ({cgs[bad].name or 'unnamed CG'}) is not finite")
        return y

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("this Predictor is not fitted; call fit() or load a checkpoint first")

    def embed(self, cgs: Sequence[CG]) -> np.ndarray:
        """Contrastive CG embeddings ``[N, dim]`` (needs a CL member; proxy features not included)."""
        if self.encoder is None:
            raise RuntimeError("this Predictor has no contrastive member, so no embeddings")
        return self.encoder.transform(cgs)

    # ------------------------------------------------------------------ proxy features
    def _proxy_dims(self) -> tuple[int, int]:
        """Widths of the proxy graph vector and of the extra node columns fed to the CL heads and
        the k-GNN (0, 0 without proxy or with ``proxy_inputs=False``)."""
        if self.proxy is None or not self.proxy_inputs:
            return 0, 0
        from cgpredict.proxies.features import NODE_FEATURES

        return len(self.proxy.graph_feature_names), len(NODE_FEATURES) + 1

    def proxy_features(self, cgs: Sequence[CG]) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """``(graph [N, G], node arrays [num_nodes, 3] per CG)`` of this predictor's proxy, or ``None``
        without one. Node columns: the proxy's node statistics and a 0/1 "measured" mask."""
        if self.proxy is None:
            return None
        from cgpredict.proxies.features import proxy_features_many

        feats = proxy_features_many(cgs, self.proxy, progress=self.progress)
        graph = np.stack([f.graph for f in feats]).astype(np.float64)
        nodes = [np.concatenate([f.node, f.node_mask[:, None].astype(np.float32)], axis=1) for f in feats]
        return graph, nodes

    def proxy_columns(self) -> tuple[str, ...]:
        """Names of the ``Proxy`` member's score columns: the proxy method, then ``zero_cost``."""
        return ((self.proxy.method,) if self.proxy is not None else ()) + self.zero_cost

    def proxy_scores(self, cgs: Sequence[CG], graph: np.ndarray | None = None) -> np.ndarray:
        """``[N, len(proxy_columns())]`` training-free scores, higher = better, NaN where a proxy
        failed: ``-ln(final loss)`` of the regression proxy (``graph``: its graph vectors, when
        already computed) and each zero-cost proxy."""
        from cgpredict.proxies.zero_cost import zero_cost_scores

        cols = []
        if self.proxy is not None:
            if graph is None:
                graph = self.proxy_features(cgs)[0]
            cols.append(np.where(graph[:, 0] > 0, -graph[:, 1], np.nan))
        cols += [zero_cost_scores(cgs, name, progress=self.progress) for name in self.zero_cost]
        return np.stack(cols, axis=1)

    def _inputs(self, cgs: Sequence[CG], accuracies: Sequence[str] = ()) -> _Inputs:
        """What the members read (see :class:`_Inputs`), plus the accuracies of the regressing
        members named in ``accuracies`` (``CL+FCM+T``, ``CL+T``, ``k-GNN``).

        The embedding (then the CL regressors on it) and the k-GNN run per chunk of the CGs, one
        chunk per torch thread, as parallel jobs (:func:`_in_parallel`); every CG's result is the
        same whatever the chunking."""
        cgs = list(cgs)
        gflops = flops_of(cgs)
        wanted = self.proxy is not None and (self.proxy_inputs or "Proxy" in self.members)
        graph, nodes = self.proxy_features(cgs) if wanted else (None, None)
        scores = self.proxy_scores(cgs, graph) if "Proxy" in self.members else None
        if graph is None or not self.proxy_inputs:
            graph = nodes = None
        heads = [n for n in accuracies if n in REGRESSION_MEMBERS and n != "k-GNN" and n in self.models]

        def embed(part: slice) -> dict[str, np.ndarray]:
            emb = self.encoder.transform(cgs[part])
            if graph is not None:
                emb = np.concatenate([emb, graph[part]], axis=1)
            return {"emb": emb, **{n: self.models[n].predict(emb, gflops[part]) for n in heads}}

        def kgnn(part: slice) -> dict[str, np.ndarray]:
            return {"k-GNN": self.models["k-GNN"].predict(cgs[part], node_extra=nodes[part] if nodes else None)}

        chunks = _halves(len(cgs), torch.get_num_threads() if fast_inference_enabled() else 1)
        jobs = [functools.partial(embed, part) for part in chunks] if self.encoder is not None else []
        if "k-GNN" in accuracies and "k-GNN" in self.models:
            jobs += [functools.partial(kgnn, part) for part in chunks]
        results = _in_parallel(jobs)
        merged = {key: np.concatenate([r[key] for r in results if key in r])
                  for key in dict.fromkeys(k for r in results for k in r)}
        emb = merged.pop("emb", None)
        return _Inputs(emb, gflops, nodes, scores, merged)

    # ------------------------------------------------------------------ training
    def fit(self, cgs: Sequence[CG], labels: Sequence[float] | np.ndarray,
            unlabelled: Sequence[CG] | None = None, refit_encoder: bool = True) -> Predictor:
        """Train every member on a labelled family (from scratch).

        Args:
            cgs, labels: the labelled training CGs and their accuracies.
            unlabelled: optional extra CGs without labels (e.g. thousands sampled from the
                family's builder): the contrastive encoder trains on them as well, and the heads'
                input standardisation and FCM clusters are fitted on labelled + unlabelled
                embeddings (with ``proxy`` set, on the labelled ones only, to avoid proxy runs).
            refit_encoder: ``False`` keeps an already trained contrastive encoder (e.g. one
                pre-trained with ``predictor.encoder.fit(unlabelled_cgs)``) and trains only the
                heads and the k-GNN.
        """
        y = self._check(cgs, labels)
        unlabelled = list(unlabelled or [])
        if unlabelled:
            self._check(unlabelled)
        if self.min_train_accuracy is not None:
            keep = np.flatnonzero(y >= self.min_train_accuracy)
            if keep.size < 4:
                raise ValueError(f"only {keep.size} training CGs reach min_train_accuracy={self.min_train_accuracy}")
            cgs, y = [cgs[i] for i in keep], y[keep]
        keep_encoder = not refit_encoder and self.encoder is not None and self.encoder.fitted
        if not refit_encoder and not keep_encoder:
            raise RuntimeError("refit_encoder=False needs an encoder that is already trained")
        self._rebuild(keep_encoder)
        if self.encoder is not None and not keep_encoder:
            self.encoder.fit(list(cgs) + unlabelled)
        emb, gflops, nodes = self._inputs(cgs)[:3]
        extra = None
        if unlabelled and emb is not None and self.proxy is None:
            extra = (self.encoder.transform(unlabelled), flops_of(unlabelled))
        if self.fcm_grid is not None and emb is not None and any("FCM" in n for n in self.members):
            grid = dict(self.fcm_grid)
            search = {k: grid.pop(k) for k in ("clusters", "ms", "val_fraction") if k in grid}
            kwargs = {k: v for k, v in self.regressor_kwargs.items() if k not in ("n_clusters", "m", "seed", "progress")}
            kwargs.update(grid)  # any other entry (e.g. epochs) overrides the regressor options during the search
            self.n_clusters, self.m, self.grid_scores_ = grid_search_fcm(
                emb, gflops, y, seed=self.seed, progress=self.progress, **search, **kwargs)
            self._rebuild(keep_encoder=True)  # heads with the chosen C and m, same trained encoder
        for name, model in self.models.items():
            if name == "k-GNN":
                model.fit(cgs, y, node_extra=nodes)
            elif name == "Proxy":
                continue  # never learns from the training family (rebuilt fresh above)
            else:
                model.fit(emb, gflops, y, unlabelled=extra)
        self.weights = equal_weights(self.members)
        self.taus_ = {}
        self.fitted = True
        return self

    def adapt(self, cgs: Sequence[CG]) -> Predictor:
        """Label-free adaptation to a target family: re-fit the CL heads' input standardisation
        (per-column mean/std of embedding and log-FLOPs) to these CGs.

        The target family's embeddings usually occupy a small, shifted region of the training
        family's space; re-centring them lets the heads discriminate within it. Weights, FCM
        clusters and label statistics are unchanged. Use it with the target family's unlabelled
        CGs before a zero-shot ranking (the *transductive* setting) — :meth:`finetune` does it on
        its fine-tuning CGs by default.
        """
        self._require_fitted()
        self._check(cgs)
        if len(cgs) < 2:
            raise ValueError("adapt() needs at least 2 CGs to estimate a spread")
        emb, gflops = self._inputs(cgs)[:2]
        self._standardize_heads(emb, gflops)
        return self

    def _standardize_heads(self, emb: np.ndarray | None, gflops: np.ndarray) -> None:
        for model in self.models.values():
            if isinstance(model, (EmbeddingRegressor, PairwiseRanker)):
                model.standardize_to(emb, gflops)

    def finetune(self, cgs: Sequence[CG], labels: Sequence[float] | np.ndarray, epochs: int = 100,
                 adapt: bool = False, weight_folds: int = 2) -> Predictor:
        """Adapt to a target family from a few labelled CGs, then weight members by Kendall τ.

        The encoder, FCM clusters and label statistics stay as fitted; with ``adapt`` the heads'
        input standardisation is re-fitted to these CGs first (:meth:`adapt`; off by default: on
        NB-201 with the shipped checkpoint it changed the 50-shot SRCC by −0.02 to +0.005, within
        seed noise); heads and the k-GNN then train ``epochs`` more epochs on the new labels, and
        the ``Proxy`` member fits its ridge.

        Ensemble weights then come from how each member ranks these CGs: with ``weighting="stacked"``
        (default) the non-negative least-squares fit of the labels' ranks on the members'
        cross-fitted ranks (:func:`~cgpredict.models.ensemble.stacked_weights`), which sees that
        the four CL members share one encoder; with ``"kendall"`` (the paper's rule)
        ``softmax(τ / weight_temperature)`` of each member's Kendall τ. ``taus_`` holds each τ.
        With ``weight_folds = K ≥ 2`` (default 2) τ is cross-fitted: a copy of the predictor is
        fine-tuned on K−1 folds and scored on the held-out fold, τ averaged over folds. That costs
        one more fine-tuning run but measures what the weights are for — how a member ranks nets
        it was not fine-tuned on; the in-sample τ (``weight_folds=0``, the paper's reading;
        ``Proxy`` then uses its leave-one-out predictions) is inflated for the members that fit 50
        nets almost perfectly (NB-201, 50 nets: in-sample τ 0.82–0.91 for the MLP heads and k-GNN
        whose held-out τ is 0.44–0.63).
        """
        self._require_fitted()
        y = self._check(cgs, labels)
        if y.size < 2:
            raise ValueError("fine-tuning needs at least 2 labelled CGs")
        if weight_folds == 1 or weight_folds < 0:
            raise ValueError(f"weight_folds must be 0 (in-sample τ) or >= 2, got {weight_folds}")
        if self.weighting == "stacked" and not weight_folds:
            raise ValueError("weighting='stacked' fits cross-fitted scores: use weight_folds >= 2, or set "
                             "weighting='kendall' for in-sample Kendall-tau weights")
        if weight_folds and y.size < 2 * weight_folds:
            raise ValueError(f"{y.size} CGs are too few for weight_folds={weight_folds}; use weight_folds=0 "
                             "with weighting='kendall' (in-sample τ)")
        self.crossfit_scores_, self.crossfit_folds_ = {}, None  # none from an earlier fine-tuning
        taus = self._cross_fitted_taus(cgs, y, epochs, adapt, weight_folds) if weight_folds else None
        self._finetune_members(cgs, y, epochs, adapt)
        if taus is None:
            self.weights, self.taus_ = kendall_weights(self._in_sample_scores(cgs), y, self.weight_temperature)
        elif self.weighting == "stacked":
            self.weights, self.taus_ = stacked_weights(self.crossfit_scores_, self.crossfit_folds_, y), taus
        else:
            self.weights, self.taus_ = softmax_weights(taus, self.weight_temperature), taus
        return self

    def _finetune_members(self, cgs: Sequence[CG], y: np.ndarray, epochs: int, adapt: bool) -> None:
        """:meth:`finetune`'s training step: heads and k-GNN ``epochs`` more epochs, ``Proxy``'s ridge."""
        emb, gflops, nodes, proxy_scores = self._inputs(cgs)[:4]
        if adapt:
            self._standardize_heads(emb, gflops)
        for name, model in self.models.items():
            if name == "k-GNN":
                model.fit(cgs, y, epochs=epochs, refit_transform=False, node_extra=nodes)
            elif name == "Proxy":
                if y.size >= 3 and np.ptp(y) > 0:
                    model.finetune(proxy_scores, gflops, y)
            elif isinstance(model, PairwiseRanker) and np.ptp(y) == 0:
                continue
            else:
                model.fit(emb, gflops, y, epochs=epochs, refit=False)

    def _in_sample_scores(self, cgs: Sequence[CG]) -> dict[str, np.ndarray]:
        """Member scores on the fine-tuning CGs for in-sample τ (``Proxy``: its leave-one-out scores)."""
        scores = self.member_scores(cgs)
        if "Proxy" in self.models and self.models["Proxy"].loo_scores_ is not None:
            scores["Proxy"] = self.models["Proxy"].loo_scores_
        return scores

    def _set_progress(self, flag: bool) -> None:
        """Switch the progress bars of this predictor and its parts on or off."""
        for part in (self, self.encoder, *self.models.values()):
            if part is not None and hasattr(part, "progress"):
                part.progress = flag

    def _cross_fitted_taus(self, cgs: Sequence[CG], y: np.ndarray, epochs: int, adapt: bool,
                           folds: int) -> dict[str, float]:
        """Per member, Kendall τ on held-out folds of copies fine-tuned on the other folds (mean).

        Keeps each net's held-out scores in ``crossfit_scores_`` (member → one score per CG, from
        the copy that did not see it) and its fold in ``crossfit_folds_``; scores of different
        folds come from different copies, so compare them only within a fold."""
        import copy

        order = np.random.default_rng(self.seed).permutation(y.size)
        per_member: dict[str, list[float]] = {name: [] for name in self.members}
        fold_of = np.empty(y.size, dtype=np.int64)
        held_scores = {name: np.full(y.size, np.nan) for name in self.members}
        for k in range(folds):
            held = np.sort(order[k::folds])
            fold_of[held] = k
            train = np.setdiff1d(np.arange(y.size), held)
            clone = copy.deepcopy(self)
            clone.weighting = "kendall"  # fine-tuned in-sample; only its member scores are used
            clone._set_progress(False)
            clone.finetune([cgs[i] for i in train], y[train], epochs=epochs, adapt=adapt, weight_folds=0)
            scores = clone.member_scores([cgs[i] for i in held])
            for name, values in scores.items():
                held_scores[name][held] = values
            _, fold_taus = kendall_weights(scores, y[held], 1.0)
            for name, tau in fold_taus.items():
                per_member[name].append(tau)
        self.crossfit_scores_, self.crossfit_folds_ = held_scores, fold_of
        return {name: float(np.mean(v)) for name, v in per_member.items()}

    def add_proxy_member(self, proxy: str | ProxyConfig | dict[str, Any] | None = "gennas",
                         zero_cost: Sequence[str] = ("synflow",)) -> Predictor:
        """Add the ``Proxy`` member to a fitted (e.g. pretrained) predictor, without retraining.

        ``proxy`` becomes this predictor's regression proxy with ``proxy_inputs=False`` if it has
        none (the trained heads keep their inputs; ``None``: zero-cost scores only); ``zero_cost``
        names the zero-cost proxies. Weights return to equal — call :meth:`finetune` to re-weight.
        """
        self._require_fitted()
        from cgpredict.proxies.zero_cost import check_names

        zero_cost = check_names(zero_cost)
        if proxy is not None:
            if self.proxy is None:
                self.proxy, self.proxy_inputs = _proxy_config(proxy), False
            elif _proxy_config(proxy) != self.proxy:
                raise ValueError("this predictor already uses another proxy config; the Proxy member must share it")
        if self.proxy is None and not zero_cost:
            raise ValueError("the Proxy member needs a proxy and/or zero_cost scores")
        self.zero_cost = zero_cost
        self.members = [n for n in ALL_MEMBERS if n in (*self.members, "Proxy")]
        fresh = ProxyRanker(self.proxy_columns())
        self.models = {n: fresh if n == "Proxy" else self.models[n] for n in self.members
                       if n == "Proxy" or n in self.models}
        self.weights, self.taus_ = equal_weights(self.members), {}
        return self

    def reweight_by_proxy(self, cgs: Sequence[CG]) -> Predictor:
        """Label-free ensemble weights for ranking these (target-family) CGs zero-shot.

        Needs the ``Proxy`` member (:meth:`add_proxy_member`). It keeps its equal share; the other
        members share the rest by ``softmax(τ / weight_temperature)`` of their Kendall τ with the
        ``Proxy`` scores on ``cgs`` (:func:`cgpredict.models.ensemble.proxy_agreement_weights`),
        so members that transferred badly to this family lose weight without any label. Pass the
        whole target set (≥ 10 CGs); the weights stay until :meth:`finetune` replaces them with
        weights from real labels. ``taus_`` holds the pseudo-τ.
        """
        self._require_fitted()
        self._check(cgs)
        if "Proxy" not in self.members:
            raise ValueError("reweight_by_proxy() needs the Proxy member: call add_proxy_member() first")
        if len(cgs) < 10:
            raise ValueError(f"reweight_by_proxy() needs at least 10 target CGs to measure agreement, got {len(cgs)}")
        self.weights, self.taus_ = proxy_agreement_weights(self.member_scores(cgs), self.weight_temperature)
        return self

    # ------------------------------------------------------------------ inference
    def member_scores(self, cgs: Sequence[CG]) -> dict[str, np.ndarray]:
        """Each member's scores (higher = better): accuracies for the regressors, merge-sort
        positions for the pairwise members, GFLOPs for ``FLOPs``, ``-log loss`` (or, fine-tuned,
        accuracies) for ``Proxy``."""
        self._require_fitted()
        self._check(cgs)
        emb, gflops, _, proxy_scores, accuracies = self._inputs(cgs, accuracies=self.members)
        out: dict[str, np.ndarray] = {}
        for name in self.members:
            if name == "FLOPs":
                out[name] = gflops
            elif name == "Proxy":
                out[name] = self.models[name].decision_function(proxy_scores, gflops)
            elif name in accuracies:
                out[name] = accuracies[name]
            else:
                out[name] = self.models[name].decision_function(emb, gflops)
        return out

    def accuracy_members(self) -> list[str]:
        """Members whose scores are accuracies: ``CL+FCM+T``, ``CL+T``, ``k-GNN`` and a fine-tuned ``Proxy``."""
        return [n for n in self.members
                if n in REGRESSION_MEMBERS or (n == "Proxy" and self.models[n].finetuned)]

    def predict(self, cgs: Sequence[CG]) -> np.ndarray:
        """Predicted accuracies: the ensemble-weighted mean of the regressing members."""
        self._require_fitted()
        self._check(cgs)
        names = self.accuracy_members()
        if not names:
            raise RuntimeError(f"members {self.members} do not regress accuracy; use rank() or score()")
        values = self._accuracy_scores(cgs, names)
        return accuracy_mean(values, self.weights, names)

    def _accuracy_scores(self, cgs: Sequence[CG], names: Sequence[str]) -> dict[str, np.ndarray]:
        """The predicted accuracies of the accuracy members ``names`` (no pairwise merge sorts)."""
        _, gflops, _, proxy_scores, accuracies = self._inputs(cgs, accuracies=names)
        return {name: (self.models[name].decision_function(proxy_scores, gflops) if name == "Proxy"
                       else accuracies[name]) for name in names}

    def score(self, cgs: Sequence[CG]) -> np.ndarray:
        """Ensemble score in ``[0, 1]`` (weighted mean of the members' normalised ranks)."""
        return combine(self.member_scores(cgs), self.weights)

    def rank(self, cgs: Sequence[CG]) -> np.ndarray:
        """Indices of ``cgs`` from predicted best to worst (ensemble score, stable)."""
        return np.argsort(-self.score(cgs), kind="stable")

    def ood(self, cgs: Sequence[CG], name: str = "target family") -> dict[str, np.ndarray]:
        """Per CG: ``max_membership`` (largest FCM membership), ``centroid_distance`` (to the nearest
        FCM centre) and ``flag`` (distance above the training family's 99th percentile). Emits an
        :class:`~cgpredict.models.fcm.OutOfDistributionWarning` when most CGs are flagged."""
        self._require_fitted()
        self._check(cgs)
        fcm_member = next((self.models[n] for n in ("CL+FCM+T", "CL+FCM+Pairwise") if n in self.models), None)
        if fcm_member is None or fcm_member.fcm is None:
            raise RuntimeError("ood() needs an FCM member (CL+FCM+T or CL+FCM+Pairwise)")
        emb, gflops = self._inputs(cgs)[:2]
        feats = fcm_member.fcm_features.transform(emb, gflops)
        return fcm_member.fcm.ood(feats, name=name)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``path/config.json`` and ``path/weights.pt``; returns the directory."""
        self._require_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "cgpredict_version": __version__,
            "feature_version": FEATURE_VERSION,
            "config": self.config(),
            "weights": self.weights,
            "taus": self.taus_,
            "grid_scores": self.grid_scores_,
            "encoder_state": None if self.encoder is None else self.encoder.state(),
            "member_state": {name: model.state() for name, model in self.models.items()},
        }
        (path / "config.json").write_text(json.dumps(doc, indent=1))
        torch.save(self.modules().state_dict(), path / "weights.pt")
        return path

    @classmethod
    def load(cls, path: str | Path, progress: bool = True) -> Predictor:
        """Load a directory written by :meth:`save` (no pickle: ``weights_only=True`` + JSON)."""
        path = Path(path)
        cfg_path, w_path = path / "config.json", path / "weights.pt"
        doc = read_checkpoint_config(path, needs="config.json and weights.pt")
        if doc.get("format") == BAG_CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} holds a bag of predictors: load it with cgpredict.PredictorBag.load "
                                  "or cgpredict.load_predictor")
        if not w_path.is_file():
            raise CheckpointError(f"{path} is not a predictor checkpoint (needs config.json and weights.pt)")
        if doc.get("format") != CHECKPOINT_FORMAT or doc.get("format_version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"{cfg_path}: checkpoint format {doc.get('format')!r} v{doc.get('format_version')} "
                                  f"is not {CHECKPOINT_FORMAT!r} v{CHECKPOINT_VERSION}")
        if doc.get("feature_version") != FEATURE_VERSION:
            raise CheckpointError(f"{path} was trained on CG features v{doc.get('feature_version')} but this "
                                  f"cgpredict computes v{FEATURE_VERSION}; retrain or use a matching cgpredict")
        check_saved_version(path, doc)
        cfg = dict(doc["config"])
        obj = cls(progress=progress, **cfg)
        if obj.encoder is not None:
            obj.encoder.load_state(doc["encoder_state"])
        for name, state in doc["member_state"].items():
            obj.models[name].load_state(state)
        state_dict = torch.load(w_path, map_location="cpu", weights_only=True)
        try:
            obj.modules().load_state_dict(state_dict)
        except RuntimeError as exc:
            raise CheckpointError(f"{w_path} does not match the configuration in {cfg_path}: {exc}") from exc
        for module in obj.modules().values():
            module.eval()
        obj.weights = {k: float(v) for k, v in doc["weights"].items()}
        obj.taus_ = dict(doc.get("taus", {}))
        obj.grid_scores_ = dict(doc.get("grid_scores", {}))
        obj.fitted = True
        return obj

    @classmethod
    def pretrained(cls, name: str = "nb101", progress: bool = True) -> Predictor:
        """Load the checkpoint shipped in ``cgpredict/checkpoints/<name>/``."""
        path = CHECKPOINT_DIR / name
        if not (path / "config.json").is_file():
            available = sorted(p.name for p in CHECKPOINT_DIR.iterdir() if p.is_dir()) if CHECKPOINT_DIR.is_dir() else []
            raise FileNotFoundError(
                f"no pretrained predictor {name!r} in {CHECKPOINT_DIR} (available: {available or 'none'}); "
                "train one with Predictor().fit(cgs, labels).save(path) and load it with Predictor.load(path)")
        return cls.load(path, progress=progress)


def accuracy_mean(values: dict[str, np.ndarray], weights: dict[str, float], names: Sequence[str]) -> np.ndarray:
    """The weighted mean of the accuracy members ``names``; their equal mean (with a warning) when the
    ensemble weights give every one of them 0 (stacked weights can), so a prediction stays defined."""
    total = sum(weights[n] for n in names)
    if not total > 0:
        warnings.warn(f"the ensemble weights give 0 to every accuracy-regressing member ({', '.join(names)}); "
                      "predicting their equal mean", RuntimeWarning, stacklevel=3)
        return sum(values[n] for n in names) / len(names)
    return sum(weights[n] / total * values[n] for n in names)


def read_checkpoint_config(path: Path, needs: str = "config.json") -> dict[str, Any]:
    """The parsed ``path/config.json`` of a checkpoint folder (``needs`` names the files a
    checkpoint must have, for the error); :class:`CheckpointError` if it is missing or not JSON."""
    cfg_path = Path(path) / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{path} is not a predictor checkpoint (needs {needs})")
    try:
        return json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON: {exc}") from exc


def check_saved_version(path: Path, doc: dict[str, Any]) -> None:
    """Refuse a checkpoint saved by a cgpredict of another major.minor version."""
    saved = str(doc.get("cgpredict_version"))
    if _minor(saved) != _minor(__version__):
        raise CheckpointError(f"{path} was saved by cgpredict {saved}, incompatible with this cgpredict "
                              f"{__version__} (major.minor must match); retrain or install cgpredict {saved}")


def _proxy_config(proxy: str | ProxyConfig | dict[str, Any] | None) -> ProxyConfig | None:
    """Normalise the ``proxy`` option to a ProxyConfig (or ``None``)."""
    if proxy is None:
        return None
    from cgpredict.proxies.features import ProxyConfig

    if isinstance(proxy, ProxyConfig):
        return proxy
    if isinstance(proxy, str):
        return ProxyConfig(method=proxy)
    if isinstance(proxy, dict):
        kwargs = dict(proxy)
        kwargs["overrides"] = tuple((str(k), v) for k, v in kwargs.get("overrides", ()))
        return ProxyConfig(**kwargs)
    raise TypeError(f"proxy must be None, 'gennas', 'eproxy', a ProxyConfig or a dict, not {type(proxy).__name__}")


def _proxy_dict(config: ProxyConfig) -> dict[str, Any]:
    """JSON-ready keyword dict of a ProxyConfig (inverse of :func:`_proxy_config`)."""
    import dataclasses

    data = dataclasses.asdict(config)
    data["overrides"] = [list(item) for item in config.overrides]
    return data

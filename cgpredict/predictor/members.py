"""The ensemble members behind one protocol: one adapter per member kind.

Pipeline position: model → CG → features → predictor inputs → **members** → ensemble → ranking/search.

Every member answers the same calls (:class:`Member`): ``build`` (construct its model from the
predictor's options), ``fit`` (on the training family), ``finetune`` (on a few target labels),
``score`` (higher = better) and, for members that regress accuracy, ``predict_from`` (the
accuracies, run by :class:`~cgpredict.predictor.inputs.Inputs` on a chunk of its inputs).
``reads`` says what a member reads: ``"embedding"`` (the contrastive CG embedding, so the
predictor builds an encoder), ``"graph"`` (the CGs themselves), ``"flops"`` or ``"proxy"``.

========================  ==================================================================
member                    adapter (model)
========================  ==================================================================
``CL+FCM+T``, ``CL+T``    :class:`ClRegressor` (:class:`~cgpredict.models.heads.EmbeddingRegressor`)
``CL+Pairwise``,          :class:`ClPairwise` (:class:`~cgpredict.models.heads.PairwiseRanker`)
``CL+FCM+Pairwise``
``k-GNN``                 :class:`KGNN` (:class:`~cgpredict.models.gnn.GNNPredictor`)
``FLOPs``                 :class:`Flops` (no model)
``Proxy``                 :class:`Proxy` (:class:`~cgpredict.models.proxy_member.ProxyRanker`)
========================  ==================================================================

Adding a member kind means one adapter class here and one entry in :data:`MEMBER_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from cgpredict.models.gnn import GNNPredictor
from cgpredict.models.heads import EmbeddingRegressor, PairwiseRanker
from cgpredict.models.input_fits import InputFits
from cgpredict.models.proxy_member import ProxyRanker

if TYPE_CHECKING:
    from torch import nn

    from cgpredict.predictor.inputs import Inputs


@dataclass(frozen=True)
class BuildSpec:
    """What a member needs to construct its model (from the predictor's options)."""

    emb_dim: int  #: width of the CL heads' inputs (embedding + proxy graph vector)
    node_dim: int  #: extra node columns of the k-GNN (proxy statistics + mask)
    regressor: dict[str, Any]
    pairwise: dict[str, Any]
    kgnn: dict[str, Any]
    n_clusters: int
    m: float
    seed: int
    progress: bool
    proxy_columns: tuple[str, ...]


class Member(Protocol):
    """One ensemble member (see the module docstring)."""

    name: str
    reads: ClassVar[str]
    model: Any

    @property
    def regresses(self) -> bool:
        """Whether :meth:`score` returns accuracies (so ``Predictor.predict`` averages it)."""

    @property
    def module(self) -> nn.Module | None:
        """The member's trainable torch module (``None`` without one)."""

    def build(self, spec: BuildSpec) -> None:
        """Construct the (untrained) model."""

    def fit(self, inputs: Inputs, y: np.ndarray, extra: tuple[np.ndarray, np.ndarray] | None,
            shared: InputFits) -> None:
        """Train on the training family (``extra``: unlabelled ``(embeddings, gflops)``)."""

    def adapt(self, inputs: Inputs) -> None:
        """Label-free adaptation to these (target) CGs (the CL heads re-fit their input scaling)."""

    def finetune(self, inputs: Inputs, y: np.ndarray, epochs: int) -> None:
        """Train further on a few labelled target CGs."""

    def score(self, inputs: Inputs) -> np.ndarray:
        """Scores of ``inputs.cgs``, higher = better."""

    def in_sample_scores(self) -> np.ndarray | None:
        """Honest scores of the fine-tuning CGs for in-sample τ (e.g. leave-one-out), if it has them."""

    def state(self) -> dict[str, Any]:
        """JSON-ready fitted state (no tensors)."""

    def load_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""


class _ModelMember:
    """Shared plumbing of the members that wrap a model object."""

    reads: ClassVar[str] = ""
    regresses: bool = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.model: Any = None

    @property
    def module(self) -> nn.Module | None:
        return getattr(self.model, "module", None)

    def adapt(self, inputs: Inputs) -> None:
        return None

    def in_sample_scores(self) -> np.ndarray | None:
        return None

    def state(self) -> dict[str, Any]:
        return self.model.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state(state)


class _EmbeddingMember(_ModelMember):
    """A head on the contrastive embedding (+ GFLOPs): one MLP or FCM-mixed heads (``fcm``); the
    subclass names its model class and the option group (``regressor``/``pairwise``) it reads."""

    reads = "embedding"
    model_class: ClassVar[type]
    options: ClassVar[str]

    def __init__(self, name: str, fcm: bool) -> None:
        super().__init__(name)
        self.fcm = fcm

    def build(self, spec: BuildSpec) -> None:
        fcm = {"n_clusters": spec.n_clusters, "m": spec.m} if self.fcm else {"n_clusters": 0}
        self.model = self.model_class(spec.emb_dim, **{**getattr(spec, self.options), **fcm, "seed": spec.seed,
                                                       "progress": spec.progress})

    def fit(self, inputs: Inputs, y: np.ndarray, extra: tuple[np.ndarray, np.ndarray] | None,
            shared: InputFits) -> None:
        self.model.fit(inputs.emb, inputs.gflops, y, unlabelled=extra, shared=shared)

    def adapt(self, inputs: Inputs) -> None:
        self.model.standardize_to(inputs.emb, inputs.gflops)

    def finetune(self, inputs: Inputs, y: np.ndarray, epochs: int) -> None:
        self.model.fit(inputs.emb, inputs.gflops, y, epochs=epochs, refit=False)


class ClRegressor(_EmbeddingMember):
    """``CL+T`` (one MLP) or ``CL+FCM+T`` (FCM-mixed MLP heads) on the contrastive embedding."""

    regresses = True
    model_class = EmbeddingRegressor
    options = "regressor"

    def predict_from(self, emb: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        """Predicted accuracies of embedding rows (one chunk of a call)."""
        return self.model.predict(emb, gflops)

    def score(self, inputs: Inputs) -> np.ndarray:
        return inputs.accuracy(self.name)


class ClPairwise(_EmbeddingMember):
    """``CL+Pairwise`` / ``CL+FCM+Pairwise``: a pairwise classifier, ranked by merge sort."""

    model_class = PairwiseRanker
    options = "pairwise"

    def finetune(self, inputs: Inputs, y: np.ndarray, epochs: int) -> None:
        if np.ptp(y) == 0:
            return  # no pair with different labels to learn from
        super().finetune(inputs, y, epochs)

    def score(self, inputs: Inputs) -> np.ndarray:
        return self.model.decision_function(inputs.emb, inputs.gflops)


class KGNN(_ModelMember):
    """``k-GNN``: an end-to-end k-GNN regressor on the CG (+ proxy node columns)."""

    reads = "graph"
    regresses = True

    def build(self, spec: BuildSpec) -> None:
        self.model = GNNPredictor("kgnn", **{**spec.kgnn, "extra_node_dim": spec.node_dim, "seed": spec.seed,
                                             "progress": spec.progress})

    def fit(self, inputs: Inputs, y: np.ndarray, extra: tuple[np.ndarray, np.ndarray] | None,
            shared: InputFits) -> None:
        self.model.fit(inputs.cgs, y, node_extra=inputs.nodes)

    def finetune(self, inputs: Inputs, y: np.ndarray, epochs: int) -> None:
        self.model.fit(inputs.cgs, y, epochs=epochs, refit_transform=False, node_extra=inputs.nodes)

    def predict_from(self, cgs: list, nodes: list[np.ndarray] | None) -> np.ndarray:
        """Predicted accuracies of some CGs (one chunk of a call)."""
        return self.model.predict(cgs, node_extra=nodes)

    def score(self, inputs: Inputs) -> np.ndarray:
        return inputs.accuracy(self.name)


class Flops(_ModelMember):
    """``FLOPs``: the CG's GMACs, bigger is better (a zero-cost baseline; nothing to train)."""

    reads = "flops"

    @property
    def module(self) -> None:
        return None

    def build(self, spec: BuildSpec) -> None:
        self.model = None

    def fit(self, inputs: Inputs, y: np.ndarray, extra: tuple[np.ndarray, np.ndarray] | None,
            shared: InputFits) -> None:
        return None

    def finetune(self, inputs: Inputs, y: np.ndarray, epochs: int) -> None:
        return None

    def score(self, inputs: Inputs) -> np.ndarray:
        return inputs.gflops

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        return None


class Proxy(_ModelMember):
    """``Proxy``: training-free proxy scores; a ridge on ``[scores, ln GFLOPs]`` once fine-tuned."""

    reads = "proxy"

    @property
    def regresses(self) -> bool:  # type: ignore[override]
        return self.model is not None and self.model.finetuned

    def build(self, spec: BuildSpec) -> None:
        self.model = ProxyRanker(spec.proxy_columns)

    def fit(self, inputs: Inputs, y: np.ndarray, extra: tuple[np.ndarray, np.ndarray] | None,
            shared: InputFits) -> None:
        return None  # never learns from the training family

    def finetune(self, inputs: Inputs, y: np.ndarray, epochs: int) -> None:
        if y.size >= 3 and np.ptp(y) > 0:
            self.model.finetune(inputs.proxy_scores, inputs.gflops, y)

    def score(self, inputs: Inputs) -> np.ndarray:
        return self.model.decision_function(inputs.proxy_scores, inputs.gflops)

    def in_sample_scores(self) -> np.ndarray | None:
        """Leave-one-out predictions on the fine-tuning CGs (honest in-sample τ), if fine-tuned."""
        return self.model.loo_scores_


#: Member name → factory of its adapter, in the paper's order (``Proxy`` last: optional).
MEMBER_KINDS: dict[str, Callable[[], Member]] = {
    "CL+FCM+T": lambda: ClRegressor("CL+FCM+T", fcm=True),
    "CL+T": lambda: ClRegressor("CL+T", fcm=False),
    "CL+Pairwise": lambda: ClPairwise("CL+Pairwise", fcm=False),
    "CL+FCM+Pairwise": lambda: ClPairwise("CL+FCM+Pairwise", fcm=True),
    "k-GNN": lambda: KGNN("k-GNN"),
    "FLOPs": lambda: Flops("FLOPs"),
    "Proxy": lambda: Proxy("Proxy"),
}

#: Every member of the paper's ensemble, in the paper's order.
MEMBERS: tuple[str, ...] = ("CL+FCM+T", "CL+T", "CL+Pairwise", "CL+FCM+Pairwise", "k-GNN", "FLOPs")
#: Members outside the paper's ensemble, added on request (``Proxy`` needs ``proxy`` or ``zero_cost``).
OPTIONAL_MEMBERS: tuple[str, ...] = ("Proxy",)
ALL_MEMBERS: tuple[str, ...] = MEMBERS + OPTIONAL_MEMBERS
#: Members that read the contrastive embedding (the predictor builds an encoder for them).
CL_MEMBERS: frozenset[str] = frozenset(n for n, make in MEMBER_KINDS.items() if make().reads == "embedding")
#: Members that always regress accuracy (``Proxy`` too once fine-tuned).
REGRESSION_MEMBERS: frozenset[str] = frozenset(n for n, make in MEMBER_KINDS.items()
                                               if n != "Proxy" and make().regresses)

"""The proxy wiring of a predictor: its proxy option, proxy inputs and the ``Proxy`` member.

Pipeline position: model → CG → proxy scores (:mod:`cgpredict.proxies`) → **predictor proxy
wiring** → members → ensemble → ranking/search.

:class:`ProxyWiring` is the part of :class:`~cgpredict.predictor.Predictor` that knows about
regression proxies and zero-cost proxies: the ``proxy`` option (normalised to a
:class:`~cgpredict.proxies.ProxyConfig` on assignment), the proxy features and training-free
scores of a list of CGs, and :meth:`ProxyWiring.add_proxy_member`, which adds the training-free
``Proxy`` member to a fitted predictor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cgpredict.cg import CG
from cgpredict.predictor import inputs as inp
from cgpredict.predictor.members import ALL_MEMBERS

if TYPE_CHECKING:
    from cgpredict.proxies.features import ProxyConfig


class ProxyWiring:
    """Proxy options and inputs of a predictor (mixed into :class:`~cgpredict.predictor.Predictor`)."""

    members: list[str]
    members_: dict[str, Any]
    proxy_inputs: bool
    zero_cost: tuple[str, ...]
    progress: bool

    @property
    def proxy(self) -> ProxyConfig | None:
        """The regression-proxy configuration (``None``: no proxy)."""
        return self._proxy

    @proxy.setter
    def proxy(self, value: str | ProxyConfig | dict[str, Any] | None) -> None:
        self._proxy = inp.proxy_config(value)

    def _proxy_dims(self) -> tuple[int, int]:
        return inp.proxy_dims(self.proxy, self.proxy_inputs)

    def proxy_features(self, cgs: Sequence[CG]) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """This predictor's proxy features of ``cgs`` (:func:`~cgpredict.predictor.inputs.proxy_features`)."""
        return inp.proxy_features(cgs, self.proxy, self.progress)

    def proxy_columns(self) -> tuple[str, ...]:
        """Names of the ``Proxy`` member's score columns: the proxy method, then ``zero_cost``."""
        return ((self.proxy.method,) if self.proxy is not None else ()) + tuple(self.zero_cost)

    def proxy_scores(self, cgs: Sequence[CG], graph: np.ndarray | None = None) -> np.ndarray:
        """The ``Proxy`` member's score columns (:func:`~cgpredict.predictor.inputs.proxy_scores`)."""
        return inp.proxy_scores(cgs, self.proxy, self.zero_cost, graph, self.progress)

    def add_proxy_member(self, proxy: str | ProxyConfig | dict[str, Any] | None = "gennas",
                         zero_cost: Sequence[str] = ("synflow",)) -> ProxyWiring:
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
                self.proxy, self.proxy_inputs = proxy, False
            elif inp.proxy_config(proxy) != self.proxy:
                raise ValueError("this predictor already uses another proxy config; the Proxy member must share it")
        if self.proxy is None and not zero_cost:
            raise ValueError("the Proxy member needs a proxy and/or zero_cost scores")
        self.zero_cost = zero_cost
        self.members = [n for n in ALL_MEMBERS if n in (*self.members, "Proxy")]
        fresh = self._new_member("Proxy")
        self.members_ = {n: fresh if n == "Proxy" else self.members_[n] for n in self.members}
        self._reset_weights()
        return self

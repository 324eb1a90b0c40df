"""What the ensemble members read for one list of CGs, computed at most once per call.

Pipeline position: model → CG → features → **predictor inputs** → members → ensemble → ranking/search.

:class:`Inputs` is a lazy per-call bundle: the GFLOPs, the contrastive embedding (with the proxy
graph vector appended when the predictor feeds proxy features to its heads), the k-GNN's extra
node columns, the ``Proxy`` member's training-free scores, and the accuracies of the regressing
members. Each is computed on first use and kept, so ``rank`` embeds the CGs once however many
members read the embedding, and nothing is computed that no member reads.

With ``Predictor(canonical=True)`` (the default) the members read the canonical form of each CG
(:func:`cgpredict.canonical.canonicalize`, cached per CG object by :func:`member_cgs`), so every
source of one network (``from_torch``, ONNX dynamo, legacy or optimised exports) gets one
prediction; the proxies still run the CG as given (``Inputs.sources``, see :func:`member_cgs`).

The embedding (then the regressing heads on it) and the graph members run per chunk of the CGs,
one chunk per torch thread, as parallel jobs (:func:`in_parallel`); every CG's result is the same
whatever the chunking.
"""

from __future__ import annotations

import copy
import functools
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cgpredict.cg import CG
from cgpredict.gc_pause import gc_paused
from cgpredict.models.dedup import fast_inference_enabled

if TYPE_CHECKING:
    from cgpredict.predictor.core import Predictor
    from cgpredict.proxies.features import ProxyConfig


def in_parallel(jobs: Sequence[Callable[[], Any]]) -> list[Any]:
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


def chunks(n: int, parts: int) -> list[slice]:
    """``parts`` contiguous slices covering ``range(n)`` (fewer when ``n`` is small)."""
    bounds = np.linspace(0, n, max(1, min(parts, n)) + 1).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def gflops_of(cgs: Sequence[CG]) -> np.ndarray:
    """GMACs (torchvision convention) per CG, from :attr:`CG.flops`.

    Rounded to float32 and back: the members were trained on the value the PyG conversion
    stores (``CG.to_pyg().flops``, a float32 tensor), so this gives bit-identical inputs without
    a round trip through PyG ``Data``."""
    return np.array([cg.flops / 1e9 for cg in cgs], dtype=np.float32).astype(np.float64)


def check_cgs(cgs: Sequence[CG], labels: Sequence[float] | np.ndarray | None = None) -> np.ndarray | None:
    """Validate a list of CGs (and their labels): non-empty, all :class:`CG`, finite labels of
    the same count; returns the labels as a float64 array (``None`` without labels)."""
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


_canonical_by_object: dict[int, tuple[weakref.ref, CG, list[int]]] = {}


def _forget(key: int) -> None:
    _canonical_by_object.pop(key, None)


def _canonical_entry(cg: CG) -> tuple[CG, list[int]]:
    """``(canonical form, origin)`` of ``cg``, cached per CG object: ``origin[i]`` is the index in
    ``cg.nodes`` of the node that canonical node ``i`` comes from.

    The origins are read by canonicalizing a copy whose node names are the node indices (names
    are free text that :func:`~cgpredict.canonical.canonicalize` keeps and ignores: the canonical
    structure and node order do not depend on them), then putting the real names back."""
    key = id(cg)
    hit = _canonical_by_object.get(key)
    if hit is not None and hit[0]() is cg:
        return hit[1], hit[2]
    from cgpredict.canonical import canonicalize

    tagged = copy.copy(cg)
    tagged.nodes = []
    for i, node in enumerate(cg.nodes):  # shallow copies (canonicalize copies what it changes)
        twin = node.__class__.__new__(node.__class__)  # as copy.copy, without its ~2 µs dispatch
        twin.__dict__.update(node.__dict__)
        twin.name = str(i)
        tagged.nodes.append(twin)
    canon = canonicalize(tagged)
    origin = [int(node.name) for node in canon.nodes]
    for node, i in zip(canon.nodes, origin):
        node.name = cg.nodes[i].name
    _canonical_by_object[key] = (weakref.ref(cg, lambda _r, k=key: _forget(k)), canon, origin)
    return canon, origin


def canonical_of(cg: CG) -> CG:
    """:func:`cgpredict.canonical.canonicalize` of ``cg``, cached per CG object.

    Keyed by identity and dropped when ``cg`` is garbage-collected (as the PyG conversions of
    :func:`cgpredict.models.graph_data.cg_data`): repeated calls on the same objects pay once, and
    the canonical CG returned is the same object each time, so its own cached PyG conversion is
    reused too. A CG changed in place after a call keeps its old canonical form (as its PyG one)."""
    return _canonical_entry(cg)[0]


def canonical_node_rows(cg: CG, rows: np.ndarray) -> np.ndarray:
    """Per-node rows of ``cg`` (``[cg.num_nodes, k]``) carried onto the nodes of its canonical
    form: each canonical node takes the row of the node it comes from (a convolution that absorbed
    a batch norm keeps the convolution's row)."""
    return rows[_canonical_entry(cg)[1]]


def clear_canonical_cache() -> None:
    """Drop all cached canonical forms (:func:`canonical_of`); for cold-start timings."""
    _canonical_by_object.clear()


def member_cgs(cgs: Sequence[CG], canonical: bool) -> list[CG]:
    """The CGs a predictor's members read: the canonical forms (:func:`canonical_of`) when
    ``canonical``, else ``cgs`` as given.

    Proxies (the regression proxy, zero-cost proxies) are *not* given these: they train or probe
    the network rebuilt from the CG (``CG.to_module()``), and folding batch norm changes that
    network — a conv net without its batch norms starts from other activation statistics and
    trains differently in the few proxy steps, so the proxy would score another network than
    the one deployed. They keep the CG as given (:attr:`Inputs.sources`); the proxy's per-node
    columns that the k-GNN reads are carried onto the canonical nodes (:func:`canonical_node_rows`).
    So proxy scores, unlike the learned members, still depend on the source where the source
    itself folded batch norm (a legacy ONNX export)."""
    if not canonical:
        return list(cgs)
    with gc_paused():  # many small containers, no cycles (cgpredict.gc_pause)
        return [canonical_of(cg) for cg in cgs]


def proxy_config(proxy: str | ProxyConfig | dict[str, Any] | None) -> ProxyConfig | None:
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


def proxy_dict(config: ProxyConfig) -> dict[str, Any]:
    """JSON-ready keyword dict of a ProxyConfig (inverse of :func:`proxy_config`)."""
    import dataclasses

    data = dataclasses.asdict(config)
    data["overrides"] = [list(item) for item in config.overrides]
    return data


def proxy_dims(config: ProxyConfig | None, proxy_inputs: bool) -> tuple[int, int]:
    """Widths of the proxy graph vector (CL heads) and node columns (k-GNN) a predictor feeds its
    members: 0, 0 without a proxy or with ``proxy_inputs=False``."""
    if config is None or not proxy_inputs:
        return 0, 0
    from cgpredict.proxies.features import NODE_FEATURES

    return len(config.graph_feature_names), len(NODE_FEATURES) + 1


def proxy_features(cgs: Sequence[CG], config: ProxyConfig | None,
                   progress: bool = True) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """``(graph [N, G], node arrays [num_nodes, 3] per CG)`` of the proxy ``config`` (disk-cached),
    or ``None`` without one. Node columns: the proxy's node statistics and a 0/1 "measured" mask."""
    if config is None:
        return None
    from cgpredict.proxies.features import proxy_features_many

    feats = proxy_features_many(cgs, config, progress=progress)
    graph = np.stack([f.graph for f in feats]).astype(np.float64)
    return graph, [np.concatenate([f.node, f.node_mask[:, None].astype(np.float32)], axis=1) for f in feats]


def proxy_scores(cgs: Sequence[CG], config: ProxyConfig | None, zero_cost: Sequence[str],
                 graph: np.ndarray | None = None, progress: bool = True) -> np.ndarray:
    """``[N, columns]`` training-free scores, higher = better, NaN where a proxy failed:
    ``-ln(final loss)`` of the regression proxy ``config`` (``graph``: its graph vectors, when
    already computed) and each zero-cost proxy of ``zero_cost``."""
    from cgpredict.proxies.zero_cost import zero_cost_scores

    cols = []
    if config is not None:
        graph = proxy_features(cgs, config, progress)[0] if graph is None else graph
        cols.append(np.where(graph[:, 0] > 0, -graph[:, 1], np.nan))
    cols += [zero_cost_scores(cgs, name, progress=progress) for name in zero_cost]
    return np.stack(cols, axis=1)


class Inputs:
    """The lazy per-call bundle of what ``predictor``'s members read for ``cgs``."""

    def __init__(self, predictor: Predictor, cgs: Sequence[CG]) -> None:
        self.predictor = predictor
        #: the CGs as given (what the proxies run).
        self.sources = list(cgs)
        #: what the members read (canonical forms with ``predictor.canonical``; :func:`member_cgs`).
        self.cgs = member_cgs(self.sources, predictor.canonical)
        self._emb: np.ndarray | None = None
        self._accuracies: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.cgs)

    @functools.cached_property
    def gflops(self) -> np.ndarray:
        """GMACs per CG (:func:`gflops_of`)."""
        return gflops_of(self.cgs)

    @functools.cached_property
    def proxy_features(self) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """The predictor's proxy features ``(graph, nodes)`` of these CGs (``None`` without a proxy)."""
        return self.predictor.proxy_features(self.sources)

    @property
    def graph(self) -> np.ndarray | None:
        """The proxy graph vectors the CL heads read (``None`` unless ``proxy_inputs``)."""
        if self.predictor.proxy is None or not self.predictor.proxy_inputs:
            return None
        return self.proxy_features[0]

    @functools.cached_property
    def nodes(self) -> list[np.ndarray] | None:
        """The k-GNN's extra node columns (``None`` unless ``proxy_inputs``), one row per node of
        the CGs the members read (measured on :attr:`sources`, carried onto canonical nodes)."""
        if self.predictor.proxy is None or not self.predictor.proxy_inputs:
            return None
        rows = self.proxy_features[1]
        if not self.predictor.canonical:
            return rows
        return [canonical_node_rows(cg, r) for cg, r in zip(self.sources, rows)]

    @functools.cached_property
    def proxy_scores(self) -> np.ndarray:
        """The ``Proxy`` member's training-free score columns (:meth:`Predictor.proxy_scores`)."""
        feats = self.proxy_features if self.predictor.proxy is not None else None
        return self.predictor.proxy_scores(self.sources, None if feats is None else feats[0])

    @property
    def emb(self) -> np.ndarray | None:
        """The CL heads' inputs ``[N, dim]`` (``None`` without a contrastive encoder)."""
        if self._emb is None and self.predictor.encoder_ is not None:
            self.prepare(())
        return self._emb

    def accuracy(self, name: str) -> np.ndarray:
        """Predicted accuracies of the regressing member ``name`` (computed with :meth:`prepare`)."""
        if name not in self._accuracies:
            self.prepare((name,))
        return self._accuracies[name]

    def prepare(self, names: Sequence[str]) -> None:
        """Compute the embedding and the accuracies of the regressing members ``names`` that
        read the embedding or the graph, as parallel per-chunk jobs."""
        members = self.predictor.members_
        wanted = [n for n in names if n in members and members[n].regresses and n not in self._accuracies]
        heads = [n for n in wanted if members[n].reads == "embedding"]
        graph_members = [n for n in wanted if members[n].reads == "graph"]
        encoder = self.predictor.encoder_
        need_emb = encoder is not None and (self._emb is None or heads)
        if not need_emb and not graph_members:
            return
        cgs, gflops = self.cgs, self.gflops
        graph = self.graph if need_emb else None
        nodes = self.nodes if graph_members else None

        def embed(part: slice) -> dict[str, np.ndarray]:
            emb = encoder.transform(cgs[part])
            if graph is not None:
                emb = np.concatenate([emb, graph[part]], axis=1)
            return {"emb": emb, **{n: members[n].predict_from(emb, gflops[part]) for n in heads}}

        def on_graphs(part: slice) -> dict[str, np.ndarray]:
            extra = nodes[part] if nodes else None
            return {n: members[n].predict_from(cgs[part], extra) for n in graph_members}

        parts = chunks(len(cgs), torch.get_num_threads() if fast_inference_enabled() else 1)
        jobs = [functools.partial(embed, part) for part in parts] if need_emb else []
        jobs += [functools.partial(on_graphs, part) for part in parts] if graph_members else []
        results = in_parallel(jobs)
        merged = {key: np.concatenate([r[key] for r in results if key in r])
                  for key in dict.fromkeys(k for r in results for k in r)}
        emb = merged.pop("emb", None)
        if emb is not None:
            self._emb = emb
        self._accuracies.update(merged)

"""Proxy features of a CG — graph-level and node-level arrays aligned with ``cg.nodes`` — with a disk cache.

Pipeline position: model → CG → **proxy features** (this module) → features → predictor → ranking.

:func:`proxy_features` runs a regression proxy (:func:`cgpredict.proxies.score` on the CG, rebuilt
with ``CG.to_module()``) and turns the result into fixed-size numpy arrays a predictor can consume:

Graph level (``ProxyFeatures.graph``, names in :data:`GRAPH_FEATURES` extended per stage):
    ``available`` (1 when the proxy ran, else 0), ``log_loss`` = ln(final loss), ``log_stage_k`` =
    ln(final MSE of stage tap k) for the ``num_stages`` deepest taps (deepest last; missing stages
    repeat the shallowest present one), ``rel_drop`` = (initial − final) / initial loss.
Node level (``ProxyFeatures.node``, shape ``(num_nodes, 2)``, columns :data:`NODE_FEATURES`):
    ``log_act`` = ln(1 + RMS of the node's output) and ``grad`` = gradient norm of the loss w.r.t.
    that output divided by the largest one in the graph (in [0, 1]), both on the last training
    step; ``node_mask[i]`` is True where node i got statistics.

**Neutral fill.** Targets are standardised, so a network that learns nothing has loss ≈ 1: ln 1 = 0.
A network without proxy features (not run, failed, or a node after the last tap such as the
classifier) therefore gets **zeros** everywhere, ``available = 0`` and ``node_mask = False``: the
same values as "no signal", so such nets stay predictable with the same feature width.

Cache: one ``.npz`` per (CG hash, proxy config) under ``$CGPREDICT_CACHE/proxies`` (default
``~/.cache/cgpredict/proxies``), written atomically (temporary file + ``os.replace``); failures are
cached too, so a re-run resumes without recomputing anything. Each file carries the key it was
written for (its own name) and a SHA-256 of its arrays and metadata; a file that is truncated
(``BadZipFile``), edited, renamed or nested too deeply is dropped, reported once
(:class:`cgpredict.datasets.cache.CacheWarning`) and recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgpredict.cg import CG
from cgpredict.fileio import atomic_writer, remove_orphans
from cgpredict.quiet import progress_bar

__all__ = ["GRAPH_FEATURES", "INIT_SCHEMES", "NODE_FEATURES", "ProxyConfig", "ProxyFeatures", "apply_init", "cache_root", "neutral",
           "proxy_features", "proxy_features_many"]

GRAPH_FEATURES: tuple[str, ...] = ("available", "log_loss", "rel_drop")
NODE_FEATURES: tuple[str, ...] = ("log_act", "grad")
CACHE_VERSION = 2  # 2: files carry their key and a checksum
INIT_SCHEMES: tuple[str, ...] = ("default", "kaiming_normal", "xavier_uniform", "orthogonal")


@dataclass(frozen=True)
class ProxyConfig:
    """What a proxy run depends on besides the network (part of the cache key).

    Attributes:
        method: ``"gennas"`` or ``"eproxy"``.
        preset: method preset (``None`` = the method's default).
        iterations: SGD steps (``None`` = the preset's).
        batch_size, target_size, seed, inputs: as in :func:`cgpredict.proxies.score`.
        num_stages: stage losses kept in the graph vector (fixed width).
        init: weight init of the network's conv/linear layers before training: ``default``
            (PyTorch's), ``kaiming_normal`` (fan-out, ReLU gain), ``xavier_uniform`` or ``orthogonal``.
        overrides: extra config fields replacing the preset's (e.g. from the proxy-task search).
    """

    method: str = "eproxy"
    preset: str | None = None
    iterations: int | None = None
    batch_size: int = 16
    target_size: int = 8
    seed: int = 0
    inputs: str = "natural"
    num_stages: int = 3
    init: str = "default"
    overrides: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.method not in ("gennas", "eproxy"):
            raise ValueError(f"unknown proxy method {self.method!r}; expected 'gennas' or 'eproxy'")
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"unknown init scheme {self.init!r}; expected one of {INIT_SCHEMES}")
        if self.num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {self.num_stages}")

    def key(self) -> str:
        """A stable text form of the config."""
        data = dataclasses.asdict(self)
        data["overrides"] = [[k, repr(v)] for k, v in self.overrides]
        return json.dumps(data, sort_keys=True)

    @property
    def graph_feature_names(self) -> tuple[str, ...]:
        """Names of the graph-level columns for this config."""
        stages = tuple(f"log_stage{k}" for k in range(1, self.num_stages + 1))
        return GRAPH_FEATURES[:2] + stages + GRAPH_FEATURES[2:]


@dataclass
class ProxyFeatures:
    """Proxy features of one CG (see the module docstring for columns and the neutral fill).

    Attributes:
        graph: ``float32`` vector, columns ``config.graph_feature_names``.
        node: ``float32`` array ``(num_nodes, 2)``, columns :data:`NODE_FEATURES`.
        node_mask: ``bool`` array ``(num_nodes,)``.
        loss, initial_loss, stage_losses, taps, seconds, error: the raw proxy result.
        cached: whether this came from the disk cache.
    """

    graph: np.ndarray
    node: np.ndarray
    node_mask: np.ndarray
    loss: float = math.nan
    initial_loss: float = math.nan
    stage_losses: list[float] = field(default_factory=list)
    taps: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        """True when the proxy ran and gave a finite loss."""
        return self.error is None and math.isfinite(self.loss)

    @property
    def score(self) -> float:
        """``-loss`` (higher is better), NaN if the run failed."""
        return -self.loss if self.ok else math.nan


def cache_root() -> Path:
    """``proxies/`` under the package's cache folder (:func:`cgpredict.datasets.cache.cache_dir`)."""
    from cgpredict.datasets.cache import cache_dir  # the one cache-folder lookup

    return cache_dir() / "proxies"


def _cache_path(cg: CG, config: ProxyConfig, root: Path) -> Path:
    key = hashlib.sha256(f"{CACHE_VERSION}|{cg.hash()}|{config.key()}".encode()).hexdigest()
    return root / key[:2] / f"{key}.npz"


def neutral(cg: CG, config: ProxyConfig, error: str | None = None) -> ProxyFeatures:
    """The neutral fill: zeros, ``available = 0``, no node statistics."""
    n = cg.num_nodes
    return ProxyFeatures(
        graph=np.zeros(len(config.graph_feature_names), dtype=np.float32),
        node=np.zeros((n, len(NODE_FEATURES)), dtype=np.float32),
        node_mask=np.zeros(n, dtype=bool),
        error=error,
    )


def _log(x: float) -> float:
    return math.log(max(float(x), 1e-12))


def _from_result(cg: CG, config: ProxyConfig, result: Any) -> ProxyFeatures:
    if not result.ok:
        feats = neutral(cg, config, result.error or "non-finite loss")
        feats.seconds = result.seconds
        return feats
    stages = list(result.stage_losses)[-config.num_stages:]
    while len(stages) < config.num_stages:
        stages.insert(0, stages[0])
    rel = (result.initial_loss - result.loss) / result.initial_loss if result.initial_loss > 0 else 0.0
    graph = np.array([1.0, _log(result.loss), *(_log(s) for s in stages), rel], dtype=np.float32)
    node = np.zeros((cg.num_nodes, len(NODE_FEATURES)), dtype=np.float32)
    mask = np.zeros(cg.num_nodes, dtype=bool)
    stats = {k: v for k, v in result.node_stats.items() if isinstance(k, int) and 0 <= k < cg.num_nodes}
    gmax = max((s.grad_norm for s in stats.values()), default=0.0)
    for nid, s in stats.items():
        if not (math.isfinite(s.act_rms) and math.isfinite(s.grad_norm)):
            continue
        node[nid, 0] = math.log1p(s.act_rms)
        node[nid, 1] = s.grad_norm / gmax if gmax > 0 else 0.0
        mask[nid] = True
    return ProxyFeatures(graph=graph, node=node, node_mask=mask, loss=result.loss,
                         initial_loss=result.initial_loss, stage_losses=list(result.stage_losses),
                         taps=list(result.taps), seconds=result.seconds)


def _checksum(key: str, graph: np.ndarray, node: np.ndarray, node_mask: np.ndarray, meta_text: str) -> str:
    digest = hashlib.sha256(key.encode())
    for array in (graph, node, node_mask):
        digest.update(f"|{array.dtype.str}{array.shape}|".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(meta_text.encode())
    return digest.hexdigest()


def _save(path: Path, feats: ProxyFeatures) -> None:
    """Write ``feats`` to cache file ``path`` atomically, with its key (the file's stem) and checksum."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"loss": feats.loss, "initial_loss": feats.initial_loss, "stage_losses": feats.stage_losses,
            "taps": feats.taps, "seconds": feats.seconds, "error": feats.error}
    meta_text = json.dumps(meta)
    graph = np.asarray(feats.graph, dtype=np.float32)
    node = np.asarray(feats.node, dtype=np.float32)
    mask = np.asarray(feats.node_mask, dtype=bool)
    check = _checksum(path.stem, graph, node, mask, meta_text)
    with atomic_writer(path) as handle:
        np.savez(handle, graph=graph, node=node, node_mask=mask, meta=np.array(meta_text),
                 key=np.array(path.stem), sha256=np.array(check))
    remove_orphans(path.parent, path.name)  # temp files of writers killed over an hour ago


def _load(path: Path, cg: CG) -> ProxyFeatures | None:
    """The cached features in ``path``, or ``None`` (recompute) when the file is absent, unreadable,
    truncated, written for another key, fails its checksum or does not fit ``cg``; a bad file is
    reported once (:func:`cgpredict.datasets.cache.report_cache_problem`)."""
    import zipfile
    import zlib

    from cgpredict.datasets.cache import report_cache_problem

    try:
        with np.load(path, allow_pickle=False) as data:
            graph, node, mask = data["graph"], data["node"], data["node_mask"]
            meta_text = str(data["meta"])
            key, check = str(data["key"]), str(data["sha256"])
        if key != path.stem:
            raise ValueError(f"written for another key ({key[:16]}...)")
        if check != _checksum(key, graph, node, mask, meta_text):
            raise ValueError("fails its checksum (edited or damaged)")
        meta = json.loads(meta_text)
        feats = ProxyFeatures(graph=graph, node=node, node_mask=mask,
                              loss=float(meta["loss"]), initial_loss=float(meta["initial_loss"]),
                              stage_losses=[float(v) for v in meta["stage_losses"]], taps=list(meta["taps"]),
                              seconds=float(meta["seconds"]), error=meta["error"], cached=True)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, EOFError, RecursionError, zipfile.BadZipFile, zlib.error) as exc:
        report_cache_problem(path, f"{type(exc).__name__}: {str(exc)[:120]}")
        return None
    if feats.node.shape[0] != cg.num_nodes or feats.node_mask.shape[0] != cg.num_nodes:
        report_cache_problem(path, f"holds {feats.node.shape[0]} nodes, the CG has {cg.num_nodes}")
        return None
    return feats


def apply_init(net: Any, scheme: str, seed: int) -> None:
    """Re-initialise the conv/linear weights of ``net`` with a named scheme (biases to zero)."""
    import torch
    from torch import nn

    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of {INIT_SCHEMES}")
    if scheme == "default":
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in net.modules():
            if not isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
                continue
            weight = module._parameters.get("weight")
            if weight is None:
                continue
            if scheme == "kaiming_normal":
                nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
            elif scheme == "xavier_uniform":
                nn.init.xavier_uniform_(weight)
            else:
                nn.init.orthogonal_(weight)
            if module._parameters.get("bias") is not None:
                nn.init.zeros_(module.bias)


def _run(cg: CG, config: ProxyConfig) -> ProxyFeatures:
    from cgpredict.proxies import api

    try:
        cfg, preset, iters = api._config(config.method, config.preset, config.iterations)
        if config.overrides:
            cfg = dataclasses.replace(cfg, **dict(config.overrides))
            if config.iterations is None:
                iters = cfg.iterations
        from cgpredict.proxies.inputs import make_inputs

        size = int(cg.input_nodes[0].out_shape[-1]) if cg.input_nodes else 32
        images = make_inputs(config.inputs, config.batch_size, size, config.seed)
        import torch

        start = time.perf_counter()
        try:
            prepared = api._Prepared(cg, config.method, cfg, images, config.target_size, config.seed, True)
        except Exception as exc:  # noqa: BLE001 - a network that cannot be rebuilt/tapped gets the neutral fill
            feats = neutral(cg, config, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500])
            feats.seconds = time.perf_counter() - start
            return feats
        apply_init(prepared.tap_model.model, config.init, config.seed)
        prep_seconds = time.perf_counter() - start
        result = api._run_one(cg, cg.name or "cg", config.method, cfg, preset, iters, images, config.target_size,
                              torch.device("cpu"), config.seed, True, True, False, prepared)
        result.seconds += prep_seconds
    except (ValueError, TypeError) as exc:
        return neutral(cg, config, f"{type(exc).__name__}: {exc}"[:500])
    return _from_result(cg, config, result)


def proxy_features(cg: CG, config: ProxyConfig | None = None, *, cache: bool = True,
                   cache_dir: str | os.PathLike[str] | None = None) -> ProxyFeatures:
    """Proxy features of ``cg`` (cached on disk by CG hash + config; see the module docstring).

    Args:
        cg: an image network's CG, converted at the size the proxy trains on (its input shape).
        config: the proxy settings (default: Eproxy, default preset).
        cache: read and write the disk cache.
        cache_dir: cache folder (default :func:`cache_root`).

    Returns:
        :class:`ProxyFeatures`; a failing network gives the neutral fill with ``error`` set.
    """
    if not isinstance(cg, CG):
        raise TypeError(f"proxy_features expects a CG, got {type(cg).__name__}")
    config = config or ProxyConfig()
    path = _cache_path(cg, config, Path(cache_dir) if cache_dir is not None else cache_root())
    if cache and path.is_file():
        hit = _load(path, cg)
        if hit is not None:
            return hit
    feats = _run(cg, config)
    if cache:
        _save(path, feats)
    return feats


def proxy_features_many(cgs: Iterable[CG] | Sequence[CG], config: ProxyConfig | None = None, *,
                        cache: bool = True, cache_dir: str | os.PathLike[str] | None = None,
                        progress: bool = True) -> list[ProxyFeatures]:
    """:func:`proxy_features` for many CGs, with a tqdm bar (nets/s, ETA; cache hits are instant)."""
    items = list(cgs)
    out = []
    for cg in progress_bar(items, desc=f"proxy features ({(config or ProxyConfig()).method})", unit="net", progress=progress):
        out.append(proxy_features(cg, config, cache=cache, cache_dir=cache_dir))
    return out

"""The bank of training-free proxies: one registry, one shared pass, one cache entry per network.

Pipeline position: model → CG → rebuilt module → **proxy bank** (graph scores + per-node
statistics aligned with ``cg.nodes``) → CG node/graph features → predictor → ranking/search.

:data:`PROXIES` lists every proxy with its one-line definition, paper, batch and resolution (the
README's "Training-free proxies" table is this registry). Proxies are computed in *groups* that
share work:

* ``synflow`` — one float64 pass on an all-ones input (:mod:`~cgpredict.proxies.zc_synflow`);
* ``data`` — the shared forward/backward pass on a seeded batch of natural-image crops
  (:mod:`~cgpredict.proxies.zc_pass`) feeding NASWOT, MeCo (:mod:`~cgpredict.proxies.zc_activation`),
  SNIP, grad-norm, Fisher, ZiCo, Jacobian covariance (:mod:`~cgpredict.proxies.zc_gradient`) and
  AZ-NAS expressivity, progressivity, trainability (:mod:`~cgpredict.proxies.zc_aznas`), plus the
  per-node gradient statistics ``grad_mean`` / ``grad_std``;
* ``graph`` — AZ-NAS complexity (FLOPs), no pass;
* ``gennas`` / ``eproxy`` — the regression proxies (:func:`cgpredict.proxies.proxy_features`, their
  own few-step training; costly, not in :data:`DEFAULT_METHODS`).

Asking for one proxy of a group computes the whole group (the cost is shared). Every score is
"higher is better". A group that cannot run (unknown op, out of memory, NaN) gives NaN for its
proxies with the reason in ``errors``; a single NaN or ``+inf`` score is NaN with its own reason.
``−inf`` is a valid score, the lowest: a degenerate network (output independent of the input, e.g. an
NB-201 cell of ``none`` edges: SynFlow, NASWOT, ZiCo, Jacobian covariance) or, as in the paper, an
AZ-NAS identity block (trainability). Consumers that standardise scores must map it to the minimum.

Cache: one ``.npz`` per (CG hash, :class:`BankConfig`) under ``$CGPREDICT_CACHE/proxies/bank``
holding every computed group's scores, per-node statistics, seconds and errors, written atomically
(:func:`cgpredict.fileio.atomic_writer`); asking later for another group adds it to the same entry,
so a rerun pays nothing.

Example:
    >>> from cgpredict.datasets import load_family
    >>> from cgpredict.proxies.bank import bank_scores
    >>> cg = load_family("nasbench201", n=1, seed=0).cgs(progress=False)[0]
    >>> r = bank_scores(cg, ["synflow", "naswot", "meco"], cache=False)
    >>> sorted(r.scores), r.node["naswot"].shape == (cg.num_nodes,)
    (['meco', 'naswot', 'synflow'], True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cgpredict.cg import CG
from cgpredict.fileio import atomic_writer
from cgpredict.proxies import zc_activation, zc_aznas, zc_gradient
from cgpredict.proxies.zc_pass import LOSSES, RECTIFIER_OPS, PassNeeds, build_net, feature_map_layout, run_pass
from cgpredict.proxies.zc_synflow import reads_before_squashing, synflow_pass
from cgpredict.quiet import progress_bar

__all__ = ["BANK_CACHE_VERSION", "DEFAULT_METHODS", "GROUP_REVISIONS", "PROXIES", "BankConfig", "BankResult",
           "ProxyInfo", "bank_scores", "bank_scores_many", "check_methods", "parse_methods"]

BANK_CACHE_VERSION = 4  # 4: entries carry their key and a SHA-256 checksum
#: Group → (revision of its computation, the CGs whose scores that revision changed); absent: revision 1.
#: An entry written under an older revision recomputes the group only for the CGs the change affects
#: (:func:`_stale_groups`), so one proxy's fix does not discard every cached score.
#: synflow 2: ``R`` is read before a final tanh/sigmoid/softmax. data 2: a non-image input runs (on
#: noise of its shape) instead of failing, and an undefined proxy says why; data 3: NASWOT reads every
#: rectifier (ReLU6, GELU, SiLU, hard-swish too), not only ReLU; data 4: a 1-D conv net's (N, C, L) maps
#: feed MeCo and the AZ-NAS block scores; data 5: AZ-NAS blocks are the network's own (the cells of a
#: NATS net, not one cell's edges; every stage of a ResNet, not the first); data 6: a token net's
#: ``(N, T, D)`` maps feed MeCo and the AZ-NAS block scores. Each predicate gets the CG and the revision
#: the entry was written under, so a change recomputes only entries older than itself.


def _data_revisions(cg: CG, stored: int = 1) -> bool:
    """Whether data-pass revisions after ``stored`` change ``cg``'s entry. 2–5: an input other than
    ``(N, [...,] C, H, W)``, a rectifier other than ReLU (NASWOT now reads it), no ReLU at all (NaN now
    with its reason), or other AZ-NAS blocks; 6: a token net (:func:`~cgpredict.proxies.zc_pass.feature_map_layout`)."""
    if stored < 6 and feature_map_layout(cg)[1]:
        return True
    if stored >= 5:
        return False
    ops = {n.op for n in cg.nodes}
    return (any(len(n.out_shape) < 4 for n in cg.input_nodes) or "relu" not in ops
            or bool(ops & (RECTIFIER_OPS - {"relu"})) or zc_aznas.blocks_moved_since_revision_1(cg))


GROUP_REVISIONS: dict[str, tuple[int, Callable[[CG, int], bool]]] = {
    "synflow": (2, lambda cg, stored: reads_before_squashing(cg)), "data": (6, _data_revisions)}


@dataclass(frozen=True)
class ProxyInfo:
    """One registry entry.

    Attributes:
        name: the proxy's name (CSV column, ``--method`` value).
        group: the pass that computes it (``synflow``, ``data``, ``graph``, ``gennas``, ``eproxy``).
        definition: one line, "higher is better" orientation.
        paper: where it comes from.
        inputs: batch and resolution it is computed at.
        node_stat: what its per-node statistic is ("" when it has none).
    """

    name: str
    group: str
    definition: str
    paper: str
    inputs: str
    node_stat: str = ""


_DATA = "B natural crops (default 32, two halves of 16), network's input size or `resolution`"
_HALF = "first half-batch (16), network's input size or `resolution`"

#: Every proxy of the bank, in report order.
PROXIES: dict[str, ProxyInfo] = {p.name: p for p in (
    ProxyInfo("synflow", "synflow", "ln Σ|θ⊙∂R/∂θ| over conv/linear weights, |θ| weights, float64, R = Σ outputs "
              "(read before a final tanh/sigmoid/softmax, which would saturate)",
              "Tanaka et al., NeurIPS'20; Abdelfattah et al., ICLR'21", "one all-ones input, input size or `resolution`",
              "ln(1 + layer saliency)"),
    ProxyInfo("naswot", "data", "ln|det K|, K[i,j] = Σ_rectifier units (ReLU, ReLU6, GELU, SiLU, hard-swish) where "
              "samples i, j share the on/off state",
              "Mellor et al., ICML'21", _DATA, "ln|det K_l| of the activation's own kernel"),
    ProxyInfo("snip", "data", "Σ|θ⊙∂L/∂θ|, L = cross-entropy vs seeded random labels (`BankConfig.loss`: per "
              "position for dense outputs; `mse`/`l1` vs normal targets for regression outputs)",
              "Lee et al., ICLR'19; Abdelfattah et al., ICLR'21", _DATA, "layer sum"),
    ProxyInfo("grad_norm", "data", "Σ_layers ‖∂L/∂θ‖₂", "Abdelfattah et al., ICLR'21", _DATA, "layer norm"),
    ProxyInfo("fisher", "data", "Σ_layers fan_in·Σ_c ½·mean_b(Σ_space a⊙∂L/∂a)², a = conv/linear output",
              "Theis et al. 2018; Turner et al., ICLR'20", _DATA, "layer Fisher"),
    ProxyInfo("jacov", "data", "−Σ ln(λ+k)+1/(λ+k), λ = eigenvalues of corr. of per-input ∂(Σ logits)/∂x, k=1e-5",
              "Mellor et al., arXiv:2006.04647v1", _HALF),
    ProxyInfo("zico", "data", "Σ_layers ln Σ_θ mean|g_θ|/std(g_θ) over the two half-batches", "Li et al., ICLR'23",
              _DATA, "layer term"),
    ProxyInfo("meco", "data", "Σ_layers λ_min of the C×C channel correlation of sample 0's feature map",
              "Jiang et al., NeurIPS'23", "sample 0 of the batch, input size or `resolution`", "λ_min"),
    ProxyInfo("expressivity", "data", "Σ_blocks entropy of the normalised eigenvalues of the channel covariance",
              "Lee & Ham (AZ-NAS), CVPR'24", _HALF, "block entropy"),
    ProxyInfo("progressivity", "data", "min_blocks (entropy_l − entropy_{l−1})", "Lee & Ham (AZ-NAS), CVPR'24", _HALF,
              "entropy increment"),
    ProxyInfo("trainability", "data", "mean_blocks 2 − σ − 1/σ, σ = top singular value of a sampled block Jacobian",
              "Lee & Ham (AZ-NAS), CVPR'24", _HALF, "block term"),
    ProxyInfo("complexity", "graph", "FLOPs (MACs) of the CG", "Lee & Ham (AZ-NAS), CVPR'24", "none", "node MACs"),
    ProxyInfo("gennas", "gennas", "−MSE after 100 SGD steps regressing synthetic signal bases from stage taps",
              "Li et al. (GenNAS), NeurIPS'21", "16 natural crops, input size", "ln(1 + activation RMS); gradient"),
    ProxyInfo("eproxy", "eproxy", "−MSE after 10 SGD steps regressing an untrained teacher's features",
              "Li et al. (Eproxy), AAAI'23", "16 natural crops, input size", "ln(1 + activation RMS); gradient"),
)}

#: The training-free proxies computed by default (the regression proxies train: ask for them).
DEFAULT_METHODS: tuple[str, ...] = tuple(n for n, p in PROXIES.items() if p.group in ("synflow", "data", "graph"))

#: Per-node statistics of the data pass that belong to no single proxy.
EXTRA_NODE_STATS: tuple[str, ...] = ("grad_mean", "grad_std")


def check_methods(methods: Iterable[str]) -> tuple[str, ...]:
    """``methods`` as a tuple; raises ValueError naming any that the bank does not know."""
    out = tuple(methods)
    bad = [m for m in out if m not in PROXIES]
    if bad:
        raise ValueError(f"unknown proxy {bad}; choose from {list(PROXIES)}")
    return out


def parse_methods(text: str) -> tuple[str, ...]:
    """A comma list (``synflow,meco``; ``all`` = :data:`DEFAULT_METHODS`; ``az`` = the four AZ-NAS scores)."""
    out: list[str] = []
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        expand = {"all": DEFAULT_METHODS, "az": ("expressivity", "progressivity", "trainability", "complexity")}
        for name in expand.get(item, (item,)):
            if name not in out:
                out.append(name)
    if not out:
        raise ValueError("no proxy named")
    return check_methods(out)


@dataclass(frozen=True)
class BankConfig:
    """What a bank score depends on besides the network (the cache key).

    Attributes:
        batch_size: images of the shared data pass (even, ≥ 4; two halves).
        resolution: side of the square inputs; ``None`` = the CG's own input size. A smaller side
            scores an ImageNet-size network cheaply where it runs at that size (convolutional nets).
        seed: weights, images, labels and random vectors all derive from it.
        inputs: ``natural`` photo crops or ``noise`` (images; any other input always gets noise of its shape).
        regression_iterations: SGD steps of GenNAS/Eproxy (``None`` = the preset's).
        init: weight initialisation of the SynFlow and data passes: ``default`` (PyTorch's) or
            ``kaiming_fan_in`` (AZ-NAS's).
        loss: the data pass's loss against seeded random targets (SNIP, grad-norm, Fisher, ZiCo and the
            gradient node statistics read its gradients): ``cross_entropy`` for class outputs, also per
            position for dense ``(N, classes, H, W)`` outputs such as segmentation; ``mse`` (standard
            normal targets) or ``l1`` for regression outputs (surface normals, reconstructions, layouts).
    """

    batch_size: int = 32
    resolution: int | None = None
    seed: int = 0
    inputs: str = "natural"
    regression_iterations: int | None = None
    init: str = "default"
    loss: str = "cross_entropy"

    def __post_init__(self) -> None:
        from cgpredict.proxies.zc_pass import INITS

        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.batch_size < 4 or self.batch_size % 2:
            raise ValueError(f"batch_size must be even and >= 4, got {self.batch_size}")
        if self.resolution is not None and self.resolution < 1:
            raise ValueError(f"resolution must be positive, got {self.resolution}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.inputs not in ("natural", "noise"):
            raise ValueError(f"inputs must be 'natural' or 'noise', got {self.inputs!r}")

    def key(self) -> str:
        """A stable text form of the config (``init`` and ``loss`` appear only when not the default,
        so entries cached before they existed keep their keys)."""
        data = dataclasses.asdict(self)
        if data["init"] == "default":
            del data["init"]
        if data["loss"] == "cross_entropy":
            del data["loss"]
        return json.dumps(data, sort_keys=True)


@dataclass
class BankResult:
    """The bank's output for one network.

    Attributes:
        name: label of the network.
        scores: proxy name → score (higher is better; NaN where it failed).
        node: statistic name → ``float32 (num_nodes,)`` aligned with ``cg.nodes`` (NaN where undefined).
        seconds: group → wall seconds it took when computed; ``group:cpu`` → its thread CPU seconds.
        errors: proxy name → reason it is NaN.
        cached: True when everything came from the disk cache.
    """

    name: str
    scores: dict[str, float] = field(default_factory=dict)
    node: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    cached: bool = False

    def row(self, methods: Sequence[str]) -> dict[str, Any]:
        """One CSV row: each method's score, the seconds of the groups they need, errors joined."""
        row: dict[str, Any] = {m: self.scores.get(m, math.nan) for m in methods}
        groups = {PROXIES[m].group for m in methods}
        row["seconds"] = round(sum(self.seconds.get(g, 0.0) for g in groups), 4)
        row["error"] = "; ".join(f"{m}: {self.errors[m]}" for m in methods if m in self.errors)
        return row


# ------------------------------------------------------------------ computing one group
def _images(cg: CG, config: BankConfig) -> torch.Tensor:
    """The seeded input batch of ``cg`` (shared between networks of the same input shape; do not modify).

    An input ``(N, C, H, W)`` gets ``batch_size`` images; an input with more leading axes, e.g. the
    ``(N, tiles, C, H, W)`` of a jigsaw network, gets ``batch_size × tiles`` images in that shape.
    Any other float input, ``(N, D)`` features or ``(N, C, L)`` / ``(N, T, D)`` sequences (a 1-D
    convolutional speech net, a transformer over embeddings), gets seeded standard-normal noise of its
    own shape: natural crops and ``resolution`` are for images.
    """
    inputs = cg.input_nodes
    if len(inputs) != 1 or len(inputs[0].out_shape) < 2:
        raise ValueError(f"CG {cg.name!r}: the proxy bank needs one input (N, ...), got "
                         f"{[tuple(n.out_shape) for n in inputs]}")
    shape = tuple(int(s) for s in inputs[0].out_shape)
    if len(shape) < 4:
        return _noise_batch(shape[1:], config.batch_size, config.seed)
    lead, (c, h, w) = shape[1:-3], shape[-3:]
    size = (config.resolution, config.resolution) if config.resolution is not None else (h, w)
    per_sample = math.prod(lead)
    images = _batch(c, size, config.batch_size * per_sample, config.seed, config.inputs)
    return images.reshape(config.batch_size, *lead, c, *size) if lead else images


@lru_cache(maxsize=8)
def _noise_batch(sample_shape: tuple[int, ...], batch_size: int, seed: int) -> torch.Tensor:
    """Seeded standard-normal inputs ``(batch_size, *sample_shape)`` of a non-image network."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, *sample_shape), generator=gen)


@lru_cache(maxsize=8)
def _batch(channels: int, size: tuple[int, int], batch_size: int, seed: int, kind: str) -> torch.Tensor:
    from cgpredict.proxies.inputs import make_inputs, noise_images

    if channels == 3 and kind == "natural":
        images = make_inputs("natural", batch_size, max(size), seed)
        if size[0] != size[1]:
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        return images
    return noise_images(batch_size, max(size), seed, channels=channels)[..., : size[0], : size[1]]


#: Why a data-pass proxy is undefined for a network (checked when its score comes out NaN).
_UNDEFINED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "naswot": (lambda d: not d.codes, "undefined: the network has no rectifier activation (NASWOT reads the "
                                        "on/off codes of ReLU, ReLU6, GELU, SiLU, hard-swish)"),
    "meco": (lambda d: not d.sample0, "undefined: no feature map (C, H, W), or (C, L) in a 1-D conv net, or "
                                      "(T, D) tokens in a token net, with C (D) ≥ 2 and H·W (L, T) ≥ 2"),
    "expressivity": (lambda d: not d.block_feats, "undefined: no AZ-NAS block (numbered blocks over (C, H, W), "
                                                  "1-D (C, L) or token (T, D) maps)"),
    "progressivity": (lambda d: len(d.block_feats) < 2, "undefined: fewer than two AZ-NAS blocks"),
    "trainability": (lambda d: len(d.block_feats) < 2,
                     "undefined: fewer than two AZ-NAS blocks (it reads the Jacobian between blocks)"),
}

_DATA_FNS: dict[str, Callable[..., tuple[float, np.ndarray]]] = {
    "naswot": zc_activation.naswot, "meco": zc_activation.meco,
    "snip": zc_gradient.snip, "grad_norm": zc_gradient.grad_norm, "fisher": zc_gradient.fisher,
    "jacov": zc_gradient.jacov, "zico": zc_gradient.zico,
    "expressivity": zc_aznas.expressivity, "progressivity": zc_aznas.progressivity,
    "trainability": zc_aznas.trainability,
}


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


def _data_group(cg: CG, config: BankConfig, out: BankResult) -> None:
    n = cg.num_nodes
    net = build_net(cg, config.seed, init=config.init)
    images = _images(cg, config)
    data = run_pass(cg, net, images, config.seed, PassNeeds(), zc_aznas.find_blocks(cg), loss=config.loss)
    for name, fn in _DATA_FNS.items():
        try:
            out.scores[name], out.node[name] = fn(data, n)
        except Exception as exc:  # noqa: BLE001 - one proxy failing leaves the others
            out.scores[name], out.node[name] = math.nan, np.full(n, np.nan, dtype=np.float32)
            out.errors[name] = _reason(exc)
            continue
        undefined, why = _UNDEFINED.get(name, (None, ""))
        if math.isnan(out.scores[name]) and undefined is not None and undefined(data):
            out.errors[name] = why
    out.node["grad_mean"], out.node["grad_std"] = zc_gradient.act_grad_stats(data, n)


def _regression_group(cg: CG, config: BankConfig, method: str, out: BankResult) -> None:
    from cgpredict.proxies.features import ProxyConfig, proxy_features

    feats = proxy_features(cg, ProxyConfig(method=method, iterations=config.regression_iterations, seed=config.seed,
                                           inputs=config.inputs))
    out.scores[method] = feats.score
    if feats.error:
        out.errors[method] = feats.error
    node_act = np.where(feats.node_mask, feats.node[:, 0], np.nan).astype(np.float32)
    node_grad = np.where(feats.node_mask, feats.node[:, 1], np.nan).astype(np.float32)
    out.node[method], out.node[f"{method}_grad"] = node_act, node_grad


def _compute_group(cg: CG, group: str, config: BankConfig, out: BankResult) -> None:
    """Compute one group into ``out``; a failure gives NaN and the reason for all its proxies."""
    names = [n for n, p in PROXIES.items() if p.group == group]
    start, cpu_start = time.perf_counter(), time.thread_time()
    try:
        if group == "synflow":
            out.scores["synflow"], out.node["synflow"] = synflow_pass(cg, config.seed, config.resolution, config.init)
        elif group == "data":
            _data_group(cg, config, out)
        elif group == "graph":
            out.scores["complexity"], out.node["complexity"] = zc_aznas.complexity(cg, cg.num_nodes)
        else:
            _regression_group(cg, config, group, out)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - unknown op, OOM, shape error: NaN with the reason
        for name in names:
            out.scores[name] = math.nan
            out.errors[name] = _reason(exc)
    out.seconds[group] = time.perf_counter() - start
    out.seconds[f"{group}:cpu"] = time.thread_time() - cpu_start
    for name in names:
        value = out.scores.get(name, math.nan)
        if name not in out.errors and not (math.isfinite(value) or value == -math.inf):
            out.scores[name] = math.nan
            out.errors[name] = f"non-finite value ({value})"


# ------------------------------------------------------------------ cache
def cache_root() -> Path:
    """``proxies/bank`` under the package's cache folder."""
    from cgpredict.datasets.cache import cache_dir

    return cache_dir() / "proxies" / "bank"


def _cache_path(cg: CG, config: BankConfig, root: Path) -> Path:
    key = hashlib.sha256(f"bank|{BANK_CACHE_VERSION}|{cg.hash()}|{config.key()}".encode()).hexdigest()
    return root / key[:2] / f"{key}.npz"


def _checksum(meta_text: str, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of an entry's metadata and arrays (stored beside them, checked at load)."""
    digest = hashlib.sha256(meta_text.encode())
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name], dtype=np.float32).tobytes())
    return digest.hexdigest()


def _stale_groups(meta: dict[str, Any], cg: CG) -> set[str]:
    """Groups of a cache entry computed under an older :data:`GROUP_REVISIONS` entry whose change
    affects ``cg``."""
    stored = meta.get("revisions", {})
    return {group for group, (revision, affects) in GROUP_REVISIONS.items()
            if group in meta.get("groups", ()) and int(stored.get(group, 1)) < revision
            and affects(cg, int(stored.get(group, 1)))}


def _save(path: Path, result: BankResult, groups: Sequence[str]) -> None:
    meta = {"key": path.stem, "scores": {k: (None if math.isnan(v) else v) for k, v in result.scores.items()},
            "errors": result.errors, "seconds": result.seconds, "groups": sorted(groups),
            "revisions": {g: GROUP_REVISIONS[g][0] for g in sorted(groups) if g in GROUP_REVISIONS}}
    arrays = {f"node__{k}": v.astype(np.float32) for k, v in result.node.items()}
    meta_text = json.dumps(meta, sort_keys=True)
    with atomic_writer(path) as handle:
        np.savez(handle, meta=np.array(meta_text), checksum=np.array(_checksum(meta_text, arrays)), **arrays)


def _load(path: Path, cg: CG, name: str) -> tuple[BankResult, set[str]] | None:
    """The cache entry at ``path``, or ``None`` when it is unreadable, truncated, edited (checksum) or
    was written for another key (reported once by :func:`cgpredict.datasets.cache.report_cache_problem`;
    the caller recomputes and rewrites it)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta_text = str(data["meta"])
            stored = str(data["checksum"])
            node = {k[len("node__"):]: np.asarray(data[k]) for k in data.files if k.startswith("node__")}
        meta = json.loads(meta_text)
        problem = None
        if _checksum(meta_text, {f"node__{k}": v for k, v in node.items()}) != stored:
            problem = "its checksum does not match its contents"
        elif meta.get("key") != path.stem:
            problem = "it was written for another key"
        elif any(v.shape != (cg.num_nodes,) for v in node.values()):
            problem = "its node statistics do not fit the CG"
    except (OSError, ValueError, KeyError, EOFError, RecursionError, zipfile.BadZipFile) as exc:
        problem = f"it cannot be read ({type(exc).__name__})"
    if problem is not None:
        from cgpredict.datasets.cache import report_cache_problem

        report_cache_problem(path, f"proxy-bank entry: {problem}")
        return None
    scores = {k: (math.nan if v is None else float(v)) for k, v in meta["scores"].items()}
    result = BankResult(name=name, scores=scores, node=node, seconds=dict(meta["seconds"]),
                        errors=dict(meta["errors"]), cached=True)
    stale = _stale_groups(meta, cg)
    for proxy in [p for p, info in PROXIES.items() if info.group in stale]:  # recomputed by the caller
        result.scores.pop(proxy, None), result.errors.pop(proxy, None), result.node.pop(proxy, None)
    return result, set(meta["groups"]) - stale


# ------------------------------------------------------------------ public entry points
def _as_cg(model_or_cg: Any, input_size: int) -> CG:
    if isinstance(model_or_cg, CG):
        return model_or_cg
    if isinstance(model_or_cg, nn.Module):
        from cgpredict.converters import from_torch

        return from_torch(model_or_cg, input_shape=(1, 3, input_size, input_size))
    raise TypeError(f"expected a torch.nn.Module or a CG, got {type(model_or_cg).__name__}")


def bank_scores(model_or_cg: CG | nn.Module, methods: Iterable[str] | None = None, config: BankConfig | None = None,
                *, cache: bool = True, cache_dir: str | os.PathLike[str] | None = None, input_size: int = 224,
                name: str | None = None) -> BankResult:
    """Training-free proxy scores and per-node statistics of one network.

    Args:
        model_or_cg: a CG (rebuilt with ``CG.to_module()``), or an image classifier ``nn.Module``,
            converted to its CG first (at ``input_size``) so node statistics align with ``cg.nodes``.
        methods: proxy names (default :data:`DEFAULT_METHODS`); each one's whole group is computed.
        config: batch, resolution, seed, inputs (default :class:`BankConfig`).
        cache: read and extend the disk cache entry of (CG, config).
        cache_dir: cache folder (default :func:`cache_root`).
        input_size: the side a module is converted at (ignored for a CG).
        name: label of the result (default: the CG's name).

    Returns:
        A :class:`BankResult` holding at least the requested proxies (NaN + reason where one failed).

    Raises:
        ValueError: an unknown proxy name or a bad config.
        TypeError: neither a CG nor a module.
    """
    wanted = check_methods(methods if methods is not None else DEFAULT_METHODS)
    config = config or BankConfig()
    cg = _as_cg(model_or_cg, input_size)
    label = name or cg.name or "cg"
    groups = {PROXIES[m].group for m in wanted}
    path = _cache_path(cg, config, Path(cache_dir) if cache_dir is not None else cache_root())
    result, done = _read_entry(path, cg, label, cache)
    missing = sorted(groups - done)
    for group in missing:
        _compute_group(cg, group, config, result)
    if missing:
        result.cached = False
        if cache:
            _save(path, result, done | set(missing))
    return result


def _read_entry(path: Path, cg: CG, label: str, cache: bool) -> tuple[BankResult, set[str]]:
    """The cached result at ``path`` and the groups it holds, or an empty result (no cache, a miss,
    or a dropped entry)."""
    if cache and path.is_file():
        hit = _load(path, cg, label)
        if hit is not None:
            return hit
    return BankResult(name=label), set()


class _BankTask:
    """What an executor's worker runs for :func:`bank_scores_many`: the bank on one CG, uncached,
    returned as plain data (the driver writes the cache)."""

    def __init__(self, methods: tuple[str, ...], config: BankConfig) -> None:
        self.methods, self.config = methods, config

    def __call__(self, cg: CG) -> dict[str, Any]:
        res = bank_scores(cg, self.methods, self.config, cache=False)
        return {"scores": res.scores, "node": {k: v.tolist() for k, v in res.node.items()},
                "seconds": res.seconds, "errors": res.errors}


def _remote_results(items: list[CG], wanted: tuple[str, ...], config: BankConfig, cache: bool,
                    root: Path, labels: list[str], executor: Any, progress: bool) -> list[BankResult]:
    """:func:`bank_scores_many` on an executor: cached entries are read here, the rest computed
    there (CGs travel as JSON) and written into this machine's cache as they arrive."""
    from cgpredict.executors import get_executor

    groups = {PROXIES[m].group for m in wanted}
    entries = [_read_entry(_cache_path(cg, config, root), cg, labels[i], cache) for i, cg in enumerate(items)]
    out: list[BankResult | None] = [entry if groups <= done else None for entry, done in entries]
    todo = [i for i, r in enumerate(out) if r is None]
    runner = get_executor(executor)
    bar = progress_bar(total=len(todo), desc="proxy bank", unit="net", progress=progress)
    try:
        for position, outcome in runner.map_chunks(_BankTask(wanted, config), [items[i] for i in todo]):
            i = todo[position]
            if outcome.ok:  # merged into what the cache held for this net (other groups are kept)
                value = outcome.value
                res, done = entries[i]
                res.scores.update({k: float(v) for k, v in value["scores"].items()})
                res.node.update({k: np.asarray(v, dtype=np.float32) for k, v in value["node"].items()})
                res.seconds.update(value["seconds"])
                res.errors = {k: v for k, v in res.errors.items() if k not in value["scores"]} | value["errors"]
                res.cached = False
                if cache:
                    _save(_cache_path(items[i], config, root), res, done | groups)
            else:  # the task itself failed (a worker lost after every retry): NaN, never cached
                reason = outcome.error or "worker lost after every retry"
                res = BankResult(name=labels[i], scores={m: math.nan for m in wanted},
                                 errors={m: reason for m in wanted})
            out[i] = res
            bar.update()
    finally:
        bar.close()
        if runner is not executor:
            runner.close()
    return out  # type: ignore[return-value]


def bank_scores_many(cgs: Iterable[CG], methods: Iterable[str] | None = None, config: BankConfig | None = None,
                     *, cache: bool = True, cache_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                     names: Sequence[str] | None = None, executor: Any = None) -> list[BankResult]:
    """:func:`bank_scores` for many CGs with a progress bar (failures are NaN entries, never raised).

    ``executor`` (an :mod:`cgpredict.executors` executor or a spec such as ``"local:2"`` or
    ``"ray:auto"``) computes the networks missing from the cache there, each worker on one torch
    thread, and caches them here; they are the numbers this process gives on one torch thread
    (on more threads, sums split across threads round differently: gradient-based scores such as
    ZiCo then differ in the 4th–6th significant digit).
    """
    items = list(cgs)
    wanted = check_methods(methods if methods is not None else DEFAULT_METHODS)
    labels = [names[i] if names is not None else (cg.name or "cg") for i, cg in enumerate(items)]
    if executor is not None:
        root = Path(cache_dir) if cache_dir is not None else cache_root()
        return _remote_results(items, wanted, config or BankConfig(), cache, root, labels, executor, progress)
    out = []
    failed = 0
    bar = progress_bar(items, desc="proxy bank", unit="net", progress=progress)
    for i, cg in enumerate(bar):
        res = bank_scores(cg, wanted, config, cache=cache, cache_dir=cache_dir, name=labels[i])
        failed += any(m in res.errors for m in wanted)
        bar.set_postfix(failed=failed)
        out.append(res)
    return out

"""Zero-cost proxies of a CG: SynFlow and NASWOT, with a disk cache.

Pipeline position: model → CG → rebuilt module → **zero-cost score** → ``Proxy`` ensemble member
(:mod:`cgpredict.models.proxy_member`) → ranking/search.

Unlike the regression proxies (GenNAS, Eproxy) these need no training step, only one forward (and
backward) pass of the network rebuilt with ``CG.to_module()`` at initialisation:

* **SynFlow** (Tanaka et al., NeurIPS'20, as used by Abdelfattah et al., ICLR'21): every parameter is
  replaced by its absolute value, the network runs in float64 on one all-ones input of the CG's
  input shape, and the score is ``ln Σ |θ ⊙ ∂R/∂θ|`` over convolution and linear weights, with
  ``R`` the sum of the outputs. Batch norm runs in eval mode (its freshly initialised running
  statistics make it a near-identity), so the score does not depend on a batch.
* **NASWOT** (Mellor et al., ICML'21): on a batch of ``batch_size`` seeded natural-looking images,
  each ReLU's output is binarised (active or not) per sample; ``K[i, j]`` counts the units where
  samples i and j agree, summed over ReLUs; the score is ``ln |det K|``.

Higher is better for both. A net that cannot be rebuilt, or whose score is not finite (e.g. a
SynFlow overflow), scores NaN; the failure is cached like a success. Each cache file carries its
key (its own name) and a SHA-256 of its content; a file that fails either check or does not parse
is dropped, reported once (:class:`cgpredict.datasets.cache.CacheWarning`) and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cgpredict.cg import CG
from cgpredict.fileio import atomic_write_json, remove_orphans
from cgpredict.proxies.features import cache_root
from cgpredict.proxies.zc_synflow import reads_before_squashing, synflow_ends
from cgpredict.quiet import progress_bar

__all__ = ["ZERO_COST", "check_names", "naswot", "synflow", "zero_cost_scores"]

CACHE_VERSION = 2  # 2: files carry their key and a checksum


def _module(cg: CG) -> nn.Module:
    if not isinstance(cg, CG):
        raise TypeError(f"expected a cgpredict CG, got {type(cg).__name__}")
    return cg.to_module()


def synflow(cg: CG, seed: int = 0) -> float:
    """``ln`` of the SynFlow saliency of ``cg`` at a seeded initialisation (NaN if not finite)."""
    torch.manual_seed(seed)
    net = _module(cg).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    shapes = [tuple(n.out_shape) for n in cg.input_nodes]
    inputs = [torch.ones((1, *s[1:]), dtype=torch.float64) for s in shapes]
    ends = synflow_ends(cg)  # R read before a final tanh/sigmoid/softmax, as the bank's SynFlow
    values = net.forward_nodes(*inputs, keep=ends)
    net.zero_grad()
    sum(values[i].sum() for i in ends).backward()
    total = 0.0
    for module in net.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and module.weight.grad is not None:
            total += float((module.weight.detach() * module.weight.grad).abs().sum())
    return math.log(total) if math.isfinite(total) and total > 0 else math.nan


def naswot(cg: CG, batch_size: int = 64, seed: int = 0, inputs: str = "natural") -> float:
    """``ln |det K|`` of the NASWOT activation-pattern kernel of ``cg`` (NaN without ReLUs)."""
    from cgpredict.proxies.inputs import make_inputs

    torch.manual_seed(seed)
    net = _module(cg).train()
    shape = tuple(cg.input_nodes[0].out_shape)
    if len(shape) != 4:
        raise ValueError(f"NASWOT needs an image input (N, C, H, W), {cg.name!r} takes {shape}")
    images = make_inputs(inputs, batch_size, int(shape[-1]), seed)
    if images.shape[1] != shape[1] or images.shape[2] != shape[2]:
        images = torch.nn.functional.interpolate(images, size=tuple(shape[2:]), mode="bilinear",
                                                 align_corners=False)[:, : shape[1]]
    relu_ids = [n.id for n in cg.nodes if n.op == "relu"]
    if not relu_ids:
        return math.nan
    with torch.no_grad():
        outputs = net.forward_nodes(images, keep=relu_ids)
    # K = C Cᵀ + (1−C)(1−C)ᵀ = 2 C Cᵀ − r 1ᵀ − 1 rᵀ + n with r the row sums of the 0/1 codes C:
    # one float32 product instead of two float64 ones, exact while n < 2**24 (counts are integers)
    kernel = torch.zeros((batch_size, batch_size), dtype=torch.float64)
    for nid in relu_ids:
        flat = outputs[nid].reshape(batch_size, -1)
        codes = (flat > 0).to(torch.float32 if flat.shape[1] < 2**24 else torch.float64)
        rows = codes.sum(1, dtype=torch.float64)
        kernel += 2.0 * (codes @ codes.t()).double() - rows[:, None] - rows[None, :] + codes.shape[1]
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) != 0 and math.isfinite(float(logdet)) else math.nan


#: The zero-cost proxies by name.
ZERO_COST = {"synflow": synflow, "naswot": naswot}


def check_names(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple; raises ValueError naming any that is not a zero-cost proxy."""
    bad = [name for name in names if name not in ZERO_COST]
    if bad:
        raise ValueError(f"unknown zero-cost proxy {bad}; choose from {sorted(ZERO_COST)}")
    return tuple(names)


def _cache_path(cg: CG, name: str, root: Path) -> Path:
    if name == "synflow" and reads_before_squashing(cg):
        name = "synflow@2"  # R read before a final squashing op changed only these networks' scores
    key = hashlib.sha256(f"zero-cost|{CACHE_VERSION}|{name}|{cg.hash()}".encode()).hexdigest()
    return root / key[:2] / f"{key}.json"


def _entry_digest(key: str, score: float | None, error: str | None) -> str:
    return hashlib.sha256(json.dumps([key, score, error]).encode()).hexdigest()


def _load(path: Path) -> tuple[bool, float]:
    """``(True, score)`` from cache file ``path``, or ``(False, nan)`` when it is absent or bad
    (unreadable, not JSON, nested too deeply, written for another key, failing its checksum)."""
    from cgpredict.datasets.cache import report_cache_problem

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        key, score, error = doc["key"], doc["score"], doc["error"]
        if key != path.stem:
            raise ValueError("written for another key")
        if doc.get("sha256") != _entry_digest(key, score, error):
            raise ValueError("fails its checksum (edited or damaged)")
        value = math.nan if score is None else float(score)
    except FileNotFoundError:
        return False, math.nan
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        report_cache_problem(path, f"{type(exc).__name__}: {str(exc)[:120]}")
        return False, math.nan
    return True, value


def _save(path: Path, value: float, error: str | None) -> None:
    """Write one score to cache file ``path`` atomically, with its key and checksum."""
    score = None if math.isnan(value) else float(value)
    doc = {"key": path.stem, "score": score, "error": error, "sha256": _entry_digest(path.stem, score, error)}
    atomic_write_json(path, doc, indent=None)
    remove_orphans(path.parent, path.name)  # temp files of writers killed over an hour ago


def zero_cost_scores(cgs: Sequence[CG], name: str = "synflow", *, cache: bool = True,
                     cache_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> np.ndarray:
    """``[N]`` scores of the zero-cost proxy ``name`` (NaN where it fails), disk-cached by CG hash.

    Raises:
        ValueError: an unknown proxy name.
    """
    check_names([name])
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    out = np.full(len(cgs), np.nan)
    for i, cg in enumerate(progress_bar(cgs, desc=f"zero-cost ({name})", unit="net", progress=progress)):
        path = _cache_path(cg, name, root)
        if cache:
            hit, cached = _load(path)
            if hit:
                out[i] = cached
                continue
        try:
            value = ZERO_COST[name](cg)
        except (RuntimeError, ValueError, TypeError) as exc:  # a net that cannot be rebuilt or run
            value, error = math.nan, f"{type(exc).__name__}: {exc}"[:300]
        else:
            error = None
        out[i] = value
        if cache:
            _save(path, value, error)
    return out

"""The four AZ-NAS proxies (expressivity, progressivity, trainability, complexity) and their aggregation.

Pipeline position: model → CG → shared pass (:mod:`~cgpredict.proxies.zc_pass`) → **AZ-NAS
scores** → bank scores / node features → predictor.

Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search", CVPR 2024. The
network is cut into *primary blocks* (:func:`find_blocks`); ``F_l`` is the output of block ``l`` on a
batch, seen as ``B·H·W`` samples of ``C`` channels (``B·L`` in a 1-D conv net; in a token net ``B·T``
samples of ``D`` channels: :func:`~cgpredict.proxies.zc_pass.feature_map_layout`).

* **expressivity** ``s_E = Σ_l H(p_l)``: ``p_l`` = the eigenvalues of the channel covariance of
  ``F_l`` normalised to sum 1, ``H`` their entropy (isotropic features → high). Per node: ``H(p_l)``.
* **progressivity** ``s_P = min_l (H(p_l) − H(p_{l−1}))``: expressivity must grow with depth.
* **trainability** ``s_T = mean_l (2 − σ_l − 1/σ_l)``: ``σ_l`` is the largest singular value of the
  block's Jacobian estimated from one vector–Jacobian product with a Rademacher vector (spatially
  reduced inputs are pixel-unshuffled to the output's resolution); 0 is best (σ = 1). A block that
  passes its input through unchanged scores ``−inf`` (the paper's rule), so the network does too.
* **complexity** ``s_C`` = the network's FLOPs (``cg.flops``).

The final AZ-NAS ranking is set-level: :func:`aggregate` sums ``ln(rank_m / N)`` over the proxies
(non-linear ranking aggregation), so a network must rank high on every proxy to rank high overall.

Blocks of a CG: the numbered children of its module lists (``cells.0``, ``cells.1``…,
``encoder.layers.0``…, in a token net also ``encoder_layer_0``…; a ResNet's ``layer1.0`` …
``layer4.1`` chained in depth), each block ending at
its last feature-map node (topological order), preceded by the stem output (the map input of the
first block). A list counts when most of its children hold several nodes (not a ``Sequential`` stem
of single layers) and it is not inside a numbered child of another list (a cell's edges are not
blocks); of lists side by side (parallel paths) the one with more children is kept. With no such
list, the children of the list with the most numbered children (every layer of a flat
``Sequential``); without numbered names, the stage taps of
:func:`~cgpredict.proxies.cg_taps.find_cg_taps` (none for a network without feature maps).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy.stats import rankdata

from cgpredict.cg import CG
from cgpredict.proxies.zc_pass import PassData, feature_map_layout, feature_map_rank

__all__ = ["aggregate", "blocks_moved_since_revision_1", "complexity", "expressivity", "find_blocks", "progressivity",
           "trainability"]

#: A module name ending in ``_<k>`` (``encoder_layer_3``): a numbered child in a token net.
_SUFFIXED = re.compile(r"[A-Za-z][A-Za-z_]*_(\d+)")


def _numbered_lists(cg: CG, rank: int, suffixed: bool = False) -> dict[str, dict[int, list[int]]]:
    """Module-list prefix → numbered child → ids of its map nodes (``cells`` → ``0`` → …); with
    ``suffixed`` a child named ``<name>_<k>`` counts as number ``k`` too (torchvision's transformers:
    ``encoder.layers.encoder_layer_0``)."""
    members: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for node in cg.nodes:
        if len(node.out_shape) != rank or node.op in ("input", "output"):
            continue
        parts = node.name.split(".") if node.name else []
        for depth, part in enumerate(parts):
            match = _SUFFIXED.fullmatch(part) if suffixed and not part.isdigit() else None
            if part.isdigit() or match:
                members[".".join(parts[:depth])][int(match.group(1) if match else part)].append(node.id)
    return members


def _with_stem(cg: CG, children: list[list[int]], rank: int) -> list[int]:
    """Each child's last node, preceded by the stem output (the map input of the first child)."""
    blocks = sorted(max(ids) for ids in children)
    first = min(min(ids) for ids in children)
    first_inputs = [i for i in cg.nodes[first].inputs if len(cg.nodes[i].out_shape) == rank
                    and cg.nodes[i].op != "input"]
    stem = max(first_inputs) if first_inputs else None
    return ([stem] if stem is not None and stem not in blocks else []) + blocks


def _block_lists(cg: CG, members: dict[str, dict[int, list[int]]]) -> list[str]:
    """The module lists whose numbered children are the network's blocks, shallowest first.

    A list qualifies with at least two numbered children, most of them made of several nodes (blocks,
    not the single layers of a ``Sequential`` stem), and when it is not inside a numbered child of
    another list (a cell's edges are not blocks of the network). Lists that follow one another in
    depth (``layer1``, ``layer2``, … of a ResNet) are chained; of lists that run side by side (two
    parallel paths), the one with more children is kept.
    """
    groups = {p: kids for p, kids in members.items() if len(kids) >= 2}

    def nested(p: str) -> bool:
        return any(p.startswith(f"{q}.") and p[len(q) + 1:].split(".")[0].isdigit() for q in groups if q != p)

    lists = [p for p, kids in groups.items() if not nested(p)
             and 2 * sum(len(ids) >= 2 for ids in kids.values()) > len(kids)]
    span = {p: (min(min(ids) for ids in groups[p].values()), max(max(ids) for ids in groups[p].values()))
            for p in lists}
    chain: list[str] = []
    for p in sorted(lists, key=lambda q: span[q]):
        if chain and not (span[p][0] > span[chain[-1]][1] and cg.reaches(span[chain[-1]][1], span[p][0])):
            if len(groups[p]) > len(groups[chain[-1]]):  # side by side with the last kept list
                chain[-1] = p
            continue
        chain.append(p)
    return chain


def find_blocks(cg: CG) -> list[int]:
    """Node ids of the primary block outputs of ``cg`` (see the module docstring), shallowest first."""
    rank, tokens = feature_map_layout(cg)
    members = _numbered_lists(cg, rank, suffixed=tokens)
    lists = _block_lists(cg, members)
    if lists:
        return _with_stem(cg, [ids for p in lists for ids in members[p].values()], rank)
    return _largest_list_blocks(cg, members, rank)


def _largest_list_blocks(cg: CG, members: dict[str, dict[int, list[int]]], rank: int) -> list[int]:
    """The children of the list with the most numbered children (every layer of a flat ``Sequential``),
    else the stage taps."""
    best = max(members.items(), key=lambda kv: (len(kv[1]), -len(kv[0])), default=None)
    if best is not None and len(best[1]) >= 2:
        return _with_stem(cg, list(best[1].values()), rank)
    from cgpredict.proxies.cg_taps import find_cg_taps

    if rank != 4:  # the stage-tap fallback reads (N, C, H, W) maps only
        return []
    try:
        return find_cg_taps(cg)
    except ValueError:  # no 4-D feature map: no blocks, the AZ-NAS block proxies are NaN
        return []


def blocks_moved_since_revision_1(cg: CG) -> bool:
    """Whether :func:`find_blocks` differs for ``cg`` from the blocks before data-pass revision 5 (the
    single module list with the most numbered children, even a cell's edges or one stage of
    several); tells which cached entries that revision changed. Reads the names once."""
    rank = feature_map_rank(cg)
    members = _numbered_lists(cg, rank)
    lists = _block_lists(cg, members)
    return bool(lists) and (_with_stem(cg, [ids for p in lists for ids in members[p].values()], rank)
                            != _largest_list_blocks(cg, members, rank))


def _entropy(feats: torch.Tensor) -> float:
    x = feats.double()
    x = x - x.mean(dim=0, keepdim=True)
    sigma = x.t() @ x / x.shape[0]
    s = torch.linalg.eigvalsh(sigma).clamp_min(0)
    total = float(s.sum())
    if total <= 0 or not math.isfinite(total):
        return 0.0
    p = s / total
    return float(-(p * torch.log(p + 1e-8)).sum())


def _block_entropies(data: PassData) -> list[tuple[int, float]]:
    """``(block id, H(p_l))`` of every block with features (computed once per pass: expressivity and
    progressivity share them)."""
    if "block_entropies" not in data.memo:
        data.memo["block_entropies"] = [(bid, _entropy(data.block_feats[bid])) for bid in data.block_ids
                                        if bid in data.block_feats]
    return data.memo["block_entropies"]


def expressivity(data: PassData, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(Σ_l H(p_l), per-node H(p_l) at the block outputs)``."""
    node = np.full(num_nodes, np.nan, dtype=np.float32)
    ent = _block_entropies(data)
    if not ent:
        return math.nan, node
    for bid, h in ent:
        node[bid] = h
    return float(sum(h for _, h in ent)), node


def progressivity(data: PassData, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(min_l H(p_l) − H(p_{l−1}), per-node increments at the block outputs)``."""
    node = np.full(num_nodes, np.nan, dtype=np.float32)
    ent = _block_entropies(data)
    if len(ent) < 2:
        return math.nan, node
    steps = [(b, h - h_prev) for (_, h_prev), (b, h) in zip(ent[:-1], ent[1:])]
    for bid, d in steps:
        node[bid] = d
    return float(min(d for _, d in steps)), node


def trainability(data: PassData, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(mean_l 2 − σ_l − 1/σ_l, per-node terms at the block outputs)``; ``−inf`` with an identity block."""
    node = np.full(num_nodes, np.nan, dtype=np.float32)
    terms = []
    for _, b_out, sigma in data.block_vjp:
        if sigma is None:
            term = -math.inf
        elif not math.isfinite(sigma) or sigma <= 0:
            continue
        else:
            term = 2.0 - sigma - 1.0 / sigma
        node[b_out] = term if math.isfinite(term) else np.nan
        terms.append(term)
    if not terms:
        return math.nan, node
    return float(np.mean(terms)), node


def complexity(cg: CG, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(FLOPs of the CG, per-node MACs)``."""
    node = np.array([float(n.macs) for n in cg.nodes], dtype=np.float32)
    return float(cg.flops), node


def aggregate(scores: Mapping[str, Sequence[float]],
              names: Sequence[str] = ("expressivity", "progressivity", "trainability", "complexity")) -> np.ndarray:
    """AZ-NAS's non-linear ranking aggregation over a set of networks: ``Σ_m ln(rank_m / N)``.

    ``rank_m`` is the ascending rank (1 = lowest score) of each network on proxy ``m``; a NaN score
    counts as the lowest rank. Higher is better.
    """
    total: np.ndarray | None = None
    for name in names:
        values = np.asarray(scores[name], dtype=float)
        filled = np.where(np.isnan(values), -np.inf, values)
        ranks = rankdata(filled, method="average")
        term = np.log(ranks / len(values))
        total = term if total is None else total + term
    if total is None:
        raise ValueError("aggregate needs at least one proxy")
    return total

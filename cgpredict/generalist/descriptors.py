"""Graph-level descriptors of a CG and pooled per-node proxy statistics: the generalist's CG columns.

Pipeline position: model → CG (+ proxy bank node statistics) → **descriptor columns** → set-relative
features (:mod:`cgpredict.generalist.features`) → :class:`~cgpredict.generalist.GeneralistPredictor`.

Every column is defined on any CG, whatever its family, and only its *order within the ranked set*
is used downstream (the columns are rank-normalised per set), so units and scales do not matter.

CG columns (:data:`CG_COLUMNS`), computed from the graph alone in well under a millisecond:

* ``log_nodes`` — ``ln(1 + #nodes)``;
* ``weighted`` — number of weighted ops (convolutions and linear layers) fed from an input;
* ``depth_max`` / ``depth_min`` — the most / fewest weighted ops on any input → output path (the
  deepest path, and the shortest "skip" path: a net whose output can bypass every convolution
  has ``depth_min`` 0);
* ``log_paths`` — ``ln(1 + #input → output paths)`` (the ensemble width of a cell-based net: skip
  connections multiply paths; 0 when nothing reaches the output, and then both depths are 0 too);
* ``merges`` — number of ``add`` / ``concat`` / ``mul`` nodes joining two or more live inputs;

A ``zero`` op (NB-201's "none") passes nothing on, so paths through it do not count;
* ``pools`` — number of max / average pooling nodes (global pooling excluded);
* ``kernel_area`` — MAC-weighted mean kernel area of the convolutions;
* ``log_width`` — ``ln(1 + max output channels)`` of any weighted op;
* ``macs_conv_share`` — share of the MACs in weighted ops.

Pooled node statistics (:data:`NODE_POOLS`): for each per-node statistic of the proxy bank named in
:data:`POOLED_STATS`, its ``min`` and ``median`` over the nodes where it is defined. The bank's graph
scores already sum these statistics over layers; the pooled columns carry what a sum hides: the
weakest layer (a bottleneck) and the typical one. A statistic undefined on every node gives NaN (the
feature layer turns it into the neutral value plus a mask).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from cgpredict.cg import CG

__all__ = ["CG_COLUMNS", "NODE_POOLS", "POOLED_STATS", "cg_descriptors", "pooled_node_stats"]

#: Graph-level descriptor columns, in order.
CG_COLUMNS: tuple[str, ...] = ("log_nodes", "weighted", "depth_max", "depth_min", "log_paths", "merges",
                               "pools", "kernel_area", "log_width", "macs_conv_share")

#: Per-node bank statistics pooled into graph columns (a statistic the bank did not compute is NaN).
POOLED_STATS: tuple[str, ...] = ("synflow", "naswot", "zico", "meco", "grad_std")
#: The pooling functions, in column order.
NODE_POOLS: tuple[str, ...] = ("min", "median")

_WEIGHTED = frozenset({"conv", "depthwise_conv", "grouped_conv", "linear"})
_MERGES = frozenset({"add", "concat", "mul"})
_POOLS = frozenset({"max_pool", "avg_pool"})


def cg_descriptors(cg: CG) -> np.ndarray:
    """The :data:`CG_COLUMNS` of one CG as ``float64 (len(CG_COLUMNS),)``.

    Raises:
        ValueError: the CG has no input or no output node.
    """
    nodes = cg.nodes
    n = len(nodes)
    if not any(node.op == "input" for node in nodes):
        raise ValueError(f"CG {cg.name!r} has no input node")
    out_id = cg.output_node.id
    # one pass in id order (ids are positions and topological: CG.validate checks it); plain lists are
    # several times faster than numpy element access at this size
    reach = [False] * n
    deep = [0] * n
    shallow = [0] * n
    paths = [0.0] * n  # path counts (floats: exact to 2**53, finite far beyond)
    merges = pools = 0
    conv_macs = conv_area = w_macs = total_macs = 0.0
    areas: list[float] = []
    n_weighted = 0
    width = 0
    for node in nodes:
        i, op = node.id, node.op
        total_macs += node.macs
        pools += op in _POOLS
        if op == "input":
            reach[i], paths[i] = True, 1.0
            continue
        preds = [p for p in node.inputs if reach[p]]
        if not preds or op == "zero":  # a zero op passes nothing on: it cuts every path through it
            continue
        reach[i] = True
        w = op in _WEIGHTED
        deep[i] = max(deep[p] for p in preds) + w
        shallow[i] = min(shallow[p] for p in preds) + w
        paths[i] = sum(paths[p] for p in preds)
        merges += op in _MERGES and len(preds) >= 2
        if w:
            n_weighted += 1
            w_macs += node.macs
            if len(node.out_shape) >= 2:
                width = max(width, int(node.out_shape[1]))
            if node.kernel:
                area = float(math.prod(node.kernel))
                areas.append(area)
                conv_macs += node.macs
                conv_area += node.macs * area
    if not reach[out_id]:  # e.g. an NB-201 cell whose output edges are all "none": a degenerate net
        deep[out_id] = shallow[out_id] = 0
    if conv_macs > 0:
        kernel_area = conv_area / conv_macs
    else:
        kernel_area = sum(areas) / len(areas) if areas else 0.0
    return np.array([
        math.log1p(n),
        float(n_weighted),
        float(deep[out_id]),
        float(shallow[out_id]),
        math.log1p(paths[out_id]),
        float(merges),
        float(pools),
        kernel_area,
        math.log1p(float(width)),
        w_macs / total_macs if total_macs > 0 else 0.0,
    ], dtype=np.float64)


def pooled_node_stats(node: Mapping[str, np.ndarray], stats: Sequence[str] = POOLED_STATS) -> np.ndarray:
    """``float64 (len(stats) · len(NODE_POOLS),)``: each statistic's min and median over the nodes
    where it is finite (NaN when it is missing or defined nowhere).

    Args:
        node: statistic name → per-node values (a :class:`~cgpredict.proxies.bank.BankResult`'s ``node``).
        stats: which statistics to pool, in order.
    """
    out = []
    for name in stats:
        values = np.asarray(node.get(name, ()), dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            out += [math.nan] * len(NODE_POOLS)
        else:
            out += [float(values.min()), float(np.median(values))]
    return np.array(out, dtype=np.float64)


def pooled_names(stats: Sequence[str] = POOLED_STATS) -> tuple[str, ...]:
    """Column names of :func:`pooled_node_stats` (``<stat>:<pool>``)."""
    return tuple(f"{s}:{p}" for s in stats for p in NODE_POOLS)

"""Node and graph features of a CG for graph neural networks (PyG ``Data``).

Pipeline position: model → CG → **features** → predictor → ranking/search.

Each node's feature vector ``x`` is the concatenation of (see :data:`NODE_FEATURE_NAMES`):

* one-hot op type over :data:`cgpredict.ops.OP_TYPES`;
* input and output H, W, C: H and W as a fraction of the network input's H and W (so features do
  not depend on the input resolution), C as ``log2(1 + C) / 12`` (4096 channels → 1.0). Image
  tensors ``(N, C, H, W)`` read directly; sequences ``(N, T, C)`` use ``H = T / T_in``, ``W = 1``;
  vectors ``(N, C)`` use ``H = W = 0``;
* weight dims: ``log2(1 + out) / 12``, ``log2(1 + in_per_group) / 12``, ``kh / 7``, ``kw / 7``;
  stride (mean over dims) ``/ 4``; a bias flag;
* the node's share of the graph's MACs on a log scale: ``log1p(macs) / log1p(total_macs_all)``.

Graph-level attributes: ``flops`` (GMACs, torchvision convention), ``params`` (millions),
``op`` (op index per node, for embedding layers) and ``num_nodes``. Bump
:data:`FEATURE_VERSION` whenever this layout changes; predictors store it in checkpoints.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from cgpredict.ops import OP_INDEX, OP_TYPES

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

    from cgpredict.cg import CG

FEATURE_VERSION = 1
NODE_FEATURE_NAMES: tuple[str, ...] = (
    *(f"op={op}" for op in OP_TYPES),
    "in_h",
    "in_w",
    "in_c",
    "out_h",
    "out_w",
    "out_c",
    "w_out",
    "w_in",
    "w_kh",
    "w_kw",
    "stride",
    "bias",
    "log_macs_share",
)
NUM_NODE_FEATURES = len(NODE_FEATURE_NAMES)


def _hwc(shape: tuple[int, ...]) -> tuple[float, float, float]:
    """(H, W, C) of a shape with the batch dimension first."""
    if len(shape) >= 4:
        spatial = shape[2:]
        height = math.prod(spatial[:-1])
        return float(height), float(spatial[-1]), float(shape[1])
    if len(shape) == 3:
        return float(shape[1]), 1.0, float(shape[2])
    if len(shape) == 2:
        return 0.0, 0.0, float(shape[1])
    return 0.0, 0.0, 1.0


def _channels(c: float) -> float:
    return math.log2(1.0 + c) / 12.0


def _feature_row(op: str, in_shape: tuple, out_shape: tuple, weight_shape: tuple | None, stride: tuple,
                 bias: bool, macs: int, ref_h: float, ref_w: float, total: float) -> np.ndarray:
    """One node's feature row (layout in the module docstring)."""
    n_ops = len(OP_TYPES)
    row = np.zeros(NUM_NODE_FEATURES, dtype=np.float32)
    row[OP_INDEX[op]] = 1.0
    ih, iw, ic = _hwc(tuple(in_shape))
    oh, ow, oc = _hwc(tuple(out_shape))
    row[n_ops : n_ops + 6] = (ih / ref_h, iw / ref_w, _channels(ic), oh / ref_h, ow / ref_w, _channels(oc))
    ws = weight_shape or ()
    if ws:
        row[n_ops + 6] = _channels(ws[0])
        if len(ws) > 1:
            row[n_ops + 7] = _channels(ws[1])
        if len(ws) > 2:
            row[n_ops + 8] = ws[2] / 7.0
            row[n_ops + 9] = ws[-1] / 7.0
    if stride:
        row[n_ops + 10] = sum(stride) / len(stride) / 4.0
    row[n_ops + 11] = float(bias)
    row[n_ops + 12] = math.log1p(macs) / total
    return row


def node_feature_matrix(cg: CG) -> np.ndarray:
    """The ``[num_nodes, NUM_NODE_FEATURES]`` float32 matrix described in the module docstring.

    A row depends only on the node's op, shapes, stride, bias and MACs, which repeat across a CG's
    cells (an NB-201 CG of ~230 nodes has ~33 distinct rows), so each distinct row is computed once.
    """
    inputs = cg.input_nodes
    ref_h, ref_w, _ = _hwc(tuple(inputs[0].out_shape)) if inputs else (1.0, 1.0, 1.0)
    ref_h, ref_w = max(ref_h, 1.0), max(ref_w, 1.0)
    total = math.log1p(max(cg.macs("all"), 1))
    which: dict[tuple, int] = {}
    rows: list[np.ndarray] = []
    index = np.empty(cg.num_nodes, dtype=np.intp)
    for node in cg.nodes:
        in_shape = node.in_shapes[0] if node.in_shapes else node.out_shape
        key = (node.op, in_shape, node.out_shape, node.weight_shape, node.stride, node.bias, node.macs)
        try:
            k = which.get(key)
        except TypeError:  # shapes given as lists: hashable copies
            key = tuple(tuple(v) if isinstance(v, list) else v for v in key)
            k = which.get(key)
        if k is None:
            k = which[key] = len(rows)
            rows.append(_feature_row(*key, ref_h, ref_w, total))
        index[node.id] = k
    if not rows:
        return np.zeros((0, NUM_NODE_FEATURES), dtype=np.float32)
    return np.stack(rows)[index]


def cg_to_pyg(cg: CG) -> Data:
    """Convert a CG to ``torch_geometric.data.Data`` (node features, edges, graph attributes)."""
    import torch
    from torch_geometric.data import Data

    x = torch.from_numpy(node_feature_matrix(cg))
    edges = cg.edges
    edge_index = (
        torch.tensor(edges, dtype=torch.long).t().contiguous() if edges else torch.zeros((2, 0), dtype=torch.long)
    )
    return Data(
        x=x,
        edge_index=edge_index,
        op=torch.tensor([OP_INDEX[n.op] for n in cg.nodes], dtype=torch.long),
        flops=torch.tensor([cg.flops / 1e9], dtype=torch.float32),
        params=torch.tensor([cg.params / 1e6], dtype=torch.float32),
        num_nodes=cg.num_nodes,
    )

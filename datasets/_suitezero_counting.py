"""The FLOPs convention of the NAS-Bench-Suite-Zero ``flops`` columns, as a CG counting rule.

Pipeline position: model → **CG** (whole-graph MAC totals) → features → predictor. The
``nasbench101``, ``nasbench201`` and ``transbench101_micro`` family modules register counting
modes built on :func:`suite_zero_macs`; it was pinned down by matching every row of their tables
(see each module's docstring). The counter behind the columns hooks ``nn.Module`` layers, so per
sample it counts:

* convolutions: MACs plus one per output element when the conv has a bias; transposed
  convolutions are **not** counted (the counter has no rule for them);
* linear layers: ``in × out`` MACs, the bias not counted;
* batch norm: two per output element; ReLU and LeakyReLU: one per output element; tanh, adds,
  concats, padding, zero/identity edges: nothing;
* average / max pooling: ``kernel_area × output elements``;
* adaptive (global) average pooling: ``C·(H+1)·(W+1)`` — the counter's window rule for adaptive
  pools — when the pool is a module, nothing when the network reduces with a plain ``mean``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG, Node


def _per_sample(shape: tuple[int, ...]) -> int:
    if not shape:
        return 1
    batch = shape[0] if shape[0] > 0 else 1
    return int(math.prod(shape)) // batch


def node_suite_zero_macs(node: Node, global_pool: bool = True) -> int:
    """One node's count under the Suite-Zero convention (see the module docstring)."""
    op = node.op
    if op in ("conv", "depthwise_conv", "grouped_conv"):
        if node.attrs.get("transposed"):
            return 0
        return node.macs + (_per_sample(tuple(node.out_shape)) if node.bias else 0)
    if op in ("linear", "relu", "avg_pool", "max_pool"):
        return node.macs
    if op == "batch_norm":
        return 2 * node.macs
    if op == "unknown" and "leaky_relu" in node.source_op.lower():
        return _per_sample(tuple(node.out_shape))
    if op == "global_pool" and global_pool and node.in_shapes:
        shape = tuple(node.in_shapes[0])
        if len(shape) < 3:
            return 0
        total = shape[1]
        for size in shape[2:]:
            total *= size + 1
        return total
    return 0


def suite_zero_macs(cg: CG, global_pool: bool = True, head_ops: frozenset[str] = frozenset()) -> int:
    """Whole-graph Suite-Zero count of ``cg``.

    Args:
        cg: the computation graph.
        global_pool: count global pools with the adaptive-pool window rule (False when the
            benchmark's network used a plain mean instead of a pooling module).
        head_ops: for a network whose input stacks several tiles on dim 1 (a 5-D input
            ``(N, T, C, H, W)``, e.g. the jigsaw task), the column counts the shared encoder once
            per tile *average*: nodes whose op is not in ``head_ops`` are divided by ``T``.
    """
    tiles = 1
    if head_ops:
        inputs = cg.input_nodes
        if inputs and len(inputs[0].out_shape) == 5:
            tiles = int(inputs[0].out_shape[1])
    body = head = 0
    for node in cg.nodes:
        count = node_suite_zero_macs(node, global_pool)
        if node.op in head_ops:
            head += count
        else:
            body += count
    return body // tiles + head

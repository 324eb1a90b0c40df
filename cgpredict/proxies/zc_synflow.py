"""SynFlow of a CG with per-node saliencies (the bank's data-free pass).

Pipeline position: model → CG → rebuilt module → **SynFlow** → bank scores / node features → predictor.

Tanaka et al., "Pruning neural networks without any data by iteratively conserving synaptic flow",
NeurIPS 2020; as a NAS proxy Abdelfattah et al., ICLR 2021. Every parameter is replaced by its
absolute value, the network runs in float64 on one all-ones input, ``R`` is the sum of its outputs
(read before a final ``tanh``/``sigmoid``/``softmax``, which would saturate: :func:`synflow_ends`),
and the saliency of a conv/linear layer is ``Σ |θ ⊙ ∂R/∂θ|``. The score is ``ln Σ_layers saliency``
(the same definition as :func:`cgpredict.proxies.zero_cost.synflow`; a network whose output does not
depend on its weights scores ``−inf`` here, NaN there). Batch norm runs in eval mode:
its fresh running statistics make it a near-identity, as NAS-Bench-Suite-Zero's SynFlow runs the
network without batch norm. Per node: ``ln(1 + saliency)`` of each conv/linear node.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cgpredict.cg import CG
from cgpredict.proxies.zc_pass import build_net, weighted_nodes

__all__ = ["SQUASHING_OPS", "reads_before_squashing", "synflow_ends", "synflow_pass"]


#: Output activations that bound the output: SynFlow's ``R`` is read from their input.
SQUASHING_OPS = frozenset({"tanh", "sigmoid", "softmax"})


def synflow_ends(cg: CG) -> list[int]:
    """Node ids whose sum is SynFlow's ``R``: the outputs, each read before a final bounded squashing.

    On an all-ones input with absolute weights every activation is large and positive, so a final
    ``tanh``/``sigmoid`` saturates and a ``softmax`` sums to one per sample: ``∂R/∂θ`` would be exactly
    zero for every network (a dense-regression decoder ending in ``tanh``, a classifier exported with
    its softmax). SynFlow measures the synaptic flow of the linearised network, so ``R`` sums the
    pre-activation those ops squash.
    """
    ends = []
    for nid in cg.output_node.inputs:
        while cg.nodes[nid].op in SQUASHING_OPS and len(cg.nodes[nid].inputs) == 1:
            nid = cg.nodes[nid].inputs[0]
        ends.append(nid)
    return list(dict.fromkeys(ends))


def reads_before_squashing(cg: CG) -> bool:
    """Whether :func:`synflow_ends` differs from the CG's outputs (the networks whose SynFlow changed
    when ``R`` began to be read before a final squashing op)."""
    return synflow_ends(cg) != list(dict.fromkeys(cg.output_node.inputs))


def synflow_pass(cg: CG, seed: int, resolution: int | None = None, init: str = "default") -> tuple[float, np.ndarray]:
    """``(ln Σ saliency, per-node ln(1 + saliency))`` of ``cg`` initialised from ``seed``.

    Args:
        cg: the network's graph (rebuilt with ``CG.to_module()``).
        seed: weight initialisation seed.
        resolution: side of the square all-ones input (default: the CG's own input size).
        init: weight initialisation (:func:`~cgpredict.proxies.zc_pass.build_net`).
    """
    net = build_net(cg, seed, torch.float64, init).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    inputs = []
    for node in cg.input_nodes:
        shape = (1, *tuple(node.out_shape)[1:])
        if resolution is not None and len(shape) == 4:
            shape = (1, shape[1], resolution, resolution)
        inputs.append(torch.ones(shape, dtype=torch.float64))
    ends = synflow_ends(cg)
    values = net.forward_nodes(*inputs, keep=ends)
    net.zero_grad()
    sum(values[i].sum() for i in ends).backward()
    node = np.full(cg.num_nodes, np.nan, dtype=np.float32)
    total = 0.0
    for nid, module in weighted_nodes(cg, net).items():
        grad = module.weight.grad
        value = float((module.weight.detach() * grad).abs().sum()) if grad is not None else 0.0
        node[nid] = math.log1p(value) if math.isfinite(value) else np.nan
        total += value
    if not math.isfinite(total):
        return math.nan, node
    return (math.log(total) if total > 0 else -math.inf), node  # no path from input to output: lowest

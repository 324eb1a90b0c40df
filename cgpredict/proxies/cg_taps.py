"""Stage taps found from a CG's shapes, and a tapped rebuilt network (proxies on graphs).

Pipeline position: model → **CG → rebuilt module + taps** → proxy regression → CG node/graph features.

When a proxy gets a :class:`~cgpredict.cg.CG` instead of a module, the network is rebuilt with
:meth:`CG.to_module` and its stage taps are read off the graph (no probe run needed):

* A *feature map* is a node whose output is 4-D ``(N, C, H, W)`` with ``H·W > 1`` and whose
  ``(H, W)`` is produced by some convolution or pooling node (channels-last tensors of
  ConvNeXt-style blocks, ``(N, H, W, C)``, are thereby ignored).
* A *downsampling* is a node that reads a feature map of area ``A`` and outputs a feature map of a
  smaller area. For every area level except the smallest, the tap is found from the input of the
  *first* downsampling node (topological order) that reads that level. For a pooling node it is
  the pool's input; for a strided convolution the walk goes back to the block input: through nodes with one input and one consumer at the same resolution, stopping at a merge
  (``add``/``concat``), a tensor with several consumers, or just before the first convolution met
  (the expansion conv of an inverted residual). This gives the last trunk tensor of the stage
  (``layer1``'s output for ResNet, the previous block's output for MobileNetV2). Network inputs
  are never taps.
* The *final* tap is the last feature map (topological order) at the smallest area level — the
  feature map the classifier pools.

:class:`CGTapModel` runs the rebuilt network up to the final tap and returns the tapped tensors;
with :meth:`CGTapModel.stats_context` it also records, for every node it computes, the activation
scale and the gradient norm of the loss with respect to that node's output, keyed by node id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from cgpredict.cg import CG
from cgpredict.ops import CONV_OPS, POOL_OPS
from cgpredict.proxies.core import NodeStats
from cgpredict.proxies.taps import Tap

__all__ = ["CGTapModel", "cg_taps", "find_cg_taps"]


def _area(shape: tuple[int, ...]) -> int:
    return int(shape[2]) * int(shape[3])


def _trunk_tensor(cg: CG, start: int, level: int, consumers: list[int]) -> int:
    """Walk back from the downsampling node's input to the block input (see module docstring)."""
    v = start
    while True:
        node = cg.nodes[v]
        if node.op in ("input", "add", "concat") or len(node.inputs) != 1 or consumers[v] != 1:
            return v
        src = cg.nodes[node.inputs[0]]
        if len(src.out_shape) != 4 or _area(tuple(src.out_shape)) != level:
            return start if node.op in CONV_OPS else v  # reached the stem: keep the direct input
        v = src.id
        if node.op in CONV_OPS:  # passed the block's first (expansion) convolution
            return v


def find_cg_taps(cg: CG) -> list[int]:
    """Node ids of the stage taps of ``cg`` (see the module docstring), shallowest first.

    Raises:
        ValueError: the CG has no 4-D feature map (not an image network).
    """
    spatial = {tuple(n.out_shape[2:]) for n in cg.nodes
               if (n.op in CONV_OPS or n.op in POOL_OPS) and len(n.out_shape) == 4}

    def is_map(shape: tuple[int, ...]) -> bool:
        return len(shape) == 4 and _area(shape) > 1 and tuple(shape[2:]) in spatial

    maps = [n for n in cg.nodes if n.op not in ("input", "output") and is_map(tuple(n.out_shape))]
    if not maps:
        raise ValueError(f"CG {cg.name!r} has no 4-D feature map (N, C, H, W) to tap")
    smallest = min(_area(tuple(n.out_shape)) for n in maps)
    consumers = [len(c) for c in cg.successors()]
    taps: list[int] = []
    seen: set[int] = set()
    for node in cg.nodes:
        if node.op in ("input", "output") or not is_map(tuple(node.out_shape)) or not node.inputs:
            continue
        src = cg.nodes[node.inputs[0]]
        shape = tuple(src.out_shape)
        if not is_map(shape) and src.op != "input":
            continue
        level = _area(shape) if len(shape) == 4 else 0
        if level <= _area(tuple(node.out_shape)) or level in seen:
            continue
        seen.add(level)
        tap = _trunk_tensor(cg, src.id, level, consumers) if node.op in CONV_OPS else src.id
        if cg.nodes[tap].op != "input" and tap not in taps:
            taps.append(tap)
    final = max(n.id for n in maps if _area(tuple(n.out_shape)) == smallest)
    taps = [t for t in taps if t < final and _area(tuple(cg.nodes[t].out_shape)) > smallest]
    taps.append(final)
    return sorted(taps)


def cg_taps(cg: CG, ids: list[int]) -> list[Tap]:
    """:class:`~cgpredict.proxies.taps.Tap` records of the tap nodes (name ``node<id>``)."""
    out = []
    for i in ids:
        _, c, h, w = cg.nodes[i].out_shape
        out.append(Tap(f"node{i}", 0, (int(c), int(h), int(w))))
    return out


class CGTapModel(nn.Module):
    """A rebuilt network whose forward returns the tap node outputs (classifier never runs).

    Args:
        net: the :class:`~cgpredict.rebuild.RebuiltModule` of the CG.
        tap_ids: node ids to return, from :func:`find_cg_taps`.
    """

    def __init__(self, net: nn.Module, tap_ids: list[int]) -> None:
        super().__init__()
        if not tap_ids:
            raise ValueError("CGTapModel needs at least one tap")
        self.model = net
        self.tap_ids = list(tap_ids)
        self._sink: dict[Any, NodeStats] | None = None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The tapped node outputs for input ``x``, in tap order."""
        last = max(self.tap_ids)
        keep = None if self._sink is not None else self.tap_ids
        values = self.model.forward_nodes(x, keep=keep, stop_after=last)
        if self._sink is not None:
            self._record(values)
        return [values[i] for i in self.tap_ids]

    def _record(self, values: dict[int, torch.Tensor]) -> None:
        sink = self._sink
        assert sink is not None
        for nid, out in values.items():
            if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                continue
            with torch.no_grad():
                rms = float(out.detach().float().pow(2).mean().sqrt())
            stats = NodeStats(rms, 0.0, tuple(int(s) for s in out.shape[1:]))
            sink[nid] = stats
            if out.requires_grad:

                def grad_hook(grad: torch.Tensor, stats: NodeStats = stats) -> None:
                    stats.grad_norm += float(grad.detach().float().norm())

                out.register_hook(grad_hook)

    @contextmanager
    def stats_context(self, sink: dict[Any, NodeStats]) -> Iterator[None]:
        """Record :class:`NodeStats` of every computed node into ``sink`` (keyed by node id)."""
        self._sink = sink
        try:
            yield
        finally:
            self._sink = None

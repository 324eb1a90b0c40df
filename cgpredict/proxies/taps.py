"""Stage taps: where a network's feature maps are read out for the regression proxies.

Pipeline position: model → **taps** → proxy score (GenNAS / Eproxy) → CG node features.

Both GenNAS and Eproxy remove the classifier of a candidate network and regress targets from the
last feature map of every resolution stage. :func:`find_taps` finds those stages automatically by
running the module once on a small input with forward hooks on every sub-module:

1. Every module call is recorded in completion order with the shape of its output. Only 4-D
   outputs ``(N, C, H, W)`` count. ``Adaptive*Pool`` calls (global pooling, squeeze-excitation) are
   ignored, and so are calls under a top-level ``classifier``/``fc``/``head`` module, calls whose
   ``(H, W)`` is not produced by any conv or pooling layer (channels-last tensors), and any call
   whose spatial area is smaller than that of a later call (side branches such as SE bottlenecks:
   on a classification trunk resolution never grows again).
2. A *downsampling* is a call whose spatial area is smaller than that of the call before it. The
   tap for the stage that just ended is the tensor that entered the outermost running module
   containing the downsampling call that is still a single block (no sub-block with children of
   its own has completed inside it: ``layer2`` for ResNet's ``layer2.0.conv1``, ``cells.5`` rather
   than ``cells`` for NAS-Bench-201); the module that produced that tensor last (outermost) names
   the tap (``layer1``, ``cells.4``). If no such module exists or the tensor came from a
   functional op, the last recorded call before the downsampling is used instead.
3. The *final* tap is the last remaining 4-D call (``layer4`` for ResNet, ``lastact`` for a
   NAS-Bench-201 network); everything after it (pooling, flatten, classifier) is cut off at run
   time by :class:`TapModel`, which stops the forward pass once the final tap has been captured.

Tap names are module paths, i.e. the ``name`` of the matching CG node. A module called several
times per forward pass (a shared ``ReLU``) is addressed by ``(name, call index)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["CLASSIFIER_NAMES", "Tap", "TapModel", "find_taps", "count_macs_hooks"]

#: Top-level module names treated as the classifier head and never tapped (torchvision naming).
CLASSIFIER_NAMES = frozenset({"classifier", "fc", "head", "heads", "last_linear"})


@dataclass(frozen=True)
class Tap:
    """One read-out point of the network.

    Attributes:
        name: module path (``layer1``); equals the CG node name of the module's output.
        call: which call of that module in one forward pass (0 unless the module is reused).
        shape: output shape ``(C, H, W)`` seen on the probe input (batch dim dropped).
    """

    name: str
    call: int
    shape: tuple[int, int, int]

    @property
    def channels(self) -> int:
        """Number of channels of the tapped feature map."""
        return self.shape[0]


@dataclass
class _Call:
    name: str
    call: int
    module: nn.Module
    out: torch.Tensor | None
    in_ids: tuple[int, ...]
    stack: tuple[int, ...]  # indices (into the call list) of the modules running when this one started
    order: int = -1  # completion rank; -1 while running or if it never returned


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def _area(t: torch.Tensor) -> int:
    return int(t.shape[-2]) * int(t.shape[-1])


def _record_calls(model: nn.Module, x: torch.Tensor) -> list[_Call]:
    """Run ``model(x)`` once and record every sub-module call (root excluded)."""
    calls: list[_Call] = []
    stack: list[int] = []
    counts: dict[str, int] = {}
    finished = [0]
    handles = []

    def make_hooks(name: str, module: nn.Module) -> None:
        def pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
            ids = tuple(id(a) for a in args if isinstance(a, torch.Tensor))
            k = counts.get(name, 0)
            counts[name] = k + 1
            calls.append(_Call(name, k, mod, None, ids, tuple(stack)))
            stack.append(len(calls) - 1)

        def post(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            index = stack.pop()
            calls[index].out = _first_tensor(out)
            calls[index].order = finished[0]
            finished[0] += 1

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))

    for name, module in model.named_modules():
        if name:
            make_hooks(name, module)
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def find_taps(model: nn.Module, input_size: tuple[int, int, int] = (3, 32, 32), batch: int = 2) -> list[Tap]:
    """Find the stage taps of ``model`` (see the module docstring for the rules).

    Args:
        model: an image network taking ``(N, *input_size)`` tensors.
        input_size: ``(C, H, W)`` of the probe input; use the size the proxy will train on.
        batch: probe batch size (2 keeps BatchNorm in train mode happy; the probe runs in eval mode).

    Returns:
        The taps in forward order; the last one is the final feature map.

    Raises:
        ValueError: the forward pass fails or the network never produces a 4-D feature map.
    """
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.randn(batch, *input_size, generator=torch.Generator().manual_seed(0)).to(device)
    try:
        calls = _record_calls(model, x)
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        raise ValueError(f"find_taps: forward pass of {type(model).__name__} failed: {exc}") from exc
    finally:
        model.train(was_training)
    return _taps_from_calls(calls, input_area=input_size[1] * input_size[2], model_name=type(model).__name__)


def _taps_from_calls(calls: list[_Call], input_area: int, model_name: str = "model") -> list[Tap]:
    order = sorted((i for i, c in enumerate(calls) if c.order >= 0), key=lambda i: calls[i].order)
    four_d = [i for i in order if calls[i].out is not None and calls[i].out.dim() == 4]
    # legitimate resolutions: those produced by a conv or pooling layer (channels-last tensors of
    # ConvNeXt-style blocks, (N, H, W, C), would otherwise pass for feature maps)
    spatial_ops = (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)
    sizes = {tuple(calls[i].out.shape[2:]) for i in four_d if isinstance(calls[i].module, spatial_ops)}  # type: ignore[union-attr]
    events = [
        i
        for i in four_d
        if "Adaptive" not in type(calls[i].module).__name__
        and calls[i].name.split(".")[0] not in CLASSIFIER_NAMES
        and (not sizes or tuple(calls[i].out.shape[2:]) in sizes)  # type: ignore[union-attr]
    ]
    if not events:
        raise ValueError(f"find_taps: {model_name} produced no 4-D feature map in any sub-module")
    # drop side branches whose resolution is below that of a later call
    kept: list[int] = []
    later_max = 0
    for i in reversed(events):
        area = _area(calls[i].out)  # type: ignore[arg-type]
        if area >= later_max:
            kept.append(i)
        later_max = max(later_max, area)
    kept.reverse()
    # strip trailing 1x1 pooling (global pooling written as a plain pool)
    while len(kept) > 1 and "Pool" in type(calls[kept[-1]].module).__name__ and _area(calls[kept[-1]].out) == 1:  # type: ignore[arg-type]
        kept.pop()

    # producer of each tensor id: the last (outermost) completed call that returned it
    producer: dict[int, int] = {}
    for i in kept:
        producer[id(calls[i].out)] = i

    def tap_of(i: int) -> Tap:
        c = calls[i]
        out = c.out
        assert out is not None
        return Tap(c.name, c.call, (int(out.shape[1]), int(out.shape[2]), int(out.shape[3])))

    taps: list[Tap] = []
    prev_area = input_area
    prev_event: int | None = None
    for i in kept:
        area = _area(calls[i].out)  # type: ignore[arg-type]
        if area < prev_area and prev_event is not None:
            chosen = prev_event
            # outermost running module containing this call that is a single block (no complete
            # sub-block finished inside it yet) and whose input has the previous resolution
            for anc in calls[i].stack:
                if any(
                    c.stack and c.stack[-1] == anc and 0 <= c.order < calls[i].order and any(True for _ in c.module.children())
                    for c in calls
                ):
                    continue
                in_ids = calls[anc].in_ids
                if in_ids and in_ids[0] in producer and _area(calls[producer[in_ids[0]]].out) == prev_area:  # type: ignore[arg-type]
                    chosen = producer[in_ids[0]]
                    break
            tap = tap_of(chosen)
            if not taps or taps[-1] != tap:
                taps.append(tap)
        prev_area = min(prev_area, area)
        prev_event = i
    final = tap_of(kept[-1])
    if not taps or taps[-1] != final:
        taps.append(final)
    return taps


class _StopForward(Exception):
    """Raised inside a hook once the final tap is captured, to skip the classifier."""


class TapModel(nn.Module):
    """Wraps a network so that its forward returns the tapped feature maps (classifier removed).

    The wrapped network's own ``forward`` runs until the final tap's module returns, then stops;
    the captured maps are returned in tap order (cloned so that later in-place ops cannot alter
    them).

    Args:
        model: the network.
        taps: read-out points from :func:`find_taps`.
    """

    def __init__(self, model: nn.Module, taps: list[Tap]) -> None:
        super().__init__()
        if not taps:
            raise ValueError("TapModel needs at least one tap")
        self.model = model
        self.taps = list(taps)
        modules = dict(model.named_modules())
        missing = [t.name for t in taps if t.name not in modules]
        if missing:
            raise ValueError(f"TapModel: no module named {missing} in {type(model).__name__}")
        self._want: dict[str, dict[int, int]] = {}
        for index, tap in enumerate(taps):
            self._want.setdefault(tap.name, {})[tap.call] = index
        self._captured: list[torch.Tensor | None] = []
        self._counts: dict[str, int] = {}
        for name in self._want:
            modules[name].register_forward_hook(self._make_hook(name))

    def _make_hook(self, name: str):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            if not self._captured:  # not inside TapModel.forward (e.g. plain model call)
                return
            k = self._counts.get(name, 0)
            self._counts[name] = k + 1
            index = self._want[name].get(k)
            if index is None:
                return
            tensor = _first_tensor(out)
            if tensor is None:
                raise RuntimeError(f"tap {name!r} returned no tensor")
            self._captured[index] = tensor.clone()
            if index == len(self.taps) - 1:
                raise _StopForward

        return hook

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The tapped feature maps for input ``x``, in tap order."""
        self._captured = [None] * len(self.taps)
        self._counts = {}
        try:
            self.model(x)
        except _StopForward:
            pass
        captured, self._captured = self._captured, []
        missing = [t.name for t, c in zip(self.taps, captured) if c is None]
        if missing:
            raise RuntimeError(f"taps {missing} were not reached in the forward pass")
        return captured  # type: ignore[return-value]


def count_macs_hooks(model: nn.Module, input_size: tuple[int, int, int] = (3, 32, 32)) -> int:
    """Per-sample multiply-accumulates of the Conv/Linear layers of ``model`` (whole network).

    A quick stand-in for :attr:`cgpredict.cg.CG.flops` used by Eproxy's optional FLOPs factor
    when no CG is at hand.
    """
    total = 0

    def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        nonlocal total
        o = _first_tensor(out)
        if o is None:
            return
        if isinstance(module, nn.modules.conv._ConvNd):
            k = 1
            for s in module.kernel_size:
                k *= s
            total += int(o[0].numel()) * (module.in_channels // module.groups) * k
        elif isinstance(module, nn.Linear):
            total += int(o[0].numel()) * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total

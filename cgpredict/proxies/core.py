"""The few-step regression loop shared by GenNAS and Eproxy, its result record and node statistics.

Pipeline position: model → taps → targets → **regression training** → proxy score → CG features.

A method (:mod:`~cgpredict.proxies.gennas`, :mod:`~cgpredict.proxies.eproxy`) turns the taps of a
network into a :class:`RegressionSetup` (one head and one target per used tap, loss weights and
optimiser settings). :func:`run_regression` trains network + heads on the single input batch,
evaluates the final loss, and optionally gathers per-module statistics on the last step
(:class:`NodeStats`): activation scale (root mean square of the module output) and gradient norm
of the loss with respect to that output, keyed by module path, which is the CG node name.
Modules called several times per pass get ``name``, ``name:1``, ``name:2``… for later calls.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cgpredict.proxies.taps import TapModel

__all__ = ["NodeStats", "ProxyResult", "RegressionSetup", "fit_to_grid", "node_stats", "run_regression", "standardize"]


@dataclass
class NodeStats:
    """Statistics of one module output, gathered on the last training step.

    Attributes:
        act_rms: root mean square of the output activation.
        grad_norm: L2 norm of d(loss)/d(output) (0 when the output gets no gradient).
        shape: output shape without the batch dimension.
    """

    act_rms: float
    grad_norm: float
    shape: tuple[int, ...]


@dataclass
class ProxyResult:
    """Outcome of one proxy run on one network.

    The proxy ranks by *loss*: lower final loss = better predicted accuracy. ``score`` is
    ``-loss`` so that higher is better, like an accuracy.

    Attributes:
        name: label of the network.
        method: ``"gennas"`` or ``"eproxy"``.
        preset: preset name.
        loss: final evaluation loss (stage-weighted, see the method); NaN if the run failed.
        stage_losses: final MSE of each used tap, in tap order.
        taps: names of the used taps.
        initial_loss: evaluation loss before the first update.
        iterations: optimisation steps run.
        seconds: wall time of the run (preparation and training).
        error: ``None`` on success, else a one-line reason (forward error, non-finite loss, OOM).
        history: training loss after each step.
        node_stats: per-module statistics (empty unless requested).
        macs: per-sample Conv/Linear MACs of the network (filled when a FLOPs factor is used).
        adjusted_loss: loss times the FLOPs factor (equals ``loss`` without one).
    """

    name: str
    method: str
    preset: str
    loss: float = math.nan
    stage_losses: list[float] = field(default_factory=list)
    taps: list[str] = field(default_factory=list)
    initial_loss: float = math.nan
    iterations: int = 0
    seconds: float = 0.0
    error: str | None = None
    history: list[float] = field(default_factory=list)
    node_stats: dict[str, NodeStats] = field(default_factory=dict)
    macs: int | None = None
    adjusted_loss: float = math.nan

    @property
    def ok(self) -> bool:
        """True when the run finished with a finite loss."""
        return self.error is None and math.isfinite(self.loss)

    @property
    def score(self) -> float:
        """``-adjusted_loss`` (higher is better); NaN for failed runs."""
        return -self.adjusted_loss if self.ok else math.nan

    @property
    def loss_drop(self) -> float:
        """``initial_loss - loss``: how much the few steps reduced the loss."""
        return self.initial_loss - self.loss

    def to_row(self) -> dict[str, Any]:
        """A flat dict for CSV output: losses, ``loss_stage1..N`` (shallowest used tap first),
        ``taps`` (``;``-joined module paths), timing and error; no history / node statistics."""
        row: dict[str, Any] = {
            "model": self.name,
            "method": self.method,
            "preset": self.preset,
            "score": self.score,
            "loss": self.loss,
            "adjusted_loss": self.adjusted_loss,
            "initial_loss": self.initial_loss,
            "loss_drop": self.loss_drop,
        }
        for k, value in enumerate(self.stage_losses, start=1):
            row[f"loss_stage{k}"] = value
        row["taps"] = ";".join(self.taps)
        row.update({"iterations": self.iterations, "seconds": round(self.seconds, 4), "error": self.error or ""})
        return row

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        data = asdict(self)
        data["score"] = self.score
        data["loss_drop"] = self.loss_drop
        return data


@dataclass
class RegressionSetup:
    """What a method adds to a tapped network to make it a regression problem.

    Attributes:
        heads: one module per used tap mapping the ``target_size``² feature map to the target.
        targets: one target tensor ``(B, C', S, S)`` per head.
        tap_indices: which taps of the :class:`TapModel` feed the heads.
        train_weights: loss weight of each head during training.
        eval_weights: loss weight of each head in the reported loss.
        lr, momentum, weight_decay: SGD settings.
        target_size: side ``S`` of the target grid.
        normalize: standardise each resized tap per channel (batch and space) before its head.
    """

    heads: nn.ModuleList
    targets: list[torch.Tensor]
    tap_indices: list[int]
    train_weights: list[float]
    eval_weights: list[float]
    lr: float
    momentum: float
    weight_decay: float
    target_size: int
    normalize: bool = False


def fit_to_grid(feature: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a feature map to ``size``×``size``: adaptive average pooling down, nearest up."""
    h, w = feature.shape[-2:]
    if (h, w) == (size, size):
        return feature
    if h >= size and w >= size:
        return F.adaptive_avg_pool2d(feature, size)
    return F.interpolate(feature, size=(size, size), mode="nearest")


def standardize(feature: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-channel zero mean / unit variance over batch and space (a BatchNorm without affine)."""
    mean = feature.mean(dim=(0, 2, 3), keepdim=True)
    var = feature.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
    return (feature - mean) / torch.sqrt(var + eps)


@contextmanager
def node_stats(model: nn.Module, sink: dict[str, NodeStats]) -> Iterator[None]:
    """Record :class:`NodeStats` of every leaf module output of ``model`` into ``sink``."""
    handles = []
    counts: dict[str, int] = {}

    def make(name: str):  # noqa: ANN202
        def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                return
            k = counts.get(name, 0)
            counts[name] = k + 1
            key = name if k == 0 else f"{name}:{k}"
            with torch.no_grad():
                rms = float(out.detach().float().pow(2).mean().sqrt())
            stats = NodeStats(rms, 0.0, tuple(int(s) for s in out.shape[1:]))
            sink[key] = stats
            if out.requires_grad:

                def grad_hook(grad: torch.Tensor, stats: NodeStats = stats) -> None:
                    stats.grad_norm += float(grad.detach().float().norm())

                out.register_hook(grad_hook)

        return hook

    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            handles.append(module.register_forward_hook(make(name)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _weighted(losses: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    return sum(w * l for w, l in zip(weights, losses))  # type: ignore[return-value]


def run_regression(
    tap_model: TapModel | nn.Module,
    setup: RegressionSetup,
    images: torch.Tensor,
    iterations: int,
    collect_stats: bool = False,
) -> tuple[float, list[float], float, list[float], dict[str, NodeStats]]:
    """Train ``tap_model`` + heads on one batch and return the final evaluation loss.

    The network runs in train mode (BatchNorm uses batch statistics) except Dropout layers, which
    are put in eval mode so that runs are deterministic. The final loss comes from one extra
    forward pass after the last update (no gradient).

    Returns:
        ``(final_loss, final_stage_losses, initial_loss, history, node_stats)``.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    device = images.device
    tap_model.train()
    for module in tap_model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd) or isinstance(module, nn.Dropout):
            module.eval()
    setup.heads.train()
    params = [p for p in list(tap_model.parameters()) + list(setup.heads.parameters()) if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=setup.lr, momentum=setup.momentum, weight_decay=setup.weight_decay)
    targets = [t.to(device) for t in setup.targets]

    def stage_losses() -> list[torch.Tensor]:
        feats = tap_model(images)
        out = []
        for head, index, target in zip(setup.heads, setup.tap_indices, targets):
            feat = fit_to_grid(feats[index], setup.target_size)
            if setup.normalize:
                feat = standardize(feat)
            pred = head(feat)
            out.append(F.mse_loss(pred, target))
        return out

    def check(value: float, when: str) -> None:
        if not math.isfinite(value):
            raise FloatingPointError(f"loss is {value} {when}")

    history: list[float] = []
    stats: dict[str, NodeStats] = {}
    initial = math.nan
    for step in range(iterations):
        optimizer.zero_grad(set_to_none=True)
        if collect_stats and step == iterations - 1:
            ctx = tap_model.stats_context(stats) if hasattr(tap_model, "stats_context") else node_stats(tap_model.model, stats)
            with ctx:
                losses = stage_losses()
                loss = _weighted(losses, setup.train_weights)
                loss.backward()
        else:
            losses = stage_losses()
            loss = _weighted(losses, setup.train_weights)
            loss.backward()
        if step == 0:
            initial = float(_weighted([l.detach() for l in losses], setup.eval_weights))
            check(initial, "before training")
        value = float(loss.detach())
        check(value, f"at step {step + 1}")
        history.append(value)
        optimizer.step()
    with torch.no_grad():
        losses = stage_losses()
    final_stage = [float(l) for l in losses]
    final = float(_weighted(losses, setup.eval_weights))
    if iterations == 0:
        initial = final
    check(final, f"after {iterations} steps")
    return final, final_stage, initial, history, stats


def timed() -> float:
    """Monotonic clock used for the ``seconds`` field."""
    return time.perf_counter()

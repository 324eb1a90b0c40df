"""Eproxy: few-shot self-supervised regression through a frozen "barrier" layer.

Pipeline position: model → taps → **Eproxy teacher targets and barrier heads** → regression →
proxy score.

Reimplemented from Li et al., "Extensible Proxy for Efficient NAS" (2022). Our reading:

* Targets come from an untrained, randomly initialised 6-layer fully convolutional *teacher*
  (:class:`Teacher`: six 3×3 convolutions, ReLU between them, two of stride 2) applied to the
  input batch, resized to ``target_size``² and standardised per channel. Optional synthetic
  signals (``extra``: sine/dot :class:`~cgpredict.proxies.signals.SignalSpec`, scaled by their
  ``level``) are appended as further target channels.
* Each of the last ``num_stages`` taps is resized to the target grid and goes through a trainable
  1×1 *transform* convolution, an activation, then the *barrier*: a 3×3 convolution with random
  weights that is never trained. The barrier makes the head unable to fit the target on its own,
  so the loss reflects what the network itself can represent after a few steps. As for GenNAS
  we standardise each resized tap per channel before its head (our addition: without it lr 1.0
  diverges on about 10 % of NAS-Bench-201 networks); the ``raw`` preset turns this off.
* Training: 10 SGD steps (lr 1.0, no momentum, no weight decay) on one batch; loss = mean of the
  tap MSEs, also used as the reported loss. Lower is better.
* Optional FLOPs factor (applied across a set of networks by
  :func:`cgpredict.proxies.api.score_many`): ``loss · (1 + α · norm(FLOPs))`` with ``norm`` the
  min–max normalisation over the set; a negative ``α`` favours larger networks.

Presets (:data:`PRESETS`): ``default`` (teacher only), ``sine`` (teacher + global ``sin2d``
low/medium channels at level 0.5), ``dot`` (teacher + global ``dot`` 50 % channels at level 0.5),
``raw`` (``default`` without tap standardisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from cgpredict.proxies.core import RegressionSetup, fit_to_grid
from cgpredict.proxies.signals import SignalSpec, build_target
from cgpredict.proxies.taps import Tap

__all__ = ["EproxyConfig", "PRESETS", "Teacher", "eproxy_setup", "teacher_targets"]


@dataclass(frozen=True)
class EproxyConfig:
    """Settings of an Eproxy run.

    Attributes:
        num_stages: how many of the deepest taps get a head.
        teacher_channels: width of the teacher's hidden layers.
        target_channels: channels of the teacher output (the target).
        transform_channels: output channels of the trainable transform conv.
        activation: between transform and barrier: ``"relu"``, ``"tanh"`` or ``"none"``.
        transform_kernel, barrier_kernel: kernel sizes of the trainable transform (1) and of the
            frozen barrier (3) convolutions (odd; "same" padding).
        extra: synthetic signals appended to the target.
        iterations, lr, momentum, weight_decay: optimisation settings.
        normalize_taps: standardise each resized tap per channel before its head.
    """

    num_stages: int = 3
    teacher_channels: int = 32
    target_channels: int = 16
    transform_channels: int = 64
    activation: str = "relu"
    transform_kernel: int = 1
    barrier_kernel: int = 3
    extra: tuple[SignalSpec, ...] = ()
    iterations: int = 10
    lr: float = 1.0
    momentum: float = 0.0
    weight_decay: float = 0.0
    normalize_taps: bool = True
    description: str = field(default="", compare=False)


PRESETS: dict[str, EproxyConfig] = {
    "default": EproxyConfig(description="teacher targets only"),
    "sine": EproxyConfig(
        extra=(SignalSpec("sin2d", 4, band="low", level=0.5), SignalSpec("sin2d", 4, band="medium", level=0.5)),
        description="teacher + sin2d low/medium at level 0.5",
    ),
    "dot": EproxyConfig(extra=(SignalSpec("dot", 4, ratio=0.5, level=0.5),), description="teacher + dot 50% at level 0.5"),
    "raw": EproxyConfig(normalize_taps=False, description="teacher targets, taps not standardised (diverges on some nets)"),
}


def get_config(preset: str) -> EproxyConfig:
    """The :class:`EproxyConfig` of a preset name (``combo`` is accepted as ``default``)."""
    if preset == "combo":
        preset = "default"
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown Eproxy preset {preset!r}; expected one of {sorted(PRESETS)}") from None


class Teacher(nn.Module):
    """Untrained 6-layer fully convolutional network producing Eproxy's targets.

    Layers: 3×3 convolutions ``3→c, c→c (stride 2), c→c, c→c (stride 2), c→c, c→out``, ReLU after
    all but the last; Kaiming-normal weights, zero biases.
    """

    def __init__(self, in_channels: int = 3, channels: int = 32, out_channels: int = 16) -> None:
        super().__init__()
        strides = (1, 2, 1, 2, 1, 1)
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, stride in enumerate(strides):
            c_out = out_channels if i == len(strides) - 1 else channels
            conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers.append(conv)
            if i < len(strides) - 1:
                layers.append(nn.ReLU())
            c_in = c_out
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher features ``(N, out_channels, H/4, W/4)``."""
        return self.body(x)


def teacher_targets(images: torch.Tensor, config: EproxyConfig, target_size: int, seed: int) -> torch.Tensor:
    """Standardised teacher output on ``images`` plus the ``extra`` signals, on the CPU."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        teacher = Teacher(images.shape[1], config.teacher_channels, config.target_channels)
    with torch.no_grad():
        out = fit_to_grid(teacher(images.detach().float().cpu()), target_size)
        mean = out.mean(dim=(0, 2, 3), keepdim=True)
        std = out.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
        out = (out - mean) / std
    if config.extra:
        extra = build_target(list(config.extra), images.shape[0], target_size, seed=seed + 1, images=images)
        out = torch.cat([out, extra], dim=1)
    return out


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown Eproxy activation {name!r}; expected 'relu', 'tanh' or 'none'")


def eproxy_setup(taps: list[Tap], images: torch.Tensor, config: EproxyConfig, target_size: int = 8, seed: int = 0) -> RegressionSetup:
    """Barrier heads and teacher targets of Eproxy for a network with the given taps.

    The teacher, its targets and the barrier weights depend only on ``seed`` and the config (the
    barrier of the k-th deepest tap is seeded by ``k``), so all networks face the same problem.
    """
    target = teacher_targets(images, config, target_size, seed)
    used = min(config.num_stages, len(taps))
    first = len(taps) - used
    heads = nn.ModuleList()
    for index in range(first, len(taps)):
        depth_from_end = len(taps) - index
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1000 + 100 + depth_from_end)
            kb, kt = int(config.barrier_kernel), int(config.transform_kernel)
            barrier = nn.Conv2d(config.transform_channels, target.shape[1], kb, padding=kb // 2)
            torch.manual_seed(seed * 1000 + 200 + depth_from_end)
            transform = nn.Conv2d(taps[index].channels, config.transform_channels, kt, padding=kt // 2)
        barrier.requires_grad_(False)
        heads.append(nn.Sequential(transform, _activation(config.activation), barrier))
    return RegressionSetup(
        heads=heads,
        targets=[target] * used,
        tap_indices=list(range(first, len(taps))),
        train_weights=[1.0 / used] * used,
        eval_weights=[1.0 / used] * used,
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        target_size=target_size,
        normalize=config.normalize_taps,
    )

"""GenNAS: rank architectures by how well they regress synthetic signals in a few steps.

Pipeline position: model → taps → **GenNAS targets and heads** → regression → proxy score.

Reimplemented from Li et al., "Generic Neural Architecture Search via Regression" (NeurIPS 2021).
Our reading of the method:

* The classifier is removed and the last ``num_stages`` stage taps (3 by default, as for
  NAS-Bench-101/201, whose three stages are the taps at 32², 16² and 8²) are read out. Each tap is
  resized to ``target_size``² (8×8: adaptive average pooling, nearest upsampling for smaller maps)
  and mapped by a trainable 1×1 convolution to the C' channels of that stage's target.
  Our addition: the resized tap is first standardised per channel over batch and space (a
  BatchNorm without affine terms). Un-normalised taps — e.g. NAS-Bench-201 cell outputs, which
  are sums of unnormalised branches — make the paper's learning rates diverge on some networks;
  the ``raw`` preset turns the standardisation off.
* Targets are stacks of synthetic signal bases (:mod:`~cgpredict.proxies.signals`).
* Training: network and heads, SGD (lr 0.1, momentum 0.9, weight decay 4e-5), 100 iterations on
  one batch of 16 32×32 images; loss = sum of the stage MSEs.
* Reported loss: ``Σ_i MSE_i / 2^(N-i)`` over stages ``i = 1..N`` (the deepest stage weighs 1),
  evaluated after the last update. Lower is better.

Presets (:data:`PRESETS`):

* ``single`` — GenNAS-single: one target at the final stage only, ``dot`` with ratio 1.0 (every
  pixel ±1), global (the same random ±1 pattern for every image), 16 channels.
* ``combo`` — GenNAS-combo. The paper searches the signal combination per benchmark with a few
  labelled networks; we fix one combination that follows its findings (high frequencies and
  dots early, low frequencies and the resized image at the deepest stage): stage 1 ``sin2d``
  high ×4 + ``gdot`` 20 % ×4; stage 2 ``sin2d`` medium ×4 + ``sin1d`` medium ×4; stage 3 ``sin1d``
  low ×4 + ``sin2d`` low ×4 + ``resize`` (3 channels) + ``dot`` 100 % ×4 — all global except the
  resized image. With fewer taps than stages, the deepest stage specs go to the deepest taps.
* ``sin_local`` — ``combo`` with every synthetic signal drawn per sample (``scope="local"``).
* ``raw`` — ``combo`` without the tap standardisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from cgpredict.proxies.core import RegressionSetup
from cgpredict.proxies.signals import SignalSpec, build_target
from cgpredict.proxies.taps import Tap

__all__ = ["GenNASConfig", "PRESETS", "gennas_setup"]

_COMBO: tuple[tuple[SignalSpec, ...], ...] = (
    (SignalSpec("sin2d", 4, band="high"), SignalSpec("gdot", 4, ratio=0.2)),
    (SignalSpec("sin2d", 4, band="medium"), SignalSpec("sin1d", 4, band="medium")),
    (
        SignalSpec("sin1d", 4, band="low"),
        SignalSpec("sin2d", 4, band="low"),
        SignalSpec("resize"),
        SignalSpec("dot", 4, ratio=1.0),
    ),
)


@dataclass(frozen=True)
class GenNASConfig:
    """Settings of a GenNAS run.

    Attributes:
        stages: signal specs per stage, shallowest first; the last entry goes to the final tap.
            An empty tuple means "no target at this stage" (the tap is not used).
        iterations: SGD steps.
        lr, momentum, weight_decay: SGD settings.
        normalize_taps: standardise each resized tap per channel before its head.
    """

    stages: tuple[tuple[SignalSpec, ...], ...] = _COMBO
    iterations: int = 100
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 4e-5
    normalize_taps: bool = True
    description: str = field(default="", compare=False)


PRESETS: dict[str, GenNASConfig] = {
    "combo": GenNASConfig(description="GenNAS-combo (our fixed reading; see module docstring)"),
    "single": GenNASConfig(stages=((SignalSpec("dot", 16, ratio=1.0),),), description="GenNAS-single: Dot 100% at the last stage"),
    "sin_local": GenNASConfig(
        stages=tuple(tuple(s if s.kind == "resize" else replace(s, scope="local") for s in stage) for stage in _COMBO),
        description="combo with per-sample (local) signals",
    ),
    "raw": GenNASConfig(normalize_taps=False, description="combo without tap standardisation"),
}


def get_config(preset: str) -> GenNASConfig:
    """The :class:`GenNASConfig` of a preset name."""
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown GenNAS preset {preset!r}; expected one of {sorted(PRESETS)}") from None


def gennas_setup(
    taps: list[Tap],
    images: torch.Tensor,
    config: GenNASConfig,
    target_size: int = 8,
    seed: int = 0,
) -> RegressionSetup:
    """Heads and targets of GenNAS for a network with the given taps.

    Stage ``k`` of ``config.stages`` (counted from the deepest) is attached to tap ``k`` counted
    from the final tap; stages beyond the available taps are dropped (shallowest first). Targets
    depend only on ``seed``, the config and ``images`` — never on the architecture — so every
    network of a comparison regresses the same signals.

    Args:
        taps: from :func:`~cgpredict.proxies.taps.find_taps`.
        images: the input batch (used by the ``resize`` signal).
        config: signals and optimiser settings.
        target_size: side of the target grid.
        seed: seed of the targets and of the head initialisation.
    """
    n_stages = len(config.stages)
    used = min(n_stages, len(taps))
    stage_specs = config.stages[n_stages - used :]
    tap_offset = len(taps) - used
    heads = nn.ModuleList()
    targets: list[torch.Tensor] = []
    indices: list[int] = []
    positions: list[int] = []  # 1-based position among all config stages (for eval weights)
    gen_seed = seed
    for k, specs in enumerate(stage_specs):
        stage_pos = n_stages - used + k + 1
        if not specs:
            continue
        # target seed per config stage, so that dropping shallow stages keeps deep targets equal
        target = build_target(list(specs), images.shape[0], target_size, seed=gen_seed * 1000 + stage_pos, images=images)
        tap = taps[tap_offset + k]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1000 + stage_pos)
            heads.append(nn.Conv2d(tap.channels, target.shape[1], kernel_size=1))
        targets.append(target)
        indices.append(tap_offset + k)
        positions.append(stage_pos)
    if not heads:
        raise ValueError("GenNAS config has no signal at any used stage")
    eval_weights = [1.0 / 2 ** (n_stages - p) for p in positions]
    return RegressionSetup(
        heads=heads,
        targets=targets,
        tap_indices=indices,
        train_weights=[1.0] * len(heads),
        eval_weights=eval_weights,
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        target_size=target_size,
        normalize=config.normalize_taps,
    )

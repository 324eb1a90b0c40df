"""Once-for-All MobileNetV3-Large space family: arch encoding, network builder, random sampler.

Pipeline position: **model** (this builder) → CG → features → predictor → ranking/search.

Unlabelled here (no table): used for zero-shot demos, unseen-family tests and search.

Network (Cai et al., ICLR 2020, OFA's MobileNetV3 space at width 1.0; ImageNet 224×224, 1000
classes): first conv 3×3 stride 2 with 16 channels + BN + h-swish; a fixed first block (depthwise
3×3 on 16 channels + BN + ReLU, projection 1×1 to 16 + BN, identity residual); five dynamic
stages of widths 24, 40, 80, 112, 160 with first-block strides 2, 2, 2, 1, 2, activations
ReLU, ReLU, h-swish, h-swish, h-swish and squeeze-excite in the 40, 112 and 160 stages, as in
MobileNetV3-Large; a final 1×1 expansion conv to 960 + BN + h-swish, global average pool, a 1×1
feature-mix conv to 1280 (no BN, no bias in OFA) + h-swish and a linear classifier. Every dynamic
block is an MBConv with kernel ``k ∈ {3, 5, 7}`` and expansion ``e ∈ {3, 4, 6}`` (expanded
channels ``make_divisible(c_in × e, 8)``), residual when stride 1 and channels match. Squeeze-
excite: global pool → 1×1 conv (bias) to ``make_divisible(mid / 4, 8)`` → ReLU → 1×1 conv (bias)
→ hard sigmoid → channel scaling.

Readings: OFA's encoding keeps a kernel and expansion for all 4 slots of a stage and uses only the
first ``d`` (depth 2–4); here a stage lists only its ``d`` active blocks, which is canonical (the
unused slots do not change the network). No dropout (inference).

Arch: a tuple of 5 stages, each a tuple of 2–4 ``(kernel, expansion)`` pairs in block order.
"""

from __future__ import annotations

import random

import torch
from torch import nn

from cgpredict.datasets._mobile_blocks import (
    MBConv,
    check_block_stages,
    conv_bn_act,
    format_nested,
    literal,
    make_divisible,
)
from cgpredict.datasets.registry import FamilySpec, register_family

Block = tuple[int, int]
Arch = tuple[tuple[Block, ...], ...]

NAME: str = "ofa_mbv3"
TASKS: tuple[str, ...] = ()
INPUT_SHAPE: tuple[int, ...] = (1, 3, 224, 224)
FLOPS_MODE: str = "torchvision"

NUM_CLASSES = 1000
KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANDS: tuple[int, ...] = (3, 4, 6)
#: (width, first-block stride, activation, squeeze-excite) of the five dynamic stages.
STAGES: tuple[tuple[int, int, str, bool], ...] = (
    (24, 2, "relu", False),
    (40, 2, "relu", True),
    (80, 2, "h_swish", False),
    (112, 1, "h_swish", True),
    (160, 2, "h_swish", True),
)
DEPTHS: tuple[tuple[int, int], ...] = ((2, 4),) * len(STAGES)
STEM_CHANNELS = 16
FINAL_EXPAND_CHANNELS = 960
FEATURE_MIX_CHANNELS = 1280
_ACTS = {"relu": nn.ReLU, "h_swish": nn.Hardswish}


def input_shape(task: str | None = None) -> tuple[int, ...]:
    """Input shape (batch 1): ImageNet images, 3×224×224 (any task name gives the same network)."""
    return INPUT_SHAPE


def data_file(task: str) -> str:
    """Where user labels for ``task`` would go, relative to the data folder (none are shipped)."""
    if not task:
        raise ValueError(f"{NAME}: has no labelled tasks here; name a task to locate user labels")
    return f"naslib/{NAME}__{task}.csv"


def check_arch(arch: object) -> Arch:
    """Validate an arch and return it as nested tuples (ValueError naming the culprit)."""
    return check_block_stages(arch, DEPTHS, KERNELS, EXPANDS, NAME)


def parse_arch(text: str) -> Arch:
    """Parse arch text (``"(((3, 4), (5, 6)), ...)"``) into a canonical arch."""
    return check_arch(literal(text, NAME))


def format_arch(arch: Arch) -> str:
    """Canonical text of an arch; ``parse_arch(format_arch(a)) == a``."""
    return format_nested(check_arch(arch))


def from_ofa(ks: list[int], e: list[int], d: list[int]) -> Arch:
    """Convert OFA's own encoding (20 kernels, 20 expansions, 5 depths) into this family's arch."""
    if len(ks) != 20 or len(e) != 20 or len(d) != 5:
        raise ValueError(f"{NAME}: OFA encoding needs 20 ks, 20 e and 5 d, got {len(ks)}, {len(e)}, {len(d)}")
    return check_arch(tuple(tuple((ks[4 * s + b], e[4 * s + b]) for b in range(d[s])) for s in range(5)))


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` distinct random archs, deterministic for ``seed``.

    As OFA's ``sample_active_subnet``: per stage a depth uniform in 2..4, per block a kernel and an
    expansion uniformly.
    """
    if n < 0:
        raise ValueError(f"{NAME}: sample size must be >= 0, got {n}")
    rng = random.Random(seed)
    seen: set[Arch] = set()
    out: list[Arch] = []
    while len(out) < n:
        arch = tuple(
            tuple((rng.choice(KERNELS), rng.choice(EXPANDS)) for _ in range(rng.randint(lo, hi))) for lo, hi in DEPTHS
        )
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    return out


class OFAMobileNetV3(nn.Module):
    """An OFA MobileNetV3 subnet (see the module docstring)."""

    def __init__(self, arch: Arch, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        arch = check_arch(arch)
        self.stem = conv_bn_act(3, STEM_CHANNELS, 3, 2, nn.Hardswish)
        blocks: list[nn.Module] = [MBConv(STEM_CHANNELS, STEM_CHANNELS, 3, 1, STEM_CHANNELS, nn.ReLU, expand=False)]
        c_in = STEM_CHANNELS
        for (c_out, stride, act, se), stage in zip(STAGES, arch):
            for b, (kernel, expand) in enumerate(stage):
                mid = make_divisible(c_in * expand, 8)
                blocks.append(MBConv(c_in, c_out, kernel, stride if b == 0 else 1, mid, _ACTS[act], se=se))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.final_expand = conv_bn_act(c_in, FINAL_EXPAND_CHANNELS, 1, 1, nn.Hardswish)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = nn.Sequential(
            nn.Conv2d(FINAL_EXPAND_CHANNELS, FEATURE_MIX_CHANNELS, 1, bias=False), nn.Hardswish()
        )
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(FEATURE_MIX_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images ``x`` of shape (N, 3, H, W)."""
        x = self.global_pool(self.final_expand(self.blocks(self.stem(x))))
        return self.classifier(self.flatten(self.feature_mix(x)))


def build(arch: Arch, task: str | None = None) -> nn.Module:
    """The OFA MobileNetV3 subnet of ``arch`` (ImageNet, 1000 classes), in eval mode.

    Example:
        >>> from cgpredict.datasets import ofa_mbv3
        >>> net = ofa_mbv3.build(ofa_mbv3.sample(1, seed=0)[0])
    """
    return OFAMobileNetV3(check_arch(arch)).eval()


@register_family
def ofa_mbv3() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS})

"""ProxylessNAS (mobile search space) family: arch encoding, network builder, random sampler.

Pipeline position: **model** (this builder) → CG → features → predictor → ranking/search.

Unlabelled here (no table): used for zero-shot demos, unseen-family tests and search.

Network (Cai et al., ICLR 2019, the MobileNetV2-based mobile space, ImageNet 224×224, 1000
classes): first conv 3×3 stride 2 with 32 channels + BN + ReLU6; a fixed MBConv1 block
(depthwise 3×3 on 32 channels, projection to 16); six searched stages with (channels, max depth,
stride) = (24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1); a feature-mix
1×1 conv to 1280 + BN + ReLU6, global average pool and a linear classifier. Every searched block
is an MBConv (1×1 expansion to ``e × c_in`` + BN + ReLU6, k×k depthwise + BN + ReLU6, 1×1
projection + BN) with kernel ``k ∈ {3, 5, 7}`` and expansion ``e ∈ {3, 6}``, with an identity
residual when stride 1 and channels match; only the first block of a stage is strided.

Readings where the paper leaves details open: a skipped ("zero") block leaves the identity shortcut
only, so it is omitted from the network; since skipped blocks are then interchangeable with later
ones, a stage is described by its present blocks only (depth 1–4, the first block of a stage is
always present, the 320 stage has exactly one searched block). Expanded channels are ``c_in × e``
exactly (all multiples of 8 here). No dropout in the built network (inference).

Arch: a tuple of 6 stages, each a tuple of 1–4 ``(kernel, expansion)`` pairs in block order (the
last stage exactly 1), e.g. ``((5, 6), (3, 3)), ((7, 6),), ...``.
"""

from __future__ import annotations

import random

import torch
from torch import nn

from cgpredict.datasets._mobile_blocks import MBConv, check_block_stages, conv_bn_act, format_nested, literal
from cgpredict.datasets.registry import FamilySpec, register_family

Block = tuple[int, int]
Arch = tuple[tuple[Block, ...], ...]

NAME: str = "proxylessnas"
TASKS: tuple[str, ...] = ()
INPUT_SHAPE: tuple[int, ...] = (1, 3, 224, 224)
FLOPS_MODE: str = "torchvision"

NUM_CLASSES = 1000
KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANDS: tuple[int, ...] = (3, 6)
#: (output channels, max depth, stride of the first block) per searched stage.
STAGES: tuple[tuple[int, int, int], ...] = ((24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))
DEPTHS: tuple[tuple[int, int], ...] = tuple((1, depth) for _, depth, _ in STAGES)
STEM_CHANNELS = 32
FIRST_BLOCK_CHANNELS = 16
FEATURE_MIX_CHANNELS = 1280


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
    """Parse arch text (``"(((5, 6), (3, 3)), ((7, 6),), ...)"``) into a canonical arch."""
    return check_arch(literal(text, NAME))


def format_arch(arch: Arch) -> str:
    """Canonical text of an arch; ``parse_arch(format_arch(a)) == a``."""
    return format_nested(check_arch(arch))


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` distinct random archs, deterministic for ``seed``.

    Per stage a depth uniform in 1..max depth, then per block a kernel and an expansion uniformly.
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


class ProxylessNASNet(nn.Module):
    """The ProxylessNAS mobile network of one arch (see the module docstring)."""

    def __init__(self, arch: Arch, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        arch = check_arch(arch)
        self.stem = conv_bn_act(3, STEM_CHANNELS, 3, 2, nn.ReLU6)
        blocks: list[nn.Module] = [
            MBConv(STEM_CHANNELS, FIRST_BLOCK_CHANNELS, 3, 1, STEM_CHANNELS, nn.ReLU6, expand=False)
        ]
        c_in = FIRST_BLOCK_CHANNELS
        for (c_out, _, stride), stage in zip(STAGES, arch):
            for b, (kernel, expand) in enumerate(stage):
                blocks.append(MBConv(c_in, c_out, kernel, stride if b == 0 else 1, c_in * expand, nn.ReLU6))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.feature_mix = conv_bn_act(c_in, FEATURE_MIX_CHANNELS, 1, 1, nn.ReLU6)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(FEATURE_MIX_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images ``x`` of shape (N, 3, H, W)."""
        x = self.feature_mix(self.blocks(self.stem(x)))
        return self.classifier(self.flatten(self.global_pool(x)))


def build(arch: Arch, task: str | None = None) -> nn.Module:
    """The ProxylessNAS mobile network of ``arch`` (ImageNet, 1000 classes), in eval mode.

    Example:
        >>> from cgpredict.datasets import proxylessnas
        >>> net = proxylessnas.build(proxylessnas.sample(1, seed=0)[0])
    """
    return ProxylessNASNet(check_arch(arch)).eval()


@register_family
def proxylessnas() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS})

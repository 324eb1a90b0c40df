"""Once-for-All ResNet50 space family: arch encoding, network builder, random sampler.

Pipeline position: **model** (this builder) → CG → features → predictor → ranking/search.

Unlabelled here (no table): used for zero-shot demos, unseen-family tests and search.

Network (Cai et al., ICLR 2020, OFA-ResNet50; ImageNet 224×224, 1000 classes):

* Input stem (OFA-ResNet's "ResNet-D"-style 3×3 stem): conv 3×3 stride 2 to ``m`` channels + BN +
  ReLU; optionally a residual block conv 3×3 (``m → m``) + BN + ReLU added to its input (the
  skippable stem layer); conv 3×3 to ``c`` channels + BN + ReLU; max pool 3×3 stride 2.
  ``c = make_divisible(64 × w_stem_out, 8)``, ``m = make_divisible(make_divisible(64 × w_stem_mid,
  8) / 2, 8)`` (OFA derives the middle widths from the stem output widths).
* Four stages of bottleneck blocks, base depths 2, 2, 4, 2 plus 0–2 extra blocks each, output
  widths ``make_divisible(base × w, 8)`` of base 256, 512, 1024, 2048, first-block strides 1, 2,
  2, 2. Bottleneck: conv 1×1 to ``make_divisible(round(width × e), 8)`` + BN + ReLU, conv 3×3
  (stride) + BN + ReLU, conv 1×1 to ``width`` + BN; shortcut identity when shape is kept, else
  OFA's ``avgpool_conv`` downsample (average pool stride×stride, ceil mode, when strided, then
  conv 1×1 + BN); add, ReLU.
* Global average pool and a linear classifier.

Choices: width multipliers ``w ∈ {0.65, 0.8, 1.0}`` (one per stage and two for the stem),
bottleneck expansion ``e ∈ {0.2, 0.25, 0.35}`` per block, extra depth 0–2 per stage, stem middle
block kept or skipped. Readings: OFA samples the stem depth from {0, 1, 2} and keeps the middle
block only for 2; here it is a plain keep/skip choice sampled uniformly. A 1×1 average pool in
a stride-1 downsample is a no-op and omitted. No dropout (inference).

Arch (integers; ratios in percent): ``(stem, stage1, stage2, stage3, stage4)`` with
``stem = (keep_mid, w_stem_mid, w_stem_out)`` (``keep_mid`` 0/1, widths in {65, 80, 100}) and
``stage = (w, (e_1, ..., e_d))`` (``w`` in {65, 80, 100}, ``d`` blocks, each ``e`` in {20, 25, 35}).
"""

from __future__ import annotations

import random

import torch
from torch import nn

from cgpredict.datasets._mobile_blocks import check_choice, conv_bn_act, format_nested, literal, make_divisible
from cgpredict.datasets.registry import FamilySpec, register_family

StemArch = tuple[int, int, int]
StageArch = tuple[int, tuple[int, ...]]
Arch = tuple[StemArch, StageArch, StageArch, StageArch, StageArch]

NAME: str = "ofa_resnet50"
TASKS: tuple[str, ...] = ()
INPUT_SHAPE: tuple[int, ...] = (1, 3, 224, 224)
FLOPS_MODE: str = "torchvision"

NUM_CLASSES = 1000
WIDTHS: tuple[int, ...] = (65, 80, 100)
EXPANDS: tuple[int, ...] = (20, 25, 35)
BASE_DEPTHS: tuple[int, ...] = (2, 2, 4, 2)
EXTRA_DEPTH = 2
STAGE_WIDTHS: tuple[int, ...] = (256, 512, 1024, 2048)
STAGE_STRIDES: tuple[int, ...] = (1, 2, 2, 2)
STEM_WIDTH = 64


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
    if not isinstance(arch, (tuple, list)) or len(arch) != 1 + len(BASE_DEPTHS):
        raise ValueError(f"{NAME}: arch must be (stem, stage1, stage2, stage3, stage4), got {arch!r}")
    stem = arch[0]
    if not isinstance(stem, (tuple, list)) or len(stem) != 3:
        raise ValueError(f"{NAME}: stem must be (keep_mid, w_stem_mid, w_stem_out), got {stem!r}")
    keep = check_choice(stem[0], (0, 1), "stem keep_mid", NAME)
    w_mid = check_choice(stem[1], WIDTHS, "stem middle width", NAME)
    w_out = check_choice(stem[2], WIDTHS, "stem output width", NAME)
    stages: list[StageArch] = []
    for s, (stage, base) in enumerate(zip(arch[1:], BASE_DEPTHS), start=1):
        if not isinstance(stage, (tuple, list)) or len(stage) != 2 or not isinstance(stage[1], (tuple, list)):
            raise ValueError(f"{NAME}: stage {s} must be (width, (expand, ...)), got {stage!r}")
        width = check_choice(stage[0], WIDTHS, f"width of stage {s}", NAME)
        if not base <= len(stage[1]) <= base + EXTRA_DEPTH:
            raise ValueError(f"{NAME}: stage {s} has {len(stage[1])} blocks; allowed {base}..{base + EXTRA_DEPTH}")
        expands = tuple(
            check_choice(e, EXPANDS, f"expansion of stage {s} block {b}", NAME) for b, e in enumerate(stage[1])
        )
        stages.append((width, expands))
    return ((keep, w_mid, w_out), stages[0], stages[1], stages[2], stages[3])


def parse_arch(text: str) -> Arch:
    """Parse arch text (``"((1, 100, 80), (65, (25, 35)), ...)"``) into a canonical arch."""
    return check_arch(literal(text, NAME))


def format_arch(arch: Arch) -> str:
    """Canonical text of an arch; ``parse_arch(format_arch(a)) == a``."""
    return format_nested(check_arch(arch))


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` distinct random archs, deterministic for ``seed``: every choice uniform and independent."""
    if n < 0:
        raise ValueError(f"{NAME}: sample size must be >= 0, got {n}")
    rng = random.Random(seed)
    seen: set[Arch] = set()
    out: list[Arch] = []
    while len(out) < n:
        stem = (rng.randint(0, 1), rng.choice(WIDTHS), rng.choice(WIDTHS))
        stages = [
            (rng.choice(WIDTHS), tuple(rng.choice(EXPANDS) for _ in range(base + rng.randint(0, EXTRA_DEPTH))))
            for base in BASE_DEPTHS
        ]
        arch = check_arch((stem, *stages))
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    return out


def _width(base: int, percent: int) -> int:
    return make_divisible(base * percent / 100, 8)


class Bottleneck(nn.Module):
    """OFA-ResNet bottleneck block (1×1 → 3×3 strided → 1×1, ``avgpool_conv`` shortcut), ReLU after the add."""

    def __init__(self, c_in: int, c_out: int, mid: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_act(c_in, mid, 1, 1, nn.ReLU)
        self.conv2 = conv_bn_act(mid, mid, 3, stride, nn.ReLU)
        self.conv3 = conv_bn_act(mid, c_out, 1, 1, None)
        if stride == 1 and c_in == c_out:
            self.downsample: nn.Module = nn.Identity()
        else:
            layers: list[nn.Module] = []
            if stride > 1:
                layers.append(nn.AvgPool2d(stride, stride=stride, padding=0, ceil_mode=True))
            layers += [nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
            self.downsample = nn.Sequential(*layers)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU of the residual sum."""
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + self.downsample(x))


class StemResidual(nn.Module):
    """The skippable middle layer of OFA-ResNet's input stem: conv 3×3 + BN + ReLU plus its input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = conv_bn_act(channels, channels, 3, 1, nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``conv(x) + x``."""
        return self.conv(x) + x


class OFAResNet50(nn.Module):
    """An OFA-ResNet50 subnet (see the module docstring)."""

    def __init__(self, arch: Arch, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        (keep, w_mid, w_out), *stages = check_arch(arch)
        c_mid = make_divisible(_width(STEM_WIDTH, w_mid) / 2, 8)
        c_stem = _width(STEM_WIDTH, w_out)
        stem: list[nn.Module] = [conv_bn_act(3, c_mid, 3, 2, nn.ReLU)]
        if keep:
            stem.append(StemResidual(c_mid))
        stem += [conv_bn_act(c_mid, c_stem, 3, 1, nn.ReLU), nn.MaxPool2d(3, stride=2, padding=1)]
        self.stem = nn.Sequential(*stem)
        blocks: list[nn.Module] = []
        c_in = c_stem
        for (width, expands), base, stride in zip(stages, STAGE_WIDTHS, STAGE_STRIDES):
            c_out = _width(base, width)
            for b, e in enumerate(expands):
                mid = make_divisible(round(c_out * e / 100), 8)
                blocks.append(Bottleneck(c_in, c_out, mid, stride if b == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images ``x`` of shape (N, 3, H, W)."""
        return self.classifier(self.flatten(self.global_pool(self.blocks(self.stem(x)))))


def build(arch: Arch, task: str | None = None) -> nn.Module:
    """The OFA-ResNet50 subnet of ``arch`` (ImageNet, 1000 classes), in eval mode.

    Example:
        >>> from cgpredict.datasets import ofa_resnet50
        >>> net = ofa_resnet50.build(ofa_resnet50.sample(1, seed=0)[0])
    """
    return OFAResNet50(check_arch(arch)).eval()


@register_family
def ofa_resnet50() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS})

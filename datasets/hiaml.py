"""GENNAPE's HiAML family: 4 stages × 2 identical blocks chosen from a fixed set of block structures.

Pipeline position: **model** builder of the ``hiaml`` family → CG → features → predictor →
ranking/search.

Our reading of the GENNAPE paper (Mills et al., AAAI'23, appendix): HiAML networks are CIFAR-10
classifiers (32×32 input, 10 classes) made of a stem, then 4 stages; each stage stacks 2 copies of
one block, the block being picked per stage from a fixed set of hand-designed block structures
(14 in the paper, found by the HiAML block-level search); stages 2–4 start with a stride-2
downsampling block that doubles the channels; a global-average-pool + linear head ends the network.
The exact block bodies of the paper are not public in text form, so the 14 structures below are our
own, chosen to cover the same variety (plain, residual, bottleneck, inverted-residual, separable,
multi-branch, pooling, dense and squeeze-excitation blocks). No labels are shipped for this family.

Architecture encoding: a tuple of 4 block indices, one per stage, e.g. ``(3, 0, 11, 7)``
(14⁴ = 38,416 networks). Channels: stem 32, stages 32/64/128/256.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
from torch import nn

from cgpredict.datasets._gennape_ops import (
    Classifier,
    ConvBNReLU,
    DepthwiseSeparable,
    Pool,
    SpatiallySeparable,
    Stem,
    as_int,
    as_tuple,
    literal,
    unique_samples,
)
from cgpredict.datasets.registry import FamilySpec, register_family

NAME = "hiaml"
TASKS: tuple[str, ...] = ()
INPUT_SHAPE: tuple[int, ...] = (1, 3, 32, 32)
FLOPS_MODE = "torchvision"
NUM_CLASSES = 10

Arch = tuple[int, int, int, int]

NUM_STAGES = 4
BLOCKS_PER_STAGE = 2
STEM_CHANNELS = 32
STAGE_CHANNELS: tuple[int, ...] = (32, 64, 128, 256)


class Residual(nn.Module):
    """``relu(body(x) + shortcut(x))``; the shortcut is a 1×1 conv-BN when the shape changes."""

    def __init__(self, body: nn.Module, c_in: int, c_out: int, stride: int, relu: bool = True) -> None:
        super().__init__()
        self.body = body
        self.shortcut = (
            None
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )
        self.relu = nn.ReLU() if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Body plus shortcut (then ReLU)."""
        skip = x if self.shortcut is None else self.shortcut(x)
        out = self.body(x) + skip
        return out if self.relu is None else self.relu(out)


class SumBranches(nn.Module):
    """Sum of parallel branches applied to the same input."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise sum of the branch outputs."""
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


class ConcatBranches(SumBranches):
    """Concatenation of parallel branches along channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Channel concatenation of the branch outputs."""
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class DenseBlock(nn.Module):
    """``cbr1x1(concat(shortcut(x), cbr3x3(x)))``: the input features are reused DenseNet-style."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(c_in, c_out, 3, stride)
        self.keep = nn.AvgPool2d(2, 2) if stride == 2 else None
        self.fuse = ConvBNReLU(c_in + c_out, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fuse the (downsampled) input with its 3×3 convolution."""
        kept = x if self.keep is None else self.keep(x)
        return self.fuse(torch.cat([kept, self.conv(x)], dim=1))


class SqueezeExcite(nn.Module):
    """Channel attention: global pool → 1×1 reduce (ReLU) → 1×1 expand (sigmoid) → scale."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` scaled per channel."""
        return x * self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))


def _cb(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Module:
    return ConvBNReLU(c_in, c_out, kernel, stride, relu=False)


def _inverted(ci: int, co: int, s: int) -> nn.Module:
    body = nn.Sequential(ConvBNReLU(ci, 4 * ci, 1), ConvBNReLU(4 * ci, 4 * ci, 3, s, groups=4 * ci), _cb(4 * ci, co, 1))
    return Residual(body, ci, co, s, relu=False) if s == 1 and ci == co else body


def _incep(ci: int, co: int, s: int) -> nn.Module:
    quarter = co // 4
    return ConcatBranches(
        ConvBNReLU(ci, quarter, 1, s),
        nn.Sequential(ConvBNReLU(ci, co // 2, 1), ConvBNReLU(co // 2, co // 2, 3, s)),
        nn.Sequential(ConvBNReLU(ci, quarter, 1), ConvBNReLU(quarter, quarter, 3, s), ConvBNReLU(quarter, co - co // 2 - quarter, 3)),
    )


#: The fixed set of block structures: ``name → (c_in, c_out, stride) → module``.
BLOCKS: tuple[tuple[str, Callable[[int, int, int], nn.Module]], ...] = (
    ("basic_residual", lambda ci, co, s: Residual(nn.Sequential(ConvBNReLU(ci, co, 3, s), _cb(co, co)), ci, co, s)),
    (
        "bottleneck_residual",
        lambda ci, co, s: Residual(
            nn.Sequential(ConvBNReLU(ci, co // 4, 1), ConvBNReLU(co // 4, co // 4, 3, s), _cb(co // 4, co, 1)), ci, co, s
        ),
    ),
    ("plain_double3x3", lambda ci, co, s: nn.Sequential(ConvBNReLU(ci, co, 3, s), ConvBNReLU(co, co, 3))),
    ("inverted_residual", _inverted),
    (
        "separable_residual",
        lambda ci, co, s: Residual(nn.Sequential(DepthwiseSeparable(ci, co, 3, s), DepthwiseSeparable(co, co, 3)), ci, co, s),
    ),
    ("wide_3x3_5x5", lambda ci, co, s: SumBranches(ConvBNReLU(ci, co, 3, s), ConvBNReLU(ci, co, 5, s))),
    ("inception", _incep),
    ("pool_projection_residual", lambda ci, co, s: Residual(nn.Sequential(Pool("avg", ci, ci, s), _cb(ci, co, 1)), ci, co, s)),
    ("dense", DenseBlock),
    ("residual_5x5", lambda ci, co, s: Residual(nn.Sequential(ConvBNReLU(ci, co, 5, s), _cb(co, co, 5)), ci, co, s)),
    ("chain_1x1_3x3_5x5", lambda ci, co, s: nn.Sequential(ConvBNReLU(ci, co, 1), ConvBNReLU(co, co, 3, s), ConvBNReLU(co, co, 5))),
    (
        "squeeze_excite_residual",
        lambda ci, co, s: Residual(nn.Sequential(ConvBNReLU(ci, co, 3, s), _cb(co, co), SqueezeExcite(co)), ci, co, s),
    ),
    ("maxpool_branch", lambda ci, co, s: SumBranches(Pool("max", ci, co, s), ConvBNReLU(ci, co, 3, s))),
    (
        "factorised_residual",
        lambda ci, co, s: Residual(nn.Sequential(SpatiallySeparable(ci, co, 3, s), SpatiallySeparable(co, co, 3)), ci, co, s),
    ),
)
BLOCK_NAMES: tuple[str, ...] = tuple(name for name, _ in BLOCKS)


class HiAMLNet(nn.Module):
    """Stem → 4 stages of 2 identical blocks (stride 2 at the start of stages 2–4) → classifier."""

    def __init__(self, arch: Arch, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        arch = _check(arch)
        self.arch = arch
        self.stem = Stem(STEM_CHANNELS)
        stages = []
        c_in = STEM_CHANNELS
        for stage, block_index in enumerate(arch):
            c_out = STAGE_CHANNELS[stage]
            factory = BLOCKS[block_index][1]
            blocks = []
            for b in range(BLOCKS_PER_STAGE):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(factory(c_in, c_out, stride))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.classifier = Classifier(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.classifier(self.stages(self.stem(x)))


def _check(arch: object) -> Arch:
    items = as_tuple(arch, NUM_STAGES, NUM_STAGES, "hiaml arch")
    return tuple(as_int(v, 0, len(BLOCKS) - 1, f"hiaml block index of stage {i + 1}") for i, v in enumerate(items))  # type: ignore[return-value]


def input_shape(task: str | None = None) -> tuple[int, ...]:
    """The 32×32 RGB input (no tasks: ``task`` is ignored)."""
    return INPUT_SHAPE


def data_file(task: str) -> str:
    """No label table ships for HiAML: always raises ``ValueError``."""
    raise ValueError(f"family {NAME!r} has no labelled tasks (asked for {task!r})")


def parse_arch(text: str) -> Arch:
    """Parse ``"(3, 0, 11, 7)"`` into the canonical tuple; ``ValueError`` if malformed or out of range."""
    return _check(literal(text, NAME))


def format_arch(arch: Arch) -> str:
    """The canonical text of ``arch`` (inverse of :func:`parse_arch`)."""
    return repr(_check(arch))


def build(arch: Arch, task: str | None = None) -> nn.Module:
    """The HiAML network of ``arch`` (10 classes)."""
    return HiAMLNet(arch)


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` distinct uniformly random archs, deterministic for ``seed``."""
    rng = random.Random(seed)
    return unique_samples(
        lambda: tuple(rng.randrange(len(BLOCKS)) for _ in range(NUM_STAGES)), n, limit=len(BLOCKS) ** NUM_STAGES
    )


@register_family
def hiaml() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS}, label_table=None)

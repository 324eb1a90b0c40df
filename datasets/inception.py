"""GENNAPE's Inception family: 3 stages of 2–4 repeated multi-branch blocks.

Pipeline position: **model** builder of the ``inception`` family → CG → features → predictor →
ranking/search.

Our reading of the GENNAPE paper (Mills et al., AAAI'23, appendix): CIFAR-10 classifiers (32×32
input, 10 classes) with a 3×3 stem, then 3 stages; each stage repeats one Inception-style block
2–4 times; a block has 1–4 parallel branches whose outputs are concatenated, the block's output
channels being split across the branches; each branch is a short sequence (1–3) of Inception-style
operators: plain 3×3/5×5 convolutions, spatially factorised (1×k then k×1) and parallel-factorised
(1×k ‖ k×1) convolutions, depthwise-separable convolutions, 1×1 convolutions, double 1×1 and
3×3 average / max pooling. Stages 2 and 3 start with a stride-2 block (every branch strided) that
doubles the channels; the network ends with global average pooling and a linear classifier. All
convolutions are conv → BN → ReLU. No labels are shipped for this family.

Architecture encoding: ``((n_blocks, branches), (n_blocks, branches), (n_blocks, branches))``, one
pair per stage; ``branches`` is a tuple of 1–4 branches, each a tuple of 1–3 indices into
:data:`OPS`. Branches are stored sorted (concatenation order does not change the network's
function class), which makes the encoding canonical. Channels: stem 32, stages 32/64/128.
"""

from __future__ import annotations

import random

import torch
from torch import nn

from cgpredict.datasets._gennape_ops import Classifier, Stem, as_int, as_tuple, literal, make_op, unique_samples
from cgpredict.datasets.registry import FamilySpec, register_family

NAME = "inception"
TASKS: tuple[str, ...] = ()
INPUT_SHAPE: tuple[int, ...] = (1, 3, 32, 32)
FLOPS_MODE = "torchvision"
NUM_CLASSES = 10

Branch = tuple[int, ...]
Stage = tuple[int, tuple[Branch, ...]]
Arch = tuple[Stage, Stage, Stage]

#: Branch operators (convolutions first, then the supporting ops).
OPS: tuple[str, ...] = (
    "conv3x3",
    "inception_s3x3",
    "inception_p3x3",
    "depthwise3x3",
    "conv5x5",
    "depthwise5x5",
    "inception_s5x5",
    "inception_p5x5",
    "conv1x1",
    "avgpool3x3",
    "maxpool3x3",
    "double1x1",
)
POOL_OPS = frozenset(i for i, name in enumerate(OPS) if "pool" in name)
NUM_STAGES = 3
MIN_BLOCKS, MAX_BLOCKS = 2, 4
MAX_BRANCHES = 4
MIN_OPS, MAX_OPS = 1, 3
STEM_CHANNELS = 32
STAGE_CHANNELS: tuple[int, ...] = (32, 64, 128)


class InceptionBlock(nn.Module):
    """Parallel branches on the same input, concatenated; the output channels split across branches."""

    def __init__(self, branches: tuple[Branch, ...], c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        widths = [c_out // len(branches)] * len(branches)
        widths[0] += c_out - sum(widths)
        modules = []
        for branch, width in zip(branches, widths):
            layers = []
            c = c_in
            for position, op in enumerate(branch):
                last = position == len(branch) - 1
                c_next = c if (op in POOL_OPS and not last) else width
                layers.append(make_op(OPS[op], c, c_next, stride if position == 0 else 1))
                c = c_next
            modules.append(nn.Sequential(*layers))
        self.branches = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Channel concatenation of the branches (a single branch is returned as is)."""
        outs = [branch(x) for branch in self.branches]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


class InceptionNet(nn.Module):
    """Stem → 3 stages of repeated Inception blocks (stride 2 entering stages 2 and 3) → classifier."""

    def __init__(self, arch: Arch, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        arch = _check(arch)
        self.arch = arch
        self.stem = Stem(STEM_CHANNELS)
        blocks = []
        c_in = STEM_CHANNELS
        for stage, (n_blocks, branches) in enumerate(arch):
            c_out = STAGE_CHANNELS[stage]
            for b in range(n_blocks):
                blocks.append(InceptionBlock(branches, c_in, c_out, 2 if stage > 0 and b == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.classifier = Classifier(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.classifier(self.blocks(self.stem(x)))


def _check(arch: object) -> Arch:
    stages = as_tuple(arch, NUM_STAGES, NUM_STAGES, "inception arch")
    out = []
    for s, stage in enumerate(stages, start=1):
        n_blocks, branches = as_tuple(stage, 2, 2, f"inception stage {s} (n_blocks, branches)")
        n_blocks = as_int(n_blocks, MIN_BLOCKS, MAX_BLOCKS, f"inception stage {s} block count")
        branches = as_tuple(branches, 1, MAX_BRANCHES, f"inception stage {s} branches")
        checked = []
        for b, branch in enumerate(branches, start=1):
            ops = as_tuple(branch, MIN_OPS, MAX_OPS, f"inception stage {s} branch {b}")
            checked.append(tuple(as_int(op, 0, len(OPS) - 1, f"inception stage {s} branch {b} op") for op in ops))
        out.append((n_blocks, tuple(sorted(checked))))
    return tuple(out)  # type: ignore[return-value]


def input_shape(task: str | None = None) -> tuple[int, ...]:
    """The 32×32 RGB input (no tasks: ``task`` is ignored)."""
    return INPUT_SHAPE


def data_file(task: str) -> str:
    """No label table ships for the Inception family: always raises ``ValueError``."""
    raise ValueError(f"family {NAME!r} has no labelled tasks (asked for {task!r})")


def parse_arch(text: str) -> Arch:
    """Parse the nested-tuple text into the canonical arch; ``ValueError`` with the reason if malformed."""
    return _check(literal(text, NAME))


def format_arch(arch: Arch) -> str:
    """The canonical text of ``arch`` (inverse of :func:`parse_arch`)."""
    return repr(_check(arch))


def build(arch: Arch, task: str | None = None) -> nn.Module:
    """The Inception-family network of ``arch`` (10 classes)."""
    return InceptionNet(arch)


def _draw(rng: random.Random) -> Arch:
    stages = []
    for _ in range(NUM_STAGES):
        n_blocks = rng.randint(MIN_BLOCKS, MAX_BLOCKS)
        branches = tuple(
            tuple(rng.randrange(len(OPS)) for _ in range(rng.randint(MIN_OPS, MAX_OPS)))
            for _ in range(rng.randint(1, MAX_BRANCHES))
        )
        stages.append((n_blocks, tuple(sorted(branches))))
    return tuple(stages)  # type: ignore[return-value]


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` distinct random archs (uniform block counts, branch counts and ops), deterministic for ``seed``."""
    rng = random.Random(seed)
    return unique_samples(lambda: _draw(rng), n)


@register_family
def inception() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS}, label_table=None)

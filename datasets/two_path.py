"""GENNAPE's Two-Path family: two branches of single-path blocks, merged before the classifier.

Pipeline position: **model** builder of the ``two_path`` family → CG → features → predictor →
ranking/search.

Our reading of the GENNAPE paper (Mills et al., AAAI'23, appendix): CIFAR-10 classifiers (32×32
input, 10 classes). After a 3×3 stem the network splits into two paths that both read the stem
output; each path is a sequence of 2–4 single-path blocks, each block a sequence of 1–3 operators
(3×3 / 5×5 / double-3×3 convolutions, bottlenecks with reduction 2 or 4 or expansion 2, Inception
factorised 3×3 / 5×5 convolutions, 1×1 convolutions and 1×1 bottlenecks, 3×3 average / max pooling).
Each path downsamples twice (stride 2 on the first operator of block 0 and of block ``n // 2``),
doubling the channels each time (32 → 64 → 128), so both paths end at the same shape; the two path
outputs are concatenated, fused by a 1×1 conv, then global average pooling and a linear classifier.
No labels are shipped for this family.

Architecture encoding: ``(path_a, path_b)``, each path a tuple of 2–4 blocks, each block a tuple
of 1–3 indices into :data:`OPS`. The two paths are stored sorted (they are interchangeable), which
makes the encoding canonical.
"""

from __future__ import annotations

import random

import torch
from torch import nn

from cgpredict.datasets._gennape_ops import Classifier, ConvBNReLU, Stem, as_int, as_tuple, literal, make_op, unique_samples
from cgpredict.datasets.registry import FamilySpec, register_family

NAME = "two_path"
TASKS: tuple[str, ...] = ()
INPUT_SHAPE: tuple[int, ...] = (1, 3, 32, 32)
FLOPS_MODE = "torchvision"
NUM_CLASSES = 10

Block = tuple[int, ...]
Path = tuple[Block, ...]
Arch = tuple[Path, Path]

#: Block operators (convolutions first, then the supporting ops).
OPS: tuple[str, ...] = (
    "conv3x3",
    "double3x3",
    "conv5x5",
    "bottleneck-r2-k3",
    "bottleneck-r4-k3",
    "bottleneck-e2-k3",
    "inception_s3x3",
    "inception_s5x5",
    "conv1x1",
    "bottleneck-r2-k1",
    "bottleneck-e2-k1",
    "avgpool3x3",
    "maxpool3x3",
)
MIN_BLOCKS, MAX_BLOCKS = 2, 4
MIN_OPS, MAX_OPS = 1, 3
STEM_CHANNELS = 32
MERGE_CHANNELS = 256


def reduction_blocks(n_blocks: int) -> tuple[int, int]:
    """Indices of the two downsampling blocks of a path with ``n_blocks`` blocks."""
    return 0, max(1, n_blocks // 2)


def _path(blocks: Path, c_in: int) -> tuple[nn.Sequential, int]:
    layers = []
    c = c_in
    reductions = reduction_blocks(len(blocks))
    for index, block in enumerate(blocks):
        stride = 2 if index in reductions else 1
        c_out = 2 * c if stride == 2 else c
        ops = []
        for position, op in enumerate(block):
            ops.append(make_op(OPS[op], c if position == 0 else c_out, c_out, stride if position == 0 else 1))
        layers.append(nn.Sequential(*ops))
        c = c_out
    return nn.Sequential(*layers), c


class TwoPathNet(nn.Module):
    """Stem → two parallel paths → concat → 1×1 fuse → classifier."""

    def __init__(self, arch: Arch, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        arch = _check(arch)
        self.arch = arch
        self.stem = Stem(STEM_CHANNELS)
        self.path_a, c_a = _path(arch[0], STEM_CHANNELS)
        self.path_b, c_b = _path(arch[1], STEM_CHANNELS)
        self.fuse = ConvBNReLU(c_a + c_b, MERGE_CHANNELS, 1)
        self.classifier = Classifier(MERGE_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        x = self.stem(x)
        return self.classifier(self.fuse(torch.cat([self.path_a(x), self.path_b(x)], dim=1)))


def _check(arch: object) -> Arch:
    paths = as_tuple(arch, 2, 2, "two_path arch (path_a, path_b)")
    out = []
    for p, path in enumerate(paths, start=1):
        blocks = as_tuple(path, MIN_BLOCKS, MAX_BLOCKS, f"two_path path {p}")
        checked = []
        for b, block in enumerate(blocks, start=1):
            ops = as_tuple(block, MIN_OPS, MAX_OPS, f"two_path path {p} block {b}")
            checked.append(tuple(as_int(op, 0, len(OPS) - 1, f"two_path path {p} block {b} op") for op in ops))
        out.append(tuple(checked))
    return tuple(sorted(out))  # type: ignore[return-value]


def input_shape(task: str | None = None) -> tuple[int, ...]:
    """The 32×32 RGB input (no tasks: ``task`` is ignored)."""
    return INPUT_SHAPE


def data_file(task: str) -> str:
    """No label table ships for the Two-Path family: always raises ``ValueError``."""
    raise ValueError(f"family {NAME!r} has no labelled tasks (asked for {task!r})")


def parse_arch(text: str) -> Arch:
    """Parse the nested-tuple text into the canonical arch; ``ValueError`` with the reason if malformed."""
    return _check(literal(text, NAME))


def format_arch(arch: Arch) -> str:
    """The canonical text of ``arch`` (inverse of :func:`parse_arch`)."""
    return repr(_check(arch))


def build(arch: Arch, task: str | None = None) -> nn.Module:
    """The Two-Path network of ``arch`` (10 classes)."""
    return TwoPathNet(arch)


def _draw(rng: random.Random) -> Arch:
    paths = [
        tuple(
            tuple(rng.randrange(len(OPS)) for _ in range(rng.randint(MIN_OPS, MAX_OPS)))
            for _ in range(rng.randint(MIN_BLOCKS, MAX_BLOCKS))
        )
        for _ in range(2)
    ]
    return tuple(sorted(paths))  # type: ignore[return-value]


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` distinct random archs (uniform block counts, op counts and ops), deterministic for ``seed``."""
    rng = random.Random(seed)
    return unique_samples(lambda: _draw(rng), n)


@register_family
def two_path() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS}, label_table=None)

"""NAS-Bench-201 family: arch encoding, exact network builder and the benchmark's FLOPs convention.

Pipeline position: **model** (this builder) → CG → features → predictor → ranking/search.

Arch: a tuple of 6 op indices for the cell edges (1→2, 1→3, 1→4, 2→3, 2→4, 3→4), node 1 being the
cell input, with ``0=skip_connect, 1=none, 2=nor_conv_3x3, 3=nor_conv_1x1, 4=avg_pool_3x3``. The
official string lists edges by target node, so ``(e0, .., e5)`` reads
``|e0~0|+|e1~0|e3~1|+|e2~0|e4~1|e5~2|`` (see :func:`to_official_string`).

Network (Dong & Yang, ICLR 2020): stem conv3×3 (16 ch, no bias) + BN; three stages of 5 cells
with 16/32/64 channels; between stages a ResNet basic block with stride 2 (ReLU-Conv3×3-BN twice,
shortcut avg-pool 2×2 + conv1×1); final BN + ReLU, global average pool and a linear classifier
(10 / 100 / 120 classes; ImageNet16-120 inputs are 16×16). Cell ops are ReLU-Conv-BN (affine BN),
3×3 average pooling (``count_include_pad=False``), identity, and zero for "none".

Counting: ``params`` of the data tables equals ``sum(p.numel())`` of :func:`build` exactly for
every row of the three tables. The ``flops`` column (MFLOPs) was computed by the NAS-Bench-Suite-Zero
authors with a module-hook counter; the counting mode ``"nasbench201"`` (registered on import, see
:func:`nasbench201_macs`) reproduces it exactly: convolution and linear MACs (no bias term),
average and max pooling ``kernel_area × output elements``, one per ReLU output element, two per
batch-norm output element (scale and shift), and the global average pool counted as a window of
``(H+1)×(W+1)`` per channel (the counter's rule for adaptive pooling). Adds and zero/identity edges
are not counted. conv + linear alone falls up to 41 % below the column (pool-heavy cells).

Example:
    >>> from cgpredict.converters import from_torch
    >>> from cgpredict.datasets import nasbench201 as nb201
    >>> arch = nb201.parse_arch("(0, 2, 3, 2, 3, 1)")
    >>> cg = from_torch(nb201.build(arch, "cifar10"), input_shape=nb201.input_shape("cifar10"))
    >>> cg.params, cg.macs(nb201.FLOPS_MODE)  # the table row: 0.615386 M params, 88.307392 MFLOPs
    (615386, 88307392)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from cgpredict.datasets._tasks import check_task
from cgpredict.datasets._cell_ops import (
    Cell4,
    Identity,
    ReLUConvBN,
    Zero,
    check_cell_arch,
    parse_int_tuple,
    sample_cells,
)
from cgpredict.datasets._suitezero_counting import suite_zero_macs
from cgpredict.datasets.registry import FamilySpec, register_family

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG

Arch = tuple[int, ...]

NAME: str = "nasbench201"
TASKS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
INPUT_SHAPE: tuple[int, ...] = (1, 3, 32, 32)
FLOPS_MODE: str = "nasbench201"

#: Op names in index order (the arch tuple's codes).
OP_NAMES: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NUM_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
STEM_CHANNELS = 16
CELLS_PER_STAGE = 5


def _check_task(task: str | None) -> str:
    return check_task(NAME, TASKS, task)


def input_shape(task: str | None = None) -> tuple[int, ...]:
    """Input shape (batch 1) the benchmark trained ``task`` on: 32×32, or 16×16 for ImageNet16-120."""
    return (1, 3, 16, 16) if _check_task(task) == "ImageNet16-120" else INPUT_SHAPE


def data_file(task: str) -> str:
    """Path of the labelled table of ``task`` relative to the data folder."""
    return f"naslib/{NAME}__{_check_task(task)}.csv"


def parse_arch(text: str) -> Arch:
    """Parse the table's ``arch`` text (e.g. ``"(0, 2, 3, 2, 3, 1)"``) into a canonical tuple.

    Raises:
        ValueError: when it is not 6 integers in 0..4.
    """
    return check_cell_arch(parse_int_tuple(text, NAME), len(OP_NAMES), NAME)


def format_arch(arch: Arch) -> str:
    """Canonical text of an arch; ``parse_arch(format_arch(a)) == a``."""
    return str(check_cell_arch(arch, len(OP_NAMES), NAME))


def to_official_string(arch: Arch) -> str:
    """The NAS-Bench-201 API string, e.g. ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|``."""
    e = [OP_NAMES[i] for i in check_cell_arch(arch, len(OP_NAMES), NAME)]
    return f"|{e[0]}~0|+|{e[1]}~0|{e[3]}~1|+|{e[2]}~0|{e[4]}~1|{e[5]}~2|"


def from_official_string(text: str) -> Arch:
    """Inverse of :func:`to_official_string`."""
    nodes = [part.strip("|").split("|") for part in text.strip().split("+")]
    try:
        ops = {}
        for target, node in enumerate(nodes, start=1):
            for item in node:
                name, src = item.split("~")
                ops[(int(src), target)] = OP_NAMES.index(name)
        order = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
        return tuple(ops[e] for e in order)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{NAME}: malformed official arch string {text!r} ({exc})") from None


def _edge_op(code: int, channels: int) -> nn.Module:
    if code == 0:
        return Identity()
    if code == 1:
        return Zero()
    if code == 2:
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if code == 3:
        return ReLUConvBN(channels, channels, 1, 1, 0)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction block: two ReLU-Conv3×3-BN (first strided) plus a pooled 1×1 shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum of the two-conv branch and the shortcut."""
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro skeleton around a fixed cell (the benchmark's ``TinyNetwork``)."""

    def __init__(
        self, arch: Arch, num_classes: int, channels: int = STEM_CHANNELS, cells: int = CELLS_PER_STAGE
    ) -> None:
        super().__init__()
        arch = check_cell_arch(arch, len(OP_NAMES), NAME)
        self.arch = arch
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c, 2))
                c *= 2
            for _ in range(cells):
                layers.append(Cell4([_edge_op(code, c) for code in arch]))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(N, num_classes)``."""
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


def build(arch: Arch, task: str | None = None) -> nn.Module:
    """The exact network NAS-Bench-201 trained for ``arch`` on ``task`` (default cifar10)."""
    return NB201Network(arch, NUM_CLASSES[_check_task(task)])


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` distinct random archs (uniform over the 15,625 cells), deterministic for ``seed``."""
    return sample_cells(n, seed, len(OP_NAMES))


def nasbench201_macs(cg: CG) -> int:
    """MACs of a CG under the convention of the tables' ``flops`` column (see module docstring)."""
    return suite_zero_macs(cg, global_pool=True)


@register_family
def nasbench201() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS}, counting=nasbench201_macs)

"""NATS-Bench size search space (SSS): arch encoding, exact network builder, sampler and label table.

Pipeline position: **model** (this builder) → CG → features → predictor → ranking/search.

Arch: the five layer widths ``(C1, C2, C3, C4, C5)``, each in {8, 16, ..., 64}; the benchmark's
text is ``"C1:C2:C3:C4:C5"`` (:func:`parse_arch`, :func:`format_arch`). The 8^5 = 32,768 archs are
numbered like base-8 numbers with C1 the most significant digit (:func:`to_index`,
:func:`from_index`), which is the benchmark's ``index``.

Network (Dong et al., "NATS-Bench", TPAMI 2021), the NAS-Bench-201 skeleton with N = 1 and one
fixed cell, :data:`CELL` = ``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|``:

* stem: conv3×3 (3 → C1, no bias) + BN;
* five layers: cell (C_prev → C1), residual reduction block (C1 → C2), cell (C2 → C3), residual
  reduction block (C3 → C4), cell (C4 → C5), where C_prev is the previous layer's width (the stem's
  C1 for the first cell);
* a cell mapping C_in → C_out changes width only on the edges leaving its input node: those convs
  are ReLU-Conv3×3-BN from C_in to C_out, and ``skip_connect~0`` becomes a 1×1 conv (C_in → C_out,
  no bias) + BN when C_in ≠ C_out (the benchmark's stride-1 "factorized reduce": no ReLU in front,
  which changes nothing in the parameter count); every other edge is C_out → C_out;
* the reduction block is NAS-Bench-201's ResNet basic block with stride 2 from C_in to C_out
  (ReLU-Conv3×3-BN strided, ReLU-Conv3×3-BN, shortcut avg-pool 2×2 + conv1×1 C_in → C_out), also
  when C_in = C_out;
* final BN + ReLU, global average pool and a linear classifier (10 / 100 / 120 classes;
  ImageNet16-120 inputs are 16×16).

Labels: ``nats_sss/natsbench_sss.csv`` holds one row per arch with the test accuracy (90-epoch
schedule) of every task in its own column (:data:`LABEL_COLUMNS`), the NATS ``index`` and
``params`` (millions). :func:`read_labels` reads the task's column as the label; the other tasks'
accuracies and the index are dropped (they are neither labels of this task nor zero-cost scores).
The ``params`` column counts the CIFAR-10 network (10 classes), so it is kept as the table's
params for ``cifar10`` only. ``sum(p.numel())`` of :func:`build` equals it exactly for all 32,768
rows (``benchmarks/families.py --families nats_sss --params-exact``). The table has no FLOPs
column, so FLOPs use the ``torchvision`` counting mode.

Example:
    >>> from cgpredict.converters import from_torch
    >>> from cgpredict.datasets import nats_sss
    >>> arch = nats_sss.parse_arch("8:8:8:8:16")
    >>> cg = from_torch(nats_sss.build(arch, "cifar10"), input_shape=nats_sss.input_shape("cifar10"))
    >>> cg.params  # the table row: 0.018386 M params
    18386
"""

from __future__ import annotations

import operator
import random
from pathlib import Path

import torch
from torch import nn

from cgpredict.datasets._cell_ops import CELL_EDGES, Cell4, Identity, ReLUConvBN
from cgpredict.datasets._table import Table, read_table
from cgpredict.datasets._tasks import check_task
from cgpredict.datasets.nasbench201 import ResNetBasicBlock
from cgpredict.datasets.registry import FamilySpec, register_family

Arch = tuple[int, ...]

NAME: str = "nats_sss"
TASKS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
INPUT_SHAPE: tuple[int, ...] = (1, 3, 32, 32)
FLOPS_MODE: str = "torchvision"

#: The candidate widths of every layer.
WIDTHS: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
#: Layers of the skeleton; True marks the residual reduction blocks.
LAYER_IS_REDUCTION: tuple[bool, ...] = (False, True, False, True, False)
NUM_LAYERS: int = len(LAYER_IS_REDUCTION)
#: Size of the search space (8^5).
SPACE_SIZE: int = len(WIDTHS) ** NUM_LAYERS
#: The fixed cell, in the NAS-Bench-201 string notation.
CELL: str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
#: The fixed cell's op per edge, in :data:`cgpredict.datasets._cell_ops.CELL_EDGES` order
#: (0→1, 0→2, 0→3, 1→2, 1→3, 2→3).
CELL_OPS: tuple[str, ...] = ("nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3")
NUM_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
#: The label column of each task in the table.
LABEL_COLUMNS: dict[str, str] = {task: f"{task}-test" for task in TASKS}
#: The task whose network the table's ``params`` column counts.
PARAMS_TASK: str = "cifar10"
#: The table, relative to the data folder (one file for all tasks).
DATA_FILE: str = "nats_sss/natsbench_sss.csv"


def _check_task(task: str | None) -> str:
    return check_task(NAME, TASKS, task)


def input_shape(task: str | None = None) -> tuple[int, ...]:
    """Input shape (batch 1) the benchmark trained ``task`` on: 32×32, or 16×16 for ImageNet16-120."""
    return (1, 3, 16, 16) if _check_task(task) == "ImageNet16-120" else INPUT_SHAPE


def data_file(task: str) -> str:
    """Path of the labelled table of ``task`` relative to the data folder (shared by all tasks)."""
    _check_task(task)
    return DATA_FILE


def check_arch(arch: object) -> Arch:
    """Validate an arch (five widths from :data:`WIDTHS`, or its ``C1:..:C5`` text) and return it as a tuple.

    Raises:
        ValueError: naming the family and the offending value.
    """
    if isinstance(arch, str):
        return parse_arch(arch)
    if not isinstance(arch, (tuple, list)) or len(arch) != NUM_LAYERS:
        raise ValueError(f"{NAME}: arch must be {NUM_LAYERS} widths, got {arch!r}")
    for k, width in enumerate(arch):
        if not isinstance(width, int) or isinstance(width, bool) or width not in WIDTHS:
            raise ValueError(f"{NAME}: width {width!r} of layer {k + 1} in {tuple(arch)!r} is not one of {WIDTHS}")
    return tuple(int(w) for w in arch)


def parse_arch(text: str) -> Arch:
    """Parse the benchmark's ``"C1:C2:C3:C4:C5"`` text (e.g. ``"8:16:64:32:8"``) into a tuple of widths.

    Raises:
        ValueError: when it is not five colon-separated widths from :data:`WIDTHS`.
    """
    parts = str(text).strip().split(":")
    if len(parts) != NUM_LAYERS:
        raise ValueError(f"{NAME}: expected {NUM_LAYERS} colon-separated widths such as '8:16:64:32:8', got {text!r}")
    try:
        widths = tuple(int(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(f"{NAME}: widths must be integers, got {text!r}") from None
    return check_arch(widths)


def format_arch(arch: Arch) -> str:
    """Canonical ``C1:C2:C3:C4:C5`` text of an arch; ``parse_arch(format_arch(a)) == a``."""
    return ":".join(str(w) for w in check_arch(arch))


def to_index(arch: Arch) -> int:
    """The benchmark's index of ``arch`` (base-8 digits of the widths, C1 most significant)."""
    index = 0
    for width in check_arch(arch):
        index = index * len(WIDTHS) + WIDTHS.index(width)
    return index


def from_index(index: int) -> Arch:
    """Inverse of :func:`to_index`.

    Raises:
        ValueError: ``index`` outside ``0 .. 32767``.
    """
    try:
        index = operator.index(index)  # ints and numpy integers, not floats
    except TypeError:
        raise ValueError(f"{NAME}: index {index!r} is not an integer") from None
    if not 0 <= index < SPACE_SIZE:
        raise ValueError(f"{NAME}: index {index!r} is outside 0..{SPACE_SIZE - 1}")
    digits = []
    for _ in range(NUM_LAYERS):
        index, digit = divmod(index, len(WIDTHS))
        digits.append(WIDTHS[digit])
    return tuple(reversed(digits))


class Conv1x1BN(nn.Sequential):
    """Conv1×1 (no bias) + BN: the benchmark's ``skip_connect`` when a cell changes width (stride 1)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


def _edge_op(op: str, c_in: int, c_out: int) -> nn.Module:
    """The module of a cell edge mapping ``c_in`` → ``c_out`` channels (stride 1)."""
    if op == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, 1, 1)
    if op == "skip_connect":
        return Identity() if c_in == c_out else Conv1x1BN(c_in, c_out)
    raise ValueError(f"{NAME}: no op {op!r} in the fixed cell")


def build_cell(c_in: int, c_out: int) -> Cell4:
    """The fixed cell from ``c_in`` to ``c_out`` channels: edges leaving the input node change the width."""
    return Cell4([_edge_op(op, c_in if src == 0 else c_out, c_out) for op, (src, _) in zip(CELL_OPS, CELL_EDGES)])


class NATSSizeNetwork(nn.Module):
    """The NATS-Bench size-space network of ``arch`` (the benchmark's dynamic-shape tiny network)."""

    def __init__(self, arch: Arch, num_classes: int) -> None:
        super().__init__()
        self.arch = check_arch(arch)
        self.stem = nn.Sequential(nn.Conv2d(3, self.arch[0], 3, padding=1, bias=False), nn.BatchNorm2d(self.arch[0]))
        layers: list[nn.Module] = []
        c_prev = self.arch[0]
        for width, reduction in zip(self.arch, LAYER_IS_REDUCTION):
            layers.append(ResNetBasicBlock(c_prev, width, 2) if reduction else build_cell(c_prev, width))
            c_prev = width
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(N, num_classes)``."""
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


def build(arch: Arch, task: str | None = None) -> nn.Module:
    """The exact network NATS-Bench trained for ``arch`` (widths or ``C1:..:C5`` text) on ``task`` (default cifar10)."""
    return NATSSizeNetwork(check_arch(arch), NUM_CLASSES[_check_task(task)])


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` distinct random archs, uniform over the 32,768 width choices, deterministic for ``seed``.

    Raises:
        ValueError: ``n`` is negative or larger than the space.
    """
    if not 0 <= n <= SPACE_SIZE:
        raise ValueError(f"{NAME}: cannot sample {n} distinct archs from a space of {SPACE_SIZE}")
    return [from_index(i) for i in random.Random(seed).sample(range(SPACE_SIZE), n)]


def read_labels(path: str | Path, task: str) -> Table:
    """The validated label table of ``task``: the ``<task>-test`` column as labels.

    Every row is checked by :func:`cgpredict.datasets._table.read_table` (errors name the file and
    line). The other tasks' accuracy columns and ``index`` are dropped; ``params`` is kept for
    :data:`PARAMS_TASK` only (the column counts the 10-class network). Further numeric columns stay.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a malformed row, or the header lacks the task's column (naming the file).
    """
    task = _check_task(task)
    table = read_table(path, parse_arch, key_column="arch", label_column=LABEL_COLUMNS[task])
    drop = {"index", *LABEL_COLUMNS.values()}
    if task != PARAMS_TASK:
        drop.add("params")
    table.columns = {k: v for k, v in table.columns.items() if k not in drop}
    return table


@register_family
def nats_sss() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS}, label_table=DATA_FILE,
                      read_labels=read_labels)

"""NAS-Bench-301 (DARTS search space) family: arch encoding, exact network builder, FLOPs convention.

Why one module over 400 lines: the DARTS cell, its ops and the FLOPs convention of the table are one exact builder, checked row by row against it.

Pipeline position: **model** (this builder) → CG → features → predictor → ranking/search.

Arch: ``(normal, reduce)``, each a tuple of 8 pairs ``(input_node, op_index)``: pairs ``2k`` and
``2k + 1`` are the two inputs of intermediate node ``k + 2`` (k = 0..3); inputs 0 and 1 are the
outputs of the two previous cells, 2..5 the intermediate nodes, so pair ``j`` may only read nodes
``0 .. j // 2 + 1``, and the two inputs of a node are distinct. Ops: ``0=max_pool_3x3,
1=avg_pool_3x3, 2=skip_connect, 3=sep_conv_3x3, 4=sep_conv_5x5, 5=dil_conv_3x3, 6=dil_conv_5x5``.
The cell output concatenates nodes 2–5. The canonical arch orders the two pairs of every node
ascending (a node sums its two inputs, so the order carries no information).

Network (DARTS evaluation network, Liu et al. ICLR 2019, in the NAS-Bench-301 configuration,
Siems et al. 2020): stem conv3×3 (3 → 96, no bias) + BN; 8 cells with 32 initial channels,
reduction cells at depths 2 and 5 (1/3 and 2/3) doubling the channels (32/64/128); each cell
preprocesses its two inputs with ReLU-Conv1×1-BN (FactorizedReduce when the previous cell reduced);
global average pool and a linear classifier (10 classes). Ops as in DARTS: ``sep_conv`` = twice
ReLU → depthwise conv → pointwise conv → BN; ``dil_conv`` = ReLU → dilated depthwise conv
(dilation 2) → pointwise conv → BN; pools 3×3 with padding 1 (average pooling without counting
padding); ``skip_connect`` is the identity, or a FactorizedReduce on the stride-2 edges of a
reduction cell.

Details resolved against the table (725 rows), whose columns were computed by the NAS-Bench-Suite-Zero
authors on NASLib's model of this space: the ``params`` column equals ``sum(p.numel())`` of
:func:`build` exactly for every row when the stem and preprocessing batch norms are affine, the
batch norms inside the cell ops (sep/dil conv, FactorizedReduce skip) are not affine, and there is
no auxiliary head (DARTS-style training adds one; it is not in the counted network and unused at
inference; drop path is a training-time no-op). Non-affine cell-op batch norms are NASLib's
setting; whether NAS-Bench-301's own training code used affine ones cannot be told from the data,
and it only changes the parameter count, not the graph. Each pool is followed by a non-affine batch norm
as in the DARTS search model (DARTS's own evaluation network has none): parameter-free, so the
``params`` column cannot tell, but the ``flops`` column counts one MAC per element after every
pool, which that batch norm explains exactly.

Counting mode ``"nasbench301"`` (registered on import, see :func:`nasbench301_macs`): see the
function docstring for the convention and its measured agreement with the ``flops`` column.
"""

from __future__ import annotations

import ast
import random
from typing import TYPE_CHECKING

import torch
from torch import nn

from cgpredict.datasets._tasks import check_task
from cgpredict.datasets.registry import FamilySpec, register_family

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG

Pair = tuple[int, int]
CellArch = tuple[Pair, ...]
Arch = tuple[CellArch, CellArch]

NAME: str = "nasbench301"
TASKS: tuple[str, ...] = ("cifar10",)
INPUT_SHAPE: tuple[int, ...] = (1, 3, 32, 32)
FLOPS_MODE: str = "nasbench301"

#: Op names in index order (the second element of every pair).
OP_NAMES: tuple[str, ...] = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
NUM_CLASSES: dict[str, int] = {"cifar10": 10}
INIT_CHANNELS = 32
NUM_CELLS = 8
STEM_MULTIPLIER = 3
NUM_NODES = 4  # intermediate nodes per cell
PAIRS_PER_CELL = 2 * NUM_NODES


def _check_task(task: str | None) -> str:
    return check_task(NAME, TASKS, task)


def input_shape(task: str | None = None) -> tuple[int, ...]:
    """Input shape (batch 1) of the benchmark: CIFAR-10 images, 3×32×32."""
    _check_task(task)
    return INPUT_SHAPE


def data_file(task: str) -> str:
    """Path of the labelled table of ``task`` relative to the data folder."""
    return f"naslib/{NAME}__{_check_task(task)}.csv"


# --------------------------------------------------------------------------------------------
# arch encoding


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_arch(arch: object) -> Arch:
    """Validate an arch (nested sequences) and return its canonical form.

    Raises:
        ValueError: naming the cell, pair and value that is malformed or out of range.
    """
    if not isinstance(arch, (tuple, list)) or len(arch) != 2:
        raise ValueError(f"{NAME}: arch must be [normal, reduce] (2 cells), got {arch!r}")
    cells = []
    for cell_name, cell in zip(("normal", "reduce"), arch):
        if not isinstance(cell, (tuple, list)) or len(cell) != PAIRS_PER_CELL:
            raise ValueError(f"{NAME}: {cell_name} cell must have {PAIRS_PER_CELL} (input, op) pairs, got {cell!r}")
        pairs = []
        for j, pair in enumerate(cell):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(_is_int(v) for v in pair):
                raise ValueError(f"{NAME}: {cell_name} pair {j} must be (input_node, op_index) ints, got {pair!r}")
            node_in, op = int(pair[0]), int(pair[1])
            max_in = j // 2 + 1
            if not 0 <= node_in <= max_in:
                raise ValueError(
                    f"{NAME}: {cell_name} pair {j} (node {j // 2 + 2}) reads node {node_in}; allowed 0..{max_in}"
                )
            if not 0 <= op < len(OP_NAMES):
                raise ValueError(f"{NAME}: {cell_name} pair {j} has op index {op}; allowed 0..{len(OP_NAMES) - 1}")
            pairs.append((node_in, op))
        canon: list[Pair] = []
        for k in range(NUM_NODES):
            a, b = pairs[2 * k], pairs[2 * k + 1]
            if a[0] == b[0]:
                raise ValueError(f"{NAME}: {cell_name} node {k + 2} reads node {a[0]} twice; its inputs must differ")
            canon.extend(sorted((a, b)))
        cells.append(tuple(canon))
    return (cells[0], cells[1])


def parse_arch(text: str) -> Arch:
    """Parse the table's ``arch`` text (``"[[(0, 0), (1, 5), ...], [...]]"``) into a canonical arch.

    Raises:
        ValueError: when the text is not a valid DARTS genotype in this encoding.
    """
    if not isinstance(text, str):
        return check_arch(text)
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"{NAME}: cannot parse arch text {text!r} ({exc})") from None
    return check_arch(value)


def format_arch(arch: Arch) -> str:
    """Canonical text of an arch, in the table's layout; ``parse_arch(format_arch(a)) == a``."""
    normal, reduce = check_arch(arch)
    return "[" + ", ".join("[" + ", ".join(f"({i}, {o})" for i, o in cell) + "]" for cell in (normal, reduce)) + "]"


def to_genotype(arch: Arch) -> dict[str, list[tuple[str, int]]]:
    """The DARTS genotype lists ``{"normal": [(op_name, input), ...], "reduce": [...]}``."""
    normal, reduce = check_arch(arch)
    return {
        "normal": [(OP_NAMES[o], i) for i, o in normal],
        "reduce": [(OP_NAMES[o], i) for i, o in reduce],
    }


def _sample_cell(rng: random.Random) -> CellArch:
    pairs: list[Pair] = []
    for k in range(NUM_NODES):
        inputs = rng.sample(range(k + 2), 2)
        pairs.extend((i, rng.randrange(len(OP_NAMES))) for i in inputs)
    return tuple(pairs)


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` distinct uniformly random DARTS genotypes (canonical), deterministic for ``seed``.

    Each node draws two distinct inputs uniformly and an op per input uniformly, as NAS-Bench-301's
    random sampling does.
    """
    if n < 0:
        raise ValueError(f"{NAME}: sample size must be >= 0, got {n}")
    rng = random.Random(seed)
    seen: set[Arch] = set()
    out: list[Arch] = []
    while len(out) < n:
        arch = check_arch((_sample_cell(rng), _sample_cell(rng)))
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    return out


# --------------------------------------------------------------------------------------------
# network


class SkipConnect(nn.Module):
    """The ``skip_connect`` edge at stride 1 (recorded as one ``identity`` CG node)."""

    cg_op = "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns ``x`` unchanged."""
        return x


class ReLUConvBN(nn.Sequential):
    """ReLU → Conv2d (no bias) → BatchNorm (DARTS ordering)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class FactorizedReduce(nn.Module):
    """Stride-2 reduction: ReLU, two 1×1 stride-2 convs on offset grids, concatenated, then BN."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halves the spatial size; needs even height and width."""
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"FactorizedReduce needs even spatial sizes, got {tuple(x.shape[-2:])}")
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class SepConv(nn.Sequential):
    """DARTS separable conv: (ReLU → depthwise k×k → pointwise 1×1 → BN) twice, first one strided."""

    def __init__(self, channels: int, kernel: int, stride: int, affine: bool = False) -> None:
        pad = kernel // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, kernel, stride=stride, padding=pad, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, kernel, stride=1, padding=pad, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels, affine=affine),
        )


class DilConv(nn.Sequential):
    """DARTS dilated conv: ReLU → depthwise k×k with dilation 2 → pointwise 1×1 → BN."""

    def __init__(self, channels: int, kernel: int, stride: int, affine: bool = False) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                channels, channels, kernel, stride=stride, padding=kernel - 1, dilation=2, groups=channels, bias=False
            ),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels, affine=affine),
        )


def make_op(op: int, channels: int, stride: int) -> nn.Module:
    """The module of DARTS op ``op`` (index into :data:`OP_NAMES`) on ``channels`` channels."""
    if op == 0:
        return nn.Sequential(nn.MaxPool2d(3, stride=stride, padding=1), nn.BatchNorm2d(channels, affine=False))
    if op == 1:
        return nn.Sequential(
            nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False), nn.BatchNorm2d(channels, affine=False)
        )
    if op == 2:
        return SkipConnect() if stride == 1 else FactorizedReduce(channels, channels, affine=False)
    if op in (3, 4):
        return SepConv(channels, 3 if op == 3 else 5, stride)
    if op in (5, 6):
        return DilConv(channels, 3 if op == 5 else 5, stride)
    raise ValueError(f"{NAME}: op index {op} outside 0..{len(OP_NAMES) - 1}")


class Cell(nn.Module):
    """A DARTS cell: two preprocessed inputs, 4 intermediate nodes of two ops each, concat of nodes 2–5.

    Args:
        pairs: the 8 ``(input_node, op)`` pairs of this cell type.
        c_prev_prev, c_prev: channels of the cell's two inputs (cell k-2 and k-1).
        channels: channels of every op inside the cell (the output has ``4 * channels``).
        reduction: whether this cell halves the spatial size (stride 2 on edges from inputs 0/1).
        reduction_prev: whether the previous cell reduced (input 0 then needs a FactorizedReduce).
    """

    def __init__(
        self,
        pairs: CellArch,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, channels, affine=True)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, channels, 1, 1, 0, affine=True)
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0, affine=True)
        self.inputs = tuple(i for i, _ in pairs)
        self.edges = nn.ModuleList(
            make_op(op, channels, 2 if reduction and node_in < 2 else 1) for node_in, op in pairs
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        """Output of the cell for the outputs ``s0``, ``s1`` of the two previous cells."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(NUM_NODES):
            a, b = 2 * k, 2 * k + 1
            states.append(self.edges[a](states[self.inputs[a]]) + self.edges[b](states[self.inputs[b]]))
        return torch.cat(states[2:], dim=1)


class DartsNetwork(nn.Module):
    """The DARTS CIFAR evaluation network for one genotype (NAS-Bench-301: 32 channels, 8 cells).

    Args:
        arch: the ``(normal, reduce)`` genotype.
        num_classes: classifier outputs.
        channels: initial cell channels ``C`` (stem has ``3 C``).
        cells: number of cells; reductions at ``cells // 3`` and ``2 * cells // 3``.
    """

    def __init__(
        self, arch: Arch, num_classes: int = 10, channels: int = INIT_CHANNELS, cells: int = NUM_CELLS
    ) -> None:
        super().__init__()
        normal, reduce = check_arch(arch)
        c_stem = STEM_MULTIPLIER * channels
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        c_pp, c_p, c = c_stem, c_stem, channels
        reduction_prev = False
        self.cells = nn.ModuleList()
        for layer in range(cells):
            reduction = layer in (cells // 3, 2 * cells // 3)
            if reduction:
                c *= 2
            self.cells.append(Cell(reduce if reduction else normal, c_pp, c_p, c, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, NUM_NODES * c
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for images ``x`` of shape (N, 3, H, W), H and W divisible by 4."""
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"{NAME}: input must be (N, 3, H, W) with H, W divisible by 4, got {tuple(x.shape)}")
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(torch.flatten(self.global_pool(s1), 1))


def build(arch: Arch, task: str | None = None) -> nn.Module:
    """The NAS-Bench-301 network of ``arch`` (CIFAR-10, 10 classes), in eval mode.

    Example:
        >>> from cgpredict.datasets import nasbench301
        >>> net = nasbench301.build(nasbench301.sample(1, seed=0)[0])
    """
    task = _check_task(task)
    return DartsNetwork(check_arch(arch), NUM_CLASSES[task]).eval()


# --------------------------------------------------------------------------------------------
# the table's FLOPs convention


#: Op types whose node MACs the ``flops`` column counts once (batch norm is handled separately).
COUNTED_OPS = frozenset(
    {"conv", "depthwise_conv", "grouped_conv", "linear", "relu", "max_pool", "avg_pool", "global_pool"}
)


def nasbench301_macs(cg: CG) -> int:
    """MACs of a NAS-Bench-301 CG under the convention of the table's ``flops`` column.

    Convention (fitted exactly on the table; a torchstat/ptflops-style module counter): convolution
    and linear MACs without bias terms, one per ReLU output element, ``window × output elements``
    for the 3×3 max/average pools, input elements for the global pool, and per batch-norm output
    element one MAC, or two when the batch norm is affine (it has parameters). Adds, concats and
    slices are not counted. Measured on all 725 rows: the mode is below the column by a constant
    8,704 MACs for every architecture (a fixed overhead of the authors' counter outside the cells,
    at most 8e-5 relative); convolution + linear alone is 3–10 % below the column.
    """
    total = 0
    for node in cg.nodes:
        if node.op in COUNTED_OPS:
            total += node.macs
        elif node.op == "batch_norm":
            total += node.macs * (2 if node.params > 0 else 1)
    return int(total)


@register_family
def nasbench301() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS}, counting=nasbench301_macs)

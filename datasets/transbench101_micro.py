"""TransNAS-Bench-101 micro family: arch encoding, exact encoder + task decoders, FLOPs convention.

Why one module over 400 lines: the encoder and its seven task decoders are one benchmark's exact network; split, the exactness checks against the table would span files.

Pipeline position: **model** (this builder) → CG → features → predictor → ranking/search.

Arch: a tuple of 6 op indices ``(t0, .., t5)`` with ``0=none, 1=skip_connect, 2=conv1x1,
3=conv3x3``, formatted into the benchmark's string ``64-41414-{t0}_{t1}{t2}_{t3}{t4}{t5}``
(:func:`to_benchmark_string`). In that string the ``k``-th group lists the inputs of cell node ``k``
from nodes ``0..k-1``, so the tuple's edges are (0→1, 0→2, **1→2**, **0→3**, 1→3, 2→3) — this differs
from the NAS-Bench-201 edge order (0→1, 0→2, 0→3, 1→2, 1→3, 2→3) in positions 2 and 3.

Network (Duan et al., CVPR 2021), the encoder ``64-41414`` shared by all tasks:

* stem: conv3×3 stride 2 (3→32, no bias) + BN, then ReLU-conv3×3 stride 2 (32→64)-BN;
* five modules with codes 4, 1, 4, 1, 4 (4 = stride 2 and double the channels, 1 = keep), each two
  cells; channels 64 → 128, 128, 256, 256, 512. Only the first cell of a module changes shape, and only
  on edges leaving its input node: ``none`` outputs zeros of the new shape, ``skip`` becomes a
  factorized reduction (ReLU, two 1×1 stride-2 convs on offset grids, concat, BN) and the convs are
  strided. Cell ops are ReLU-Conv-BN; a node sums its incoming edges; the cell output is node 3.

Task heads (the benchmark's, as re-packaged in NASLib's ``tnb101`` model builder):

* ``class_object`` (100 classes), ``class_scene`` (63), ``room_layout`` (9 regression outputs):
  global average pool + linear;
* ``jigsaw``: the encoder runs on each of 9 tiles of 64×64 (input ``(N, 9, 3, 64, 64)``), the 9
  feature maps are concatenated on channels, global-average-pooled and classified into 1000
  permutations;
* ``segmentsemantic`` (17 classes) and ``autoencoder`` / ``normal`` (3 channels, tanh): 256×256
  conv/deconv decoders (:class:`SegmentationDecoder`, :class:`GenerativeDecoder`) sized, as in the
  benchmark, for an encoder output of 7×7 (five upsamplings: a 256×256 input, 8×8 features, gives
  a 256×256 map). The autoencoder/normal GAN discriminator is a training-time loss only and is not
  part of the network.

Findings against the data tables (measured on every row, see the tests): the ``params`` column equals
``sum(p.numel())`` of :func:`build` exactly for all 7 × 711 rows under the **benchmark reading** of
the tuple, so both the label and the cost columns follow the benchmark string. (NASLib's in-memory
search-space graph reads the same tuple with NAS-Bench-201 edge order and ops ``Identity, Zero,
ReLUConvBN3x3, ReLUConvBN1x1``; that reading, on the same skeleton, is ``build(arch, task, reading="naslib")``
for comparison and does not match the columns.) The ``flops`` column (MFLOPs) is reproduced exactly
by the counting mode ``"transbench101_micro"`` for the input shapes of :func:`input_shape`, under
the NAS-Bench-Suite-Zero counter's convention (:mod:`cgpredict.datasets._suitezero_counting`): conv
MACs plus bias, linear MACs, two per BN and one per (leaky) ReLU output element, global pools as a
``C·(H+1)·(W+1)`` window. Two consequences worth knowing: the decoders' transposed convolutions are
not in the column (about 0.21 GMACs for autoencoder/normal, 0.45 GMACs for segmentsemantic), and for
``jigsaw`` the column counts the shared encoder **once** (one tile) although the network runs it on
all 9 tiles; the mode follows the column in both cases, ``cg.flops`` gives the network's real MACs.

Example:
    >>> from cgpredict.datasets import transbench101_micro as tb
    >>> arch = tb.parse_arch("(1, 0, 0, 2, 1, 0)")
    >>> tb.to_benchmark_string(arch)
    '64-41414-1_00_210'
    >>> net = tb.build(arch, "segmentsemantic")      # (N, 3, 256, 256) → (N, 17, 256, 256)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from cgpredict.datasets._tasks import check_task
from cgpredict.datasets._cell_ops import (
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

NAME: str = "transbench101_micro"
TASKS: tuple[str, ...] = (
    "class_scene",
    "class_object",
    "autoencoder",
    "normal",
    "jigsaw",
    "room_layout",
    "segmentsemantic",
)
INPUT_SHAPE: tuple[int, ...] = (1, 3, 256, 256)
FLOPS_MODE: str = "transbench101_micro"

OP_NAMES: tuple[str, ...] = ("none", "skip_connect", "conv1x1", "conv3x3")
#: Edges of the tuple positions under the benchmark string (source, target), node 0 = cell input.
BENCHMARK_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
#: Edges of the tuple positions in NASLib's in-memory graph (NAS-Bench-201 order).
NASLIB_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
#: NASLib's in-memory op order (Identity, Zero, ReLUConvBN3x3, ReLUConvBN1x1) mapped to benchmark codes.
NASLIB_TO_BENCHMARK_OP: tuple[int, ...] = (1, 0, 3, 2)

MACRO_CODE = "41414"
BASE_CHANNELS = 64
CELLS_PER_MODULE = 2
NUM_OUTPUTS: dict[str, int] = {"class_object": 100, "class_scene": 63, "room_layout": 9, "jigsaw": 1000}
JIGSAW_TILES = 9
JIGSAW_TILE = 64
SEGMENT_CLASSES = 17
DECODER_TARGET = 256
#: The encoder output width the benchmark sizes its decoders for (224 // 32).
DECODER_IN_WIDTH = 7


def _check_task(task: str | None) -> str:
    return check_task(NAME, TASKS, task)


def input_shape(task: str | None = None) -> tuple[int, ...]:
    """Input shape (batch 1): 3×256×256 images, or 9 tiles of 3×64×64 for ``jigsaw``."""
    if _check_task(task) == "jigsaw":
        return (1, JIGSAW_TILES, 3, JIGSAW_TILE, JIGSAW_TILE)
    return INPUT_SHAPE


def data_file(task: str) -> str:
    """Path of the labelled table of ``task`` relative to the data folder."""
    return f"naslib/{NAME}__{_check_task(task)}.csv"


def parse_arch(text: str) -> Arch:
    """Parse the table's ``arch`` text (e.g. ``"(1, 0, 0, 2, 1, 0)"``) into a canonical tuple.

    Raises:
        ValueError: when it is not 6 integers in 0..3.
    """
    return check_cell_arch(parse_int_tuple(text, NAME), len(OP_NAMES), NAME)


def format_arch(arch: Arch) -> str:
    """Canonical text of an arch; ``parse_arch(format_arch(a)) == a``."""
    return str(check_cell_arch(arch, len(OP_NAMES), NAME))


def to_benchmark_string(arch: Arch) -> str:
    """The benchmark's encoder string, e.g. ``64-41414-1_00_210``."""
    t = check_cell_arch(arch, len(OP_NAMES), NAME)
    return f"{BASE_CHANNELS}-{MACRO_CODE}-{t[0]}_{t[1]}{t[2]}_{t[3]}{t[4]}{t[5]}"


def from_benchmark_string(text: str) -> Arch:
    """Inverse of :func:`to_benchmark_string`."""
    parts = text.strip().split("-")
    if len(parts) != 3 or parts[0] != str(BASE_CHANNELS) or parts[1] != MACRO_CODE:
        raise ValueError(f"{NAME}: expected '{BASE_CHANNELS}-{MACRO_CODE}-a_bc_def', got {text!r}")
    groups = parts[2].split("_")
    if [len(g) for g in groups] != [1, 2, 3] or not all(c.isdigit() for g in groups for c in g):
        raise ValueError(f"{NAME}: malformed cell code {parts[2]!r} in {text!r}")
    return check_cell_arch(tuple(int(c) for g in groups for c in g), len(OP_NAMES), NAME)


def naslib_to_benchmark(arch: Arch) -> Arch:
    """The benchmark-reading tuple of the network NASLib's in-memory graph builds for ``arch``."""
    t = check_cell_arch(arch, len(OP_NAMES), NAME)
    by_edge = {edge: NASLIB_TO_BENCHMARK_OP[code] for edge, code in zip(NASLIB_EDGES, t)}
    return tuple(by_edge[edge] for edge in BENCHMARK_EDGES)


# --------------------------------------------------------------------------- encoder


class FactorizedReduce(nn.Module):
    """ReLU, then two 1×1 strided convs on grids offset by one pixel, concatenated, then BN."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"{NAME}: FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.convs = nn.ModuleList(
            [nn.Conv2d(c_in, c_out // 2, 1, stride=stride, bias=False) for _ in range(2)]
        )
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spatially reduced, channel-changed ``x``."""
        x = self.relu(x)
        shifted = self.pad(x)[:, :, 1:, 1:]
        return self.bn(torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1))


def _edge_op(code: int, c_in: int, c_out: int, stride: int) -> nn.Module:
    if code == 0:
        return Zero(stride, c_out)
    if code == 1:
        if stride == 1 and c_in == c_out:
            return Identity()
        return FactorizedReduce(c_in, c_out, stride)
    if code == 2:
        return ReLUConvBN(c_in, c_out, 1, stride, 0)
    return ReLUConvBN(c_in, c_out, 3, stride, 1)


class MicroCell(nn.Module):
    """A TransNAS-Bench-101 micro cell: nodes 1..3 sum their incoming edges; output = node 3."""

    def __init__(self, arch: Arch, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList()
        for code, (src, _dst) in zip(arch, BENCHMARK_EDGES):
            if src == 0:
                self.edges.append(_edge_op(code, c_in, c_out, stride))
            else:
                self.edges.append(_edge_op(code, c_out, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Cell output (node 3)."""
        nodes = [x]
        for target in range(1, 4):
            total = None
            for k, (src, dst) in enumerate(BENCHMARK_EDGES):
                if dst == target:
                    out = self.edges[k](nodes[src])
                    total = out if total is None else total + out
            nodes.append(total)
        return nodes[-1]


class MicroEncoder(nn.Module):
    """The ``64-41414-<cell>`` backbone: stem (stride 4) and five two-cell modules (output stride 32)."""

    def __init__(self, arch: Arch, base_channels: int = BASE_CHANNELS, macro_code: str = MACRO_CODE) -> None:
        super().__init__()
        half = base_channels // 2
        self.stem = nn.Sequential(
            nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(half),
            ReLUConvBN(half, base_channels, 3, 2, 1),
        )
        layers: list[nn.Module] = []
        c = base_channels
        for code in macro_code:
            kind = int(code)
            c_out = 2 * c if kind % 2 == 0 else c
            stride = 2 if kind > 2 else 1
            for k in range(CELLS_PER_MODULE):
                layers.append(MicroCell(arch, c if k == 0 else c_out, c_out, stride if k == 0 else 1))
            c = c_out
        self.layers = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map with ``out_channels`` channels at 1/32 of the input resolution."""
        return self.layers(self.stem(x))


# --------------------------------------------------------------------------- decoders


class ConvLayer(nn.Sequential):
    """Conv (with bias) → optional BN → optional activation."""

    def __init__(self, c_in: int, c_out: int, act: nn.Module | None, norm: bool, transposed: bool = False) -> None:
        if transposed:
            conv: nn.Module = nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)
        else:
            conv = nn.Conv2d(c_in, c_out, 3, stride=1, padding=1)
        mods: list[nn.Module] = [conv]
        if norm:
            mods.append(nn.BatchNorm2d(c_out))
        if act is not None:
            mods.append(act)
        super().__init__(*mods)


def _num_upsample(in_width: int, target: int) -> int:
    return int(math.log2(target / in_width))


class SegmentationDecoder(nn.Sequential):
    """The benchmark's segmentation decoder: conv 1024, (6 - u) halving convs, u - 1 halving deconvs,
    one deconv, conv to the class channels (LeakyReLU 0.2 and BN everywhere but the last)."""

    def __init__(self, c_in: int, num_classes: int = SEGMENT_CLASSES, in_width: int = DECODER_IN_WIDTH) -> None:
        ups = _num_upsample(in_width, DECODER_TARGET)
        mods: list[nn.Module] = [ConvLayer(c_in, 1024, nn.LeakyReLU(0.2), True)]
        c = 1024
        for _ in range(6 - ups):
            mods.append(ConvLayer(c, c // 2, nn.LeakyReLU(0.2), True))
            c //= 2
        for _ in range(ups - 1):
            mods.append(ConvLayer(c, c // 2, nn.LeakyReLU(0.2), True, transposed=True))
            c //= 2
        mods.append(ConvLayer(c, c, nn.LeakyReLU(0.2), True, transposed=True))
        mods.append(ConvLayer(c, num_classes, None, False))
        super().__init__(*mods)


class GenerativeDecoder(nn.Sequential):
    """The benchmark's 14-layer pix2pix-style decoder (autoencoder / surface normals), tanh output."""

    def __init__(self, c_in: int, out_channels: int = 3, in_width: int = DECODER_IN_WIDTH) -> None:
        ups = _num_upsample(in_width, DECODER_TARGET)

        def layer(a: int, b: int, up: bool = False) -> ConvLayer:
            return ConvLayer(a, b, nn.LeakyReLU(0.2), True, transposed=up)

        super().__init__(
            layer(c_in, 1024),
            layer(1024, 1024),
            layer(1024, 512, ups == 6),
            layer(512, 512),
            layer(512, 256, ups >= 5),
            layer(256, 128),
            layer(128, 64, ups >= 4),
            layer(64, 64),
            layer(64, 32, ups >= 3),
            layer(32, 32),
            layer(32, 16, True),
            layer(16, 32),
            layer(32, 16, True),
            ConvLayer(16, out_channels, nn.Tanh(), False),
        )


class ClassifierHead(nn.Module):
    """Global average pool + linear."""

    def __init__(self, c_in: int, num_outputs: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, num_outputs)`` scores."""
        return self.fc(torch.flatten(self.pool(x), 1))


class TransBenchNet(nn.Module):
    """Encoder + task decoder of one TransNAS-Bench-101 micro network."""

    def __init__(self, arch: Arch, task: str) -> None:
        super().__init__()
        self.arch = arch
        self.task = task
        self.encoder = MicroEncoder(arch)
        c = self.encoder.out_channels
        if task == "jigsaw":
            self.decoder: nn.Module = ClassifierHead(c * JIGSAW_TILES, NUM_OUTPUTS[task])
        elif task in NUM_OUTPUTS:
            self.decoder = ClassifierHead(c, NUM_OUTPUTS[task])
        elif task == "segmentsemantic":
            self.decoder = SegmentationDecoder(c)
        else:  # autoencoder, normal
            self.decoder = GenerativeDecoder(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Task output: scores ``(N, K)`` or a ``(N, C, 256, 256)`` map."""
        if self.task == "jigsaw":
            if x.dim() != 5:
                raise ValueError(f"{NAME}: jigsaw expects (N, 9, 3, H, W) tiles, got shape {tuple(x.shape)}")
            feats = [self.encoder(x[:, i]) for i in range(x.shape[1])]
            return self.decoder(torch.cat(feats, dim=1))
        return self.decoder(self.encoder(x))


def build(arch: Arch, task: str | None = None, reading: str = "benchmark") -> nn.Module:
    """The exact network TransNAS-Bench-101 trained for ``arch`` on ``task`` (default class_scene).

    Args:
        arch: 6 op indices in the benchmark-string reading (see the module docstring).
        task: one of :data:`TASKS`.
        reading: ``"benchmark"`` (the network behind the labels) or ``"naslib"`` (the network
            NASLib's in-memory graph would build for the same tuple, for comparison).
    """
    t = check_cell_arch(arch, len(OP_NAMES), NAME)
    if reading == "naslib":
        t = naslib_to_benchmark(t)
    elif reading != "benchmark":
        raise ValueError(f"{NAME}: unknown reading {reading!r}; use 'benchmark' or 'naslib'")
    return TransBenchNet(t, _check_task(task))


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` distinct random archs (uniform over the 4,096 cells), deterministic for ``seed``."""
    return sample_cells(n, seed, len(OP_NAMES))


# --------------------------------------------------------------------------- counting


def transbench101_micro_macs(cg: CG) -> int:
    """MACs of a CG under the convention of the tables' ``flops`` column (see module docstring).

    For ``jigsaw`` the column counts the shared encoder once (the average over the 9 tiles) plus
    the pooled 9-tile head, i.e. about 1/9 of the network's real encoder MACs.
    """
    return suite_zero_macs(cg, global_pool=True, head_ops=frozenset({"global_pool", "linear"}))


@register_family
def transbench101_micro() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS}, counting=transbench101_micro_macs)

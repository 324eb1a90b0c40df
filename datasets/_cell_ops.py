"""Shared cell operations of the 4-node cell search spaces (NAS-Bench-201, TransNAS-Bench-101 micro).

Pipeline position: **model** builders (this module) → CG → features → predictor → ranking/search.
The family modules :mod:`cgpredict.datasets.nasbench201` and
:mod:`cgpredict.datasets.transbench101_micro` build their benchmark networks from these blocks.
``Zero`` and ``Identity`` carry a ``cg_op`` class attribute so that the torch converter records
each as a single ``zero`` / ``identity`` node instead of tracing its body.
"""

from __future__ import annotations

import ast
import random

import torch
from torch import nn

#: The 6 edges of the 4-node cell, as (source, target) with node 0 = the cell input; the order of
#: the arch tuples (1→2, 1→3, 1→4, 2→3, 2→4, 3→4 in 1-based node names).
CELL_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


class Zero(nn.Module):
    """A search-space "none" edge: outputs zeros of the input's shape (strided if ``stride`` > 1)."""

    cg_op = "zero"

    def __init__(self, stride: int = 1, c_out: int | None = None) -> None:
        super().__init__()
        self.stride = stride
        self.c_out = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zeros shaped like ``x`` (subsampled by the stride; ``c_out`` channels when given)."""
        if self.c_out is not None and self.c_out != x.shape[1]:
            n, _, h, w = x.shape
            s = self.stride
            return x.new_zeros((n, self.c_out, (h + s - 1) // s, (w + s - 1) // s))
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Identity(nn.Module):
    """A search-space skip edge (recorded as one ``identity`` CG node)."""

    cg_op = "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns ``x`` unchanged."""
        return x


class ReLUConvBN(nn.Sequential):
    """ReLU → Conv2d (no bias) → BatchNorm, the op ordering of NAS-Bench-201 and TransNAS-Bench-101."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class Cell4(nn.Module):
    """A 4-node cell DAG: node j sums ``edge(i→j)(node i)`` over i < j; the output is node 3.

    Args:
        edge_ops: the 6 edge modules in :data:`CELL_EDGES` order.
    """

    def __init__(self, edge_ops: list[nn.Module]) -> None:
        super().__init__()
        if len(edge_ops) != len(CELL_EDGES):
            raise ValueError(f"a 4-node cell needs {len(CELL_EDGES)} edge ops, got {len(edge_ops)}")
        self.edges = nn.ModuleList(edge_ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Runs the DAG on ``x`` and returns the last node."""
        nodes = [x]
        for target in range(1, 4):
            total = None
            for k, (src, dst) in enumerate(CELL_EDGES):
                if dst != target:
                    continue
                out = self.edges[k](nodes[src])
                total = out if total is None else total + out
            nodes.append(total)
        return nodes[-1]


def parse_int_tuple(text: str, what: str) -> tuple[int, ...]:
    """Parse ``"(1, 2, 3)"`` (or ``"[1, 2, 3]"``) into a flat tuple of ints.

    Raises:
        ValueError: naming ``what`` and the text when it is not a flat sequence of integers.
    """
    try:
        value = ast.literal_eval(text.strip()) if isinstance(text, str) else text
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"{what}: cannot parse {text!r} as a tuple of integers ({exc})") from None
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{what}: expected a flat tuple of integers, got {text!r}")
    return tuple(int(v) for v in value)


def check_cell_arch(arch: object, num_ops: int, what: str) -> tuple[int, ...]:
    """Validate a 6-edge cell arch (tuple of op indices in ``range(num_ops)``) and return it as a tuple."""
    if isinstance(arch, str):
        arch = parse_int_tuple(arch, what)
    if not isinstance(arch, (tuple, list)):
        raise ValueError(f"{what}: arch must be a tuple of {len(CELL_EDGES)} op indices, got {arch!r}")
    if len(arch) != len(CELL_EDGES):
        raise ValueError(f"{what}: arch must have {len(CELL_EDGES)} op indices, got {len(arch)} in {tuple(arch)!r}")
    for k, v in enumerate(arch):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < num_ops:
            raise ValueError(f"{what}: op index {v!r} of edge {k} in {tuple(arch)!r} is outside 0..{num_ops - 1}")
    return tuple(int(v) for v in arch)


def sample_cells(n: int, seed: int, num_ops: int) -> list[tuple[int, ...]]:
    """``n`` distinct random 6-edge cells (uniform over ``num_ops ** 6``), deterministic for ``seed``."""
    space = num_ops ** len(CELL_EDGES)
    if n < 0 or n > space:
        raise ValueError(f"cannot sample {n} distinct cells from a space of {space}")
    rng = random.Random(seed)
    codes = rng.sample(range(space), n)
    out = []
    for code in codes:
        ops = []
        for _ in CELL_EDGES:
            ops.append(code % num_ops)
            code //= num_ops
        out.append(tuple(ops))
    return out

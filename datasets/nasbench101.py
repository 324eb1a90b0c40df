"""NAS-Bench-101 family: arch encoding, exact network builder, sampler and FLOPs convention.

Pipeline position: **model** (this builder) → CG → features → predictor → ranking/search.

Arch: the table's flat tuple of ``n*n + n`` integers (``n <= 7`` vertices; the table stores
7-vertex cells unpruned, see below):
the strictly upper-triangular ``n×n`` adjacency matrix row-major, then one op per vertex with
``0=input, 1=output, 2=maxpool3x3, 3=conv1x1-bn-relu, 4=conv3x3-bn-relu``.

Network (Ying et al., ICML 2019): stem conv3×3 (128 ch, no bias) + BN + ReLU; 3 stacks of 3
cells, a 2×2 stride-2 max pool and channel doubling between stacks (128/256/512); global average
pool; linear classifier (10 classes). Inside a cell with output width ``C``:

* the output vertex concatenates the vertices feeding it; their widths are ``C // k`` with the
  remainder ``C % k`` given one channel each to the first of them (in vertex order);
* any other interior vertex takes the largest width among its interior successors (back to front);
* a vertex sums its inputs: a 1×1 conv-BN-ReLU projection of the cell input when the input feeds
  it, plus the interior predecessors' outputs truncated to its width (the first channels);
* if the cell input feeds the output vertex, a projection of it to ``C`` is added to the concat;
  a cell made of input → output only is that projection.

Counting: ``params`` of the table (millions) equals ``sum(p.numel())`` of :func:`build` exactly
for all 500 rows (convs without bias, BN scale and shift, classifier with bias). The ``flops``
column (MFLOPs, from the NAS-Bench-Suite-Zero authors' module-hook counter) is reproduced exactly
by the counting mode ``"nasbench101"`` registered on import: conv and linear MACs (no bias), one
per ReLU output element, two per batch-norm output element, max pooling ``kernel_area × output
elements``; the global average pool is not counted (the benchmark's network reduces with a plain
mean that the counter does not see), nor are adds, concats or channel truncations.

The table stores cells as sampled, *unpruned* (7 vertices, up to 21 edges); like the benchmark,
:func:`build` prunes vertices off every input→output path first, and validity (at most 9 edges)
is checked on the pruned cell. The 30,001-net table (``table="nb101_30k"``,
:mod:`cgpredict.datasets.tables`) stores cells already pruned (``n`` = live vertices); pruning leaves
them unchanged, so both encodings of one cell build the same network (its ``params`` column matches
:func:`build` exactly on a seeded sample, ``tests/test_tables.py``), and
:mod:`cgpredict.datasets.nb101_hash` matches them across tables.

Example:
    >>> from cgpredict.datasets import nasbench101 as nb101
    >>> arch = nb101.sample(1, seed=0)[0]             # a pruned random cell
    >>> net = nb101.build(arch)                       # torch.nn.Module, (N, 3, 32, 32) → (N, 10)
"""

from __future__ import annotations

import itertools
import random
from typing import TYPE_CHECKING

import torch
from torch import nn

from cgpredict.datasets._tasks import check_task
from cgpredict.datasets._cell_ops import parse_int_tuple
from cgpredict.datasets._suitezero_counting import suite_zero_macs
from cgpredict.datasets.registry import FamilySpec, register_family

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG

Arch = tuple[int, ...]

NAME: str = "nasbench101"
TASKS: tuple[str, ...] = ("cifar10",)
INPUT_SHAPE: tuple[int, ...] = (1, 3, 32, 32)
FLOPS_MODE: str = "nasbench101"

INPUT, OUTPUT, MAXPOOL3X3, CONV1X1, CONV3X3 = 0, 1, 2, 3, 4
OP_NAMES: tuple[str, ...] = ("input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu")
MAX_VERTICES = 7
MAX_EDGES = 9
STEM_CHANNELS = 128
NUM_STACKS = 3
CELLS_PER_STACK = 3
NUM_CLASSES = 10


def _check_task(task: str | None) -> str:
    return check_task(NAME, TASKS, task)


def input_shape(task: str | None = None) -> tuple[int, ...]:
    """Input shape (batch 1) of CIFAR-10."""
    _check_task(task)
    return INPUT_SHAPE


def data_file(task: str) -> str:
    """Path of the labelled table of ``task`` relative to the data folder."""
    return f"naslib/{NAME}__{_check_task(task)}.csv"


# --------------------------------------------------------------------------- encoding


def split_arch(arch: Arch) -> tuple[list[list[int]], list[int]]:
    """``(matrix, ops)`` of a flat arch tuple (no validation beyond the length)."""
    flat = tuple(arch)
    n = _num_vertices(len(flat))
    matrix = [list(flat[i * n : (i + 1) * n]) for i in range(n)]
    return matrix, list(flat[n * n :])


def join_arch(matrix: list[list[int]], ops: list[int]) -> Arch:
    """Flat arch tuple of ``(matrix, ops)``."""
    return tuple(int(v) for row in matrix for v in row) + tuple(int(o) for o in ops)


def _num_vertices(length: int) -> int:
    for n in range(1, MAX_VERTICES + 1):
        if n * n + n == length:
            return n
    raise ValueError(
        f"{NAME}: an arch has n*n + n integers for n <= {MAX_VERTICES} vertices, got a tuple of length {length}"
    )


def _reach(matrix: list[list[int]], start: int, forward: bool) -> set[int]:
    n = len(matrix)
    seen = {start}
    stack = [start]
    while stack:
        v = stack.pop()
        nbrs = [w for w in range(n) if (matrix[v][w] if forward else matrix[w][v])]
        for w in nbrs:
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


def prune(matrix: list[list[int]], ops: list[int]) -> tuple[list[list[int]], list[int]]:
    """Drop the vertices that are not on a path from the input to the output (as the benchmark does).

    Raises:
        ValueError: when the output is not reachable from the input.
    """
    n = len(matrix)
    keep = _reach(matrix, 0, True) & _reach(matrix, n - 1, False)
    if n - 1 not in keep or 0 not in keep:
        raise ValueError(f"{NAME}: the output vertex is not reachable from the input in {join_arch(matrix, ops)!r}")
    idx = sorted(keep)
    return [[matrix[i][j] for j in idx] for i in idx], [ops[i] for i in idx]


def _validate(arch: object) -> Arch:
    if isinstance(arch, str):
        arch = parse_int_tuple(arch, NAME)
    if not isinstance(arch, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in arch):
        raise ValueError(f"{NAME}: an arch is a flat tuple of integers, got {arch!r}")
    flat = tuple(int(v) for v in arch)
    matrix, ops = split_arch(flat)
    n = len(ops)
    if n < 2:
        raise ValueError(f"{NAME}: a cell needs at least an input and an output vertex, got {flat!r}")
    for i in range(n):
        for j in range(n):
            v = matrix[i][j]
            if v not in (0, 1):
                raise ValueError(f"{NAME}: adjacency entry ({i}, {j}) = {v} is not 0/1 in {flat!r}")
            if v and j <= i:
                raise ValueError(f"{NAME}: adjacency entry ({i}, {j}) is below the diagonal in {flat!r}")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise ValueError(f"{NAME}: the first op must be 0 (input) and the last 1 (output), got ops {ops} in {flat!r}")
    for k, o in enumerate(ops[1:-1], start=1):
        if o not in (MAXPOOL3X3, CONV1X1, CONV3X3):
            raise ValueError(f"{NAME}: op {o} of interior vertex {k} is not 2, 3 or 4 in {flat!r}")
    pruned, _ = prune(matrix, ops)  # raises when the output is unreachable
    edges = sum(map(sum, pruned))
    if edges > MAX_EDGES:
        raise ValueError(f"{NAME}: {edges} edges (after pruning) exceed the limit of {MAX_EDGES} in {flat!r}")
    return flat


def parse_arch(text: str) -> Arch:
    """Parse the table's ``arch`` text into the canonical flat tuple.

    Raises:
        ValueError: when malformed (wrong length, not upper-triangular 0/1, bad ops, too many
            edges, or no path from input to output).
    """
    return _validate(parse_int_tuple(text, NAME))


def format_arch(arch: Arch) -> str:
    """Canonical text of an arch; ``parse_arch(format_arch(a)) == a``."""
    return str(_validate(arch))


# --------------------------------------------------------------------------- network


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) → BatchNorm → ReLU, the NAS-Bench-101 conv op and projection."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=False),
        )


def vertex_channels(c_in: int, c_out: int, matrix: list[list[int]]) -> list[int]:
    """Width of every vertex of a cell (see the module docstring for the rule)."""
    n = len(matrix)
    widths = [0] * n
    widths[0], widths[-1] = c_in, c_out
    if n == 2:
        return widths
    feeders = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    base, extra = divmod(c_out, len(feeders))
    for k, v in enumerate(feeders):
        widths[v] = base + (1 if k < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            widths[v] = max(widths[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return widths


class NB101Cell(nn.Module):
    """One NAS-Bench-101 cell (a pruned DAG of ``n`` vertices)."""

    def __init__(self, matrix: list[list[int]], ops: list[int], c_in: int, c_out: int) -> None:
        super().__init__()
        self.matrix = [list(r) for r in matrix]
        self.n = n = len(ops)
        self.widths = vertex_channels(c_in, c_out, self.matrix)
        self.projections = nn.ModuleDict()
        self.ops = nn.ModuleDict()
        for v in range(1, n - 1):
            if self.matrix[0][v]:
                self.projections[str(v)] = ConvBNReLU(c_in, self.widths[v], 1)
            if ops[v] == CONV3X3:
                self.ops[str(v)] = ConvBNReLU(self.widths[v], self.widths[v], 3)
            elif ops[v] == CONV1X1:
                self.ops[str(v)] = ConvBNReLU(self.widths[v], self.widths[v], 1)
            else:
                self.ops[str(v)] = nn.MaxPool2d(3, stride=1, padding=1)
        if self.matrix[0][n - 1]:
            self.projections[str(n - 1)] = ConvBNReLU(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Cell output with ``c_out`` channels."""
        n = self.n
        values: list[torch.Tensor | None] = [x] + [None] * (n - 1)
        for v in range(1, n - 1):
            terms = []
            for u in range(1, v):
                if self.matrix[u][v]:
                    t = values[u]
                    assert t is not None
                    terms.append(t if t.shape[1] == self.widths[v] else t[:, : self.widths[v]])
            if self.matrix[0][v]:
                terms.append(self.projections[str(v)](x))
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            values[v] = self.ops[str(v)](total)
        parts = [values[v] for v in range(1, n - 1) if self.matrix[v][n - 1]]
        out: torch.Tensor | None = None
        if parts:
            out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # type: ignore[arg-type]
        if self.matrix[0][n - 1]:
            proj = self.projections[str(n - 1)](x)
            out = proj if out is None else out + proj
        assert out is not None
        return out


class NB101Network(nn.Module):
    """The NAS-Bench-101 network around one cell."""

    def __init__(self, arch: Arch, num_classes: int = NUM_CLASSES, channels: int = STEM_CHANNELS) -> None:
        super().__init__()
        flat = _validate(arch)
        matrix, ops = prune(*split_arch(flat))
        self.arch = flat
        self.stem = ConvBNReLU(3, channels, 3)
        layers: list[nn.Module] = []
        c_in = c = channels
        for stack in range(NUM_STACKS):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                c *= 2
            for _ in range(CELLS_PER_STACK):
                layers.append(NB101Cell(matrix, ops, c_in, c))
                c_in = c
        self.cells = nn.Sequential(*layers)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(N, 10)``."""
        x = self.cells(self.stem(x))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


def build(arch: Arch, task: str | None = None) -> nn.Module:
    """The exact network NAS-Bench-101 trained for ``arch`` (CIFAR-10)."""
    _check_task(task)
    return NB101Network(arch)


# --------------------------------------------------------------------------- sampling


def canonical_key(arch: Arch) -> Arch:
    """An isomorphism-invariant key of a (pruned) cell: the smallest flat tuple over relabellings
    of the interior vertices that keep the matrix upper-triangular."""
    matrix, ops = prune(*split_arch(_validate(arch)))
    n = len(ops)
    best: Arch | None = None
    for perm in itertools.permutations(range(1, n - 1)):
        order = (0, *perm, n - 1)
        pos = {v: k for k, v in enumerate(order)}
        if any(matrix[u][v] and pos[u] > pos[v] for u in range(n) for v in range(n)):
            continue
        key = join_arch([[matrix[i][j] for j in order] for i in order], [ops[i] for i in order])
        if best is None or key < best:
            best = key
    assert best is not None
    return best


def sample(n: int, seed: int) -> list[Arch]:
    """``n`` random valid cells, pruned like the benchmark's, no two isomorphic; deterministic.

    Draws 7-vertex cells with a uniformly random upper-triangular matrix and random interior ops,
    rejects those with more than 9 edges or no input→output path, and prunes the rest.
    """
    if n < 0:
        raise ValueError(f"{NAME}: cannot sample a negative number of archs ({n})")
    rng = random.Random(seed)
    out: list[Arch] = []
    seen: set[Arch] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 1000 * (n + 10):
            raise RuntimeError(f"{NAME}: could not draw {n} distinct cells")
        v = MAX_VERTICES
        matrix = [[(rng.random() < 0.5) * 1 if j > i else 0 for j in range(v)] for i in range(v)]
        ops = [INPUT] + [rng.choice((MAXPOOL3X3, CONV1X1, CONV3X3)) for _ in range(v - 2)] + [OUTPUT]
        try:
            matrix, ops = prune(matrix, ops)
        except ValueError:
            continue
        if sum(map(sum, matrix)) > MAX_EDGES:
            continue
        arch = join_arch(matrix, ops)
        key = canonical_key(arch)
        if key in seen:
            continue
        seen.add(key)
        out.append(arch)
    return out


# --------------------------------------------------------------------------- counting


def nasbench101_macs(cg: CG) -> int:
    """MACs of a CG under the convention of the table's ``flops`` column (see module docstring)."""
    return suite_zero_macs(cg, global_pool=False)


@register_family
def nasbench101() -> FamilySpec:
    """This family's registry entry (:class:`~cgpredict.datasets.registry.FamilySpec`)."""
    return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, parse=parse_arch,
                      format=format_arch, build=build, sample=sample,
                      task_input_shapes={task: input_shape(task) for task in TASKS}, counting=nasbench101_macs)

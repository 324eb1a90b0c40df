"""NAS-Bench-101 family: encoding, pruning, sampler and the exact builder against the real table."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

from cgpredict.converters import from_torch
from cgpredict.datasets import nasbench101 as nb101


def _rows(data: Path) -> list[dict[str, str]]:
    with (data / nb101.data_file("cifar10")).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _meta_model(arch: tuple[int, ...]) -> torch.nn.Module:
    with torch.device("meta"):
        return nb101.build(arch)


def _check_rows(rows: list[dict[str, str]]) -> tuple[float, float]:
    """Worst relative params / flops-mode error of the networks' CGs against the table rows."""
    worst_p = worst_f = 0.0
    for row in rows:
        cg = from_torch(_meta_model(nb101.parse_arch(row["arch"])), input_shape=nb101.INPUT_SHAPE)
        params, flops = float(row["params"]) * 1e6, float(row["flops"]) * 1e6
        worst_p = max(worst_p, abs(cg.params - params) / params)
        worst_f = max(worst_f, abs(cg.macs(nb101.FLOPS_MODE) - flops) / flops)
    return worst_p, worst_f


def test_table_sample_params_exact(shared_data: Path) -> None:
    for row in random.Random(101).sample(_rows(shared_data), 20):
        model = _meta_model(nb101.parse_arch(row["arch"]))
        assert sum(p.numel() for p in model.parameters()) == round(float(row["params"]) * 1e6), row["arch"]


def test_table_sample_cg_params_and_flops_mode_exact(shared_data: Path) -> None:
    worst_p, worst_f = _check_rows(random.Random(1010).sample(_rows(shared_data), 6))
    assert worst_p < 1e-6
    assert worst_f < 1e-6


@pytest.mark.slow
def test_all_table_rows_params_and_flops_exact(shared_data: Path) -> None:
    rows = _rows(shared_data)
    assert len(rows) == 500
    worst_p, worst_f = _check_rows(rows)
    assert worst_p < 1e-6
    assert worst_f < 1e-6


def test_table_stores_unpruned_cells_and_build_prunes(shared_data: Path) -> None:
    archs = [nb101.parse_arch(r["arch"]) for r in _rows(shared_data)[:50]]
    # the table keeps the sampled 7-vertex matrices, with dangling vertices and > 9 raw edges
    assert all(len(a) == 7 * 7 + 7 for a in archs)
    assert any(sum(a[:49]) > nb101.MAX_EDGES for a in archs)
    arch = next(a for a in archs if len(nb101.prune(*nb101.split_arch(a))[1]) < 7)
    matrix, ops = nb101.prune(*nb101.split_arch(arch))
    pruned = nb101.join_arch(matrix, ops)
    n_params = [sum(p.numel() for p in _meta_model(a).parameters()) for a in (arch, pruned)]
    assert n_params[0] == n_params[1]


def test_vertex_channels_split_the_output_width() -> None:
    # input → 1, 2, 3 → output: three feeders share 128 channels as 43/43/42
    matrix = [
        [0, 1, 1, 1, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ]
    assert nb101.vertex_channels(64, 128, matrix) == [64, 43, 43, 42, 128]
    # a vertex that only feeds another vertex takes its successor's width
    chain = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert nb101.vertex_channels(32, 256, chain) == [32, 256, 256, 256]


def test_parse_format_round_trip(shared_data: Path) -> None:
    for row in _rows(shared_data)[:100]:
        arch = nb101.parse_arch(row["arch"])
        assert nb101.parse_arch(nb101.format_arch(arch)) == arch
        assert nb101.format_arch(arch) == row["arch"]


def _flat(matrix: list[list[int]], ops: list[int]) -> str:
    return str(nb101.join_arch(matrix, ops))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(0, 1, 0, 0, 1)", "n\\*n \\+ n"),
        ("(0, 1, 0, 0, 0, 1, 0, 1)", "n\\*n \\+ n"),
        (_flat([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [0, 5, 1]), "not 2, 3 or 4"),
        (_flat([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [1, 3, 0]), "first op"),
        (_flat([[0, 1, 0], [0, 0, 2], [0, 0, 0]], [0, 3, 1]), "not 0/1"),
        (_flat([[0, 1, 0], [1, 0, 1], [0, 0, 0]], [0, 3, 1]), "below the diagonal"),
        (_flat([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [0, 3, 1]), "not reachable"),
        (_flat([[0 if j <= i else 1 for j in range(7)] for i in range(7)], [0, 2, 3, 4, 2, 3, 1]), "exceed"),
        ("(0, 1, 'a')", "integers"),
    ],
)
def test_malformed_arch_raises(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        nb101.parse_arch(text)


def test_sample_deterministic_distinct_valid() -> None:
    archs = nb101.sample(40, seed=7)
    assert archs == nb101.sample(40, seed=7)
    assert archs != nb101.sample(40, seed=8)
    keys = {nb101.canonical_key(a) for a in archs}
    assert len(keys) == 40  # no two isomorphic cells
    for arch in archs:
        matrix, ops = nb101.split_arch(nb101.parse_arch(nb101.format_arch(arch)))
        assert (matrix, ops) == nb101.prune(matrix, ops)  # returned pruned
        assert sum(map(sum, matrix)) <= nb101.MAX_EDGES
        assert len(ops) <= nb101.MAX_VERTICES


def test_canonical_key_is_isomorphism_invariant() -> None:
    # the same cell with its two interior vertices swapped
    a = nb101.join_arch([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], [0, 3, 4, 1])
    b = nb101.join_arch([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], [0, 4, 3, 1])
    c = nb101.join_arch([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], [0, 4, 4, 1])
    assert nb101.canonical_key(a) == nb101.canonical_key(b) != nb101.canonical_key(c)


def test_forward_output_shape(shared_data: Path) -> None:
    torch.manual_seed(0)
    arch = nb101.parse_arch(_rows(shared_data)[1]["arch"])
    model = nb101.build(arch).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_input_to_output_only_cell_is_a_projection() -> None:
    arch = nb101.join_arch([[0, 1], [0, 0]], [0, 1])
    model = nb101.build(arch)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    cg = from_torch(_meta_model(arch), input_shape=nb101.INPUT_SHAPE)
    # stem + one 1x1 projection per cell
    assert cg.op_histogram()["conv"] == 1 + 9

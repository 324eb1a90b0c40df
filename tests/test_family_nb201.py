"""NAS-Bench-201 family: encoding, exact builder (params, flops mode) against the real tables."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

from cgpredict.converters import from_torch
from cgpredict.datasets import nasbench201 as nb201


def _rows(data: Path, task: str) -> list[dict[str, str]]:
    with (data / nb201.data_file(task)).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _meta_model(arch: tuple[int, ...], task: str) -> torch.nn.Module:
    with torch.device("meta"):
        return nb201.build(arch, task)


def _check_rows(rows: list[tuple[str, dict[str, str]]]) -> tuple[float, float]:
    """Worst relative params / flops-mode error of the networks' CGs against the table rows."""
    worst_p = worst_f = 0.0
    for task, row in rows:
        cg = from_torch(_meta_model(nb201.parse_arch(row["arch"]), task), input_shape=nb201.input_shape(task))
        params, flops = float(row["params"]) * 1e6, float(row["flops"]) * 1e6
        worst_p = max(worst_p, abs(cg.params - params) / params)
        worst_f = max(worst_f, abs(cg.macs(nb201.FLOPS_MODE) - flops) / flops)
    return worst_p, worst_f


def test_table_sample_params_exact(shared_data: Path) -> None:
    rng = random.Random(201)
    for task in nb201.TASKS:
        for row in rng.sample(_rows(shared_data, task), 8):
            model = _meta_model(nb201.parse_arch(row["arch"]), task)
            assert sum(p.numel() for p in model.parameters()) == round(float(row["params"]) * 1e6), row["arch"]


def test_table_sample_cg_params_and_flops_mode_exact(shared_data: Path) -> None:
    rng = random.Random(2010)
    rows = [(task, row) for task in nb201.TASKS for row in rng.sample(_rows(shared_data, task), 2)]
    worst_p, worst_f = _check_rows(rows)
    # params are exact; the flops mode reproduces the column up to float rounding of the MFLOPs
    assert worst_p < 1e-6
    assert worst_f < 1e-6


@pytest.mark.slow
def test_all_table_rows_params_and_flops_exact(shared_data: Path) -> None:
    rows = [(task, row) for task in nb201.TASKS for row in _rows(shared_data, task)]
    assert len(rows) == 2174
    worst_p, worst_f = _check_rows(rows)
    assert worst_p < 1e-6
    assert worst_f < 1e-6


def test_conv_linear_alone_undercounts_the_flops_column(shared_data: Path) -> None:
    # a pool-heavy cell (avg_pool on 5 edges) shows why a dedicated mode is needed
    arch = (3, 4, 4, 4, 4, 4)
    row = next(r for r in _rows(shared_data, "cifar10") if nb201.parse_arch(r["arch"]) == arch)
    cg = from_torch(_meta_model(arch, "cifar10"), input_shape=nb201.input_shape("cifar10"))
    column = float(row["flops"]) * 1e6
    assert cg.macs("conv_linear") < 0.7 * column
    assert abs(cg.macs(nb201.FLOPS_MODE) - column) / column < 1e-6


def test_parse_format_round_trip_and_official_string(shared_data: Path) -> None:
    path = shared_data / "nb201_12epoch" / "nasbench201_12epoch.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in random.Random(0).sample(rows, 50):
        arch = nb201.parse_arch(row["arch"])
        assert nb201.parse_arch(nb201.format_arch(arch)) == arch
        assert nb201.to_official_string(arch) == row["arch_str"]
        assert nb201.from_official_string(row["arch_str"]) == arch
    # the official string lists edges by target node: e3 (2→3) comes before e2 (1→4)
    assert nb201.to_official_string((0, 1, 2, 3, 4, 0)) == (
        "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|"
    )


@pytest.mark.parametrize(
    "text",
    ["(0, 2, 3, 2, 3)", "(0, 2, 3, 2, 3, 5)", "(0, 2, 3, 2, 3, -1)", "(0, 2, 3, 2, 3, 1.0)", "zero", "((0, 1), 2)"],
)
def test_malformed_arch_raises(text: str) -> None:
    with pytest.raises(ValueError, match="nasbench201"):
        nb201.parse_arch(text)


def test_unknown_task_raises() -> None:
    with pytest.raises(ValueError, match="ImageNet16-120"):
        nb201.build((0, 0, 0, 0, 0, 0), task="imagenet")


def test_sample_deterministic_distinct_valid() -> None:
    first = nb201.sample(200, seed=3)
    assert first == nb201.sample(200, seed=3)
    assert first != nb201.sample(200, seed=4)
    assert len(set(first)) == 200
    for arch in first:
        assert nb201.parse_arch(nb201.format_arch(arch)) == arch
    assert len(set(nb201.sample(15625, seed=0))) == 15625
    with pytest.raises(ValueError):
        nb201.sample(15626, seed=0)


@pytest.mark.parametrize("task", nb201.TASKS)
def test_forward_output_shape(task: str) -> None:
    torch.manual_seed(0)
    model = nb201.build((2, 1, 3, 0, 4, 2), task).eval()
    shape = (2, *nb201.input_shape(task)[1:])
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.shape == (2, nb201.NUM_CLASSES[task])
    assert torch.isfinite(out).all()


def test_none_and_skip_edges_are_single_cg_nodes() -> None:
    cg = from_torch(_meta_model((0, 1, 1, 1, 1, 0), "cifar10"), input_shape=nb201.INPUT_SHAPE)
    hist = cg.op_histogram()
    # per cell: edges 0 and 5 are skips, 1..4 none; 15 cells
    assert hist.get("identity", 0) == 2 * 15
    assert hist.get("zero", 0) == 4 * 15

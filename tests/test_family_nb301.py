"""NAS-Bench-301 family: arch encoding, builder against the table's params/flops, sampling."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch
from torch import nn
from tqdm import tqdm

from cgpredict.counting import counting_modes
from cgpredict.datasets import nasbench301 as nb

#: The table's flops column minus the "nasbench301" counting mode, the same for every row (see the
#: docstring of nasbench301_macs): a fixed overhead of the authors' counter outside the cells.
FLOPS_OFFSET = 8704


def _rows(data: Path) -> list[dict[str, str]]:
    with open(data / nb.data_file("cifar10"), newline="") as fh:
        return list(csv.DictReader(fh))


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _hook_macs(model: nn.Module, shape: tuple[int, ...] = nb.INPUT_SHAPE) -> int:
    """The "nasbench301" convention counted with forward hooks on the modules (no converter)."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        per = out[0].numel()
        if isinstance(module, nn.Conv2d):
            total += per * module.weight[0].numel()
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
        elif isinstance(module, nn.BatchNorm2d):
            total += per * (2 if module.affine else 1)
        elif isinstance(module, nn.ReLU):
            total += per
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            total += per * module.kernel_size**2
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            total += inputs[0][0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(torch.zeros(shape))
    for h in handles:
        h.remove()
    return total


def _build_meta(arch: nb.Arch) -> nn.Module:
    """The network on the meta device: no weight initialisation, enough for counting."""
    with torch.device("meta"):
        return nb.build(arch)


def _mode_macs(model: nn.Module) -> int:
    """MACs under the family's counting mode, through the CG."""
    from cgpredict.converters import from_torch

    return from_torch(model, input_shape=nb.INPUT_SHAPE).macs(nb.FLOPS_MODE)


def test_interface() -> None:
    assert nb.NAME == "nasbench301"
    assert nb.TASKS == ("cifar10",)
    assert nb.input_shape() == nb.input_shape("cifar10") == (1, 3, 32, 32)
    assert nb.data_file("cifar10") == "naslib/nasbench301__cifar10.csv"
    assert nb.FLOPS_MODE in counting_modes()
    with pytest.raises(ValueError, match="unknown task 'cifar100'"):
        nb.data_file("cifar100")


def test_parse_canonicalises_node_inputs() -> None:
    text = "[[(1, 5), (0, 0), (1, 1), (0, 1), (1, 3), (0, 3), (3, 2), (1, 3)], " + (
        "[(1, 0), (0, 2), (1, 3), (0, 3), (3, 0), (0, 1), (2, 0), (3, 6)]]"
    )
    arch = nb.parse_arch(text)
    assert arch[0][:2] == ((0, 0), (1, 5))  # the two inputs of node 2, ordered
    assert arch[0][6:] == ((1, 3), (3, 2))
    assert nb.parse_arch(nb.format_arch(arch)) == arch
    assert hash(arch) == hash(nb.parse_arch(nb.format_arch(arch)))
    assert nb.to_genotype(arch)["normal"][1] == ("dil_conv_3x3", 1)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[[(0, 0)]]", "2 cells"),
        ("[[(0, 0), (1, 1)], [(0, 0), (1, 1)]]", "8 \\(input, op\\) pairs"),
        ("[[(0, 0), (2, 1), (0, 1), (1, 1), (0, 1), (1, 1), (0, 1), (1, 1)], " + "[(0, 0), (1, 1)] ]", "reads node 2"),
        ("[[(0, 0), (1, 7), (0, 1), (1, 1), (0, 1), (1, 1), (0, 1), (1, 1)], [(0, 0), (1, 1)]]", "op index 7"),
        ("[[(0, 0), (0, 3), (0, 1), (1, 1), (0, 1), (1, 1), (0, 1), (1, 1)], [(0, 0), (1, 1)]]", "twice"),
        ("[[(0, 0), (1, -1), (0, 1), (1, 1), (0, 1), (1, 1), (0, 1), (1, 1)], [(0, 0), (1, 1)]]", "op index -1"),
        ("[[(0, 0), (1, 1.5), (0, 1), (1, 1), (0, 1), (1, 1), (0, 1), (1, 1)], [(0, 0), (1, 1)]]", "ints"),
        ("[[(0, 0), (1, True), (0, 1), (1, 1), (0, 1), (1, 1), (0, 1), (1, 1)], [(0, 0), (1, 1)]]", "ints"),
        ("[[(0, 0), (1,", "cannot parse"),
    ],
)
def test_malformed_arch(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        nb.parse_arch(text)


def test_sample_deterministic_distinct_and_uniform() -> None:
    a = nb.sample(300, seed=3)
    assert a == nb.sample(300, seed=3)
    assert a != nb.sample(300, seed=4)
    assert len(set(a)) == 300
    assert all(nb.check_arch(x) == x for x in a)
    ops = [o for arch in a for cell in arch for _, o in cell]
    counts = [ops.count(k) for k in range(len(nb.OP_NAMES))]
    assert min(counts) > 0.8 * len(ops) / len(nb.OP_NAMES)  # each op ~1/7 of the edges
    last_inputs = {i for arch in a for i, _ in arch[0][6:]}
    assert last_inputs == {0, 1, 2, 3, 4}
    assert nb.sample(0, seed=1) == []
    with pytest.raises(ValueError):
        nb.sample(-1, seed=1)


def test_forward_tiny_input_and_structure() -> None:
    arch = nb.sample(1, seed=0)[0]
    net = nb.build(arch)
    out = net(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert len(net.cells) == 8
    assert [c.reduction for c in net.cells] == [False, False, True, False, False, True, False, False]
    # output channels: 4 nodes × 32/64/128
    assert net.classifier.in_features == 4 * 128
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 3, 18, 18))


def test_skip_and_pools_follow_the_genotype() -> None:
    skip_only = ((tuple((i, 2) for i in (0, 1, 0, 1, 0, 1, 0, 1))),) * 2
    net = nb.build(skip_only)
    normal, reduce = net.cells[0], net.cells[2]
    assert all(isinstance(e, nb.SkipConnect) for e in normal.edges)
    assert all(isinstance(e, nb.FactorizedReduce) for e in reduce.edges)  # all read the cell inputs
    pools = ((tuple((i, 0) for i in (0, 1, 0, 2, 1, 3, 2, 4))),) * 2
    # no conv parameters inside the cells: only stem, preprocessing and classifier
    assert _params(nb.build(pools)) < _params(nb.build(skip_only))


def test_counting_mode_on_the_cg_equals_module_hooks() -> None:
    for arch in nb.sample(2, seed=7):
        net = nb.build(arch)
        assert _mode_macs(net) == _hook_macs(net)


def test_params_and_flops_match_table_sample(shared_data: Path) -> None:
    rows = random.Random(0).sample(_rows(shared_data), 20)
    for row in rows:
        net = _build_meta(nb.parse_arch(row["arch"]))
        assert _params(net) == round(float(row["params"]) * 1e6), row["arch"]
        flops = float(row["flops"]) * 1e6
        macs = _mode_macs(net)
        assert abs(flops - macs - FLOPS_OFFSET) < 1.0, row["arch"]
        assert abs(macs / flops - 1) < 1e-3


@pytest.mark.slow
def test_params_and_flops_match_table_all_rows(shared_data: Path) -> None:
    rows = _rows(shared_data)
    assert len(rows) == 725
    worst_params, worst_flops = 0.0, 0.0
    for row in tqdm(rows, desc="nasbench301 rows"):
        net = _build_meta(nb.parse_arch(row["arch"]))
        params = round(float(row["params"]) * 1e6)  # the column has 6 decimals of millions
        worst_params = max(worst_params, abs(_params(net) - params) / params)
        flops = float(row["flops"]) * 1e6
        worst_flops = max(worst_flops, abs(_mode_macs(net) / flops - 1))
    assert worst_params == 0.0
    assert worst_flops < 1e-4

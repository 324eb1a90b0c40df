"""GENNAPE's HiAML, Inception and Two-Path families: encodings, samplers, networks and their CGs."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
import torch

from cgpredict.datasets import build, hiaml, inception, is_available, sample, two_path
from cgpredict.datasets.registry import family_spec
from cgpredict.ops import OP_TYPES

MODULES = (hiaml, inception, two_path)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_interface_and_constants(module: ModuleType) -> None:
    spec = family_spec(module.NAME)  # the registered spec is the module's own functions and constants
    assert (spec.tasks, spec.input_shape, spec.flops_mode, spec.parse, spec.format, spec.build, spec.sample) == (
        module.TASKS, module.INPUT_SHAPE, module.FLOPS_MODE, module.parse_arch, module.format_arch, module.build,
        module.sample)
    assert module.TASKS == () and module.INPUT_SHAPE == (1, 3, 32, 32) and module.FLOPS_MODE == "torchvision"
    assert module.input_shape() == module.input_shape("anything") == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="no labelled tasks"):
        module.data_file("cifar10")


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_sampler_is_deterministic_unique_and_round_trips(module: ModuleType) -> None:
    archs = module.sample(60, seed=11)
    assert archs == module.sample(60, seed=11)
    assert archs != module.sample(60, seed=12)
    assert len(archs) == 60 == len(set(archs))
    assert module.sample(0, seed=1) == []
    for arch in archs:
        text = module.format_arch(arch)
        assert module.parse_arch(text) == arch
        assert module.parse_arch(text.replace("(", "[").replace(")", "]")) == arch  # lists are accepted too
        hash(arch)


@pytest.mark.parametrize(
    ("module", "text", "reason"),
    [
        (hiaml, "(0, 1, 2)", "has 3 entries, expected 4"),
        (hiaml, "(0, 1, 2, 14)", "out of range"),
        (hiaml, "(0, 1, 2, True)", "must be an integer"),
        (hiaml, "0, 1, 2, 3)", "not a Python literal"),
        (inception, "((2, ((0,),)), (2, ((0,),)))", "has 2 entries, expected 3"),
        (inception, "((5, ((0,),)), (2, ((0,),)), (2, ((0,),)))", "block count = 5 is out of range"),
        (inception, "((2, ((0,), (1,), (2,), (3,), (4,))), (2, ((0,),)), (2, ((0,),)))", "branches has 5 entries"),
        (inception, "((2, ((0, 1, 2, 3),)), (2, ((0,),)), (2, ((0,),)))", "branch 1 has 4 entries"),
        (inception, "((2, ((12,),)), (2, ((0,),)), (2, ((0,),)))", "op = 12 is out of range"),
        (two_path, "(((0,), (1,)),)", "has 1 entries, expected 2"),
        (two_path, "(((0,),), ((1,), (2,)))", "path 1 has 1 entries, expected 2 to 4"),
        (two_path, "(((0,), ()), ((1,), (2,)))", "block 2 has 0 entries"),
        (two_path, "(((0,), (13,)), ((1,), (2,)))", "op = 13 is out of range"),
    ],
)
def test_malformed_archs_are_rejected_with_a_reason(module: ModuleType, text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        module.parse_arch(text)


def test_build_rejects_invalid_archs() -> None:
    with pytest.raises(ValueError, match="out of range"):
        hiaml.build((0, 1, 2, 20))
    with pytest.raises(ValueError, match="branches has 0 entries"):
        inception.build(((2, ()), (2, ((0,),)), (2, ((0,),))))
    with pytest.raises(ValueError, match="must be a tuple"):
        two_path.build(((0, 1), 3))


def test_canonical_forms() -> None:
    a = ((2, ((8,), (0, 1))), (3, ((4,),)), (2, ((9, 0), (2,))))
    b = ((2, ((0, 1), (8,))), (3, ((4,),)), (2, ((2,), (9, 0))))
    assert inception.parse_arch(repr(a)) == inception.parse_arch(repr(b))
    p, q = ((0,), (1, 2)), ((5,), (6,), (7,))
    assert two_path.parse_arch(repr((p, q))) == two_path.parse_arch(repr((q, p)))
    assert two_path.format_arch((q, p)) == repr((p, q))


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_networks_run_and_match_their_cg(module: ModuleType) -> None:
    from cgpredict.converters import from_torch

    torch.manual_seed(0)
    for arch in module.sample(3, seed=2):
        net = build(module.NAME, arch).eval()
        with torch.no_grad():
            assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        cg = from_torch(net, input_shape=module.input_shape())
        cg.validate()
        assert cg.params == sum(p.numel() for p in net.parameters())
        assert cg.flops > 1e6 and cg.output_node.in_shapes[0] == (1, 10)


def test_hiaml_stage_structure() -> None:
    """Every stage holds 2 copies of its block; stages 2–4 halve the resolution and double the channels."""
    net = hiaml.build((0, 3, 6, 12))
    shapes = []
    x = net.stem(torch.zeros(1, 3, 32, 32))
    for stage in net.stages:
        assert len(stage) == 2
        x = stage(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(32, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4)]
    assert len(hiaml.BLOCKS) == 14 and len(set(hiaml.BLOCK_NAMES)) == 14
    same = hiaml.build((1, 1, 1, 1))
    assert all(type(stage[0]) is type(stage[1]) for stage in same.stages)
    assert all(isinstance(m, hiaml.Residual) for stage in same.stages for m in stage)


def test_inception_channels_split_across_branches() -> None:
    arch = ((2, ((0,), (8, 1), (9, 4), (2,))), (3, ((4,), (10,))), (4, ((5, 6, 7),)))
    net = inception.build(arch)
    assert len(net.blocks) == 9
    first = net.blocks[0]
    widths = [branch(torch.zeros(1, 32, 8, 8)).shape[1] for branch in first.branches]
    assert widths == [8, 8, 8, 8] and sum(widths) == inception.STAGE_CHANNELS[0]
    out = net.blocks[:2](torch.zeros(1, 32, 32, 32))
    assert tuple(out.shape) == (1, 32, 32, 32)
    assert tuple(net.blocks[:5](torch.zeros(1, 32, 32, 32)).shape) == (1, 64, 16, 16)


def test_two_path_paths_downsample_twice() -> None:
    arch = two_path.sample(1, seed=4)[0]
    net = two_path.build(arch)
    x = net.stem(torch.zeros(1, 3, 32, 32))
    assert tuple(net.path_a(x).shape) == tuple(net.path_b(x).shape) == (1, 128, 8, 8)
    assert two_path.reduction_blocks(2) == (0, 1) and two_path.reduction_blocks(4) == (0, 2)


def _histograms(cgs: list) -> np.ndarray:
    index = {op: i for i, op in enumerate(OP_TYPES)}
    rows = []
    for cg in cgs:
        row = np.zeros(len(OP_TYPES))
        for op, count in cg.op_histogram().items():
            row[index[op]] = count
        rows.append(row / row.sum())
    return np.array(rows)


def test_families_are_distinguishable_by_op_histograms() -> None:
    """Leave-one-out nearest centroid on normalised op histograms separates the families."""
    from cgpredict.converters import from_torch

    names = ["hiaml", "inception", "two_path"]
    if is_available("nasbench201"):
        names.append("nasbench201")
    feats, labels = [], []
    for label, name in enumerate(names):
        module_shape = (1, 3, 32, 32)
        cgs = [from_torch(build(name, arch), input_shape=module_shape) for arch in sample(name, 8, seed=5)]
        feats.append(_histograms(cgs))
        labels += [label] * len(cgs)
    x, y = np.vstack(feats), np.array(labels)
    correct = 0
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        centroids = np.array([x[keep & (y == k)].mean(axis=0) for k in range(len(names))])
        correct += int(np.argmin(((centroids - x[i]) ** 2).sum(axis=1)) == y[i])
    accuracy = correct / len(y)
    print(f"nearest-centroid accuracy over {names}: {accuracy:.2f}")
    assert accuracy >= 0.85


@pytest.mark.slow
@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_many_samples_convert(module: ModuleType) -> None:
    from cgpredict.converters import from_torch

    for arch in module.sample(100, seed=0):
        net = module.build(arch)
        cg = from_torch(net, input_shape=module.input_shape())
        assert cg.params == sum(p.numel() for p in net.parameters())

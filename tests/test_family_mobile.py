"""ProxylessNAS, OFA-MobileNetV3 and OFA-ResNet50 families: encoding, builders, sampling."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch
import torchvision
from torch import nn

from cgpredict.counting import counting_modes
from cgpredict.datasets import _mobile_blocks as mb
from cgpredict.datasets import ofa_mbv3, ofa_resnet50, proxylessnas

FAMILIES = (proxylessnas, ofa_mbv3, ofa_resnet50)
IDS = [f.NAME for f in FAMILIES]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _macs(model: nn.Module, shape: tuple[int, ...] = (1, 3, 224, 224)) -> int:
    """Conv + linear MACs per sample (torchvision convention), through the CG."""
    from cgpredict.converters import from_torch

    return from_torch(model, input_shape=shape).flops


def _meta_macs(mod: ModuleType, arch: object) -> int:
    """MACs of ``mod.build(arch)`` built on the meta device (no weight initialisation cost)."""
    with torch.device("meta"):
        net = mod.build(arch)
    return _macs(net)


def _min_arch(mod: ModuleType) -> object:
    if mod is ofa_resnet50:
        return ((0, 65, 65),) + tuple((65, (20,) * base) for base in mod.BASE_DEPTHS)
    return tuple(((min(mod.KERNELS), min(mod.EXPANDS)),) * lo for lo, _ in mod.DEPTHS)


def _max_arch(mod: ModuleType) -> object:
    if mod is ofa_resnet50:
        return ((1, 100, 100),) + tuple((100, (35,) * (base + mod.EXTRA_DEPTH)) for base in mod.BASE_DEPTHS)
    return tuple(((max(mod.KERNELS), max(mod.EXPANDS)),) * hi for _, hi in mod.DEPTHS)


@pytest.mark.parametrize("mod", FAMILIES, ids=IDS)
def test_interface(mod: ModuleType) -> None:
    assert mod.__name__.rsplit(".", 1)[-1] == mod.NAME
    assert mod.TASKS == ()
    assert mod.INPUT_SHAPE == mod.input_shape() == mod.input_shape("imagenet") == (1, 3, 224, 224)
    assert mod.FLOPS_MODE in counting_modes()
    assert mod.data_file("imagenet") == f"naslib/{mod.NAME}__imagenet.csv"
    with pytest.raises(ValueError, match="no labelled tasks"):
        mod.data_file("")


@pytest.mark.parametrize("mod", FAMILIES, ids=IDS)
def test_sample_round_trip_and_determinism(mod: ModuleType) -> None:
    archs = mod.sample(40, seed=5)
    assert archs == mod.sample(40, seed=5)
    assert archs != mod.sample(40, seed=6)
    assert len(set(archs)) == 40
    for arch in archs:
        text = mod.format_arch(arch)
        assert mod.parse_arch(text) == arch
        assert mod.parse_arch(text.replace("(", "[").replace(")", "]")) == arch  # lists are accepted too
        hash(arch)
    assert mod.sample(0, seed=1) == []
    with pytest.raises(ValueError):
        mod.sample(-1, seed=1)


def test_sample_covers_the_choices() -> None:
    for mod in (proxylessnas, ofa_mbv3):
        archs = mod.sample(100, seed=0)
        depths = {len(stage) for arch in archs for stage in arch[:-1]}
        assert depths == set(range(mod.DEPTHS[0][0], mod.DEPTHS[0][1] + 1))
        assert {k for arch in archs for stage in arch for k, _ in stage} == set(mod.KERNELS)
        assert {e for arch in archs for stage in arch for _, e in stage} == set(mod.EXPANDS)
    archs = ofa_resnet50.sample(100, seed=0)
    assert {e for arch in archs for _, es in arch[1:] for e in es} == set(ofa_resnet50.EXPANDS)
    assert {len(arch[3][1]) for arch in archs} == {4, 5, 6}
    assert {arch[0][0] for arch in archs} == {0, 1}


#: Valid archs as text; the malformed cases below edit them.
P_OK = "(((3, 3),), ((3, 3),), ((3, 3),), ((3, 3),), ((3, 3),), ((3, 3),))"
M_OK = "(((3, 3), (3, 3)), ((3, 3), (3, 3)), ((3, 3), (3, 3)), ((3, 3), (3, 3)), ((3, 3), (3, 3)))"
R_OK = "((1, 100, 100), (100, (25, 25)), (100, (25, 25)), (100, (25, 25, 25, 25)), (100, (25, 25)))"


@pytest.mark.parametrize(
    ("mod", "text", "match"),
    [
        (proxylessnas, "((3, 3),)", "6 stages"),
        (proxylessnas, P_OK[:-3] + ", (3, 3)))", "stage 5 has 2"),
        (proxylessnas, "(()," + P_OK[11:], "stage 0 has 0"),
        (proxylessnas, P_OK.replace("(3, 3)", "(4, 3)", 1), "kernel of stage 0"),
        (proxylessnas, P_OK.replace("((3, 3),), ((3, 3),)", "((3, 3),), ((3, 4),)", 1), "expansion of stage 1"),
        (proxylessnas, P_OK.replace("(3, 3)", "(3, 3, 1)", 1), "pair"),
        (proxylessnas, P_OK[:15], "cannot parse"),
        (ofa_mbv3, M_OK.replace("((3, 3), (3, 3))", "((3, 3),)", 1), "stage 0 has 1"),
        (ofa_mbv3, M_OK.replace("(3, 3)", "(3, 5)", 1), "expansion"),
        (ofa_mbv3, M_OK.replace("(3, 3)", "(3, True)", 1), "True"),
        (ofa_resnet50, "((1, 100, 100), (100, (25, 25)))", "stage1, stage2"),
        (ofa_resnet50, R_OK.replace("(25, 25, 25, 25)", "(25,) * 4"), "cannot parse"),
        (ofa_resnet50, R_OK.replace("(1, 100", "(2, 100"), "keep_mid"),
        (ofa_resnet50, R_OK.replace("(1, 100", "(1, 90"), "middle width"),
        (ofa_resnet50, R_OK.replace("(100, (25, 25))", "(100, (25,))", 1), "stage 1 has 1"),
        (ofa_resnet50, R_OK[:-5] + "30)))", "stage 4 block 1"),
        (ofa_resnet50, R_OK.replace("(100, (25, 25)), (100, (25, 25))", "(100, (25, 25)), (100, 25)"), "stage 2 must"),
    ],
)
def test_malformed_arch(mod: ModuleType, text: str, match: str) -> None:
    assert mod.parse_arch({proxylessnas: P_OK, ofa_mbv3: M_OK, ofa_resnet50: R_OK}[mod])  # the bases are valid
    with pytest.raises(ValueError, match=match):
        mod.parse_arch(text)


@pytest.mark.parametrize("mod", FAMILIES, ids=IDS)
def test_forward_tiny_input(mod: ModuleType) -> None:
    net = mod.build(mod.sample(1, seed=0)[0])
    assert not net.training
    with torch.no_grad():
        out = net(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize("mod", [proxylessnas, ofa_mbv3], ids=["proxylessnas", "ofa_mbv3"])
def test_mobile_blocks_follow_the_arch(mod: ModuleType) -> None:
    arch = mod.sample(1, seed=11)[0]
    net = mod.build(arch)
    blocks = [b for b in net.blocks if isinstance(b, mb.MBConv)]
    searched = [blk for stage in arch for blk in stage]
    assert len(blocks) == 1 + len(searched)
    c_in = blocks[0].project[0].out_channels
    for block, (kernel, expand) in zip(blocks[1:], searched):
        dw = block.depthwise[0]
        assert dw.kernel_size == (kernel, kernel) and dw.groups == dw.in_channels
        assert dw.in_channels == mb.make_divisible(c_in * expand, 8)
        c_in = block.project[0].out_channels
    # only the first block of a stage changes channels, every other block is residual
    assert sum(b.residual for b in blocks[1:]) == len(searched) - len(arch)
    if mod is ofa_mbv3:
        se_blocks = [isinstance(b.se, mb.SqueezeExcite) for b in blocks[1:]]
        stage_of = [s for s, stage in enumerate(arch) for _ in stage]
        assert se_blocks == [ofa_mbv3.STAGES[s][3] for s in stage_of]
        hswish = [any(isinstance(m, nn.Hardswish) for m in b.modules()) for b in blocks[1:]]
        assert hswish == [ofa_mbv3.STAGES[s][2] == "h_swish" for s in stage_of]
        assert blocks[0].residual  # the fixed 16 → 16 first block


@pytest.mark.parametrize("mod", FAMILIES, ids=IDS)
def test_sampled_macs_lie_between_the_extreme_subnets(mod: ModuleType) -> None:
    low, high = _meta_macs(mod, _min_arch(mod)), _meta_macs(mod, _max_arch(mod))
    assert low < high
    for arch in mod.sample(5, seed=2):
        assert low <= _meta_macs(mod, arch) <= high
    if mod is ofa_mbv3:  # OFA reports MobileNetV3 subnets between ~150 and ~600 MMACs
        assert 100e6 < low < 200e6 and 450e6 < high < 650e6


def test_ofa_resnet50_matches_torchvision_resnet50_up_to_the_stem() -> None:
    """Depths 3/4/6/3, expansion 0.25, width 1.0 is ResNet-50 with OFA's deep 3×3 stem (ResNet-D)."""
    arch = ((1, 100, 100), (100, (25,) * 3), (100, (25,) * 4), (100, (25,) * 6), (100, (25,) * 3))
    ours, ref = ofa_resnet50.build(arch), torchvision.models.resnet50()
    # stem: torchvision conv7×7 3→64 + BN vs 3×3 convs 3→32, 32→32, 32→64 with BNs
    tv_stem = 3 * 64 * 49 + 2 * 64
    our_stem = 3 * 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 2 * (32 + 32 + 64)
    assert _params(ours) == _params(ref) - tv_stem + our_stem
    tv_stem_macs = 112 * 112 * 64 * 3 * 49
    our_stem_macs = 112 * 112 * (32 * 3 * 9 + 32 * 32 * 9 + 64 * 32 * 9)
    assert _macs(ours) == _macs(ref) - tv_stem_macs + our_stem_macs


def test_ofa_resnet50_widths_and_skipped_stem_block() -> None:
    arch = ((0, 65, 80), (65, (20, 35)), (80, (25, 25)), (100, (35,) * 4), (65, (20, 20, 20, 20)))
    net = ofa_resnet50.build(arch)
    assert not any(isinstance(m, ofa_resnet50.StemResidual) for m in net.stem)
    assert net.stem[0][0].out_channels == 24 and net.stem[1][0].out_channels == 48
    blocks = list(net.blocks)
    assert [b.conv3[0].out_channels for b in blocks[:2]] == [168, 168]
    assert [b.conv1[0].out_channels for b in blocks[:2]] == [32, 56]  # round(168 × .2), × .35 → /8
    assert net.classifier.in_features == 1328
    assert isinstance(blocks[2].downsample[0], nn.AvgPool2d)  # strided shortcut: pool, conv, BN
    assert isinstance(blocks[0].downsample[0], nn.Conv2d)  # stride-1 channel change: conv, BN
    assert isinstance(blocks[1].downsample, nn.Identity)


def test_make_divisible() -> None:
    assert [mb.make_divisible(v) for v in (41.6, 51.2, 64, 166.4, 89.6, 20)] == [40, 48, 64, 168, 88, 24]

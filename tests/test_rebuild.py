"""Tests of CG → nn.Module rebuilding (cgpredict.rebuild, CG.to_module)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torchvision
from hypothesis import HealthCheck, given, settings
from torch import nn

from cgpredict.cg import CG, CGBuilder
from cgpredict.converters import from_torch
from cgpredict.datasets import registry
from cgpredict.rebuild import RebuildError, RebuiltModule, cg_to_module

# (name, constructor kwargs, input side); hash_equal: whether the round trip keeps CG.hash()
TORCHVISION = [
    ("resnet18", {}, 64, True),
    ("mobilenet_v2", {}, 64, True),
    ("efficientnet_b0", {}, 64, True),
    ("densenet121", {}, 64, True),
    ("squeezenet1_0", {}, 64, True),
    ("shufflenet_v2_x0_5", {}, 64, True),
    ("convnext_tiny", {}, 64, True),
    # nn.MultiheadAttention selects q/k/v from a (3, L, N, E) stack: the CG records dim 0 of that
    # layout while its shapes are batch-first, so the rebuilt select reads dim 1 (same tensor)
    ("vit_b_16", {"image_size": 32}, 32, False),
]


def _round_trip(model: nn.Module, shape: tuple[int, ...]) -> tuple[CG, CG, torch.Tensor, torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cg = from_torch(model, input_shape=shape)
        net = cg.to_module().eval()
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            y_ref = model.eval()(x)
            y = net(x)
        cg2 = from_torch(net, input_shape=shape)
    return cg, cg2, y_ref, y


def _assert_same_graph(cg: CG, cg2: CG, hash_equal: bool) -> None:
    assert cg2.op_histogram() == cg.op_histogram()
    for mode in ("torchvision", "all"):
        assert cg2.macs(mode) == cg.macs(mode)
    assert cg2.params == cg.params
    assert cg2.num_edges == cg.num_edges
    assert (cg2.hash() == cg.hash()) is hash_equal


@pytest.mark.parametrize("name,kwargs,side,hash_equal", TORCHVISION, ids=[t[0] for t in TORCHVISION])
def test_torchvision_round_trip(name: str, kwargs: dict, side: int, hash_equal: bool) -> None:
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    cg, cg2, y_ref, y = _round_trip(model, (1, 3, side, side))
    assert y.shape == y_ref.shape
    assert torch.isfinite(y).all()
    _assert_same_graph(cg, cg2, hash_equal)


@pytest.mark.parametrize("family", [f for f in registry.list_families() if registry.is_available(f)])
def test_family_round_trip(family: str) -> None:
    shape = registry.input_shape(family)
    arch = registry.sample(family, 1, seed=3)[0]
    model = registry.build(family, arch)
    cg, cg2, y_ref, y = _round_trip(model, shape)
    assert y.shape == y_ref.shape
    _assert_same_graph(cg, cg2, True)


def test_rebuilt_module_takes_other_batch_sizes_and_trains() -> None:
    cg = from_torch(torchvision.models.resnet18(num_classes=7), input_shape=(1, 3, 32, 32))
    net = cg.to_module()
    assert isinstance(net, RebuiltModule)
    assert sum(p.numel() for p in net.parameters()) == cg.params
    out = net(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 7)
    out.square().mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)


def test_forward_nodes_returns_outputs_aligned_with_nodes() -> None:
    cg = from_torch(torchvision.models.resnet18(), input_shape=(1, 3, 32, 32))
    net = cg.to_module()
    x = torch.randn(2, 3, 32, 32)
    values = net.forward_nodes(x)
    for node in cg.nodes:
        if node.op == "output":
            continue
        assert tuple(values[node.id].shape[1:]) == tuple(node.out_shape[1:]), node
    stop = next(n.id for n in cg.nodes if n.op == "global_pool")
    part = net.forward_nodes(x, keep=[stop], stop_after=stop)
    assert list(part) == [stop]


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Linear(8, 4)
        self.b = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.conv(x).mean((2, 3))
        return self.a(f), self.b(f)


def test_several_outputs_give_a_tuple() -> None:
    cg = from_torch(TwoHeads(), input_shape=(1, 3, 8, 8))
    out = cg.to_module()(torch.randn(5, 3, 8, 8))
    assert isinstance(out, tuple) and [tuple(o.shape) for o in out] == [(5, 4), (5, 2)]


class Tied(nn.Module):
    """The same Linear applied twice, plus a learned additive tensor and a layer scale."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.pos = nn.Parameter(torch.zeros(1, 4, 6))
        self.scale = nn.Parameter(torch.ones(6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc(x + self.pos)) * self.scale


def test_weight_sharing_and_learned_tensors_keep_the_parameter_count() -> None:
    model = Tied()
    cg, cg2, y_ref, y = _round_trip(model, (1, 4, 6))
    assert cg.params == sum(p.numel() for p in model.parameters())
    assert y.shape == y_ref.shape
    _assert_same_graph(cg, cg2, True)


def test_unknown_node_raises_naming_node_and_source_op() -> None:
    b = CGBuilder("weird")
    x = b.add("input", [], (1, 4), name="input")
    u = b.add("unknown", [x], (1, 4), name="blk.roll", source_op="roll")
    b.add("output", [u], (1, 4))
    cg = b.build()
    with pytest.raises(RebuildError, match=r"node 1 .*blk\.roll.*roll"):
        cg.to_module()
    with pytest.raises(TypeError):
        cg_to_module("not a cg")  # type: ignore[arg-type]


def test_inconsistent_conv_raises_naming_node() -> None:
    b = CGBuilder("bad")
    x = b.add("input", [], (1, 3, 8, 8))
    c = b.add("conv", [x], (1, 4, 8, 8), name="stem", weight_shape=(4, 5, 3, 3), kernel=(3, 3),
              stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    b.add("output", [c], (1, 4, 8, 8))
    with pytest.raises(RebuildError, match="stem"):
        b.build().to_module()


def test_rebuilt_module_survives_deepcopy() -> None:
    import copy

    # resnet18 ends in a linear layer, so a random input gives a non-zero output (squeezenet's final
    # ReLU could zero it for some initialisations and made this test depend on the RNG state)
    torch.manual_seed(0)
    cg = from_torch(torchvision.models.resnet18(num_classes=3), input_shape=(1, 3, 32, 32))
    net = cg.to_module().eval()
    twin = copy.deepcopy(net)
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert float(net(x).abs().sum()) > 0  # the original did not see the copy's zeroed weights
        assert float(twin(x).abs().sum()) == 0


try:  # the property-test DAG generator of the converter tests
    from test_property_dags import random_nets
except ImportError:  # pragma: no cover - run from another directory
    random_nets = None


@pytest.mark.skipif(random_nets is None, reason="tests/test_property_dags.py not importable")
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(random_nets() if random_nets is not None else None)
def test_random_dags_round_trip(case: tuple) -> None:
    net, shape, _expected, _macs = case
    cg = from_torch(net, input_shape=shape)
    rebuilt = cg.to_module()
    outs = rebuilt(torch.randn(*shape))
    outs = outs if isinstance(outs, tuple) else (outs,)
    assert [tuple(o.shape) for o in outs] == [tuple(cg.nodes[i].out_shape) for i in cg.output_node.inputs]
    cg2 = from_torch(rebuilt, input_shape=shape)
    _assert_same_graph(cg, cg2, True)


_BIG = {"vit_h_14", "vit_l_16", "vit_l_32", "vit_b_16", "vit_b_32", "regnet_y_128gf", "regnet_y_32gf",
        "regnet_y_16gf", "efficientnet_b6", "efficientnet_b7", "swin_v2_b", "swin_b", "maxvit_t"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(torchvision.models.list_models(module=torchvision.models)) - _BIG))
def test_every_torchvision_classifier_round_trips(name: str) -> None:
    side = 96 if name in ("inception_v3", "googlenet") else 64
    with torch.device("meta"):
        try:
            model = torchvision.models.get_model(name, weights=None)
        except Exception:  # noqa: BLE001 - constructors that copy data (RegNet) build on the CPU
            model = None
    if model is None:
        model = torchvision.models.get_model(name, weights=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cg = from_torch(model, input_shape=(1, 3, side, side))
    if name.startswith("swin"):  # torch.roll / vector norms are 'unknown' nodes: a clear refusal
        with pytest.raises(RebuildError, match="unknown op"):
            cg.to_module()
        return
    net = cg.to_module().eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, side, side))
    out = out if isinstance(out, torch.Tensor) else out[0]
    assert tuple(out.shape) == tuple(cg.nodes[cg.output_node.inputs[0]].out_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = from_torch(net, input_shape=(1, 3, side, side))
    _assert_same_graph(cg, again, True)


@pytest.mark.parametrize("method", ["auto", "export", "real"])
def test_leaky_relu_is_a_relu_node_that_keeps_its_slope(method: str) -> None:
    class Leaky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.act = nn.LeakyReLU(0.2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.leaky_relu(self.act(self.conv(x)))  # slope 0.2, then the default 0.01

    model = Leaky().eval()
    cg = from_torch(model, input_shape=(2, 3, 6, 6), method=method)
    relus = [n for n in cg.nodes if n.op == "relu"]
    assert [n.attrs.get("negative_slope") for n in relus] == [pytest.approx(0.2), pytest.approx(0.01)]
    assert not [n for n in cg.nodes if n.op == "unknown"]
    assert CG.from_json(cg.to_json()).nodes[relus[0].id].attrs["negative_slope"] == pytest.approx(0.2)
    net = cg.to_module().eval()
    net.layers[f"n{cg.nodes[1].id}"].load_state_dict(model.conv.state_dict())
    x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), atol=1e-6)  # negative inputs keep their slopes


def test_transnas_decoders_rebuild_without_unknown_nodes() -> None:
    from cgpredict.datasets import build

    model = build("transbench101_micro", (3, 1, 2, 3, 0, 2), "segmentsemantic")
    cg, cg2, y_ref, y = _round_trip(model, (1, 3, 64, 64))
    assert "unknown" not in cg.op_histogram()
    assert y.shape == y_ref.shape == (1, 17, 64, 64)
    _assert_same_graph(cg, cg2, True)


@pytest.mark.parametrize("family,arch,side", [("transbench101_micro", (3, 0, 2, 3, 1, 2), 256),
                                              ("nasbench301", None, 32)])
def test_tail_slices_and_strided_zero_edges_follow_another_input_size(family: str, arch, side: int) -> None:
    """``x[..., 1:]`` (factorized reductions) and a strided ``none`` edge rebuild for any input size, so a
    CG converted at full size can be scored at a reduced ``resolution``; at its own size nothing changes."""
    from cgpredict.datasets import build

    arch = arch if arch is not None else registry.sample(family, 1, seed=0)[0]
    model = build(family, arch, "class_scene") if family == "transbench101_micro" else build(family, arch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = from_torch(model, input_shape=(1, 3, side, side))
        small = from_torch(model, input_shape=(1, 3, side // 4, side // 4))
    assert [n.op for n in full.nodes] == [n.op for n in small.nodes]
    net, reference = full.to_module().eval(), small.to_module().eval()
    reference.load_state_dict(net.state_dict())  # same nodes, same weights
    x = torch.randn(2, 3, side // 4, side // 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # the full-size CG at a quarter of its side = the CG converted at that side
        assert torch.allclose(net(x), reference(x), atol=1e-6)
        full_x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(2))
        assert net(full_x).shape == reference(x).shape


def test_a_zero_edge_keeps_the_autograd_graph_at_another_input_size() -> None:
    from cgpredict.rebuild import _Zero

    same = _Zero((1, 4, 32, 32), (1, 4, 32, 32))
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    assert same(x).shape == (2, 4, 8, 8) and same(x).requires_grad  # x * 0 at any size
    strided = _Zero((1, 8, 16, 16), (1, 4, 32, 32))
    assert strided(x).shape == (2, 8, 4, 4)  # stride 2 and the new channel count at a quarter of the side
    assert strided(torch.randn(2, 4, 32, 32)).shape == (2, 8, 16, 16)


class _Recurrent(nn.Module):
    """A 1-D conv front end, then a recurrent layer over time, then a classifier (an ASR-style net)."""

    def __init__(self, kind: str, bidirectional: bool, layers: int, proj: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv1d(12, 16, 3, padding=1)
        options = {"proj_size": proj} if proj else {}
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](
            16, 8, num_layers=layers, batch_first=True, bidirectional=bidirectional, **options)
        self.fc = nn.Linear((proj or 8) * (2 if bidirectional else 1), 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(torch.relu(self.conv(x)).transpose(1, 2))
        return self.fc(out.mean(1))


@pytest.mark.parametrize("kind, bidirectional, layers, proj", [
    ("lstm", True, 1, 0), ("gru", False, 2, 0), ("rnn", True, 2, 0), ("lstm", False, 2, 4)])
def test_recurrent_layers_rebuild_from_their_recorded_configuration(kind, bidirectional, layers, proj) -> None:
    from cgpredict.proxies.bank import bank_scores

    net = _Recurrent(kind, bidirectional, layers, proj)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.export's notes on RNN flat weights
        cg = from_torch(net, input_shape=(1, 12, 20))
        rnn = next(n for n in cg.nodes if n.op == "unknown")
        assert rnn.attrs["rnn"] == {"hidden_size": 8, "num_layers": layers, "bidirectional": bidirectional,
                                    "batch_first": True, "bias": True, "proj_size": proj}
        rebuilt = cg.to_module()
        assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in net.parameters())
        again = from_torch(rebuilt, input_shape=(1, 12, 20))
    assert again.hash() == cg.hash() and again.flops == cg.flops
    assert rebuilt(torch.randn(3, 12, 20)).shape == (3, 5)
    # the proxies that need a rebuilt network now run (before: every one NaN, "unknown op 'lstm'")
    wanted = ("synflow", "snip", "zico", "meco")
    result = bank_scores(cg, wanted, cache=False)
    assert all(math.isfinite(result.scores[m]) and m not in result.errors for m in wanted), result.errors


def test_a_recurrent_layer_read_for_its_final_state_names_that_node() -> None:
    """``h_n`` is not derivable from the sequence output: that node stays unrebuildable, and says so."""
    class LastState(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(12, 8, batch_first=True)
            self.fc = nn.Linear(8, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, h = self.gru(x.transpose(1, 2))
            return self.fc(h[-1])

    cg = from_torch(LastState(), input_shape=(1, 12, 20))
    with pytest.raises(RebuildError, match="unknown op 'gru'"):
        cg.to_module()

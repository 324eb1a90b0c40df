"""Tests of cgpredict.converters.from_torch (model → CG): mapping, MACs, params, fallbacks."""

from __future__ import annotations

import warnings
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cgpredict.cg import CG
from cgpredict.converters import from_torch
from cgpredict.errors import CGConversionError


def _meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return torchvision.models.get_model(name, **kwargs)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------- published figures
@pytest.mark.parametrize(
    ("name", "gmacs", "tol"),
    [("resnet50", 4.09, 0.02), ("mobilenet_v2", 0.30, 0.02), ("efficientnet_b0", 0.39, 0.02),
     ("alexnet", 0.71, 0.02), ("vit_b_16", 17.56, 0.05)],
)
def test_published_macs_and_exact_params(name: str, gmacs: float, tol: float) -> None:
    model = _meta_model(name)
    cg = from_torch(model)
    assert cg.meta["method"] == "meta"
    assert cg.flops / 1e9 == pytest.approx(gmacs, rel=tol)
    assert cg.params == _n_params(model)
    assert cg.meta["model_params"] == _n_params(model) and cg.meta["unused_params"] == 0
    cg.validate()


def test_vit_conv_linear_mode_and_batch_invariance() -> None:
    model = _meta_model("vit_b_16")
    cg = from_torch(model)
    assert cg.macs("conv_linear") / 1e9 == pytest.approx(16.85, rel=0.01)
    # attention runs seq-first inside nn.MultiheadAttention: MACs must still be per sample
    cg4 = from_torch(model, input_shape=(4, 3, 224, 224))
    assert cg4.flops == cg.flops and cg4.macs("conv_linear") == cg.macs("conv_linear")
    assert cg.op_histogram()["sdpa"] == 12 and cg.op_histogram()["linear"] == 12 * 4 + 1


def test_resnet_batch_invariance_and_structure() -> None:
    model = _meta_model("resnet18")
    cg1, cg3 = from_torch(model), from_torch(model, input_shape=(3, 3, 224, 224))
    assert cg1.flops == cg3.flops and cg1.params == cg3.params == 11689512
    hist = cg1.op_histogram()
    assert hist["conv"] == 20 and hist["batch_norm"] == 20 and hist["add"] == 8
    assert hist["global_pool"] == 1 and hist["linear"] == 1 and hist["max_pool"] == 1
    conv1 = next(n for n in cg1.nodes if n.name == "conv1")
    assert (conv1.weight_shape, conv1.kernel, conv1.stride, conv1.padding) == ((64, 3, 7, 7), (7, 7), (2, 2), (3, 3))
    assert conv1.params == 64 * 3 * 49 and not conv1.bias
    assert next(n for n in cg1.nodes if n.op == "batch_norm").params == 128


def test_unused_aux_params_are_reported() -> None:
    model = _meta_model("googlenet", aux_logits=True, init_weights=False)
    cg = from_torch(model)
    aux = sum(p.numel() for m in (model.aux1, model.aux2) for p in m.parameters())
    assert cg.meta["unused_params"] == aux
    assert cg.params == _n_params(model) - aux


# ---------------------------------------------------------------------------- fast path == export
_EXPORT_DEFAULT = {"resnet18": (1, 3, 224, 224), "mobilenet_v2": (1, 3, 224, 224),
                   "efficientnet_b0": (1, 3, 224, 224), "vit_b_16": (1, 3, 32, 32),
                   "squeezenet1_0": (1, 3, 224, 224)}
# the slow run checks every other torchvision model except the five largest RegNets, which can
# only be built with real weights on CPU (up to 2.6 GB)
_EXPORT_SLOW = [n for n in torchvision.models.list_models(module=torchvision.models)
                if n not in _EXPORT_DEFAULT
                and n not in ("regnet_y_128gf", "regnet_y_32gf", "regnet_x_32gf", "regnet_y_16gf", "regnet_x_16gf")]


def _any_model(name: str, **kwargs) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's init-weights FutureWarnings
        try:
            return _meta_model(name, **kwargs)
        except Exception:  # noqa: BLE001 - RegNets cannot be built on meta
            torch.manual_seed(0)
            return torchvision.models.get_model(name, **kwargs)


@pytest.mark.parametrize(
    ("name", "shape"),
    [*_EXPORT_DEFAULT.items(),
     *(pytest.param(n, (1, 3, 299, 299) if n == "inception_v3" else (1, 3, 224, 224), marks=pytest.mark.slow)
       for n in _EXPORT_SLOW)],
)
def test_fast_path_gives_the_export_cg(name: str, shape: tuple[int, ...]) -> None:
    kwargs = {"image_size": shape[-1]} if name.startswith("vit") else {}
    model = _any_model(name, **kwargs)
    fast = from_torch(model, input_shape=shape)
    exported = from_torch(model, input_shape=shape, method="export")
    assert (fast.meta["method"], exported.meta["method"]) == ("meta", "export")
    assert fast.hash() == exported.hash()
    assert fast.params == exported.params == _n_params(model) - fast.meta["unused_params"]


# ---------------------------------------------------------------------------- mapping rules
class _Zoo(nn.Module):
    """One of (almost) every mapped op, with known attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.gconv = nn.Conv2d(8, 8, 1, groups=2)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.bn = nn.BatchNorm2d(8)
        self.gn = nn.GroupNorm(2, 8)
        self.fc = nn.Linear(4, 5)
        self.scale = nn.Parameter(torch.ones(1, 8, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.relu6(self.bn(self.conv(x)))  # (1, 8, 8, 8)
        y = self.gn(self.dw(y)) * self.scale
        a, b = torch.chunk(self.gconv(y), 2, dim=1)  # two (1, 4, 8, 8)
        z = torch.cat([a.sigmoid(), F.hardswish(b)], dim=-3) + y
        z = F.max_pool2d(z, 3, 2, 1)  # (1, 8, 4, 4)
        z = F.adaptive_avg_pool2d(F.pad(z, (1, 1, 1, 1)), (2, 3))
        z = F.interpolate(z, scale_factor=2.0, mode="nearest")  # (1, 8, 4, 6)
        w = self.up(z)  # (1, 4, 8, 12)
        v = w[:, 1:3].mean(dim=1)  # (1, 8, 12): a channel mean, not a spatial pool
        u = F.softmax(self.fc(w.mean(dim=(2, 3))), dim=-1)
        return u, v


def test_mapping_rules_attributes() -> None:
    model = _Zoo()
    cg = from_torch(model, input_shape=(1, 3, 16, 16))
    by = {}
    for n in cg.nodes:
        by.setdefault(n.op, []).append(n)
    assert by["conv"][0].weight_shape == (8, 3, 3, 3) and by["conv"][0].stride == (2, 2)
    assert by["depthwise_conv"][0].groups == 8 and by["depthwise_conv"][0].bias
    assert by["grouped_conv"][0].groups == 2
    tconv = next(n for n in cg.nodes if n.attrs.get("transposed"))
    assert tconv.op == "conv" and tconv.out_shape == (1, 4, 8, 12) and tconv.weight_shape == (8, 4, 2, 2)
    assert by["relu6"] and by["sigmoid"] and by["hardswish"] and by["softmax"]
    assert by["batch_norm"][0].weight_shape == (8,) and by["batch_norm"][0].params == 16
    assert by["layer_norm"][0].weight_shape == (8,) and by["layer_norm"][0].params == 16
    # the layer-scale parameter is folded into the mul that consumes it (one input)
    mul = by["mul"][0]
    assert len(mul.inputs) == 1 and mul.params == 8
    splits = {(n.attrs["dim"], n.attrs["index"], n.attrs.get("start"), n.out_shape) for n in by["split"]}
    # chunk(2, dim=1) outputs 0 and 1 (the second starts at channel 4), and w[:, 1:3] (a slice from 1)
    assert splits == {(1, 0, None, (1, 4, 8, 8)), (1, 1, 4, (1, 4, 8, 8)), (1, 1, None, (1, 2, 8, 12))}
    assert by["concat"][0].attrs == {"dim": 1}
    assert len(by["add"][0].inputs) == 2
    mp = by["max_pool"][0]
    assert (mp.kernel, mp.stride, mp.padding, mp.dilation) == ((3, 3), (2, 2), (1, 1), (1, 1))
    ap = by["avg_pool"][0]
    assert ap.attrs == {"adaptive": True, "output_size": [2, 3]} and ap.kernel == (3, 2)
    assert by["pad"][0].attrs == {"pad": [1, 1, 1, 1], "mode": "constant"} and by["pad"][0].out_shape == (1, 8, 6, 6)
    assert by["upsample"][0].attrs == {"mode": "nearest", "size": [4, 6], "scale": [2.0, 2.0]}
    assert len(by["global_pool"]) == 1 and by["global_pool"][0].attrs == {"mode": "avg"}
    assert len(by["mean"]) == 1 and by["mean"][0].out_shape == (1, 8, 12)
    assert by["linear"][0].weight_shape == (5, 4) and by["linear"][0].bias
    assert cg.params == _n_params(model)
    out = cg.output_node
    assert [cg.nodes[i].out_shape for i in out.inputs] == [(1, 5), (1, 8, 12)] and out.out_shape == (1, 5)
    # the export path lowers the same network to the same CG
    assert from_torch(model, input_shape=(1, 3, 16, 16), method="export").hash() == cg.hash()
    assert from_torch(model, input_shape=(1, 3, 16, 16), method="real").hash() == cg.hash()


def test_matmul_linear_and_sdpa_mapping() -> None:
    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(16, 48))
            self.pos = nn.Parameter(torch.zeros(1, 10, 16))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.pos
            q, k, v = (x @ self.w).chunk(3, dim=-1)
            scores = (q @ k.transpose(-2, -1)).softmax(-1)
            a = scores @ v
            b = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1)
            return a + b

    cg = from_torch(Attn(), input_shape=(2, 10, 16))
    hist = cg.op_histogram()
    assert hist["linear"] == 1 and hist["matmul"] == 2 and hist["sdpa"] == 1 and hist["softmax"] == 1
    lin = next(n for n in cg.nodes if n.op == "linear")
    assert lin.weight_shape == (48, 16) and lin.params == 16 * 48 and lin.macs == 10 * 48 * 16
    add = next(n for n in cg.nodes if n.op == "add")
    assert add.params == 160 and len(add.inputs) == 1
    sdpa = next(n for n in cg.nodes if n.op == "sdpa")
    assert sdpa.macs == 10 * 10 * (16 + 16) and len(sdpa.inputs) == 3
    assert cg.params == 16 * 48 + 160


# ---------------------------------------------------------------------------- inputs / outputs
def test_multiple_inputs_dict_outputs_and_tied_weights() -> None:
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Linear(4, 4)
            self.dec = nn.Linear(4, 4, bias=False)
            self.dec.weight = self.enc.weight  # tied

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"y": self.dec(self.enc(a)) * b, "z": torch.tanh(b)}

    model = Two()
    cg = from_torch(model, (torch.randn(3, 4), torch.randn(3, 4)))
    assert [n.name for n in cg.input_nodes] == ["input_0", "input_1"]
    assert cg.params == _n_params(model) == 20
    assert cg.meta["input_shapes"] == [[3, 4], [3, 4]]
    assert len(cg.output_node.inputs) == 2
    assert Counter(n.op for n in cg.nodes)["linear"] == 2


def test_model_is_left_untouched() -> None:
    model = torchvision.models.resnet18()
    model.train()
    model.layer1.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    for method in ("meta", "real"):
        from_torch(model, input_shape=(2, 3, 64, 64), method=method)
    assert [m.training for m in model.modules()] == flags
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# ---------------------------------------------------------------------------- cg_op modules
class _Zero(nn.Module):
    cg_op = "zero"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class _Skip(nn.Module):
    cg_op = "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_cg_op_modules_are_single_nodes() -> None:
    class Cell(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.none, self.skip, self.conv = _Zero(), _Skip(), nn.Conv2d(3, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.none(x) + self.skip(x) + self.conv(x)

    cg = from_torch(Cell(), input_shape=(1, 3, 8, 8))
    ops = {n.name: n for n in cg.nodes}
    assert ops["none"].op == "zero" and ops["skip"].op == "identity"
    assert ops["conv"].inputs == [0] and ops["skip"].inputs == [0]  # identity does not hijack x
    assert "mul" not in cg.op_histogram()


def test_cg_op_module_on_the_export_path() -> None:
    class Edge(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.none, self.conv = _Zero(), nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.none(x) + self.conv(x)

    fast = from_torch(Edge(), input_shape=(1, 3, 8, 8))
    exported = from_torch(Edge(), input_shape=(1, 3, 8, 8), method="export")
    assert fast.op_histogram() == {"input": 1, "output": 1, "conv": 1, "add": 1, "zero": 1}
    assert exported.hash() == fast.hash()


# ---------------------------------------------------------------------------- fallbacks and errors
class _DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.abs().sum() > 0:  # true for any non-degenerate input
            return y.relu()
        return y.sigmoid()


def test_data_dependent_control_flow_falls_back_with_warning() -> None:
    with pytest.warns(UserWarning, match=r"fallback because meta failed"):
        cg = from_torch(_DataDependent(), input_shape=(1, 3, 12, 12))
    assert cg.meta["method"] in ("draft_export", "real")
    assert cg.op_histogram().get("relu") == 1 and "sigmoid" not in cg.op_histogram()
    real = from_torch(_DataDependent(), input_shape=(1, 3, 12, 12), method="real")
    assert real.meta["method"] == "real" and real.hash() == cg.hash()


@torch.library.custom_op("cgpredict_test::opaque", mutates_args=())
def _opaque(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@_opaque.register_fake
def _opaque_fake(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def test_unknown_ops_become_unknown_nodes() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.ops.cgpredict_test.opaque(self.conv(x))
            return F.elu(torch.roll(y, 1, dims=2)).relu()

    from cgpredict.converters import UncountedOpWarning

    hashes = set()
    for method in ("auto", "export", "real"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("error", UserWarning)  # no fallback needed
            warnings.simplefilter("always", UncountedOpWarning)
            cg = from_torch(Odd(), input_shape=(1, 3, 8, 8), method=method)
        unknown = [n.source_op for n in cg.nodes if n.op == "unknown"]
        assert unknown == ["opaque", "roll", "elu"]
        # one warning per uncounted op type, naming the op and the module path
        messages = sorted(str(w.message) for w in caught if w.category is UncountedOpWarning)
        assert len(messages) == 3 and all("0 MACs" in m and "at '<root>'" in m for m in messages)
        assert [m.split("op ")[1].split(" ")[0] for m in messages] == ["'elu'", "'opaque'", "'roll'"]
        hashes.add(cg.hash())
    assert len(hashes) == 1


def test_python_function_is_recorded_through_its_inner_calls() -> None:
    def helper(x: torch.Tensor) -> torch.Tensor:  # not a torch function: traced transparently
        return torch.sigmoid(x) * x

    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.normalize(helper(x), dim=1)

    cg = from_torch(M(), input_shape=(2, 8))
    hist = cg.op_histogram()
    assert hist["sigmoid"] == 1 and hist["mul"] == 2 and hist["unknown"] >= 1


def test_non_module_raises_clear_error() -> None:
    with pytest.raises(CGConversionError, match="expects a torch.nn.Module, got builtins.str"):
        from_torch("resnet18")  # type: ignore[arg-type]
    with pytest.raises(CGConversionError, match="example_input"):
        from_torch(nn.ReLU(), example_input=[1, 2])
    with pytest.raises(CGConversionError, match="unknown method"):
        from_torch(nn.ReLU(), method="jit")


def test_all_methods_failing_names_model_module_op_and_each_error() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Conv2d(3, 8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(x[:, :2])

    with pytest.raises(CGConversionError) as info:
        from_torch(Broken(), input_shape=(1, 3, 16, 16))
    text = str(info.value)
    assert "Broken" in text and "module 'head'" in text and "conv2d" in text
    for method in ("meta", "export", "draft_export", "real"):
        assert f"  {method}: " in text


def test_output_independent_of_input_is_an_error() -> None:
    class Const(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(3)

    with pytest.raises(CGConversionError, match="does not depend on its input"):
        from_torch(Const(), input_shape=(1, 3), method="meta")


def test_json_round_trip_of_a_converted_model() -> None:
    cg = from_torch(_meta_model("mobilenet_v3_small"))
    again = CG.from_json(cg.to_json())
    assert again == cg and again.hash() == cg.hash()


def test_tiny_vit_all_methods_agree() -> None:
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                               hidden_dim=32, mlp_dim=64, num_classes=10)
    hashes = {m: from_torch(vit, input_shape=(2, 3, 32, 32), method=m).hash() for m in ("meta", "export", "real")}
    assert len(set(hashes.values())) == 1, hashes
    cg = from_torch(vit, input_shape=(1, 3, 32, 32))
    tokens, dim = 17, 32
    per_layer = tokens * dim * (3 * dim + dim + 2 * 64) + 2 * tokens * tokens * dim  # linears + QKᵀ + AV
    expected = 16 * dim * 3 * 8 * 8 + 2 * per_layer + 10 * dim
    assert cg.flops == expected
    assert cg.params == _n_params(vit)

"""One network, one canonical CG, one prediction — whatever its source (issue 21, item 9).

Each zoo model is converted four ways: :func:`from_torch`, and :func:`from_onnx` of the ONNX
dynamo export, of the dynamo export with the onnxscript optimiser (slow zoo only) and of the
legacy TorchScript export (``dynamo=False``, constant folding on, eval mode: batch norm folded into
the convolutions). Their canonical CGs (:func:`cgpredict.canonical.canonicalize`) must be identical
(``CG.hash()``, MACs, parameters), so their features and predictions are too.

Weights are randomised (batch-norm statistics included): the legacy exporter deduplicates
initializers with equal values, which a freshly initialised network has (all-zero biases, unit
batch-norm scales) and a trained one does not.

The default run uses 20 small hand-written networks at 32×32 (conv/bn/relu, residual,
depthwise, SE with hardsigmoid, hardswish, grouped conv, pre-activation dense blocks, MLP-Mixer,
ConvNeXt and ViT blocks, Linear+BatchNorm1d, Conv1d, pads, inception branches, channel shuffle,
upsampling); ``slow`` adds 24 torchvision models at full size.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from cgpredict.canonical import canonicalize  # noqa: E402
from cgpredict.converters import from_onnx, from_torch  # noqa: E402


# ---------------------------------------------------------------------------- the hand-written zoo
class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1, g: int = 1, act: type = nn.ReLU) -> None:
        super().__init__(nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout), act())


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(ConvBNAct(3, 16), nn.MaxPool2d(2), ConvBNAct(16, 32, s=2), nn.AvgPool2d(2),
                               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)


class VggBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(ConvBNAct(3, 16), ConvBNAct(16, 16), nn.MaxPool2d(2, 2), ConvBNAct(16, 32),
                                      nn.MaxPool2d(2, 2, ceil_mode=True), nn.AdaptiveAvgPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(128, 64), nn.ReLU(True), nn.Dropout(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class Basic(nn.Module):
    def __init__(self, cin: int, cout: int, s: int) -> None:
        super().__init__()
        self.c1 = ConvBNAct(cin, cout, s=s)
        self.c2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.down = None if s == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, s, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.down is None else self.down(x)
        return F.relu(self.c2(self.c1(x)) + identity)


class ResNetTiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, 16)
        self.blocks = nn.Sequential(Basic(16, 16, 1), Basic(16, 32, 2))
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class SE(nn.Module):
    def __init__(self, c: int, gate: type = nn.Hardsigmoid) -> None:
        super().__init__()
        self.fc1, self.fc2, self.gate = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1), gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, e: int, s: int, se: type | None = None, act: type = nn.ReLU6) -> None:
        super().__init__()
        mid = cin * e
        layers = [ConvBNAct(cin, mid, 1, act=act), ConvBNAct(mid, mid, 3, s, g=mid, act=act)]
        if se is not None:
            layers.append(SE(mid, se))
        layers += [nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class Mobile(nn.Module):
    def __init__(self, se: type | None = None, act: type = nn.ReLU6) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, 16, s=2, act=act)
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 2, 1, se, act), InvertedResidual(16, 24, 3, 2, se, act),
                                    InvertedResidual(24, 24, 3, 1, se, act))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(24, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


class MixerBlock(nn.Module):
    """An attention-free transformer block: token-mixing and channel MLPs with LayerNorm and GELU."""

    def __init__(self, tokens: int, dim: int) -> None:
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.tok = nn.Sequential(nn.Linear(tokens, tokens * 2), nn.GELU(), nn.Linear(tokens * 2, tokens))
        self.ch = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.tok(self.n1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.ch(self.n2(x))


class Mixer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 32, 8, 8)
        self.blocks = nn.Sequential(MixerBlock(16, 32), MixerBlock(16, 32))
        self.norm, self.head = nn.LayerNorm(32), nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(x)).mean(1))


class Dense(nn.Module):
    """Pre-activation BN-ReLU-conv with concatenation: batch norm that cannot be folded."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.l1 = nn.Sequential(nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 8, 3, padding=1))
        self.l2 = nn.Sequential(nn.BatchNorm2d(24), nn.ReLU(), nn.Conv2d(24, 8, 3, padding=1))
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.cat([x, self.l1(x)], 1)
        x = torch.cat([x, self.l2(x)], 1)
        return self.head(F.adaptive_max_pool2d(x, 1).flatten(1))


class Grouped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(ConvBNAct(3, 32), ConvBNAct(32, 32, g=4), ConvBNAct(32, 64, s=2, g=8, act=nn.SiLU),
                               nn.Conv2d(64, 64, 3, padding=1, bias=True), nn.BatchNorm2d(64), nn.Hardswish())
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.f(x).mean((2, 3)))


class MlpBN(nn.Module):
    """Linear + BatchNorm1d (folded into the linear), tanh, sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.BatchNorm1d(64), nn.Tanh(),
                               nn.Linear(64, 32, bias=False), nn.BatchNorm1d(32), nn.Sigmoid(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)


class Conv1dNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Conv1d(3, 16, 5, padding=2, bias=False), nn.BatchNorm1d(16), nn.ReLU(),
                               nn.Conv1d(16, 16, 3, padding=1, groups=16), nn.BatchNorm1d(16), nn.GELU(),
                               nn.AdaptiveAvgPool1d(1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.f(x.flatten(2)).squeeze(-1))


class PadPool(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c, self.bn = nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8)
        self.c2, self.bn2 = nn.Conv2d(8, 8, 3, stride=2, bias=False), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.c(F.pad(x, (1, 1, 1, 1), mode="reflect"))))
        x = F.max_pool2d(x, 3, 2, 1)
        x = F.relu(self.bn2(self.c2(F.pad(x, (0, 1, 0, 1)))))
        return self.fc(F.adaptive_avg_pool2d(x, (1, 1)).view(x.shape[0], -1))


class TwoBranch(nn.Module):
    """A conv read by a BN and an add (not foldable), and two identical branches multiplied."""

    def __init__(self) -> None:
        super().__init__()
        self.c, self.bn = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.a, self.b = ConvBNAct(16, 16), ConvBNAct(16, 16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.c(x)
        y = self.bn(c) + c
        return self.fc((self.a(y) * self.b(y)).mean((2, 3)))


class ViT(nn.Module):
    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 8, 8)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, 17, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout=0.0, batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.enc(x)[:, 0])


class SdpaBlock(nn.Module):
    """Patch embedding + a pre-norm block with explicit SDPA and a SiLU head."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Conv2d(3, dim, 8, 8)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)
        n, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, c))
        x = x + self.mlp(self.norm2(x))
        return self.head(x.mean(1))


class ConvNeXtBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 4, 4)
        self.dw = nn.Conv2d(32, 32, 7, padding=3, groups=32)
        self.norm = nn.LayerNorm(32)
        self.pw1, self.pw2 = nn.Linear(32, 128), nn.Linear(128, 32)
        self.gamma = nn.Parameter(torch.ones(32) * 1e-6)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.pw2(F.gelu(self.pw1(self.norm(self.dw(x).permute(0, 2, 3, 1))))) * self.gamma
        return self.head((x + y.permute(0, 3, 1, 2)).mean((-2, -1)))


class Inception(nn.Module):
    """Four parallel branches (1×1, 3×3, 5×5, pool+1×1) concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, 16)
        self.b1 = ConvBNAct(16, 8, 1)
        self.b3 = nn.Sequential(ConvBNAct(16, 8, 1), ConvBNAct(8, 12, 3))
        self.b5 = nn.Sequential(ConvBNAct(16, 4, 1), ConvBNAct(4, 6, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvBNAct(16, 6, 1))
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Shuffle(nn.Module):
    """ShuffleNet-v2 style: channel split, a branch, concat, channel shuffle."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, 16, s=2)
        self.branch = nn.Sequential(ConvBNAct(8, 8, 1), nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False),
                                    nn.BatchNorm2d(8), ConvBNAct(8, 8, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        a, b = x.chunk(2, dim=1)
        x = torch.cat([a, self.branch(b)], 1)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.fc(x.mean((2, 3)))


class UpsampleSeg(nn.Module):
    """Encoder–decoder: strided conv, bilinear and nearest upsampling, skip add, 1×1 head."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1, self.enc2 = ConvBNAct(3, 16), ConvBNAct(16, 32, s=2)
        self.dec = ConvBNAct(32, 16, 1)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        d = F.interpolate(self.dec(self.enc2(e1)), scale_factor=2.0, mode="bilinear", align_corners=False)
        y = self.head(F.relu(d + e1))
        return F.interpolate(y, scale_factor=0.5, mode="nearest")


class ConvLinearBN(nn.Module):
    """Dilated conv + BN, flatten, Linear + BatchNorm1d + ReLU, linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=2, dilation=2, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.AvgPool2d(4))
        self.fc = nn.Sequential(nn.Linear(8 * 8 * 8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


HAND_ZOO: dict[str, type | object] = {
    "plain": Plain, "vgg_bn": VggBN, "resnet_tiny": ResNetTiny, "mobile": Mobile,
    "mobile_se_hardswish": lambda: Mobile(se=nn.Hardsigmoid, act=nn.Hardswish),
    "efficient_se_silu": lambda: Mobile(se=nn.Sigmoid, act=nn.SiLU), "mixer": Mixer, "dense": Dense,
    "grouped": Grouped, "mlp_bn": MlpBN, "conv1d": Conv1dNet, "pad_pool": PadPool, "two_branch": TwoBranch,
    "vit": ViT, "sdpa_block": SdpaBlock, "convnext_block": ConvNeXtBlock, "inception": Inception,
    "shuffle": Shuffle, "upsample_seg": UpsampleSeg, "conv_linear_bn": ConvLinearBN,
}

TORCHVISION_ZOO = (
    "alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "efficientnet_b1", "efficientnet_v2_s",
    "googlenet", "inception_v3", "mnasnet0_5", "mnasnet1_0", "mobilenet_v2", "mobilenet_v3_large",
    "mobilenet_v3_small", "regnet_x_400mf", "regnet_y_400mf", "resnet18", "resnet50", "resnext50_32x4d",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "squeezenet1_0", "squeezenet1_1", "vgg11_bn", "vit_b_16",
)


# ---------------------------------------------------------------------------- sources
def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` in eval mode with every parameter and batch-norm statistic perturbed (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen))
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.01)
    return model.eval()


def sources(model: nn.Module, shape: tuple[int, ...], optimized: bool = False) -> dict:
    """The CGs of ``model`` from from_torch and from_onnx of each ONNX export route."""
    x = torch.randn(*shape)
    cgs = {"torch": from_torch(model, input_shape=shape)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation and tracer notes
        routes = [("dynamo", False)] + ([("dynamo_optimized", True)] if optimized else [])
        for label, optimize in routes:
            program = torch.onnx.export(model, (x,), dynamo=True, optimize=optimize, verbose=False)
            cgs[label] = from_onnx(program.model_proto)
        buffer = io.BytesIO()
        torch.onnx.export(model, (x,), buffer, dynamo=False, do_constant_folding=True)
    cgs["legacy"] = from_onnx(onnx.load_from_string(buffer.getvalue()))
    return cgs


def _assert_one_canonical_cg(cgs: dict) -> None:
    canon = {k: canonicalize(cg) for k, cg in cgs.items()}
    ref = canon["torch"]
    for label, cg in canon.items():
        assert cg.hash() == ref.hash(), f"{label} differs from from_torch after canonicalization"
        assert cg.flops == ref.flops and cg.macs("all") == ref.macs("all") and cg.params == ref.params
    assert ref.flops == cgs["torch"].flops  # canonicalization never changes the MAC total


@pytest.mark.parametrize("name", sorted(HAND_ZOO))
def test_hand_zoo_sources_agree_after_canonicalization(name: str) -> None:
    torch.manual_seed(0)
    model = randomized(HAND_ZOO[name]())
    _assert_one_canonical_cg(sources(model, (1, 3, 32, 32)))


def test_the_zoo_has_at_least_20_models_of_each_kind() -> None:
    assert len(HAND_ZOO) >= 20 and len(TORCHVISION_ZOO) >= 20


def test_legacy_export_differs_before_canonicalization() -> None:
    # the problem being solved: batch norm folded by the legacy exporter changes the raw CG
    torch.manual_seed(0)
    cgs = sources(randomized(ResNetTiny()), (1, 3, 32, 32))
    assert cgs["torch"].op_histogram()["batch_norm"] == 6 and "batch_norm" not in cgs["legacy"].op_histogram()
    assert cgs["torch"].hash() != cgs["legacy"].hash()
    assert canonicalize(cgs["torch"]).hash() == canonicalize(cgs["legacy"]).hash()


def test_features_and_predictions_identical_across_sources() -> None:
    from cgpredict.models.fcm import OutOfDistributionWarning
    from cgpredict.predictor import Predictor

    torch.manual_seed(0)
    names = ("resnet_tiny", "mobile_se_hardswish", "dense", "mlp_bn")
    per_source: dict[str, list] = {}
    raw: dict[str, list] = {}
    for name in names:
        for label, cg in sources(randomized(HAND_ZOO[name]()), (1, 3, 32, 32)).items():
            per_source.setdefault(label, []).append(canonicalize(cg))
            raw.setdefault(label, []).append(cg)
    for label, cgs in per_source.items():  # identical PyG tensors: x, edges, ops, flops, params
        for cg, ref in zip(cgs, per_source["torch"]):
            a, b = cg.to_pyg(), ref.to_pyg()
            for key in ("x", "edge_index", "op", "flops", "params"):
                assert torch.equal(getattr(a, key), getattr(b, key)), (label, key)
    predictor = Predictor.pretrained("nb101", progress=False)
    predictor.canonical = False  # read the CGs as given: this test canonicalizes them itself
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)  # not NB-101 cells
        predictions = {label: predictor.predict(cgs) for label, cgs in per_source.items()}
        raw_torch, raw_legacy = predictor.predict(raw["torch"]), predictor.predict(raw["legacy"])
    for label, values in predictions.items():
        np.testing.assert_array_equal(values, predictions["torch"], err_msg=label)
    assert not np.array_equal(raw_torch, raw_legacy)  # without canonicalization the sources disagree
    # (the predictor's own canonicalization, on by default: tests/test_canonical_predict.py)


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHVISION_ZOO)
def test_torchvision_zoo_sources_agree_after_canonicalization(name: str) -> None:
    import torchvision

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = randomized(torchvision.models.get_model(name))
    size = 299 if name == "inception_v3" else 224
    _assert_one_canonical_cg(sources(model, (1, 3, size, size), optimized=True))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HAND_ZOO))
def test_hand_zoo_optimized_export_agrees(name: str) -> None:
    torch.manual_seed(0)
    model = randomized(HAND_ZOO[name]())
    _assert_one_canonical_cg(sources(model, (1, 3, 32, 32), optimized=True))

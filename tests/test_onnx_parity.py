"""Parity of the two converters: from_onnx(torch.onnx.export(model)) against from_torch(model).

Both must give the same op multiset, MACs within 1 %, identical parameter counts and (where the
exporter keeps the structure) isomorphic graphs when nodes are labelled by op type.
"""

from __future__ import annotations

import warnings

import networkx as nx
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from cgpredict.converters import from_onnx, from_torch  # noqa: E402


def _export(model, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (x,), dynamo=True, optimize=False, verbose=False)
    return program.model_proto


def _labelled(cg) -> nx.DiGraph:
    graph = cg.to_networkx()
    for _, data in graph.nodes(data=True):
        data["label"] = (data["op"], tuple(data["out_shape"]))
    return graph


def _assert_parity(model, shape) -> None:
    model = model.eval()
    x = torch.randn(*shape)
    cg_torch = from_torch(model, input_shape=tuple(shape))
    cg_onnx = from_onnx(_export(model, x))
    assert cg_onnx.op_histogram() == cg_torch.op_histogram()
    assert cg_onnx.params == cg_torch.params == sum(p.numel() for p in model.parameters())
    assert cg_onnx.flops == pytest.approx(cg_torch.flops, rel=0.01)
    assert cg_onnx.macs("all") == pytest.approx(cg_torch.macs("all"), rel=0.01)
    assert nx.is_isomorphic(
        _labelled(cg_onnx),
        _labelled(cg_torch),
        node_match=lambda a, b: a["label"] == b["label"],
        edge_match=lambda a, b: a["count"] == b["count"],
    )


class _TinyTransformer(torch.nn.Module):
    """Patch embedding + one pre-norm encoder block (SDPA, GELU) + SiLU head: the fused patterns."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.embed = torch.nn.Conv2d(3, dim, 4, stride=4)
        self.cls = torch.nn.Parameter(torch.zeros(1, 1, dim))
        self.norm1 = torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.norm2 = torch.nn.LayerNorm(dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(), torch.nn.Linear(2 * dim, dim))
        self.head = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.SiLU(), torch.nn.Linear(dim, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        n, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(attn.transpose(1, 2).reshape(n, t, c))
        x = x + self.mlp(self.norm2(x))
        return self.head(x[:, 0])


class _MixedOps(torch.nn.Module):
    """GroupNorm/InstanceNorm, tanh-GELU, chunk, transposed conv, hardswish, nearest upsampling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding="same")
        self.gn = torch.nn.GroupNorm(2, 8)
        self.inorm = torch.nn.InstanceNorm2d(8, affine=True)
        self.up = torch.nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.gelu(self.gn(self.conv(x)), approximate="tanh")
        a, b = self.inorm(x).chunk(2, dim=1)
        a = torch.nn.functional.hardswish(self.up(a))
        b = torch.nn.functional.interpolate(b, scale_factor=2)
        y = torch.cat([a, b], 1).amax(dim=(2, 3))
        return torch.log_softmax(self.fc(y), -1)


def test_parity_mixed_ops_dynamo_and_legacy(tmp_path) -> None:
    torch.manual_seed(0)
    model = _MixedOps().eval()
    _assert_parity(model, (1, 3, 8, 8))
    path = tmp_path / "legacy.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 8, 8),), str(path), dynamo=False, opset_version=14)
    cg_legacy, cg_torch = from_onnx(path), from_torch(model, input_shape=(1, 3, 8, 8))
    assert cg_legacy.op_histogram() == cg_torch.op_histogram()
    assert cg_legacy.flops == cg_torch.flops


def test_parity_tiny_transformer() -> None:
    torch.manual_seed(0)
    model = _TinyTransformer().eval()
    _assert_parity(model, (1, 3, 16, 16))
    # the onnxscript optimiser (optimize=True) folds the weight transposes into new initializers
    # without export metadata and drops the last K reshape before the attention product
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), dynamo=True, verbose=False)
    cg_opt, cg_torch = from_onnx(program.model_proto), from_torch(model, input_shape=(1, 3, 16, 16))
    assert cg_opt.op_histogram() == cg_torch.op_histogram()
    assert cg_opt.flops == cg_torch.flops
    # identical-valued tensors (the two LayerNorms' ones and zeros) are deduplicated by the optimiser
    assert cg_torch.params - 2 * 32 <= cg_opt.params <= cg_torch.params


def test_parity_resnet18() -> None:
    _assert_parity(torchvision.models.resnet18(), (1, 3, 224, 224))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_v2", "efficientnet_b0", "squeezenet1_0", "mobilenet_v3_small", "shufflenet_v2_x0_5",
        "convnext_tiny", "alexnet",
        # densenet121 has torch.cat([x]) of one tensor: no node on either side (ONNX: Identity)
        "densenet121",
    ],
)
def test_parity_torchvision(name: str) -> None:
    _assert_parity(getattr(torchvision.models, name)(), (1, 3, 224, 224))


@pytest.mark.slow
def test_parity_vit_b_16() -> None:
    _assert_parity(torchvision.models.vit_b_16(image_size=64), (1, 3, 64, 64))

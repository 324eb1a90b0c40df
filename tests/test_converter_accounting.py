"""Converter MAC/parameter accounting on the hard cases (issue 21, item 10).

Batch folded into another dim (``(B, N, C)`` → ``(B·N, C)``, as transformer-in-transformer models
do), ``nn.Unfold``/``nn.Fold``, recurrent layers and embeddings, and the warning for every op whose
MACs are not counted. References: ``torch.utils.flop_counter.FlopCounterMode`` (torch's own counter)
and the closed-form LSTM/GRU counts.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from cgpredict.converters import UncountedOpWarning, from_onnx, from_torch  # noqa: E402


class PixelEmbedFold(nn.Module):
    """A TNT-style block: unfold pixels into patches, fold the batch into the patch dim."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 3, padding=1)
        self.unfold = nn.Unfold(kernel_size=4, stride=4)
        self.inner_conv = nn.Conv2d(8, 8, 3, padding=1)
        self.inner = nn.Linear(8, 16)
        self.outer = nn.Linear(16 * 16, 32)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = self.unfold(self.proj(x))  # (B, 8·4·4, 16 patches)
        x = x.transpose(1, 2).reshape(b * 16, 8, 4, 4)  # the batch folded into the patches
        x = self.inner_conv(x)  # a conv on (B·N, C, p, p)
        x = self.inner(x.reshape(b * 16, 8, 16).transpose(1, 2))  # a linear on (B·N, P, C)
        x = self.outer(x.reshape(b, 16, 256))
        return self.head(x.mean(1))


class TokenFold(nn.Module):
    """(B, N, C) → (B·N, C) before a linear, and (N, B, C) → (N·B, C) (the batch inside a dim)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 12, 4, 4)
        self.fc1 = nn.Linear(12, 24)
        self.fc2 = nn.Linear(24, 12)
        self.head = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        t = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, C)
        n, c = t.shape[1], t.shape[2]
        y = self.fc1(t.reshape(b * n, c))  # (B·N, 24)
        y = y.reshape(b, n, 24).transpose(0, 1).reshape(n * b, 24)  # (N·B, 24)
        y = self.fc2(y).reshape(n, b, c).transpose(0, 1)
        return self.head(y.mean(1))


def _torch_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Per-sample MACs by torch's own counter (it reports FLOPs = 2 × MACs for the whole batch)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2 // x.shape[0]


@pytest.mark.parametrize("model_cls", [PixelEmbedFold, TokenFold])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("method", ["meta", "export", "real"])
def test_folded_batch_macs_match_torch_counter(model_cls, batch: int, method: str) -> None:
    torch.manual_seed(0)
    model = model_cls().eval()
    x = torch.randn(batch, 3, 16, 16)
    expected = _torch_macs(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback, nothing left uncounted
        cg = from_torch(model, x, method=method)
    assert cg.flops == expected
    for node in cg.nodes:  # every shape is batch-first: the folded dims are written (B, N, …)
        assert node.out_shape[0] == batch, (node.op, node.source_op, node.out_shape)


def test_folded_batch_macs_match_torch_counter_through_onnx() -> None:
    torch.manual_seed(0)
    model = PixelEmbedFold().eval()
    x = torch.randn(2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = torch.onnx.export(model, (x,), dynamo=True, optimize=False, verbose=False).model_proto
    assert from_onnx(proto).flops == _torch_macs(model, x)


def test_unfold_and_fold_are_reshapes_with_the_op_kept() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unfold = nn.Unfold(kernel_size=2, stride=2)
            self.fold = nn.Fold(output_size=(8, 8), kernel_size=2, stride=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            cols = self.unfold(x)  # (N, 3·2·2, 16)
            return self.fold(torch.sigmoid(cols))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cg = from_torch(M(), input_shape=(2, 3, 8, 8))
    ops = [(n.op, n.source_op, n.out_shape) for n in cg.nodes]
    assert ops == [("input", "input", (2, 3, 8, 8)), ("reshape", "im2col", (2, 12, 16)),
                   ("sigmoid", "sigmoid", (2, 12, 16)), ("reshape", "col2im", (2, 3, 8, 8)),
                   ("output", "output", (2, 3, 8, 8))]
    unfold, fold = cg.nodes[1], cg.nodes[3]
    assert unfold.attrs == {"op": "im2col", "kernel_size": [2, 2], "dilation": [1, 1], "padding": [0, 0],
                            "stride": [2, 2]}
    assert fold.attrs["op"] == "col2im" and fold.attrs["output_size"] == [8, 8]
    assert unfold.macs == fold.macs == 0


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.lstm = nn.LSTM(16, 32, num_layers=2, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(64, 24)  # sequence-first
        self.head = nn.Linear(24, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm(self.emb(ids))
        _, h = self.gru(x.transpose(0, 1))  # only h_n is used: the GRU's MACs must still count
        return self.head(h[-1])


_STEPS = 7
_LSTM_MACS = _STEPS * 2 * (4 * (16 + 32) * 32 + 4 * (64 + 32) * 32)  # steps × dirs × Σ_layers 4(in+H)H
_GRU_MACS = _STEPS * 3 * (64 + 24) * 24


@pytest.mark.parametrize("method", ["meta", "export", "real"])
def test_lstm_gru_count_their_macs_and_embedding_its_params(method: str) -> None:
    model = Recurrent().eval()
    ids = torch.randint(0, 100, (2, _STEPS))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncountedOpWarning)  # counted: no warning
        warnings.simplefilter("ignore", UserWarning)  # torch.export's notes on LSTM flat weights
        cg = from_torch(model, ids, method=method)
    by_source = {n.source_op: n for n in cg.nodes if n.op == "unknown" and n.macs}
    assert by_source["lstm"].macs == _LSTM_MACS
    assert by_source["gru"].macs == _GRU_MACS
    emb = next(n for n in cg.nodes if n.source_op == "embedding")
    assert emb.macs == 0 and emb.params == 100 * 16 and emb.attrs == {"macs": 0}
    assert cg.params == sum(p.numel() for p in model.parameters())
    assert cg.flops == _LSTM_MACS + _GRU_MACS + 24 * 5  # recurrent MACs are in the default count


def test_lstm_gru_macs_through_onnx() -> None:
    model = Recurrent().eval()
    ids = torch.randint(0, 100, (1, _STEPS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = torch.onnx.export(model, (ids,), dynamo=True, optimize=False, verbose=False).model_proto
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncountedOpWarning)
        cg = from_onnx(proto)
    assert cg.flops == _LSTM_MACS + _GRU_MACS + 24 * 5
    assert cg.params == sum(p.numel() for p in model.parameters())


def test_every_uncounted_op_type_warns_once_naming_module_paths() -> None:
    class Block(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.roll(x, 1, dims=2)

    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = Block(), Block()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cumsum(self.b(self.conv(self.a(x))), dim=1)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_torch(M(), input_shape=(1, 3, 4, 4))
    messages = sorted(str(w.message) for w in caught if w.category is UncountedOpWarning)
    assert len(messages) == 2
    assert "op 'cumsum' (1 node, at '<root>')" in messages[0]
    assert "op 'roll' (2 nodes, at 'a', 'b')" in messages[1] and "0 MACs" in messages[1]

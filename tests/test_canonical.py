"""The canonical CG form (cgpredict.canonical): each rewrite rule on small graphs.

Pipeline position: model → CG → **canonical CG** → features. The zoo across export routes is in
``tests/test_canonical_zoo.py``.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from cgpredict.canonical import canonicalize, is_canonical  # noqa: E402
from cgpredict.cg import CGBuilder  # noqa: E402
from cgpredict.converters import from_torch  # noqa: E402


def _hist(cg) -> dict[str, int]:
    return cg.op_histogram()


def test_batch_norm_after_a_conv_is_folded_with_deployed_params() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 4, 1, bias=True), nn.BatchNorm2d(4))
    cg = from_torch(model, input_shape=(1, 3, 8, 8))
    before = cg.hash()
    canon = canonicalize(cg)
    assert cg.hash() == before and _hist(cg)["batch_norm"] == 2  # the input CG is not modified
    assert "batch_norm" not in _hist(canon)
    convs = [n for n in canon.nodes if n.op == "conv"]
    assert [c.bias for c in convs] == [True, True]
    # the first conv gains a bias of 8; the second keeps its own; the BNs' γ/β (2·8 + 2·4) are gone
    assert [c.params for c in convs] == [8 * 27 + 8, 4 * 8 + 4]
    assert canon.params == cg.params - 2 * 8 - 2 * 4 + 8
    assert canon.meta["params_before_canonical"] == cg.params and canon.meta["canonical"] is True
    assert canon.flops == cg.flops  # conv MACs unchanged
    assert canon.macs("all") == cg.macs("all") - 8 * 64 - 4 * 64  # the BNs' elementwise MACs go
    assert convs[1].out_shape == (1, 4, 8, 8) and canon.output_node.in_shapes == [(1, 4, 8, 8)]


def test_batch_norm_elsewhere_stays() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pre = nn.BatchNorm2d(3)  # before any conv
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)  # its conv also feeds the add: cannot fold
            self.bn2 = nn.BatchNorm2d(8)  # after an add

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            c = self.conv(self.pre(x))
            return self.bn2(self.bn(c) + c)

    canon = canonicalize(from_torch(M(), input_shape=(1, 3, 8, 8)))
    assert _hist(canon)["batch_norm"] == 3
    assert next(n for n in canon.nodes if n.op == "conv").params == 8 * 27 + 8


def test_linear_and_transposed_conv_fold_their_batch_norm() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = nn.ConvTranspose2d(4, 6, 2, stride=2, groups=2, bias=False)
            self.bn = nn.BatchNorm2d(6)
            self.fc = nn.Linear(6, 5, bias=False)
            self.bn1d = nn.BatchNorm1d(5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn1d(self.fc(self.bn(self.up(x)).mean((2, 3))))

    cg = from_torch(M(), input_shape=(2, 4, 4, 4))
    canon = canonicalize(cg)
    assert "batch_norm" not in _hist(canon)
    up = next(n for n in canon.nodes if n.attrs.get("transposed"))
    fc = next(n for n in canon.nodes if n.op == "linear")
    assert (up.bias, up.params) == (True, 4 * 3 * 2 * 2 + 6)  # out channels = 3 per group × 2 groups
    assert (fc.bias, fc.params) == (True, 6 * 5 + 5)


def _two_branch(first_left: bool, swap_add: bool, swap_cat: bool = False):
    """conv → (relu | sigmoid) → add and concat, listing the branches and operands in either order."""
    b = CGBuilder("branches")
    x = b.add("input", [], (1, 4, 8, 8))
    c = b.add("conv", [x], (1, 4, 8, 8), weight_shape=(4, 4, 3, 3), kernel=(3, 3), stride=(1, 1),
              padding=(1, 1), dilation=(1, 1), params=144)
    order = ["relu", "sigmoid"] if first_left else ["sigmoid", "relu"]
    ids = {op: b.add(op, [c], (1, 4, 8, 8)) for op in order}
    left, right = ids["relu"], ids["sigmoid"]
    s = b.add("add", [right, left] if swap_add else [left, right], (1, 4, 8, 8))
    cat = b.add("concat", [s, c] if not swap_cat else [c, s], (1, 8, 8, 8), attrs={"dim": 1})
    b.add("output", [cat], (1, 8, 8, 8))
    return b.build()


def test_order_and_commutative_operands_do_not_matter_but_concat_order_does() -> None:
    variants = [_two_branch(f, s) for f in (True, False) for s in (True, False)]
    assert len({v.hash() for v in variants}) == 4  # as converted, the listings differ
    assert len({canonicalize(v).hash() for v in variants}) == 1
    assert canonicalize(_two_branch(True, False, swap_cat=True)).hash() != canonicalize(variants[0]).hash()


def test_canonicalize_is_idempotent_and_is_canonical_says_so() -> None:
    cg = _two_branch(False, True)
    canon = canonicalize(cg)
    assert canonicalize(canon).hash() == canon.hash()
    assert is_canonical(canon)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    assert not is_canonical(from_torch(model, input_shape=(1, 3, 8, 8)))


def test_zero_pad_is_fused_into_the_following_conv() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3)
            self.b = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.a(nn.functional.pad(x, (1, 1, 1, 1)))  # symmetric → padding
            return self.b(nn.functional.pad(y, (0, 1, 2, 0)))  # asymmetric → attrs pads

    canon = canonicalize(from_torch(M(), input_shape=(1, 3, 8, 8)))
    assert "pad" not in _hist(canon)
    a, b = [n for n in canon.nodes if n.op == "conv"]
    assert a.padding == (1, 1) and "pads" not in a.attrs
    assert b.padding == (3, 1) and b.attrs["pads"] == [3, 1, 1, 2]  # begins (H, W), then ends
    assert b.in_shapes == [(1, 4, 8, 8)]


def test_reflect_pad_is_not_fused() -> None:
    model = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, 4, 3))
    assert _hist(canonicalize(from_torch(model, input_shape=(1, 3, 8, 8))))["pad"] == 1


def test_whole_window_pool_is_a_global_pool_and_uniform_adaptive_pools_plain() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(4), nn.MaxPool2d(4))
    cg = from_torch(model, input_shape=(1, 3, 8, 8))
    assert [n.op for n in cg.nodes][2:4] == ["avg_pool", "max_pool"]
    canon = canonicalize(cg)
    avg, glob = canon.nodes[2], canon.nodes[3]
    assert avg.op == "avg_pool" and avg.attrs == {} and avg.kernel == (2, 2) and avg.stride == (2, 2)
    assert glob.op == "global_pool" and glob.attrs == {"mode": "max"} and glob.kernel == ()
    odd = from_torch(nn.AdaptiveAvgPool2d(3), input_shape=(1, 3, 8, 8))  # non-uniform windows
    assert canonicalize(odd).nodes[1].attrs == {"adaptive": True, "output_size": [3, 3]}


def test_split_pieces_are_named_by_offset() -> None:
    class Chunk(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b = x.chunk(2, dim=1)
            return a * b

    class Slices(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :3] * x[:, 3:]

    chunk = canonicalize(from_torch(Chunk(), input_shape=(1, 6, 4, 4)))
    slices = canonicalize(from_torch(Slices(), input_shape=(1, 6, 4, 4)))
    assert sorted(n.attrs["index"] for n in chunk.nodes if n.op == "split") == [0, 3]
    assert chunk.hash() == slices.hash()


def test_global_pool_through_unit_reshapes() -> None:
    b = CGBuilder("pool1d-as-2d")  # how an exporter writes adaptive_avg_pool1d(1) + squeeze
    x = b.add("input", [], (1, 4, 16))
    u = b.add("reshape", [x], (1, 4, 1, 16))
    p = b.add("global_pool", [u], (1, 4, 1, 1), attrs={"mode": "avg"})
    r = b.add("reshape", [p], (1, 4))
    b.add("output", [r], (1, 4))
    c = CGBuilder("pool1d")
    x = c.add("input", [], (1, 4, 16))
    p = c.add("global_pool", [x], (1, 4, 1), attrs={"mode": "avg"})
    r = c.add("reshape", [p], (1, 4))
    c.add("output", [r], (1, 4))
    assert canonicalize(b.build()).hash() == canonicalize(c.build()).hash()


def test_nested_concats_along_one_dim_are_flattened() -> None:
    class Nested(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b, c = torch.relu(x), torch.sigmoid(x), torch.tanh(x)
            return torch.cat([a, torch.cat([b, c], 1)], 1) + torch.cat([torch.cat([a, b], 2), c], 2).mean()

    class Flat(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b, c = torch.relu(x), torch.sigmoid(x), torch.tanh(x)
            return torch.cat([a, b, c], 1) + torch.cat([a, b, c], 2).mean()

    nested = from_torch(Nested(), input_shape=(1, 2, 4, 4))
    flat = from_torch(Flat(), input_shape=(1, 2, 4, 4))
    assert nested.op_histogram()["concat"] == 4 and flat.op_histogram()["concat"] == 2
    assert canonicalize(nested).hash() == canonicalize(flat).hash()
    assert canonicalize(nested).op_histogram()["concat"] == 2


def test_concat_with_a_learned_token_is_not_inlined() -> None:
    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cls = nn.Parameter(torch.zeros(1, 1, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            inner = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
            return torch.cat([x, inner], 1)

    canon = canonicalize(from_torch(Tokens(), input_shape=(1, 3, 8)))
    assert canon.op_histogram()["concat"] == 2 and canon.params == 8

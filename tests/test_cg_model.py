"""The CG data model: builder passes, counting, serialisation, hashing and PyG/networkx views."""

from __future__ import annotations

import json

import pytest

from cgpredict import CG, CGBuilder
from cgpredict.errors import CGSchemaError
from cgpredict.features import NUM_NODE_FEATURES


def small_cg(channels: int = 8) -> CG:
    b = CGBuilder("small", meta={"source": "test"})
    x = b.add("input", out_shape=(1, 3, 32, 32), name="input")
    c = b.add("conv", [x], (1, channels, 32, 32), weight_shape=(channels, 3, 3, 3), kernel=(3, 3),
              stride=(1, 1), padding=(1, 1), dilation=(1, 1), params=channels * 27, name="conv1")
    bn = b.add("batch_norm", [c], (1, channels, 32, 32), weight_shape=(channels,), params=2 * channels)
    r = b.add("relu", [bn], (1, channels, 32, 32))
    a = b.add("add", [r, c], (1, channels, 32, 32))
    p = b.add("global_pool", [a], (1, channels, 1, 1))
    v1 = b.add("reshape", [p], (1, channels, 1))
    v2 = b.add("reshape", [v1], (1, channels))
    fc = b.add("linear", [v2], (1, 10), weight_shape=(10, channels), bias=True, params=10 * channels + 10)
    b.add("relu", [c], (1, channels, 32, 32))  # dead branch: never reaches the output
    b.add("output", [fc], (1, 10))
    return b.build()


def test_builder_collapses_view_chains_and_prunes_dead_nodes() -> None:
    cg = small_cg()
    hist = cg.op_histogram()
    assert hist["reshape"] == 1  # two chained views became one
    assert hist["relu"] == 1  # the dead relu is gone
    reshape = next(n for n in cg.nodes if n.op == "reshape")
    assert reshape.in_shapes == [(1, 8, 1, 1)] and reshape.out_shape == (1, 8)
    cg.validate()
    assert [n.id for n in cg.nodes] == list(range(cg.num_nodes))


def test_macs_per_node_and_modes() -> None:
    cg = small_cg(8)
    conv = next(n for n in cg.nodes if n.op == "conv")
    assert conv.macs == 8 * 32 * 32 * 27
    fc = next(n for n in cg.nodes if n.op == "linear")
    assert fc.macs == 80
    assert cg.flops == conv.macs + fc.macs
    assert cg.macs("conv_linear") == cg.flops
    assert cg.macs("all") > cg.flops
    assert cg.params == 8 * 27 + 16 + 90
    with pytest.raises(ValueError, match="unknown counting mode"):
        cg.macs("nope")


def test_macs_are_per_sample() -> None:
    b = CGBuilder()
    x = b.add("input", out_shape=(16, 3, 8, 8))
    c = b.add("conv", [x], (16, 4, 8, 8), weight_shape=(4, 3, 1, 1), kernel=(1, 1))
    b.add("output", [c], (16, 4, 8, 8))
    assert b.build().flops == 4 * 64 * 3


def test_json_round_trip_and_hash_stability() -> None:
    cg = small_cg()
    again = CG.from_json(cg.to_json())
    assert again == cg
    assert again.hash() == cg.hash()
    renamed = CG.from_json(cg.to_json())
    renamed.name = "other"
    renamed.nodes[1].name = "renamed.conv"
    assert renamed.hash() == cg.hash()  # names do not change the structure hash
    assert small_cg(16).hash() != cg.hash()


def test_json_refuses_other_schema_versions(tmp_path) -> None:
    data = small_cg().to_dict()
    data["version"] = 999
    with pytest.raises(CGSchemaError, match="version 999"):
        CG.from_dict(data)
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(CGSchemaError):
        CG.from_json(path)
    path.write_text(json.dumps({"schema": "something-else"}))
    with pytest.raises(CGSchemaError):
        CG.from_json(path)


def test_validate_catches_shape_mismatch() -> None:
    cg = small_cg()
    cg.nodes[3].in_shapes[0] = (1, 99, 32, 32)
    with pytest.raises(ValueError, match="produces"):
        cg.validate()


def test_builder_rejects_unknown_op_and_forward_reference() -> None:
    b = CGBuilder()
    with pytest.raises(ValueError, match="unknown op type"):
        b.add("convolution")
    with pytest.raises(ValueError, match="does not exist"):
        b.add("relu", [3], (1,))


def test_pyg_and_networkx_views() -> None:
    cg = small_cg()
    data = cg.to_pyg()
    assert tuple(data.x.shape) == (cg.num_nodes, NUM_NODE_FEATURES)
    assert data.edge_index.shape[1] == cg.num_edges
    assert data.x[:, : len(data.op.unique()) + 100].sum().item() > 0
    assert float(data.flops) == pytest.approx(cg.flops / 1e9)
    graph = cg.to_networkx()
    assert graph.number_of_nodes() == cg.num_nodes
    assert graph.nodes[1]["op"] == "conv"


def test_hash_structure_equals_node_dicts_without_names():
    """``CG.structure_dict`` (built directly, for speed) holds exactly ``Node.to_dict`` minus the name
    (and minus ``source_op`` unless the op is ``unknown``), so cache keys never change."""
    import hashlib
    import json

    import torchvision

    from cgpredict.converters import from_torch
    from cgpredict.datasets import load_family

    cgs = load_family("nasbench201", n=3, seed=0).cgs(progress=False)
    cgs.append(from_torch(torchvision.models.mobilenet_v3_small(), input_shape=(1, 3, 64, 64)))
    for cg in cgs:
        reference = [{k: v for k, v in node.to_dict().items() if k != "name" and (k != "source_op" or node.op == "unknown")}
                     for node in cg.nodes]
        assert cg.structure_dict() == reference
        text = json.dumps(reference, sort_keys=True, separators=(",", ":"))
        assert cg.hash() == hashlib.sha256(text.encode()).hexdigest()


def test_reaches_follows_inputs_not_node_order() -> None:
    """``CG.reaches(a, b)``: b depends on a through the inputs; a sibling branch does not."""
    from torch import nn

    from cgpredict.converters import from_torch

    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)

        def forward(self, x):  # noqa: ANN001, ANN202
            return self.a(x) + self.b(x)

    cg = from_torch(Branches(), input_shape=(1, 3, 4, 4))
    a, b = (next(n.id for n in cg.nodes if n.name == name) for name in ("a", "b"))
    add = next(n.id for n in cg.nodes if n.op == "add")
    assert cg.reaches(a, add) and cg.reaches(b, add) and cg.reaches(0, add)
    assert not cg.reaches(min(a, b), max(a, b)) and not cg.reaches(add, a)

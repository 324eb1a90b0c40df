"""The deduplicated inference path (cgpredict.models.dedup) computes what the plain path computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch_geometric.data import Batch, Data

from cgpredict.converters import from_torch
from cgpredict.datasets import nasbench201, sample
from cgpredict.features import _feature_row, node_feature_matrix
from cgpredict.models import dedup
from cgpredict.models.contrastive import CGEncoder
from cgpredict.models.gnn import GNNEncoder, GNNPredictor
from cgpredict.models.graph_data import cg_data, collate, collate_data
from cgpredict.models.synthetic import toy_family


@pytest.fixture(scope="module")
def cgs() -> list:
    """Real CGs with repeated structure (NB-201 cells, ResNet blocks) and without (toy CGs)."""
    nb201 = [from_torch(nasbench201.build(a), input_shape=(1, 3, 32, 32)) for a in sample("nasbench201", 6, seed=3)]
    zoo = [from_torch(torchvision.models.resnet18()), from_torch(torchvision.models.mobilenet_v3_small())]
    return nb201 + zoo + toy_family(10, seed=1)[0]


def _plain_and_dedup(module: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    module.eval()
    with torch.enable_grad():  # autograd on: the plain per-node path
        plain = module(batch).detach()
    with torch.no_grad():
        fast = module(batch)
    return plain, fast


def test_encoder_dedup_equals_plain_path(cgs: list) -> None:
    torch.manual_seed(0)
    enc = CGEncoder(branch_dim=32)
    batch = collate(cgs)
    assert enc.eval().gnn.deduplicates() is False  # autograd on outside no_grad
    plain, fast = _plain_and_dedup(enc, batch)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    # the Transformer really ran on fewer rows: NB-201 CGs repeat their rows many times
    start = dedup.row_classes(batch.x)
    rows, graph, counts = dedup.unique_rows_per_graph(start, batch.batch)
    assert rows.numel() < batch.num_nodes / 2
    assert torch.equal(torch.bincount(graph, weights=counts.double()).long(), torch.bincount(batch.batch))


@pytest.mark.parametrize("kind", ["kgnn", "gin"])
@pytest.mark.parametrize("max_share", [0.0, 0.3, 1.0])
def test_sum_aggregation_forward_any_share(cgs: list, kind: str, max_share: float) -> None:
    torch.manual_seed(1)
    enc = GNNEncoder(kind, 5, 16).eval()
    batch = collate(cgs)
    edges = enc._messages(batch)
    with torch.no_grad():
        fast = dedup.sum_aggregation_forward(enc.convs, batch.x, edges, max_share=max_share)
        h = batch.x
        for conv in enc.convs:
            h = torch.relu(conv(h, edges))
    torch.testing.assert_close(fast, h, atol=1e-5, rtol=1e-5)


def _reference_partition(x: np.ndarray, edges: np.ndarray, rounds: int) -> list[list[int]]:
    """Colour classes by textbook 1-WL refinement with sorted neighbour tuples."""
    _, colour = np.unique(x, axis=0, return_inverse=True)
    out = [colour.ravel().tolist()]
    for _ in range(rounds):
        neighbours: list[list[int]] = [[] for _ in range(len(x))]
        for s, d in edges.T:
            neighbours[d].append(out[-1][s])
        signature = [(out[-1][i], tuple(sorted(neighbours[i]))) for i in range(len(x))]
        ids: dict = {}
        out.append([ids.setdefault(sig, len(ids)) for sig in signature])
    return out


def _same_partition(a: list[int] | torch.Tensor, b: list[int] | torch.Tensor) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_wl_rounds_match_textbook_refinement(cgs: list) -> None:
    batch = collate(cgs[:4] + cgs[-3:])
    edges = GNNEncoder()._messages(batch)
    reference = _reference_partition(batch.x.numpy(), edges.numpy(), rounds=4)
    colour = dedup.row_classes(batch.x)
    assert _same_partition(colour, reference[0])
    assert _same_partition(colour, torch.unique(batch.x, dim=0, return_inverse=True)[1])
    generator = torch.Generator().manual_seed(0)
    for want in reference[1:]:
        colour = dedup.wl_round(colour, edges, generator)
        assert _same_partition(colour, want)


def test_extra_node_columns_split_identical_rows(cgs: list) -> None:
    """Proxy statistics appended to the node features must not be hashed away (row keys refreshed)."""
    rng = np.random.default_rng(0)
    extra = [rng.normal(size=(cg.num_nodes, 2)).astype(np.float32) for cg in cgs]
    model = GNNPredictor("kgnn", layers=3, hidden=16, extra_node_dim=2, epochs=1, flops_transform=False,
                         progress=False).fit(cgs, np.linspace(80, 90, len(cgs)), node_extra=extra)
    fast = model.decision_function(cgs, node_extra=extra)
    batch = model._batch(cgs, np.arange(len(cgs)), model._check_extra(cgs, extra))
    plain, _ = _plain_and_dedup(model.module, batch)
    np.testing.assert_allclose(fast, plain.numpy(), atol=1e-5)


def test_fast_collate_equals_pyg(cgs: list) -> None:
    data = [cg_data(cg) for cg in cgs]
    ours, pyg = collate_data(data), Batch.from_data_list(data)
    assert set(ours.keys()) == set(pyg.keys())
    for key in pyg.keys():
        assert torch.equal(ours[key], pyg[key]) if torch.is_tensor(pyg[key]) else ours[key] == pyg[key]
    assert ours.num_graphs == pyg.num_graphs == len(cgs)
    other = [Data(x=torch.ones(2, 3), edge_index=torch.tensor([[0], [1]]), tag=torch.tensor([i])) for i in range(3)]
    assert torch.equal(collate_data(other).tag, torch.arange(3))  # unknown layouts: PyG's collation


def test_feature_rows_computed_once_per_distinct_node(cgs: list) -> None:
    for cg in cgs[:3] + cgs[6:8]:
        x = node_feature_matrix(cg)
        ref_h, ref_w = (float(s) for s in cg.input_nodes[0].out_shape[2:4])
        total = np.log1p(max(cg.macs("all"), 1))
        rows = [_feature_row(n.op, n.in_shapes[0] if n.in_shapes else n.out_shape, n.out_shape, n.weight_shape,
                             n.stride, n.bias, n.macs, ref_h, ref_w, total) for n in cg.nodes]
        np.testing.assert_array_equal(x, np.stack(rows))

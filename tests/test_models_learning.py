"""Every model learns a synthetic accuracy on held-out toy CGs (structure, not just FLOPs)."""

from __future__ import annotations

import numpy as np
import pytest

from cgpredict.metrics import kendall_tau, spearman
from cgpredict.models.contrastive import ContrastiveEncoder
from cgpredict.models.gnn import GNNPredictor
from cgpredict.models.graph_data import flops_of
from cgpredict.models.heads import EmbeddingRegressor, PairwiseRanker, grid_search_fcm
from cgpredict.models.synthetic import toy_family

N_TRAIN = 160


@pytest.fixture(scope="module")
def toy() -> dict:
    cgs, acc = toy_family(240, seed=0)
    gflops = flops_of(cgs)
    enc = ContrastiveEncoder(branch_dim=32, epochs=6, batch_size=64, progress=False).fit(cgs[:N_TRAIN])
    return {"cgs": cgs, "acc": acc, "gflops": gflops, "emb": enc.transform(cgs),
            "flops_srcc": spearman(acc[N_TRAIN:], gflops[N_TRAIN:])}


def _check(toy: dict, scores: np.ndarray) -> float:
    srcc = spearman(toy["acc"][N_TRAIN:], scores)
    assert srcc > 0.6
    assert srcc > toy["flops_srcc"] + 0.1  # better than ranking by FLOPs alone
    return srcc


@pytest.mark.parametrize("kind", ["kgnn", "gcn", "gin"])
def test_gnn_baselines_learn(toy: dict, kind: str) -> None:
    cgs, acc = toy["cgs"], toy["acc"]
    model = GNNPredictor(kind, epochs=25, batch_size=32, lr=3e-3, progress=False).fit(cgs[:N_TRAIN], acc[:N_TRAIN])
    pred = model.predict(cgs[N_TRAIN:])
    _check(toy, pred)
    assert np.abs(pred - acc[N_TRAIN:]).mean() < 0.5 * np.abs(acc[N_TRAIN:] - acc[:N_TRAIN].mean()).mean()


def test_gnn_hinge_loss_option_learns_ranking(toy: dict) -> None:
    cgs, acc = toy["cgs"], toy["acc"]
    model = GNNPredictor("kgnn", epochs=25, batch_size=32, lr=3e-3, loss="hinge", progress=False)
    model.fit(cgs[:N_TRAIN], acc[:N_TRAIN])
    _check(toy, model.decision_function(cgs[N_TRAIN:]))
    with pytest.raises(ValueError, match="unknown loss"):
        GNNPredictor("kgnn", epochs=1, loss="l1", progress=False).fit(cgs[:8], acc[:8])


@pytest.mark.parametrize("kind", ["kgnn", "gcn", "gin"])
@pytest.mark.parametrize("directed", [False, True])
def test_sparse_inference_path_equals_message_passing(toy: dict, kind: str, directed: bool) -> None:
    import torch

    from cgpredict.models.gnn import GNNEncoder
    from cgpredict.models.graph_data import collate

    batch = collate(toy["cgs"][:12])
    enc = GNNEncoder(kind, 3, 16, directed=directed).eval()
    with_grad = enc(batch)  # gather/scatter message passing
    with torch.no_grad():
        sparse = enc(batch)  # CSR adjacency
    torch.testing.assert_close(sparse, with_grad.detach(), atol=1e-5, rtol=1e-5)


def test_unknown_gnn_kind() -> None:
    with pytest.raises(ValueError, match="unknown GNN kind 'gat'"):
        GNNPredictor("gat")


@pytest.mark.parametrize("clusters", [0, 4])
def test_embedding_regressors_learn(toy: dict, clusters: int) -> None:
    e, g, a = toy["emb"], toy["gflops"], toy["acc"]
    reg = EmbeddingRegressor(e.shape[1], n_clusters=clusters, m=2.0, hidden=64, epochs=60, progress=False)
    reg.fit(e[:N_TRAIN], g[:N_TRAIN], a[:N_TRAIN])
    _check(toy, reg.predict(e[N_TRAIN:], g[N_TRAIN:]))
    u = reg.memberships(e[N_TRAIN:], g[N_TRAIN:])
    assert u.shape == (240 - N_TRAIN, max(1, clusters))
    np.testing.assert_allclose(u.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("clusters", [0, 3])
def test_pairwise_rankers_learn_and_mergesort_is_consistent(toy: dict, clusters: int) -> None:
    e, g, a = toy["emb"], toy["gflops"], toy["acc"]
    ranker = PairwiseRanker(e.shape[1], n_clusters=clusters, hidden=64, epochs=15, progress=False)
    ranker.fit(e[:N_TRAIN], g[:N_TRAIN], a[:N_TRAIN])
    te, tg = e[N_TRAIN:], g[N_TRAIN:]
    _check(toy, ranker.decision_function(te, tg))
    # antisymmetric classifier: P(i>j) + P(j>i) = 1
    i, j = np.arange(0, 40), np.arange(40, 80)
    p_ij = ranker.prob_better(te[i], tg[i], te[j], tg[j])
    p_ji = ranker.prob_better(te[j], tg[j], te[i], tg[i])
    np.testing.assert_allclose(p_ij + p_ji, 1.0, atol=1e-6)
    # the fast comparator agrees with the module
    cmp = ranker.comparator(te, tg)
    assert [cmp(a_, b_) for a_, b_ in zip(i, j)] == [-1 if p > 0.5 else 1 for p in p_ij]
    # merge-sort order: a permutation, and adjacent pairs are (almost always) in comparator order
    order = ranker.rank(te, tg)
    assert sorted(order.tolist()) == list(range(len(te)))
    agree = np.mean([cmp(int(x), int(y)) <= 0 for x, y in zip(order[:-1], order[1:])])
    assert agree > 0.9
    assert kendall_tau(a[N_TRAIN:], ranker.decision_function(te, tg)) > 0.45


def test_grid_search_picks_a_grid_point(toy: dict) -> None:
    e, g, a = toy["emb"], toy["gflops"], toy["acc"]
    c, m, scores = grid_search_fcm(e[:N_TRAIN], g[:N_TRAIN], a[:N_TRAIN], clusters=(2, 4), ms=(2.0, 3.0),
                                   epochs=10, hidden=32, progress=False)
    assert (c, m) in {(2, 2.0), (2, 3.0), (4, 2.0), (4, 3.0)}
    assert len(scores) == 4 and scores[f"C={c},m={m:g}"] == max(scores.values())

"""Spectra of CGs, the sign of the spectral weights and the contrastive encoder."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from cgpredict.models.contrastive import ContrastiveEncoder, spectral_contrastive_loss
from cgpredict.models.spectral import laplacian_spectrum, spectra, spectral_weights, spectrum
from cgpredict.models.synthetic import toy_family


def test_spectrum_matches_networkx_normalized_laplacian() -> None:
    cgs, _ = toy_family(3, seed=4)
    cg = cgs[0]
    graph = cg.to_networkx().to_undirected()
    dense = nx.normalized_laplacian_matrix(graph, nodelist=range(cg.num_nodes)).toarray()
    expected = np.sort(np.linalg.eigvalsh(dense))[:21]
    got = spectrum(cg)
    k = min(21, cg.num_nodes)
    np.testing.assert_allclose(got[:k], expected[:k], atol=1e-8)
    assert got[0] == pytest.approx(0.0, abs=1e-8)  # connected graph: one zero eigenvalue
    assert got.shape == (21,)


def test_spectrum_zero_padded_for_small_graphs_and_cached() -> None:
    vals = laplacian_spectrum(3, [(0, 1), (1, 2)], q=21)  # path of 3 nodes: 0, 1, 2
    np.testing.assert_allclose(vals[:3], [0.0, 1.0, 2.0], atol=1e-10)
    assert np.all(vals[3:] == 0)
    cgs, _ = toy_family(2, seed=1)
    first = spectrum(cgs[0])
    first[:] = -1  # returned copies must not corrupt the cache
    assert spectrum(cgs[0])[0] == pytest.approx(0.0, abs=1e-8)
    assert spectra(cgs).shape == (2, 21)


def test_nearer_spectra_get_larger_weight() -> None:
    spec = torch.tensor([[0.0, 0.5, 1.0], [0.0, 0.6, 1.0], [0.0, 1.5, 2.0], [0.0, 1.0, 1.0]])
    alpha = spectral_weights(spec)
    torch.testing.assert_close(alpha.sum(1), torch.ones(4))
    assert torch.all(alpha.diagonal() == 0)
    # CG 1 is nearest to CG 0, CG 2 farthest
    assert alpha[0, 1] > alpha[0, 3] > alpha[0, 2]
    dist = torch.cdist(spec, spec)
    expected = torch.softmax(-dist[0, 1:], 0)
    torch.testing.assert_close(alpha[0, 1:], expected)


def test_loss_pulls_spectrally_near_cgs_together() -> None:
    def unit(v: list[float]) -> torch.Tensor:
        t = torch.tensor(v)
        return t / t.norm()

    # CG 0 is spectrally near CG 1 and far from CG 2
    alpha = torch.tensor([[0.0, 0.9, 0.1], [0.5, 0.0, 0.5], [0.1, 0.9, 0.0]])
    near = torch.stack([unit([1, 0.2, 0]), unit([1, -0.2, 0]), unit([-1, 0, 0.3])])  # z0 close to z1
    far = torch.stack([unit([-1, 0.2, 0.3]), unit([1, -0.2, 0]), unit([-1, 0, 0.3])])  # z0 close to z2
    loss_near = spectral_contrastive_loss(near, near.clone(), alpha, temperature=0.5)
    loss_far = spectral_contrastive_loss(far, far.clone(), alpha, temperature=0.5)
    assert loss_near < loss_far
    # without the spectral term, only the positive pairs count: identical views, same loss scale
    plain = spectral_contrastive_loss(near, near.clone(), alpha, temperature=0.5, spectral_weight=0.0)
    assert plain < loss_near


def test_contrastive_encoder_trains_and_is_deterministic() -> None:
    cgs, _ = toy_family(48, seed=2)
    kw = dict(branch_dim=16, epochs=4, batch_size=16, progress=False, seed=3)
    enc = ContrastiveEncoder(**kw).fit(cgs)
    emb = enc.transform(cgs)
    assert emb.shape == (48, 32) and np.all(np.isfinite(emb))
    assert enc.history_[-1] < enc.history_[0]
    np.testing.assert_allclose(enc.transform(cgs[:5]), emb[:5], atol=1e-5)  # eval mode: no dropout
    again = ContrastiveEncoder(**kw).fit(cgs).transform(cgs)
    np.testing.assert_allclose(again, emb, atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 CGs"):
        ContrastiveEncoder(**kw).fit(cgs[:1])


def test_node_transformer_layer_equals_torch_transformer_encoder_layer() -> None:
    from torch import nn

    from cgpredict.models.contrastive import NodeTransformerLayer

    torch.manual_seed(0)
    b, n, d = 6, 15, 32
    pad = torch.arange(n)[None] >= torch.randint(3, n + 1, (b,))[:, None]
    x = torch.randn(b, n, d)
    mine = NodeTransformerLayer(d, 2, 0.1).eval()
    ref = nn.TransformerEncoderLayer(d, 2, 2 * d, 0.1, batch_first=True).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(mine.qkv.weight)
        ref.self_attn.in_proj_bias.copy_(mine.qkv.bias)
        ref.self_attn.out_proj.load_state_dict(mine.out.state_dict())
        ref.linear1.load_state_dict(mine.ff[0].state_dict())
        ref.linear2.load_state_dict(mine.ff[3].state_dict())
        ref.norm1.load_state_dict(mine.norm1.state_dict())
        ref.norm2.load_state_dict(mine.norm2.state_dict())
        torch.testing.assert_close(mine(x, pad)[~pad], ref(x, src_key_padding_mask=pad)[~pad], atol=1e-5, rtol=1e-5)


def test_sparse_eigensolver_path_matches_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    from cgpredict.models import spectral

    rng = np.random.default_rng(0)
    edges = [(i, int(rng.integers(0, i))) for i in range(1, 120)] + [(i, i + 5) for i in range(0, 110, 7)]
    dense = spectral.laplacian_spectrum(120, edges)
    monkeypatch.setattr(spectral, "DENSE_LIMIT", 50)
    np.testing.assert_allclose(spectral.laplacian_spectrum(120, edges), dense, atol=1e-9)

"""The training-free proxy bank: closed-form definitions, invariances, node alignment, NaN path, cache, CLI."""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cgpredict.converters import from_torch
from cgpredict.proxies import bank as bank_mod
from cgpredict.proxies.bank import DEFAULT_METHODS, PROXIES, BankConfig, bank_scores, bank_scores_many
from cgpredict.proxies.zc_activation import meco, naswot, naswot_kernel
from cgpredict.proxies.zc_aznas import aggregate, expressivity, find_blocks, progressivity, trainability
from cgpredict.proxies.zc_gradient import jacov_from_jacobian, zico
from cgpredict.proxies.zc_pass import PassData, _labels, build_net, pass_loss
from cgpredict.proxies.zc_synflow import synflow_pass

SMALL = BankConfig(batch_size=8)


def _cnn_cg():  # noqa: ANN202
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))
    return from_torch(net, input_shape=(1, 3, 8, 8), name="tiny_cnn")


def _linear_cg(bias: bool = False):  # noqa: ANN202
    return from_torch(nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=bias)), input_shape=(1, 3, 2, 2), name="linear")


@pytest.fixture(scope="module")
def cnn():  # noqa: ANN201
    return _cnn_cg()


# ------------------------------------------------------------------ closed forms
def test_synflow_of_a_linear_chain_is_twice_the_path_sum() -> None:
    """Σ_θ θ ∂R/∂θ = R per layer of a bias-free linear chain (Euler), so the score is ln(2R)."""
    cg = from_torch(nn.Sequential(nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False)), input_shape=(1, 4))
    score, node = synflow_pass(cg, seed=3)
    net = build_net(cg, 3, torch.float64)
    w1, w2 = (m.weight.detach().abs() for m in net.modules() if isinstance(m, nn.Linear))
    path_sum = float((w2 @ w1 @ torch.ones(4, dtype=torch.float64)).sum())
    assert score == pytest.approx(math.log(2 * path_sum), rel=1e-9)
    linear_ids = [n.id for n in cg.nodes if n.op == "linear"]
    assert [float(node[i]) for i in linear_ids] == pytest.approx([math.log1p(path_sum)] * 2, rel=1e-5)
    assert np.isnan(np.delete(node, linear_ids)).all()


def test_bank_synflow_equals_the_zero_cost_member_synflow(cnn) -> None:
    from cgpredict.proxies.zero_cost import synflow

    assert synflow_pass(cnn, seed=2)[0] == pytest.approx(synflow(cnn, seed=2), rel=1e-12)


@pytest.mark.parametrize("squash", [nn.Tanh(), nn.Sigmoid(), nn.Softmax(dim=1)])
def test_synflow_reads_r_before_a_final_squashing_op(squash: nn.Module) -> None:
    """A saturated tanh/sigmoid or a softmax would make ∂R/∂θ zero for every network: R is read before it."""
    body = nn.Sequential(nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False))
    plain = from_torch(body, input_shape=(1, 4))
    squashed = from_torch(nn.Sequential(*body, squash), input_shape=(1, 4))
    from cgpredict.proxies.zc_synflow import synflow_ends
    from cgpredict.proxies.zero_cost import synflow

    assert synflow_ends(squashed) == [n.id for n in squashed.nodes if n.op == "linear"][-1:]
    assert synflow_pass(squashed, seed=3)[0] == pytest.approx(synflow_pass(plain, seed=3)[0], rel=1e-12)
    assert math.isfinite(synflow_pass(squashed, seed=3)[0])
    assert synflow(squashed, seed=3) == pytest.approx(synflow_pass(squashed, seed=3)[0], rel=1e-12)


def _as_revision_1(root, failures=None) -> None:  # noqa: ANN001
    """Rewrite every bank entry under ``root`` as revision 1 wrote it (no ``revisions``), with
    ``failures[path]``'s proxies NaN and their reasons."""
    for path in root.rglob("*.npz"):
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: np.asarray(data[k]) for k in data.files if k.startswith("node__")}
        meta.pop("revisions", None)
        for name, reason in (failures or {}).get(path, {}).items():
            meta["scores"][name], meta["errors"][name] = None, reason
        meta_text = json.dumps(meta, sort_keys=True)
        np.savez(path, meta=np.array(meta_text), checksum=np.array(bank_mod._checksum(meta_text, arrays)), **arrays)


def _record_computed_groups(monkeypatch) -> list:  # noqa: ANN001
    """A list that collects ``(cg name, group)`` for every group the bank computes from now on."""
    computed: list = []
    real = bank_mod._compute_group
    monkeypatch.setattr(bank_mod, "_compute_group", lambda cg, group, *a: (computed.append((cg.name, group)),
                                                                          real(cg, group, *a))[1])
    return computed


def test_synflow_revision_recomputes_only_the_networks_it_changes(cnn, tmp_path, monkeypatch) -> None:
    """Entries written before synflow revision 2 stay valid where R did not move (no squashing output);
    a tanh-output network's old synflow (−inf) is recomputed, the rest of its entry kept."""
    tanh_cg = from_torch(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1), nn.Tanh()),
                         input_shape=(1, 3, 8, 8), name="tanh_out")
    for cg in (cnn, tanh_cg):
        bank_scores(cg, ["synflow", "naswot"], SMALL, cache_dir=tmp_path)
    _as_revision_1(tmp_path)
    computed = _record_computed_groups(monkeypatch)
    again = [bank_scores(cg, ["synflow", "naswot"], SMALL, cache_dir=tmp_path) for cg in (cnn, tanh_cg)]
    assert computed == [("tanh_out", "synflow")]
    assert again[0].cached and not again[1].cached and math.isfinite(again[1].scores["synflow"])
    assert "synflow" not in again[1].errors and math.isfinite(again[1].scores["naswot"])
    computed.clear()
    bank_scores(tanh_cg, ["synflow", "naswot"], SMALL, cache_dir=tmp_path)
    assert computed == []  # rewritten at the current revision


def _signal_cg():  # noqa: ANN202
    """A 1-D convolutional net over ``(N, C, L)`` signals (speech-style features)."""
    net = nn.Sequential(nn.Conv1d(6, 8, 3, padding=1), nn.BatchNorm1d(8), nn.ReLU(), nn.Conv1d(8, 8, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 5))
    return from_torch(net, input_shape=(1, 6, 16), name="signal_net")


def test_a_non_image_network_runs_on_noise_of_its_input_shape() -> None:
    """A 1-D conv net and an MLP are scored (seeded noise inputs), finite and seeded; the MLP has no
    channel-first feature map, so MeCo and the AZ-NAS block scores are NaN with the reason."""
    signal = _signal_cg()
    mlp = from_torch(nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5)), input_shape=(1, 12), name="mlp")
    for cg in (signal, mlp):
        first, second = (bank_scores(cg, DEFAULT_METHODS, SMALL, cache=False) for _ in range(2))
        defined = ["synflow", "naswot", "snip", "grad_norm", "fisher", "jacov", "zico", "complexity"]
        map_scores = ["meco", "expressivity", "progressivity", "trainability"]  # need channel-first maps
        for m in defined + (map_scores if cg is signal else []):
            assert math.isfinite(first.scores[m]) and m not in first.errors, (cg.name, m, first.errors.get(m))
            assert first.scores[m] == second.scores[m]
        if cg is mlp:
            for m in map_scores:
                assert math.isnan(first.scores[m]) and first.errors[m].startswith("undefined:"), m
    other_seed = bank_scores(signal, ["snip"], BankConfig(batch_size=8, seed=1), cache=False)
    assert other_seed.scores["snip"] != bank_scores(signal, ["snip"], SMALL, cache=False).scores["snip"]


def test_aznas_blocks_are_the_networks_own_blocks() -> None:
    """Every stage of a ResNet (not only the first), the cells of a NATS net (not one cell's edges), one
    of two parallel paths; data-pass revision 5 recomputes exactly the entries whose blocks moved."""
    import torchvision

    from cgpredict.datasets import load_family

    def names(cg) -> list[str]:  # noqa: ANN001
        return [cg.nodes[i].name for i in find_blocks(cg)]

    r18 = from_torch(torchvision.models.resnet18(num_classes=10), input_shape=(1, 3, 32, 32))
    assert names(r18) == ["maxpool"] + [f"layer{s}.{b}.relu" for s in (1, 2, 3, 4) for b in (0, 1)]
    nats = load_family("nats_sss", n=1, seed=0).cgs(progress=False)[0]
    assert names(nats)[1:] == [f"cells.{k}" for k in range(len(names(nats)) - 1)]
    nb201 = load_family("nasbench201", n=1, seed=0).cgs(progress=False)[0]
    assert bank_mod._data_revisions(nats) and bank_mod._data_revisions(r18) and not bank_mod._data_revisions(nb201)
    assert not bank_mod._data_revisions(nats, 5)  # written under revision 5: nothing newer concerns it

    class TwoPaths(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            def block() -> nn.Module:  # noqa: ANN202
                return nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.a = nn.Sequential(block(), block())
            self.b = nn.Sequential(block(), block(), block())
            self.head = nn.Linear(4, 2)

        def forward(self, x):  # noqa: ANN001, ANN202
            x = self.stem(x)
            return self.head((self.a(x) + self.b(x)).mean((2, 3)))

    paths = from_torch(TwoPaths(), input_shape=(1, 3, 8, 8))
    assert names(paths) == ["stem", "b.0.1", "b.1.1", "b.2.1"]


@pytest.mark.parametrize("act", [nn.ReLU6(), nn.SiLU(), nn.GELU(), nn.Hardswish(), nn.LeakyReLU(0.1)],
                         ids=lambda a: type(a).__name__)
def test_naswot_reads_every_rectifier_like_relu(act: nn.Module) -> None:
    """One activation after the same seeded conv: its on/off codes, and so NASWOT, equal ReLU's."""
    def cg_with(a: nn.Module):  # noqa: ANN202
        return from_torch(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), a, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                        nn.Linear(4, 5)), input_shape=(1, 3, 8, 8), name="one_act")
    ours, relu = (bank_scores(cg_with(a), ["naswot"], SMALL, cache=False) for a in (act, nn.ReLU()))
    assert math.isfinite(ours.scores["naswot"]) and "naswot" not in ours.errors
    assert ours.scores["naswot"] == pytest.approx(relu.scores["naswot"], abs=1e-9)


def test_a_1d_conv_net_scores_as_the_same_net_on_a_1xL_image() -> None:
    """MeCo and the AZ-NAS block scores of a Conv1d net over (C, L) equal those of the Conv2d net with
    (1, k) kernels over (C, 1, L) with the same weights and inputs."""
    from cgpredict.proxies.zc_pass import PassNeeds, feature_map_rank, run_pass

    def net(dims: int) -> nn.Module:
        conv = (lambda a, b: nn.Conv1d(a, b, 3, padding=1)) if dims == 1 else (lambda a, b: nn.Conv2d(a, b, (1, 3), padding=(0, 1)))
        bn = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        pool = nn.AdaptiveAvgPool1d(1) if dims == 1 else nn.AdaptiveAvgPool2d(1)
        return nn.Sequential(nn.Sequential(conv(6, 8), bn(8), nn.ReLU()), nn.Sequential(conv(8, 8), bn(8), nn.ReLU()),
                             nn.Sequential(conv(8, 8), bn(8), nn.ReLU()), pool, nn.Flatten(), nn.Linear(8, 5))
    one = from_torch(net(1), input_shape=(1, 6, 16), name="one_d")
    two = from_torch(net(2), input_shape=(1, 6, 1, 16), name="two_d")
    assert feature_map_rank(one) == 3 and feature_map_rank(two) == 4
    blocks = find_blocks(one)
    assert blocks == find_blocks(two) and len(blocks) == 4
    x = torch.randn(8, 6, 16, generator=torch.Generator().manual_seed(0))
    # the last block is the global pool: (1, 16) → (1, 1) has no 2-D stride, so a 1×L image has no
    # Jacobian term there while the 1-D net (like a real H×W image net) has one; compare the others
    data = [run_pass(cg, build_net(cg, 0), images, 0, PassNeeds(), blocks[:-1])
            for cg, images in ((one, x), (two, x[:, :, None, :]))]
    for fn in (meco, expressivity, progressivity, trainability):
        a, b = (fn(d, cg.num_nodes)[0] for d, cg in zip(data, (one, two)))
        assert math.isfinite(a) and a == pytest.approx(b, rel=1e-5, abs=1e-6), fn.__name__


class _TokenBlock(nn.Module):
    """A residual token MLP, as a Linear over (N, T, D) tokens or as a 1×1 Conv1d over (N, D, T) maps."""

    def __init__(self, d: int, tokens: bool) -> None:
        super().__init__()
        layer = (lambda a, b: nn.Linear(a, b)) if tokens else (lambda a, b: nn.Conv1d(a, b, 1))
        self.up, self.act, self.down = layer(d, 2 * d), nn.GELU(), layer(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.act(self.up(x)))


class _TokenNet(nn.Module):
    def __init__(self, tokens: bool) -> None:
        super().__init__()
        self.tokens = tokens
        self.blocks = nn.Sequential(*[_TokenBlock(6, tokens) for _ in range(3)])
        self.head = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x).mean(1 if self.tokens else 2))


def test_a_token_net_scores_as_the_same_net_on_channel_first_maps() -> None:
    """MeCo and AZ-NAS expressivity of a transformer-style net over (N, T, D) tokens equal those of the
    same net as 1×1 Conv1d layers over (N, D, T) maps, same weights and inputs: a token map is read as D
    channels over T positions. Before, a token net had no maps: both were NaN."""
    from cgpredict.proxies.zc_pass import PassNeeds, feature_map_layout, run_pass

    tok, conv = _TokenNet(True), _TokenNet(False)
    with torch.no_grad():
        for a, b in zip(tok.modules(), conv.modules()):
            if isinstance(a, nn.Linear) and isinstance(b, nn.Conv1d):
                b.weight.copy_(a.weight[:, :, None])
                b.bias.copy_(a.bias)
        conv.head.load_state_dict(tok.head.state_dict())
    one = from_torch(tok, input_shape=(1, 10, 6), name="tokens")
    two = from_torch(conv, input_shape=(1, 6, 10), name="maps")
    assert feature_map_layout(one) == (3, True) and feature_map_layout(two) == (3, False)
    blocks = find_blocks(one)
    assert [one.nodes[i].name for i in blocks] == [f"blocks.{k}" for k in range(3)] and blocks == find_blocks(two)
    x = torch.randn(8, 10, 6, generator=torch.Generator().manual_seed(0))
    nets = [build_net(cg, 0) for cg in (one, two)]
    nets[0].load_state_dict({k: v for k, v in zip(nets[0].state_dict(), tok.state_dict().values())})
    nets[1].load_state_dict({k: v for k, v in zip(nets[1].state_dict(), conv.state_dict().values())})
    data = [run_pass(cg, net, images, 0, PassNeeds(), blocks)
            for cg, net, images in ((one, nets[0], x), (two, nets[1], x.transpose(1, 2).contiguous()))]
    for fn in (meco, expressivity):
        a, b = (fn(d, cg.num_nodes)[0] for d, cg in zip(data, (one, two)))
        assert math.isfinite(a) and a == pytest.approx(b, rel=1e-4, abs=1e-6), fn.__name__
    assert math.isfinite(trainability(data[0], one.num_nodes)[0])  # its Rademacher draws follow the layout
    # an entry written before data revision 6 is recomputed for a token net only (not, e.g., for NATS)
    assert bank_mod._data_revisions(one, 5) and not bank_mod._data_revisions(two, 5)
    # torchvision names a transformer's blocks `encoder_layer_<k>`: in a token net those are numbered too
    named = _TokenNet(True)
    named.blocks = nn.Sequential()
    for k in range(3):
        named.blocks.add_module(f"encoder_layer_{k}", _TokenBlock(6, True))
    cg = from_torch(named, input_shape=(1, 10, 6), name="named")
    assert [cg.nodes[i].name for i in find_blocks(cg)] == [f"blocks.encoder_layer_{k}" for k in range(3)]


def test_an_undefined_proxy_names_why() -> None:
    tanh = from_torch(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(),
                                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)),
                      input_shape=(1, 3, 8, 8), name="tanh_net")
    r = bank_scores(tanh, DEFAULT_METHODS, SMALL, cache=False)
    assert math.isnan(r.scores["naswot"]) and r.errors["naswot"].startswith("undefined: the network has no rectifier")
    assert math.isfinite(r.scores["meco"]) and math.isfinite(r.scores["snip"])


def test_data_revision_recomputes_entries_of_non_image_networks_only(cnn, tmp_path, monkeypatch) -> None:
    """A non-image network's entry from before data revision 2 (when it could not run) is recomputed;
    an image network's entry stays valid."""
    signal = _signal_cg()
    for cg in (cnn, signal):
        bank_scores(cg, ["naswot"], SMALL, cache_dir=tmp_path)
    failed = bank_mod._cache_path(signal, SMALL, tmp_path)
    _as_revision_1(tmp_path, {failed: {"naswot": "ValueError: needs one image input"}})  # its old failure
    computed = _record_computed_groups(monkeypatch)
    again = [bank_scores(cg, ["naswot"], SMALL, cache_dir=tmp_path) for cg in (cnn, signal)]
    assert computed == [("signal_net", "data")]
    relu6 = from_torch(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU6()), input_shape=(1, 3, 8, 8))
    assert bank_mod._data_revisions(relu6) and not bank_mod._data_revisions(cnn)  # NASWOT reads ReLU6 since 3
    assert again[0].cached and math.isfinite(again[1].scores["naswot"]) and "naswot" not in again[1].errors


def test_naswot_kernel_counts_agreements() -> None:
    codes = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    expected = torch.tensor([[2.0, 1.0, 1.0], [1.0, 2.0, 0.0], [1.0, 0.0, 2.0]], dtype=torch.float64)
    assert torch.equal(naswot_kernel(codes), expected)
    data = PassData(batch=3, codes={1: codes, 4: codes})
    score, node = naswot(data, 6)
    assert score == pytest.approx(math.log(torch.linalg.det(2 * expected).item()))
    assert node[1] == pytest.approx(math.log(torch.linalg.det(expected).item()))
    assert np.isnan(node[[0, 2, 3, 5]]).all()


def test_naswot_on_a_network_matches_its_relu_codes(cnn) -> None:
    result = bank_scores(cnn, ["naswot"], SMALL, cache=False)
    net = build_net(cnn, SMALL.seed).train()
    images = bank_mod._images(cnn, SMALL)
    relu = [n.id for n in cnn.nodes if n.op == "relu"]
    kernel = torch.zeros(8, 8, dtype=torch.float64)
    with torch.no_grad():
        for nid in relu:  # BN sees each half-batch separately, as in the shared pass
            codes = torch.cat([(net.forward_nodes(images[h * 4:(h + 1) * 4], keep=[nid])[nid] > 0).reshape(4, -1).float()
                               for h in range(2)])
            agree = codes @ codes.t() + (1 - codes) @ (1 - codes).t()
            kernel += agree.double()
    assert result.scores["naswot"] == pytest.approx(torch.linalg.slogdet(kernel)[1].item(), rel=1e-6)


def test_gradient_proxies_of_a_linear_model_in_closed_form() -> None:
    """grad-norm, SNIP, Fisher and Jacobian covariance of logits = W x, by hand."""
    cg = _linear_cg()
    config = BankConfig(batch_size=6, inputs="noise")
    result = bank_scores(cg, ["grad_norm", "snip", "fisher", "jacov"], config, cache=False)
    w = next(m for m in build_net(cg, config.seed).modules() if isinstance(m, nn.Linear)).weight.detach().double()
    x = bank_mod._images(cg, config).reshape(6, -1).double()
    grad, fisher = torch.zeros_like(w), 0.0
    for h in range(2):
        xs = x[h * 3:(h + 1) * 3]
        logits = xs @ w.t()
        target = _labels(logits, config.seed, h)
        dlogits = (torch.softmax(logits, 1) - F.one_hot(target, 5).double()) / 3  # mean-reduced cross-entropy
        grad += dlogits.t() @ xs
        fisher += 12 * float(0.5 * (logits * dlogits).pow(2).mean(0).sum())  # fan-in 12 weights per output
    assert result.scores["grad_norm"] == pytest.approx(float(grad.norm()), rel=1e-5)
    assert result.scores["snip"] == pytest.approx(float((w * grad).abs().sum()), rel=1e-5)
    assert result.scores["fisher"] == pytest.approx(fisher, rel=1e-4)
    # ∂(Σ logits)/∂x = Σ_k W_k for every sample: a correlation matrix of ones, eigenvalues (n, 0, …, 0)
    lam = torch.tensor([3.0, 0.0, 0.0], dtype=torch.float64)
    expected = float(-(torch.log(lam + 1e-5) + 1 / (lam + 1e-5)).sum())
    assert result.scores["jacov"] == pytest.approx(expected, rel=1e-4)
    assert jacov_from_jacobian(torch.ones(3, 5)) != jacov_from_jacobian(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_regression_losses_give_the_closed_form_gradients(loss: str) -> None:
    """grad-norm and SNIP of logits = W x under mean-reduced MSE / L1 against seeded normal targets."""
    cg = _linear_cg()
    config = BankConfig(batch_size=6, inputs="noise", loss=loss)
    result = bank_scores(cg, ["grad_norm", "snip"], config, cache=False)
    w = next(m for m in build_net(cg, config.seed).modules() if isinstance(m, nn.Linear)).weight.detach().double()
    x = bank_mod._images(cg, config).reshape(6, -1).double()
    grad = torch.zeros_like(w)
    for h in range(2):
        xs = x[h * 3:(h + 1) * 3]
        logits = xs @ w.t()
        target = torch.randn((3, 5), generator=torch.Generator().manual_seed(config.seed * 1000 + 17 + h)).double()
        diff = logits - target
        dlogits = 2 * diff / diff.numel() if loss == "mse" else torch.sign(diff) / diff.numel()
        grad += dlogits.t() @ xs
    assert result.scores["grad_norm"] == pytest.approx(float(grad.norm()), rel=1e-5)
    assert result.scores["snip"] == pytest.approx(float((w * grad).abs().sum()), rel=1e-5)
    ce = bank_scores(cg, ["grad_norm"], BankConfig(batch_size=6, inputs="noise"), cache=False)
    assert ce.scores["grad_norm"] != result.scores["grad_norm"]


def test_loss_option_keys_the_cache_and_is_checked() -> None:
    from cgpredict.commands.proxy import BANK_LOSSES
    from cgpredict.proxies.zc_pass import LOSSES

    assert BANK_LOSSES == LOSSES  # the CLI offers every loss
    assert "loss" not in BankConfig().key()  # cross-entropy cache keys are the same as before the option
    assert BankConfig(loss="mse").key() != BankConfig().key() != BankConfig(loss="l1").key()
    with pytest.raises(ValueError, match="loss must be one of"):
        BankConfig(loss="hinge")
    dense = torch.randn(4, 3, 5, 5)
    assert pass_loss(dense, 0, 0).shape == ()  # cross-entropy per position of a dense output
    assert _labels(dense, 0, 0).shape == (4, 5, 5)


def test_a_network_of_image_tiles_gets_a_batch_of_tiles() -> None:
    """A jigsaw-style input (N, tiles, C, H, W): the bank feeds batch × tiles images in that shape."""

    class Tiles(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(8, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            feats = [F.relu(self.conv(x[:, i])).mean((2, 3)) for i in range(2)]
            return self.fc(torch.cat(feats, 1))

    cg = from_torch(Tiles(), input_shape=(1, 2, 3, 8, 8), name="tiles")
    images = bank_mod._images(cg, SMALL)
    assert images.shape == (8, 2, 3, 8, 8)
    flat = bank_mod._batch(3, (8, 8), 16, SMALL.seed, SMALL.inputs)
    assert torch.equal(images.reshape(16, 3, 8, 8), flat)
    asked = ["naswot", "meco", "grad_norm", "snip", "fisher", "zico", "synflow"]
    result = bank_scores(cg, asked, SMALL, cache=False)
    assert all(m not in result.errors and math.isfinite(result.scores[m]) for m in asked)


def test_meco_of_a_map_with_no_more_positions_than_channels_is_exactly_zero() -> None:
    """N <= C positions: the centred map has rank < C, so λ_min of the C×C correlation is 0 (the
    eigen-decomposition it skips returns rounding noise); N > C still goes through it."""
    from cgpredict.proxies.zc_activation import _min_eig_corr

    gen = torch.Generator().manual_seed(0)
    wide = torch.randn(2, 12, 12, generator=gen)  # C = 12 channels, N = 12 positions
    assert _min_eig_corr(wide).tolist() == [0.0, 0.0]
    x = wide.double() - wide.double().mean(-1, keepdim=True)
    x = x / x.norm(dim=-1, keepdim=True)
    assert torch.linalg.eigvalsh(x @ x.transpose(-1, -2))[..., 0].abs().max() < 1e-12
    tall = torch.randn(12, 40, generator=gen)
    y = tall.double() - tall.double().mean(-1, keepdim=True)
    y = y / y.norm(dim=-1, keepdim=True)
    expected = float(torch.linalg.eigvalsh(y @ y.t())[0])
    assert expected > 0.01 and float(_min_eig_corr(tall[None])[0]) == pytest.approx(expected, rel=1e-12)


def test_zico_meco_and_aznas_definitions() -> None:
    grads = [{2: torch.tensor([1.0, 3.0, 5.0])}, {2: torch.tensor([3.0, 1.0, 5.0])}]
    data = PassData(batch=4, weight_grads=grads)
    score, node = zico(data, 4)
    assert score == pytest.approx(math.log(4.0)) and node[2] == pytest.approx(math.log(4.0))  # (2/1 + 2/1), std-0 weight dropped
    t = torch.linspace(-1, 1, 16)
    data = PassData(batch=4, sample0={1: torch.stack([t, 2 * t + 1]), 2: torch.stack([t, t.flip(0) ** 2])})
    score, node = meco(data, 3)
    assert node[1] == pytest.approx(0.0, abs=1e-9)  # perfectly correlated channels
    r = float(torch.corrcoef(torch.stack([t, t.flip(0) ** 2]))[0, 1])
    assert node[2] == pytest.approx(1 - abs(r), abs=1e-6) and score == pytest.approx(node[1] + node[2], abs=1e-6)
    gen = torch.Generator().manual_seed(0)
    iso, _ = torch.linalg.qr(torch.randn(64, 8, generator=gen, dtype=torch.float64))
    iso = iso - iso.mean(0)
    iso_q, _ = torch.linalg.qr(iso)
    flat = torch.randn(64, 1, generator=gen, dtype=torch.float64).repeat(1, 8)  # rank 1: entropy 0
    data = PassData(batch=4, block_ids=[0, 1], block_feats={0: flat, 1: iso_q},
                    block_vjp=[(0, 1, 1.0)])
    e, e_node = expressivity(data, 2)
    p, _ = progressivity(data, 2)
    assert e_node[0] == pytest.approx(0.0, abs=1e-6)
    assert e_node[1] == pytest.approx(math.log(8), abs=1e-3)
    assert p == pytest.approx(e_node[1] - e_node[0], abs=1e-6)
    assert trainability(data, 2)[0] == pytest.approx(0.0)  # σ = 1 is the ideal
    data.block_vjp = [(0, 1, 2.0)]
    assert trainability(data, 2)[0] == pytest.approx(-0.5)
    data.block_vjp = [(0, 1, None)]
    assert trainability(data, 2)[0] == -math.inf  # an identity block
    agg = aggregate({"a": [1.0, 2.0, 3.0], "b": [3.0, 2.0, 1.0]}, names=("a", "b"))
    assert agg[1] > agg[0] and agg[0] == pytest.approx(agg[2])  # consistently middle beats best+worst


# ------------------------------------------------------------------ invariances, alignment
def test_seeded_runs_are_identical_and_the_seed_matters(cnn) -> None:
    a = bank_scores(cnn, DEFAULT_METHODS, SMALL, cache=False)
    b = bank_scores(cnn, DEFAULT_METHODS, SMALL, cache=False)
    assert a.scores == b.scores and not a.errors
    for name in a.node:
        np.testing.assert_array_equal(a.node[name], b.node[name])
    k = bank_scores(cnn, ["naswot"], BankConfig(batch_size=8, init="kaiming_fan_in"), cache=False)
    assert k.scores["naswot"] != a.scores["naswot"] and BankConfig(init="kaiming_fan_in").key() != SMALL.key()
    assert "init" not in BankConfig().key()  # default-init cache keys are the same as before the option
    c = bank_scores(cnn, DEFAULT_METHODS, BankConfig(batch_size=8, seed=1), cache=False)
    assert c.scores["naswot"] != a.scores["naswot"] and c.scores["synflow"] != a.scores["synflow"]
    assert c.scores["complexity"] == a.scores["complexity"]


def test_node_statistics_are_aligned_with_cg_nodes(cnn) -> None:
    r = bank_scores(cnn, DEFAULT_METHODS, SMALL, cache=False)
    n = cnn.num_nodes
    assert set(r.scores) >= set(DEFAULT_METHODS)
    assert all(v.shape == (n,) and v.dtype == np.float32 for v in r.node.values())
    ops = np.array([node.op for node in cnn.nodes])
    weighted = np.isin(ops, ["conv", "linear"])
    for name in ("synflow", "snip", "grad_norm", "fisher", "zico"):
        assert (~np.isnan(r.node[name]) == weighted).all(), name
    assert (~np.isnan(r.node["naswot"]) == (ops == "relu")).all()
    blocks = find_blocks(cnn)
    assert set(np.flatnonzero(~np.isnan(r.node["expressivity"]))) == set(blocks)
    assert np.isnan(r.node["grad_mean"][0]) and not np.isnan(r.node["grad_mean"][[1, 2, 3]]).any()


def test_every_registered_proxy_is_documented() -> None:
    for name, info in PROXIES.items():
        assert info.name == name and info.definition and info.paper and info.inputs
    assert set(DEFAULT_METHODS) == {n for n, p in PROXIES.items() if p.group not in ("gennas", "eproxy")}
    with pytest.raises(ValueError, match="unknown proxy"):
        bank_mod.parse_methods("synflow,nope")
    assert bank_mod.parse_methods("az,synflow") == ("expressivity", "progressivity", "trainability", "complexity", "synflow")


def test_readme_table_lists_every_proxy() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Training-free proxies"):text.index("### Regression proxies")]
    for name, info in PROXIES.items():
        assert f"| `{name}` | {info.definition.replace('|', chr(92) + '|')} |" in section, name


def test_resolution_option_runs_a_network_at_another_size(cnn) -> None:
    small = bank_scores(cnn, ["naswot", "synflow", "meco"], BankConfig(batch_size=8, resolution=16), cache=False)
    base = bank_scores(cnn, ["naswot", "synflow", "meco"], SMALL, cache=False)
    assert not small.errors and small.scores["naswot"] != base.scores["naswot"]


# ------------------------------------------------------------------ failures and cache
def test_a_network_that_cannot_run_gets_nan_with_the_reason(cnn, tmp_path) -> None:
    bad = copy.deepcopy(cnn)
    conv = next(n for n in bad.nodes if n.op == "conv")
    conv.op, conv.source_op = "unknown", "aten.mystery"
    results = bank_scores_many([bad, cnn], DEFAULT_METHODS, SMALL, cache_dir=tmp_path, progress=False)
    assert math.isnan(results[0].scores["synflow"]) and math.isnan(results[0].scores["meco"])
    assert "mystery" in results[0].errors["naswot"] and "mystery" in results[0].errors["synflow"]
    assert results[0].scores["complexity"] == bad.flops  # needs no pass
    assert not results[1].errors and all(math.isfinite(results[1].scores[m]) for m in DEFAULT_METHODS)
    row = results[0].row(["synflow", "naswot"])
    assert math.isnan(row["synflow"]) and "synflow: RebuildError" in row["error"]


def test_non_finite_score_becomes_nan(cnn, monkeypatch) -> None:
    monkeypatch.setitem(bank_mod._DATA_FNS, "meco", lambda data, n: (math.nan, np.full(n, np.nan, dtype=np.float32)))
    r = bank_scores(cnn, ["meco"], SMALL, cache=False)
    assert math.isnan(r.scores["meco"]) and "non-finite" in r.errors["meco"] and "naswot" not in r.errors


def test_cache_rerun_pays_nothing_and_adds_missing_groups(cnn, tmp_path, monkeypatch) -> None:
    first = bank_scores(cnn, ["naswot"], SMALL, cache_dir=tmp_path)
    assert not first.cached and "synflow" not in first.scores
    files = list(tmp_path.rglob("*.npz"))
    assert len(files) == 1

    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the data pass ran again")

    monkeypatch.setattr(bank_mod, "run_pass", boom)
    again = bank_scores(cnn, ["naswot", "meco"], SMALL, cache_dir=tmp_path)
    assert again.cached and again.scores["naswot"] == first.scores["naswot"]
    np.testing.assert_array_equal(again.node["naswot"], first.node["naswot"])
    both = bank_scores(cnn, ["naswot", "synflow"], SMALL, cache_dir=tmp_path)  # synflow added to the same entry
    assert not both.cached and math.isfinite(both.scores["synflow"]) and list(tmp_path.rglob("*.npz")) == files
    assert bank_scores(cnn, ["synflow", "naswot"], SMALL, cache_dir=tmp_path).cached
    files[0].write_bytes(b"truncated")  # a broken entry is recomputed, not trusted
    monkeypatch.undo()
    assert bank_scores(cnn, ["naswot"], SMALL, cache_dir=tmp_path).scores["naswot"] == first.scores["naswot"]


def test_regression_proxies_come_through_the_same_registry(cnn, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    config = BankConfig(batch_size=8, regression_iterations=2)
    r = bank_scores(cnn, ["eproxy"], config, cache_dir=tmp_path / "bank")
    assert not r.errors and math.isfinite(r.scores["eproxy"]) and r.scores["eproxy"] < 0  # score = -loss
    assert r.node["eproxy"].shape == (cnn.num_nodes,) and not np.isnan(r.node["eproxy"]).all()
    assert "naswot" not in r.scores  # only the asked group ran
    assert bank_scores(cnn, ["eproxy"], config, cache_dir=tmp_path / "bank").cached


def test_a_torch_module_is_scored_through_its_cg() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    r = bank_scores(net, ["naswot", "synflow"], SMALL, cache=False, input_size=8)
    assert not r.errors and r.node["naswot"].shape == (from_torch(net, input_shape=(1, 3, 8, 8)).num_nodes,)
    with pytest.raises(TypeError, match="Module or a CG"):
        bank_scores("resnet", ["naswot"])


# ------------------------------------------------------------------ CLI
def _cli(argv: list[str]) -> int:
    from cgpredict.commands import proxy as proxy_cmd

    parser = argparse.ArgumentParser(prog="cgpredict")
    proxy_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["proxy", *argv])
    return args.func(args)


def _sequential_file(path, cls: str, layers: str):  # noqa: ANN001, ANN202
    """Write a MODEL file defining ``cls`` as ``nn.Sequential(layers)``; returns its path."""
    path.write_text(f"from torch import nn\nclass {cls}(nn.Sequential):\n    def __init__(self):\n"
                    f"        super().__init__({layers})\n")
    return path


def test_cli_bank_csv_and_output_guard(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    source = _sequential_file(tmp_path / "nets.py", "Tiny", "nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), "
                              "nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)")
    out = tmp_path / "scores.csv"
    argv = [f"{source}:Tiny", f"{source}:Missing", "--method", "synflow,naswot,meco", "--input-size", "8",
            "--batch-size", "8", "-q", "-o", str(out)]
    assert _cli(argv) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["model", "synflow", "naswot", "meco", "seconds", "error"]
    assert rows[0]["error"] == "" and math.isfinite(float(rows[0]["naswot"]))
    assert math.isnan(float(rows[1]["synflow"])) and "Missing" in rows[1]["error"]
    assert _cli(argv) == 2  # refuses to overwrite
    assert _cli([*argv, "--force"]) == 0
    az = [f"{source}:Tiny", f"{source}:Tiny", "--method", "az", "--input-size", "8", "--batch-size", "8", "-q", "-o", str(out),
          "--force"]
    assert _cli(az) == 0
    rows = list(csv.DictReader(out.open()))
    assert "az_nas" in rows[0] and float(rows[0]["az_nas"]) == pytest.approx(float(rows[1]["az_nas"]))  # same net, same rank


def test_cli_scores_a_model_at_a_given_input_shape(tmp_path, monkeypatch, capsys) -> None:
    """``--input-shape`` converts a MODEL at a non-image shape (a 1-D conv net over (40, 50) features)."""
    monkeypatch.setenv("CGPREDICT_CACHE", str(tmp_path / "cache"))
    source = _sequential_file(tmp_path / "speech.py", "Speech", "nn.Conv1d(40, 8, 5, padding=2), nn.ReLU(), "
                              "nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 4)")
    out = tmp_path / "speech.csv"
    assert _cli([f"{source}:Speech", "--input-shape", "1,40,50", "--method", "synflow,snip,meco", "--batch-size", "8",
                 "-q", "-o", str(out)]) == 0
    row = next(csv.DictReader(out.open()))
    assert math.isfinite(float(row["synflow"])) and math.isfinite(float(row["snip"]))
    assert math.isfinite(float(row["meco"])) and row["error"] == ""
    capsys.readouterr()
    assert _cli([f"{source}:Speech", "--input-shape", "1,40,50", "-q", "-o",
                 str(tmp_path / "g.csv")]) == 2  # the default, gennas, trains square images: refused, with what to do
    err = capsys.readouterr().err
    assert "not to gennas" in err and "--method all" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        _cli([f"{source}:Speech", "--input-shape", "1,forty", "-o", str(tmp_path / "x.csv")])


def test_a_degenerate_network_ranks_lowest_not_nan(cnn) -> None:
    """A network whose output ignores its input (an NB-201 cell of `none` edges) ran: −inf, not a failure."""
    from cgpredict.datasets import nasbench201

    cg = from_torch(nasbench201.build((1, 1, 1, 1, 1, 1)), input_shape=(1, 3, 32, 32))
    r = bank_scores(cg, ["synflow", "naswot", "zico", "jacov", "meco"], SMALL, cache=False)
    assert not r.errors
    assert r.scores["synflow"] == r.scores["naswot"] == r.scores["zico"] == r.scores["jacov"] == -math.inf
    assert math.isfinite(r.scores["meco"])
    row = r.row(["naswot"])
    assert row["naswot"] == -math.inf and row["error"] == ""


def _same(a, b) -> bool:
    """Two bank results hold the same scores (bit for bit, NaN = NaN) and node statistics."""
    return (all(float(a.scores[k]).hex() == float(b.scores[k]).hex() for k in a.scores)
            and a.scores.keys() == b.scores.keys()
            and all(np.array_equal(a.node[k], b.node[k], equal_nan=True) for k in a.node))


@pytest.fixture
def one_thread():
    """Torch on one intra-op thread, as executor workers run (sums split over threads round differently)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_bank_on_an_executor_gives_the_local_numbers_and_fills_the_local_cache(tmp_path, one_thread) -> None:
    from cgpredict.datasets import load_family

    cgs = load_family("nasbench201", n=3, seed=4).cgs(progress=False)
    methods = ["synflow", "naswot", "meco"]
    config = BankConfig(batch_size=8)
    local = bank_scores_many(cgs, methods, config, cache=False, progress=False)
    pooled = bank_scores_many(cgs, methods, config, cache_dir=tmp_path, progress=False, executor="local:2")
    assert all(_same(a, b) for a, b in zip(local, pooled))
    again = bank_scores_many(cgs, methods, config, cache_dir=tmp_path, progress=False, executor="local:2")
    assert all(r.cached for r in again) and all(_same(a, b) for a, b in zip(local, again))


def test_an_edited_or_misplaced_cache_entry_is_dropped_and_recomputed(cnn, tmp_path) -> None:
    import shutil
    import warnings

    from cgpredict.datasets import cache as cg_cache

    first = bank_scores(cnn, ["synflow"], cache_dir=tmp_path)
    (entry,) = list(tmp_path.rglob("*.npz"))
    with np.load(entry) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta["scores"]["synflow"] += 1.0  # an edited but valid score
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    with open(entry, "wb") as handle:
        np.savez(handle, **arrays)
    cg_cache._REPORTED.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = bank_scores(cnn, ["synflow"], cache_dir=tmp_path)
    assert not again.cached and again.scores["synflow"] == first.scores["synflow"]
    assert any("checksum" in str(w.message) for w in caught)
    other = entry.with_name("0" * 64 + ".npz")  # a valid entry under another key
    shutil.copy(entry, other)
    assert bank_mod._load(other, again_cg := bank_mod._as_cg(cnn, 224), "x") is None
    assert bank_mod._load(entry, again_cg, "x") is not None


def test_bank_on_an_executor_keeps_what_the_cache_held_for_other_groups(tmp_path) -> None:
    """A net cached with one group and scored with another on an executor keeps both in its entry."""
    from cgpredict.datasets import load_family

    (cg,) = load_family("nasbench201", n=1, seed=5).cgs(progress=False)
    first = bank_scores(cg, ["complexity"], SMALL, cache_dir=tmp_path)
    (remote,) = bank_scores_many([cg], ["synflow"], SMALL, cache_dir=tmp_path, progress=False, executor="local")
    assert remote.scores["complexity"] == first.scores["complexity"] and not math.isnan(remote.scores["synflow"])
    both = bank_scores(cg, ["complexity", "synflow"], SMALL, cache_dir=tmp_path)
    assert both.cached and both.scores["synflow"] == remote.scores["synflow"]


# ------------------------------------------------------------------ fast paths give the definitions' numbers
def _pool_cg():  # noqa: ANN202
    """Max/avg pools of every kind the rebuild runs fast: stride 1 and 2, padding, ceil mode, dilation (8 channels)."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(3, 1, 1),
                        nn.Conv2d(8, 8, 1), nn.ReLU(), nn.MaxPool2d(2, 2, ceil_mode=True), nn.AvgPool2d(3, 2, 1, ceil_mode=True),
                        nn.MaxPool2d(3, 1, 1, dilation=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    return from_torch(net, input_shape=(1, 3, 11, 11), name="pools")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_pooling_gives_pytorchs_values_and_gradients_bit_for_bit(dtype) -> None:
    """The channels-last pooling of the bank's rebuilt nets: same outputs (ties after a ReLU included) and grads."""
    cg = _pool_cg()
    assert {n.op for n in cg.nodes} >= {"max_pool", "avg_pool"}
    runs = []
    for fast in (False, True):
        net = build_net(cg, 3, dtype).train()
        net.fast_pooling = fast
        x = torch.randn(5, 3, 11, 11, generator=torch.Generator().manual_seed(1), dtype=dtype).requires_grad_(True)
        values = net.forward_nodes(x)
        out = values[cg.output_node.inputs[0]]
        seed = torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
        grads = torch.autograd.grad(out, [x, *net.parameters()], seed)
        runs.append((values, grads))
    (slow_v, slow_g), (fast_v, fast_g) = runs
    pools = [n.id for n in cg.nodes if n.op in ("max_pool", "avg_pool") and not n.attrs.get("adaptive")]
    assert len(pools) == 5 and all("CLBackward" in type(fast_v[k].grad_fn).__name__ for k in pools)  # the fast path ran
    assert not any("CLBackward" in type(slow_v[k].grad_fn).__name__ for k in pools)
    assert slow_v.keys() == fast_v.keys()
    assert all(torch.equal(slow_v[k], fast_v[k]) and fast_v[k].is_contiguous() for k in slow_v)
    assert all(torch.equal(a, b) for a, b in zip(slow_g, fast_g))
    assert any((v == 0).any() for k, v in slow_v.items() if cg.nodes[k].op == "relu")  # ties were there to break


def test_zico_over_all_layers_equals_the_layer_by_layer_definition(cnn) -> None:
    from cgpredict.proxies.zc_gradient import _zico_ratios, zico_layer_ratio
    from cgpredict.proxies.zc_pass import PassNeeds, run_pass

    data = run_pass(cnn, build_net(cnn, 0), bank_mod._images(cnn, SMALL), 0, PassNeeds(), find_blocks(cnn))
    assert len(data.weight_grads) == 2 and len(data.weight_grads[0]) >= 3
    fast = _zico_ratios(data.weight_grads)
    for nid in data.weight_grads[0]:
        assert fast[nid] == pytest.approx(zico_layer_ratio([g[nid] for g in data.weight_grads]), rel=1e-12)
    odd = [{1: torch.tensor([1.0, math.inf, 2.0, math.nan, 3.0, 0.0])}, {1: torch.tensor([1.0, 1.0, math.inf, 1.0, 5.0, 0.0])}]
    assert _zico_ratios(odd)[1] == pytest.approx(zico_layer_ratio([g[1] for g in odd]), rel=1e-12)  # non-finite: dropped


def test_activation_gradient_std_and_top_singular_value_match_torch(cnn) -> None:
    from cgpredict.proxies.zc_pass import _std, _top_singular_value

    net = build_net(cnn, 0).train()
    values = net.forward_nodes(bank_mod._images(cnn, SMALL)[:4])
    acts = [v for v in values.values() if v.requires_grad]
    grads = torch.autograd.grad(F.cross_entropy(values[cnn.output_node.inputs[0]], torch.arange(4)), acts)
    for g in [*grads, grads[1].transpose(1, 2), torch.randn(7) * 1e-3 + 5.0]:
        assert _std(g) == pytest.approx(float(g.std()), rel=1e-6)
    assert _std(torch.ones(1)) == 0.0
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(6, 1, generator=gen, dtype=torch.float64)
    for mat in (torch.randn(5, 9, generator=gen, dtype=torch.float64), torch.randn(9, 5, generator=gen, dtype=torch.float64),
                u @ u.t(), torch.zeros(3, 4, dtype=torch.float64)):
        assert _top_singular_value(mat) == pytest.approx(float(torch.linalg.svdvals(mat).max()), rel=1e-12, abs=1e-300)


def test_meco_of_a_map_shared_by_two_nodes_equals_meco_of_copies() -> None:
    """An identity node's map is its input's very tensor: reduced once, the same numbers as two copies."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 9, generator=gen), torch.randn(4, 9, generator=gen)
    shared = PassData(batch=4, sample0={1: a, 2: b, 3: a, 5: torch.randn(3, 9, generator=gen)})
    copies = PassData(batch=4, sample0={k: v.clone() for k, v in shared.sample0.items()})
    s_score, s_node = meco(shared, 6)
    c_score, c_node = meco(copies, 6)
    assert s_score == c_score and np.array_equal(s_node, c_node, equal_nan=True) and s_node[1] == s_node[3]


def test_activation_gradient_reductions_equal_those_of_the_full_gradient_list() -> None:
    """Gradients reduced by hooks during the backward (and the explicitly asked ones of activations no weight
    feeds: the ReLU on the image) give the statistics and Fisher terms of autograd.grad over every activation."""
    from cgpredict.proxies.zc_pass import PassNeeds, run_pass

    cg = from_torch(nn.Sequential(nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                  nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(4 * 4 * 4, 5)),
                    input_shape=(1, 3, 8, 8), name="relu_first")
    images = bank_mod._images(cg, SMALL)
    data = run_pass(cg, build_net(cg, 0), images, 0, PassNeeds(), find_blocks(cg))
    net = build_net(cg, 0).train()
    fisher: dict[int, float] = {}
    for h in range(2):
        x = images[h * 4:(h + 1) * 4].clone().requires_grad_(h == 0)
        values = net.forward_nodes(x)
        logits = values[cg.output_node.inputs[0]]
        acts = [(nid, t) for nid, t in values.items() if t.requires_grad and cg.nodes[nid].op not in ("input", "output")]
        grads = torch.autograd.grad(F.cross_entropy(logits, _labels(logits, 0, h)), [t for _, t in acts])
        for (nid, act), g in zip(acts, grads):
            if h == 0:
                assert data.act_grad_mean[nid] == pytest.approx(float(g.abs().mean()), rel=1e-6)
                assert data.act_grad_std[nid] == pytest.approx(float(g.std()), rel=1e-6)
            if cg.nodes[nid].op in ("conv", "linear"):
                per = (act.detach() * g).sum(dim=tuple(range(2, g.dim()))) if g.dim() > 2 else act.detach() * g
                fan_in = math.prod(cg.nodes[nid].weight_shape[1:])
                fisher[nid] = fisher.get(nid, 0.0) + fan_in * float(0.5 * per.pow(2).mean(0).sum())
        if h == 0:
            assert set(data.act_grad_mean) == {nid for nid, _ in acts} and cg.nodes[acts[0][0]].op == "relu"
    assert data.fisher.keys() == fisher.keys() and all(data.fisher[k] == pytest.approx(v, rel=1e-6) for k, v in fisher.items())

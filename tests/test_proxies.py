"""Tests of the GenNAS / Eproxy regression proxies (cgpredict.proxies) on small real networks."""

from __future__ import annotations

import argparse
import csv
import math
import textwrap

import pytest
import torch
import torchvision
from torch import nn

from cgpredict.proxies import ProxyResult, TapModel, apply_flops_factor, find_taps, score, score_many
from cgpredict.proxies.eproxy import Teacher, teacher_targets, get_config as eproxy_config
from cgpredict.proxies.gennas import GenNASConfig, gennas_setup
from cgpredict.proxies.inputs import natural_images, noise_images
from cgpredict.proxies.signals import FREQ_BANDS, SignalSpec, build_target, make_signal


def small_net(width: int = 8, classes: int = 10) -> nn.Module:
    """Three-stage conv net: 32² → 16² → 8², then pooling and a classifier."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(4 * width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, classes),
    )


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class HandMade(nn.Module):
    """Blocks with a functional max-pool and a shared activation module."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Block(3, 8, 1)
        self.body = nn.ModuleList([Block(8, 8, 1), Block(8, 16, 2), Block(16, 16, 1)])
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.body[0](x)
        x = torch.nn.functional.max_pool2d(x, 2)  # 32 -> 16, not a module
        x = self.body[1](x)  # 16 -> 8
        x = self.body[2](x)
        return self.head(x.mean((2, 3)))


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 1:  # passes the tap probe, then fails during training
            raise RuntimeError("boom in forward")
        return self.conv(x)


class MakesNaN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x) * float("nan"))


TINY = dict(batch_size=4, target_size=8)


# ------------------------------------------------------------------ inputs and signals
def test_natural_images_are_seeded_normalised_photo_crops() -> None:
    a = natural_images(8, 32, seed=3)
    b = natural_images(8, 32, seed=3)
    c = natural_images(8, 32, seed=4)
    assert a.shape == (8, 3, 32, 32)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # normalised with ImageNet statistics: roughly centred, real images vary across the batch
    assert abs(float(a.mean())) < 1.5 and 0.3 < float(a.std()) < 2.0
    assert float(a.flatten(1).std(1).min()) > 0.01  # no constant crop
    n = noise_images(2, 16, seed=0)
    assert n.shape == (2, 3, 16, 16) and torch.equal(n, noise_images(2, 16, seed=0))


def _peak_frequency(signal_1d: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(signal_1d - signal_1d.mean()).abs()
    return int(spectrum.argmax()) / signal_1d.numel()


@pytest.mark.parametrize("band", ["low", "medium", "high"])
def test_sine_signals_lie_in_their_frequency_band(band: str) -> None:
    size = 128  # fine frequency resolution (1/128 cycles per pixel)
    lo, hi = FREQ_BANDS[band]
    gen = torch.Generator().manual_seed(1)
    maps = make_signal(SignalSpec("sin1d", 6, band=band, scope="local"), 2, size, gen)
    assert maps.shape == (2, 6, size, size)
    assert float(maps.abs().max()) <= 1.0 + 1e-6
    for m in maps.flatten(0, 1):
        row, col = m[size // 2], m[:, size // 2]
        # a 1-D sine varies along exactly one axis
        varying = row if float(row.std()) > float(col.std()) else col
        assert min(float(row.std()), float(col.std())) < 1e-5
        f = _peak_frequency(varying)
        assert lo - 1.5 / size <= f <= hi + 1.5 / size, (band, f)
    maps2 = make_signal(SignalSpec("sin2d", 4, band=band), 3, size, gen)
    assert torch.equal(maps2[0], maps2[2])  # global: shared across the batch
    for m in maps2[0]:
        fx = _peak_frequency(m[size // 2])
        fy = _peak_frequency(m[:, size // 2])
        assert lo - 1.5 / size <= fx <= hi + 1.5 / size and lo - 1.5 / size <= fy <= hi + 1.5 / size


def test_dot_gdot_resize_and_scope() -> None:
    gen = torch.Generator().manual_seed(0)
    dots = make_signal(SignalSpec("dot", 3, ratio=0.25, scope="local"), 5, 8, gen)
    assert dots.shape == (5, 3, 8, 8)
    assert set(torch.unique(dots).tolist()) <= {-1.0, 0.0, 1.0}
    assert ((dots != 0).flatten(2).sum(-1) == 16).all()  # 25 % of 64 pixels
    assert not torch.equal(dots[0], dots[1])  # local: one map per sample
    full = make_signal(SignalSpec("dot", 2, ratio=1.0), 2, 8, gen)
    assert (full.abs() == 1).all() and torch.equal(full[0], full[1])
    gdot = make_signal(SignalSpec("gdot", 2, ratio=0.1), 2, 16, gen)
    assert torch.allclose(gdot.abs().flatten(2).amax(-1), torch.ones(2, 2))
    assert ((gdot != 0).float().mean() > 0.1)  # blurred: spread beyond the dots
    images = natural_images(4, 32, seed=0)
    resized = make_signal(SignalSpec("resize", level=2.0), 4, 8, gen, images)
    assert torch.allclose(resized, 2.0 * torch.nn.functional.avg_pool2d(images, 4), atol=1e-5)
    specs = [SignalSpec("sin2d", 4, band="high"), SignalSpec("gdot", 4, ratio=0.2), SignalSpec("resize")]
    t1 = build_target(specs, 4, 8, seed=7, images=images)
    assert t1.shape == (4, 11, 8, 8) and torch.equal(t1, build_target(specs, 4, 8, seed=7, images=images))
    with pytest.raises(ValueError, match="band"):
        SignalSpec("sin1d", band="ultra")


# ------------------------------------------------------------------ taps
def test_resnet18_taps_are_stage_boundaries_plus_final() -> None:
    model = torchvision.models.resnet18(num_classes=10)
    taps = find_taps(model, (3, 32, 32))
    assert [t.name for t in taps] == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert [t.shape for t in taps] == [(64, 16, 16), (64, 8, 8), (128, 4, 4), (256, 2, 2), (512, 1, 1)]
    taps64 = find_taps(model, (3, 64, 64))
    assert [t.name for t in taps64] == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert taps64[-1].shape == (512, 2, 2)

    fc_calls = []
    model.fc.register_forward_hook(lambda *a: fc_calls.append(1))
    feats = TapModel(model, taps)(torch.randn(2, 3, 32, 32))
    assert [tuple(f.shape[1:]) for f in feats] == [t.shape for t in taps]
    assert not fc_calls  # the classifier is cut off


def test_hand_made_and_sequential_taps() -> None:
    taps = find_taps(HandMade())
    # 32² ends with body.0; the functional pool (32→16) and body.1's stride (16→8) leave no module
    # output at 16², so the next tap is the final map body.2
    assert [(t.name, t.call, t.shape) for t in taps] == [("body.0", 0, (8, 32, 32)), ("body.2", 0, (16, 8, 8))]
    seq = find_taps(small_net())
    assert [(t.name, t.shape) for t in seq] == [("2", (8, 32, 32)), ("5", (16, 16, 16)), ("8", (32, 8, 8))]


def test_nasbench201_taps() -> None:
    nb = pytest.importorskip("cgpredict.datasets.nasbench201")
    for arch in [(0, 2, 3, 2, 3, 1), (1, 1, 1, 1, 1, 1), (4, 0, 4, 1, 2, 0)]:
        taps = find_taps(nb.build(arch))
        assert [(t.name, t.shape) for t in taps] == [("cells.4", (16, 32, 32)), ("cells.10", (32, 16, 16)), ("lastact", (64, 8, 8))]


# ------------------------------------------------------------------ GenNAS / Eproxy set-ups
def test_gennas_setup_stage_weights_and_shapes() -> None:
    taps = find_taps(small_net())
    images = natural_images(4, 32, seed=0)
    setup = gennas_setup(taps, images, GenNASConfig(), target_size=8, seed=0)
    assert setup.tap_indices == [0, 1, 2]
    assert [t.shape for t in setup.targets] == [(4, 8, 8, 8), (4, 8, 8, 8), (4, 15, 8, 8)]
    assert setup.eval_weights == [0.25, 0.5, 1.0] and setup.train_weights == [1.0, 1.0, 1.0]
    assert (setup.lr, setup.momentum, setup.weight_decay) == (0.1, 0.9, 4e-5)
    # same targets for a different architecture with the same number of stages
    other = gennas_setup(find_taps(torchvision.models.resnet18()), images, GenNASConfig(), seed=0)
    assert [o.shape[1] for o in other.targets] == [t.shape[1] for t in setup.targets]
    assert all(torch.equal(a, b) for a, b in zip(setup.targets, other.targets))


def test_eproxy_teacher_and_barrier() -> None:
    images = natural_images(4, 32, seed=0)
    teacher = Teacher()
    assert sum(isinstance(m, nn.Conv2d) for m in teacher.modules()) == 6
    assert teacher(images).shape == (4, 16, 8, 8)
    target = teacher_targets(images, eproxy_config("sine"), 8, seed=0)
    assert target.shape == (4, 24, 8, 8)
    assert torch.allclose(target[:, :16].mean((0, 2, 3)), torch.zeros(16), atol=1e-5)
    result = score(small_net(), method="eproxy", iterations=3, **TINY)
    assert result.ok and result.iterations == 3 and len(result.stage_losses) == 3


# ------------------------------------------------------------------ training behaviour
@pytest.mark.parametrize("method,iters", [("gennas", 30), ("eproxy", 10)])
def test_loss_decreases_over_iterations(method: str, iters: int) -> None:
    result = score(small_net(), method=method, iterations=iters, **TINY)
    assert result.ok, result.error
    assert result.loss < result.initial_loss
    assert result.loss_drop > 0
    assert len(result.history) == iters and result.history[-1] < result.history[0]
    assert result.score == pytest.approx(-result.loss)


def test_same_seed_same_score_and_model_untouched() -> None:
    model = small_net()
    before = [p.detach().clone() for p in model.parameters()]
    a = score(model, method="gennas", iterations=4, seed=1, **TINY)
    b = score(model, method="gennas", iterations=4, seed=1, **TINY)
    c = score(model, method="gennas", iterations=4, seed=2, **TINY)
    assert a.ok and b.ok and c.ok
    assert a.loss == b.loss and a.stage_losses == b.stage_losses
    assert a.loss != c.loss
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
    # re-initialisation from the seed: differently initialised copies score the same
    assert score(small_net(), method="gennas", iterations=4, seed=1, **TINY).loss == a.loss


def test_failures_become_error_entries_and_the_batch_continues() -> None:
    models = [small_net(), Raises(), MakesNaN(), lambda: (_ for _ in ()).throw(OSError("no file")), small_net(12)]
    results = score_many(models, method="eproxy", iterations=2, progress=False, **TINY)
    assert [r.name for r in results] == ["net0", "net1", "net2", "net3", "net4"]
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert "boom in forward" in results[1].error
    assert "nan" in results[2].error.lower()
    assert "no file" in results[3].error
    assert math.isnan(results[2].score) and math.isfinite(results[4].score)
    # concurrency on the CPU gives the same numbers as one at a time
    again = score_many([small_net(), small_net(12)], method="eproxy", iterations=2, progress=False, concurrency=2, **TINY)
    assert [r.loss for r in again] == [results[0].loss, results[4].loss]


def test_node_statistics_keyed_by_module_path() -> None:
    result = score(torchvision.models.resnet18(num_classes=10), method="eproxy", iterations=2, collect_stats=True, **TINY)
    assert result.ok
    stats = result.node_stats
    assert {"conv1", "layer1.0.conv1", "layer4.1.bn2"} <= set(stats)
    assert "layer1.0.relu:1" in stats  # the block's ReLU module is called twice
    assert stats["layer1.0.conv1"].grad_norm > 0 and stats["layer1.0.conv1"].act_rms > 0
    assert stats["layer2.0.conv1"].shape == (128, 4, 4)
    assert "fc" not in stats and "avgpool" not in stats  # classifier never ran


def test_flops_factor_and_score_sign() -> None:
    results = [ProxyResult("a", "eproxy", "default", loss=1.0, macs=100), ProxyResult("b", "eproxy", "default", loss=1.0, macs=300)]
    apply_flops_factor(results, alpha=-0.5)
    assert results[0].adjusted_loss == pytest.approx(1.0) and results[1].adjusted_loss == pytest.approx(0.5)
    assert results[1].score > results[0].score  # lower loss = higher score
    scored = score_many([small_net(4), small_net(16)], method="eproxy", iterations=1, flops_alpha=1.0, progress=False, **TINY)
    assert scored[0].macs < scored[1].macs
    assert scored[1].adjusted_loss == pytest.approx(2 * scored[1].loss)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="method"):
        score(small_net(), method="synflow")
    with pytest.raises(ValueError, match="preset"):
        score(small_net(), method="gennas", preset="nope")
    from cgpredict.cg import CG

    with pytest.raises(ValueError, match="one image input"):
        score(CG(nodes=[], name="g"))
    with pytest.raises(TypeError, match="torch.nn.Module or a CG"):
        score("torchvision:resnet18")


# ------------------------------------------------------------------ CLI
def test_cli_writes_one_row_per_net(tmp_path) -> None:
    from cgpredict.commands import proxy as proxy_cmd

    source = tmp_path / "nets.py"
    source.write_text(
        textwrap.dedent(
            """
            from torch import nn
            class Tiny(nn.Sequential):
                def __init__(self):
                    super().__init__(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2, padding=1),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
            """
        )
    )
    parser = argparse.ArgumentParser(prog="cgpredict")
    sub = parser.add_subparsers(dest="command")
    proxy_cmd.register(sub)
    out = tmp_path / "scores.csv"
    args = parser.parse_args(
        ["proxy", f"{source}:Tiny", f"{source}:Missing", "--method", "eproxy", "--iterations", "2", "--batch-size", "4", "-q", "-o", str(out)]
    )
    assert args.func(args) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["model"] for r in rows] == [f"{source}:Tiny", f"{source}:Missing"]
    assert rows[0]["error"] == "" and float(rows[0]["score"]) == pytest.approx(-float(rows[0]["loss"]))
    assert float(rows[0]["seconds"]) > 0
    assert rows[0]["taps"] == "1;2" and float(rows[0]["loss_stage2"]) > 0  # relu at 16², final conv at 8²
    assert "Missing" in rows[1]["error"]


def test_tap_standardisation_keeps_unnormalised_nets_finite() -> None:
    from cgpredict.proxies.core import standardize

    x = 50 * torch.randn(4, 3, 8, 8) + 7
    z = standardize(x)
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(z.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)

    class Loud(nn.Module):  # no normalisation anywhere, outputs of scale ~1e3
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, padding=1)
            self.b = nn.Conv2d(8, 8, 3, stride=2, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(1e3 * self.a(x))

    normed = score(Loud(), method="eproxy", iterations=5, **TINY)
    raw = score(Loud(), method="eproxy", preset="raw", iterations=5, **TINY)
    assert normed.ok, normed.error
    assert not raw.ok and ("nan" in raw.error.lower() or "inf" in raw.error.lower())


@pytest.mark.gpu
def test_concurrent_cuda_runs_match_sequential() -> None:
    nets = [small_net(8), small_net(12), small_net(16)]
    one = score_many(nets, method="eproxy", iterations=3, device="cuda", concurrency=1, progress=False, **TINY)
    three = score_many(nets, method="eproxy", iterations=3, device="cuda", concurrency=3, progress=False, **TINY)
    assert all(r.ok for r in one + three)
    assert [r.loss for r in three] == pytest.approx([r.loss for r in one], rel=1e-3)


def test_model_specs_resolve_to_trainable_modules(tmp_path) -> None:
    from cgpredict.proxies.specs import load_model

    model = load_model("torchvision:resnet18")
    assert isinstance(model, nn.Module) and not any(p.is_meta for p in model.parameters())
    registry = pytest.importorskip("cgpredict.datasets.registry")
    if "nasbench201" in registry.list_families():
        nb = load_model("nasbench201:(0, 2, 3, 2, 3, 1)")
        assert [t.name for t in find_taps(nb)] == ["cells.4", "cells.10", "lastact"]
    with pytest.raises(FileNotFoundError, match="ONNX"):  # ONNX files are rebuilt via CG.to_module()
        load_model(str(tmp_path / "net.onnx"))
    with pytest.raises(FileNotFoundError):
        load_model(str(tmp_path / "missing.py") + ":Net")
    meta_net = small_net().to("meta")  # e.g. what a graph-only loader builds: no values
    result = score(meta_net, method="eproxy", iterations=2, reinit=False, **TINY)
    assert result.ok, result.error

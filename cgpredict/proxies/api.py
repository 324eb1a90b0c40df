"""Public entry points of the regression proxies: :func:`score` one network, :func:`score_many`.

Pipeline position: model → **proxy score** (GenNAS / Eproxy) → CG node/graph features → predictor.

Sign convention: both proxies minimise a regression loss; *lower loss = better architecture*.
:class:`~cgpredict.proxies.core.ProxyResult` keeps the loss and exposes ``score = -loss`` (higher
is better, like accuracy), so a Spearman correlation of ``score`` with accuracy should be positive.

Every run deep-copies the network (the caller's module is never trained) and, with
``reinit=True`` (default), re-initialises all its parameters from ``seed`` so that the score
depends on the architecture and the seed only. Inputs, targets, heads and barriers are seeded
too: the same network and seed give the same score on the CPU.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch import nn

from cgpredict.cg import CG
from cgpredict.proxies import eproxy, gennas
from cgpredict.proxies.cg_taps import CGTapModel, cg_taps, find_cg_taps
from cgpredict.proxies.core import ProxyResult, run_regression, timed
from cgpredict.proxies.inputs import make_inputs
from cgpredict.proxies.taps import TapModel, count_macs_hooks, find_taps
from cgpredict.quiet import progress_bar

__all__ = ["METHODS", "apply_flops_factor", "score", "score_many"]

METHODS: tuple[str, ...] = ("gennas", "eproxy")
DEFAULT_PRESET: dict[str, str] = {"gennas": "combo", "eproxy": "default"}


def _as_module(model_or_cg: Any) -> nn.Module | CG:
    """The module to train, or the CG itself (rebuilt with ``CG.to_module()`` when prepared)."""
    if isinstance(model_or_cg, (nn.Module, CG)):
        return model_or_cg
    raise TypeError(f"expected a torch.nn.Module or a CG, got {type(model_or_cg).__name__}")


def _config(method: str, preset: str | None, iterations: int | None) -> tuple[Any, str, int]:
    if method not in METHODS:
        raise ValueError(f"unknown proxy method {method!r}; expected one of {METHODS}")
    preset = preset or DEFAULT_PRESET[method]
    config = gennas.get_config(preset) if method == "gennas" else eproxy.get_config(preset)
    iters = config.iterations if iterations is None else int(iterations)
    if iters < 0:
        raise ValueError(f"iterations must be >= 0, got {iters}")
    return config, preset, iters


def _reinit(model: nn.Module) -> None:
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


def _check_cg_input(cg: CG, size: tuple[int, int, int]) -> None:
    """A CG's single input must be an image batch of the proxy's input size."""
    inputs = cg.input_nodes
    if len(inputs) != 1 or len(inputs[0].out_shape) != 4:
        raise ValueError(f"CG {cg.name!r}: the proxies need one image input (N, C, H, W), got "
                         f"{[tuple(n.out_shape) for n in inputs]}")
    if tuple(inputs[0].out_shape[1:]) != tuple(size):
        raise ValueError(f"CG {cg.name!r} was converted for inputs {tuple(inputs[0].out_shape[1:])} but the proxy "
                         f"feeds {tuple(size)}; convert it at the proxy's input size (input_size=) or pass "
                         f"input_size={inputs[0].out_shape[-1]}")


class _Prepared:
    """A network made ready to train: copied, re-initialised, tapped, with heads and targets."""

    def __init__(self, model: nn.Module | CG, method: str, config: Any, images: torch.Tensor, target_size: int, seed: int, reinit: bool) -> None:
        size = (images.shape[1], images.shape[2], images.shape[3])
        self.tap_ids: list[int] | None = None
        self.cg = model if isinstance(model, CG) else None
        if isinstance(model, CG):
            _check_cg_input(model, size)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = model.to_module().float()  # fresh weights from the seed
            self.tap_ids = find_cg_taps(model)
            self.taps = cg_taps(model, self.tap_ids)
            self.tap_model: nn.Module = CGTapModel(net, self.tap_ids)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = copy.deepcopy(model)
                meta = any(p.is_meta for p in net.parameters())
                net = (net.to_empty(device="cpu") if meta else net.cpu()).float()
                if reinit or meta:  # a meta-device model has no values: always initialise it
                    _reinit(net)
            self.taps = find_taps(net, size)
            self.tap_model = TapModel(net, self.taps)
        setup_fn = gennas.gennas_setup if method == "gennas" else eproxy.eproxy_setup
        self.setup = setup_fn(self.taps, images, config, target_size=target_size, seed=seed)
        self.size = size


def _run_one(
    model: Any,
    name: str,
    method: str,
    config: Any,
    preset: str,
    iterations: int,
    images: torch.Tensor,
    target_size: int,
    device: torch.device,
    seed: int,
    reinit: bool,
    collect_stats: bool,
    want_macs: bool,
    prepared: _Prepared | None = None,
) -> ProxyResult:
    result = ProxyResult(name=name, method=method, preset=preset, iterations=iterations)
    start = timed()
    try:
        if prepared is None:
            prepared = _Prepared(_as_module(model), method, config, images, target_size, seed, reinit)
        if want_macs:
            result.macs = (prepared.cg.macs("conv_linear") if prepared.cg is not None
                           else count_macs_hooks(prepared.tap_model.model, prepared.size))
        used = prepared.setup.tap_indices
        result.taps = [prepared.taps[i].name if prepared.taps[i].call == 0 else f"{prepared.taps[i].name}:{prepared.taps[i].call}" for i in used]
        tap_model = prepared.tap_model.to(device)
        prepared.setup.heads.to(device)
        if device.type == "cuda":  # own stream, ordered after the parameter copies above
            stream = torch.cuda.Stream(device)
            stream.wait_stream(torch.cuda.current_stream(device))
            stream_ctx: Any = torch.cuda.stream(stream)
        else:
            stream, stream_ctx = None, _null()
        with stream_ctx:
            loss, stages, initial, history, stats = run_regression(
                tap_model, prepared.setup, images.to(device), iterations, collect_stats=collect_stats
            )
        if stream is not None:
            stream.synchronize()
        result.loss, result.stage_losses, result.initial_loss = loss, stages, initial
        result.history, result.node_stats = history, stats
        result.adjusted_loss = loss
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing network becomes an error entry
        result.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
    finally:
        result.seconds = timed() - start
    return result


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def score(
    model_or_cg: Any,
    method: str = "gennas",
    preset: str | None = None,
    iterations: int | None = None,
    target_size: int = 8,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    seed: int = 0,
    input_size: int = 32,
    inputs: str = "natural",
    reinit: bool = True,
    collect_stats: bool = False,
    name: str | None = None,
) -> ProxyResult:
    """Run one proxy on one network.

    Args:
        model_or_cg: an image classifier ``nn.Module``, or a :class:`~cgpredict.cg.CG` of one
            (rebuilt with ``CG.to_module()``; taps from its shapes, node statistics keyed by node
            id; it must have been converted at the proxy's input size).
        method: ``"gennas"`` or ``"eproxy"``.
        preset: method preset (GenNAS: ``combo``, ``single``, ``sin_local``, ``raw``; Eproxy:
            ``default``, ``sine``, ``dot``, ``raw``); ``None`` = the method's default (``combo`` /
            ``default``).
        iterations: SGD steps (default: the preset's, 100 for GenNAS, 10 for Eproxy).
        target_size: side of the target grid.
        batch_size: images in the single training batch.
        device: where to train (``"cpu"``, ``"cuda"``…).
        seed: seed of inputs, targets, heads and (with ``reinit``) network weights.
        input_size: side of the square input images.
        inputs: ``"natural"`` photo crops or ``"noise"``.
        reinit: re-initialise the network's parameters from ``seed``.
        collect_stats: gather per-module activation/gradient statistics on the last step.
        name: label stored in the result (default: the class name).

    Returns:
        A :class:`~cgpredict.proxies.core.ProxyResult`; failures (forward error, NaN/inf loss)
        are reported in its ``error`` field rather than raised.

    Raises:
        ValueError: unknown method or preset, or a CG that is not one image input of ``input_size``.
        TypeError: ``model_or_cg`` is neither a module nor a CG.
    """
    config, preset, iters = _config(method, preset, iterations)
    images = make_inputs(inputs, batch_size, input_size, seed)
    label = name or type(model_or_cg).__name__
    module = _as_module(model_or_cg)  # bad input types raise here; network failures go to .error
    if isinstance(module, CG):
        _check_cg_input(module, (images.shape[1], images.shape[2], images.shape[3]))
    return _run_one(
        module, label, method, config, preset, iters, images, target_size, torch.device(device), seed, reinit, collect_stats, False
    )


def apply_flops_factor(results: Sequence[ProxyResult], alpha: float) -> None:
    """Set ``adjusted_loss = loss · (1 + alpha · norm(macs))`` in place (min–max norm over the set)."""
    values = [r.macs for r in results if r.ok and r.macs is not None]
    if not values:
        return
    lo, hi = min(values), max(values)
    for r in results:
        if r.ok and r.macs is not None:
            norm = (r.macs - lo) / (hi - lo) if hi > lo else 0.0
            r.adjusted_loss = r.loss * (1.0 + alpha * norm)


def score_many(
    models: Iterable[Any],
    method: str = "gennas",
    preset: str | None = None,
    iterations: int | None = None,
    target_size: int = 8,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    seed: int = 0,
    input_size: int = 32,
    inputs: str = "natural",
    reinit: bool = True,
    collect_stats: bool = False,
    names: Sequence[str] | None = None,
    concurrency: int | None = None,
    flops_alpha: float = 0.0,
    progress: bool = True,
) -> list[ProxyResult]:
    """Score several networks with the same inputs, targets and seed; failures don't stop the batch.

    Each network is prepared (copied, re-initialised, tapped) in the calling thread, then trained.
    With ``concurrency > 1`` several networks train at once in worker threads — on CUDA each on
    its own stream; after a CUDA out-of-memory error the concurrency is halved and the affected
    networks are retried (at concurrency 1 an OOM becomes an error entry).

    Args:
        models: ``nn.Module`` objects (or CGs naming a model spec), or zero-argument callables
            returning one (built lazily, so a long list need not fit in memory).
        method, preset, iterations, target_size, batch_size, device, seed, input_size, inputs,
            reinit, collect_stats: as in :func:`score`.
        names: labels of the results (default ``net0``, ``net1``…).
        concurrency: networks trained at once (default 4 on CUDA, 1 on the CPU).
        flops_alpha: Eproxy's FLOPs factor α (0 = off); see :func:`apply_flops_factor`.
        progress: show a tqdm bar (networks/s and ETA).

    Returns:
        One :class:`~cgpredict.proxies.core.ProxyResult` per input, in input order.
    """
    config, preset, iters = _config(method, preset, iterations)
    dev = torch.device(device)
    items = list(models)
    labels = list(names) if names is not None else [f"net{i}" for i in range(len(items))]
    if len(labels) != len(items):
        raise ValueError(f"score_many: {len(items)} models but {len(labels)} names")
    width = concurrency or (4 if dev.type == "cuda" else 1)
    if width < 1:
        raise ValueError(f"concurrency must be >= 1, got {width}")
    images = make_inputs(inputs, batch_size, input_size, seed)
    want_macs = flops_alpha != 0.0
    results: list[ProxyResult | None] = [None] * len(items)
    pending = list(range(len(items)))
    bar = progress_bar(total=len(items), unit="net", desc=f"{method}:{preset}", progress=progress)
    lock = threading.Lock()

    def prepare(i: int) -> tuple[_Prepared | None, ProxyResult | None, float]:
        """Build, copy, re-initialise and tap network ``i`` in this (the calling) thread."""
        start = timed()
        item = items[i]
        try:
            if callable(item) and not isinstance(item, nn.Module):
                item = item()
            return _Prepared(_as_module(item), method, config, images, target_size, seed, reinit), None, timed() - start
        except Exception as exc:  # noqa: BLE001 - becomes an error entry
            res = ProxyResult(name=labels[i], method=method, preset=preset, iterations=iters)
            res.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
            res.seconds = timed() - start
            return None, res, 0.0

    def train(i: int, prepared: _Prepared, prep_seconds: float) -> ProxyResult:
        res = _run_one(None, labels[i], method, config, preset, iters, images, target_size, dev, seed, reinit, collect_stats, want_macs, prepared)
        res.seconds += prep_seconds
        return res

    def finish(i: int, res: ProxyResult) -> None:
        with lock:
            results[i] = res
            bar.update(1)
            bar.set_postfix(failed=sum(1 for r in results if r is not None and not r.ok))

    try:
        while pending:
            wave, pending = pending[:width], pending[width:]
            retry: list[int] = []
            prepared = {}
            for i in wave:
                prep, failed, prep_seconds = prepare(i)
                if failed is not None:
                    finish(i, failed)
                else:
                    prepared[i] = (prep, prep_seconds)
            if width == 1:
                for i, (prep, prep_seconds) in prepared.items():
                    try:
                        finish(i, train(i, prep, prep_seconds))
                    except torch.cuda.OutOfMemoryError as exc:
                        torch.cuda.empty_cache()
                        res = ProxyResult(name=labels[i], method=method, preset=preset, iterations=iters)
                        res.error = f"OutOfMemoryError: {str(exc).splitlines()[0]}"[:500]
                        finish(i, res)
            else:
                with ThreadPoolExecutor(max_workers=width) as pool:
                    futures = {i: pool.submit(train, i, prep, prep_seconds) for i, (prep, prep_seconds) in prepared.items()}
                    for i, fut in futures.items():
                        try:
                            finish(i, fut.result())
                        except torch.cuda.OutOfMemoryError:
                            retry.append(i)
                if retry:
                    torch.cuda.empty_cache()
                    width = max(1, width // 2)
                    pending = retry + pending
    finally:
        bar.close()
    out = [r for r in results if r is not None]
    if want_macs:
        apply_flops_factor(out, flops_alpha)
    return out

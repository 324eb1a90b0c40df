"""The shared forward/backward pass of the training-free proxy bank.

Pipeline position: model → CG → rebuilt module → **one shared pass** → proxy scores
(:mod:`~cgpredict.proxies.bank`) → CG node/graph features → predictor → ranking.

Most training-free proxies read the same few quantities of a freshly initialised network on one
batch: the activations of every node (NASWOT, MeCo, AZ-NAS expressivity/progressivity), the
gradients of a loss (cross-entropy by default, :func:`pass_loss`) with respect to the weights (SNIP,
grad-norm, ZiCo) and to the node outputs (Fisher), the Jacobian of the summed logits with respect to
the input (Jacobian covariance), and block-to-block vector–Jacobian products (AZ-NAS trainability).
:func:`run_pass` computes all of them in one go on a :class:`~cgpredict.rebuild.RebuiltModule`
(``CG.to_module()``), so every proxy's score and per-node statistics are keyed by ``cg.nodes`` ids:

* the batch of ``batch_size`` seeded natural images (:mod:`~cgpredict.proxies.inputs`) is split in
  two halves (ZiCo needs gradients of at least two batches); each half runs forward once (batch
  norm in train mode) and backward once for the loss against seeded random labels (or regression
  targets);
* on the first half only: the input Jacobian of the summed logits (one extra input-only backward)
  and the block vector–Jacobian products of AZ-NAS (input-only backwards through one block each);
* what each proxy needs is reduced right away (per-node sums, codes, sample-0 feature maps), so the
  pass keeps no graph between halves; activation gradients are reduced by hooks while the backward
  produces them, so they never all live at once.

Speed without new numbers: the rebuilt net pools through channels-last copies
(:attr:`~cgpredict.rebuild.RebuiltModule.fast_pooling`, the same values and gradients), and
reductions shared by several proxies are computed once (:attr:`PassData.memo`).

Nothing here decides a score; :mod:`~cgpredict.proxies.zc_activation`,
:mod:`~cgpredict.proxies.zc_gradient` and :mod:`~cgpredict.proxies.zc_aznas` turn a
:class:`PassData` into scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cgpredict.cg import CG
from cgpredict.ops import CONV_OPS

__all__ = ["INITS", "LOSSES", "RECTIFIER_OPS", "PassData", "PassNeeds", "build_net", "feature_map_layout",
           "feature_map_rank", "run_pass", "weighted_nodes"]

WEIGHTED_OPS = frozenset(CONV_OPS) | {"linear"}
#: Rectifier-type activations, whose output is positive exactly where their input is (ReLU and its
#: leaky form, ReLU6, GELU, SiLU, hard-swish): NASWOT's on/off codes are read from them.
RECTIFIER_OPS = frozenset({"relu", "relu6", "gelu", "silu", "hardswish"})


@dataclass(frozen=True)
class PassNeeds:
    """Which parts of the pass to run (a proxy that needs none of the gradients skips backward)."""

    activations: bool = True
    gradients: bool = True
    jacobian: bool = True
    blocks: bool = True


@dataclass
class PassData:
    """Reduced results of one shared pass, keyed by CG node id.

    Attributes:
        batch: total batch size (both halves).
        codes: rectifier node id (:data:`RECTIFIER_OPS`) → ``(batch, units)`` 0/1 float codes, unit on
            iff its output is positive (both halves stacked).
        sample0: node id → ``(C, H·W)`` feature map of the first sample (4-D nodes with C, H·W ≥ 2).
        block_ids: AZ-NAS block output node ids (shallowest first).
        block_feats: block id → ``(B/2·H·W, C)`` features of the first half.
        block_vjp: per consecutive block pair ``(id_in, id_out)``: the largest singular value of
            the block's sampled Jacobian (``None``: the block is an identity, ``nan``: no path).
        weights: weighted node id → weight tensor.
        weight_grads: two dicts (one per half) weighted node id → loss gradient of the weight.
        fisher: conv/linear node id → Σ_channels fan_in · ½·mean_batch (Σ_space a·∂L/∂a)², summed over
            halves (``fan_in`` = weights per output channel; see :mod:`~cgpredict.proxies.zc_gradient`).
        act_grad_mean, act_grad_std: node id → mean |∂L/∂a| and std of ∂L/∂a (first half).
        jacobian: ``(B/2, D)`` gradient of the summed logits with respect to the input (first half).
        seconds: wall time of the pass.
        memo: reductions shared by several proxies (e.g. the block entropies of expressivity and
            progressivity), filled on first use by the proxy modules.
    """

    batch: int
    codes: dict[int, torch.Tensor] = field(default_factory=dict)
    sample0: dict[int, torch.Tensor] = field(default_factory=dict)
    block_ids: list[int] = field(default_factory=list)
    block_feats: dict[int, torch.Tensor] = field(default_factory=dict)
    block_vjp: list[tuple[int, int, float | None]] = field(default_factory=list)
    weights: dict[int, torch.Tensor] = field(default_factory=dict)
    weight_grads: list[dict[int, torch.Tensor]] = field(default_factory=list)
    fisher: dict[int, float] = field(default_factory=dict)
    act_grad_mean: dict[int, float] = field(default_factory=dict)
    act_grad_std: dict[int, float] = field(default_factory=dict)
    jacobian: torch.Tensor | None = None
    seconds: float = 0.0
    memo: dict[str, Any] = field(default_factory=dict, repr=False)


INITS: tuple[str, ...] = ("default", "kaiming_fan_in")


def build_net(cg: CG, seed: int, dtype: torch.dtype = torch.float32, init: str = "default") -> nn.Module:
    """``cg.to_module()`` with weights drawn from ``seed``, global RNG untouched.

    ``init``: ``default`` (PyTorch's) or ``kaiming_fan_in`` (AZ-NAS's: conv/linear weights
    Kaiming-normal with fan-in and ReLU gain, biases 0; norm layers weight 1, bias 0).
    The net's 2-D pooling runs through channels-last copies (``fast_pooling``: the same values and
    first-order gradients, several times faster on CPU).
    """
    if not isinstance(cg, CG):
        raise TypeError(f"expected a cgpredict CG, got {type(cg).__name__}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = cg.to_module()
        if init == "kaiming_fan_in":
            for module in net.modules():
                weight = module._parameters.get("weight")
                if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)) and weight is not None:
                    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
                elif isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)) and weight is not None:
                    nn.init.ones_(weight)
                bias = module._parameters.get("bias")
                if bias is not None and weight is not None:
                    nn.init.zeros_(bias)
    if hasattr(net, "fast_pooling"):
        net.fast_pooling = True  # same values and gradients (first-order), several times faster on CPU
    return net.to(dtype)


def weighted_nodes(cg: CG, net: nn.Module) -> dict[int, nn.Module]:
    """Conv/linear node id → its module in the rebuilt network (weights that are parameters only)."""
    out: dict[int, nn.Module] = {}
    layers = getattr(net, "layers", {})
    for node in cg.nodes:
        key = f"n{node.id}"
        if node.op in WEIGHTED_OPS and key in layers:
            module = layers[key]
            weight = module._parameters.get("weight")
            if isinstance(weight, nn.Parameter) and weight.requires_grad:
                out[node.id] = module
    return out


#: Losses of the data pass against seeded random targets (see :func:`pass_loss`).
LOSSES: tuple[str, ...] = ("cross_entropy", "mse", "l1")


def _target_generator(seed: int, half: int) -> torch.Generator:
    """The generator of one half's random targets (class labels or regression targets)."""
    return torch.Generator().manual_seed(seed * 1000 + 17 + half)


def _labels(logits: torch.Tensor, seed: int, half: int) -> torch.Tensor:
    gen = _target_generator(seed, half)
    classes = int(logits.shape[1]) if logits.dim() >= 2 else 1
    shape = (logits.shape[0], *logits.shape[2:])
    return torch.randint(max(classes, 1), shape, generator=gen)


def pass_loss(outputs: torch.Tensor, seed: int, half: int, loss: str = "cross_entropy") -> torch.Tensor:
    """The loss of one half of the pass against seeded random targets.

    ``cross_entropy``: random class labels over dim 1, one per sample and (for dense outputs such as
    ``(N, classes, H, W)`` segmentation maps) per position. ``mse`` / ``l1``: standard normal targets of
    the output's shape (regression outputs: surface normals, reconstructions, room layouts).
    """
    if loss == "cross_entropy":
        return F.cross_entropy(outputs, _labels(outputs, seed, half))
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    target = torch.randn(tuple(outputs.shape), generator=_target_generator(seed, half), dtype=outputs.dtype)
    return F.mse_loss(outputs, target) if loss == "mse" else F.l1_loss(outputs, target)


def _rademacher(shape: torch.Size, gen: torch.Generator) -> torch.Tensor:
    # drawn straight into float32: the same draws and values as int64 draws converted afterwards
    return torch.randint(0, 2, tuple(shape), generator=gen, dtype=torch.float32).mul_(2.0).sub_(1.0)


def _unshuffle(g: torch.Tensor, stride: int) -> torch.Tensor:
    """Space-to-channel of an ``(N, C, H, W)`` map (``pixel_unshuffle``) or its 1-D analogue for
    ``(N, C, L)``: ``(N, C·s, L/s)`` with channel ``c·s + k`` holding position ``l·s + k``."""
    if g.dim() == 4:
        return F.pixel_unshuffle(g, stride)
    n, c, length = g.shape
    return g.reshape(n, c, length // stride, stride).permute(0, 1, 3, 2).reshape(n, c * stride, length // stride)


def feature_map_layout(cg: CG) -> tuple[int, bool]:
    """``(rank, channel_last)`` of the feature maps MeCo and the AZ-NAS block scores read.

    * ``(3, False)``: a 1-D convolutional net over ``(N, C, L)`` signals;
    * ``(3, True)``: a token net (a transformer or MLP-mixer: more linear layers on ``(N, T, D)`` tokens
      than convolutions on images): each ``(N, T, D)`` map is read as ``D`` channels over ``T``
      positions, i.e. as the ``(N, D, T)`` map of a 1-D net;
    * ``(4, False)``: otherwise, ``(N, C, H, W)`` image maps.
    """
    if (len(cg.input_nodes) == 1 and len(cg.input_nodes[0].out_shape) == 3
            and any(n.op in CONV_OPS and len(n.out_shape) == 3 for n in cg.nodes)):
        return 3, False
    tokens = sum(n.op == "linear" and len(n.out_shape) == 3 for n in cg.nodes)
    images = sum(n.op in CONV_OPS and len(n.out_shape) == 4 for n in cg.nodes)
    if tokens >= 2 and tokens > images:
        return 3, True
    return 4, False


def feature_map_rank(cg: CG) -> int:
    """Rank of the feature maps MeCo and the AZ-NAS block scores read (:func:`feature_map_layout`)."""
    return feature_map_layout(cg)[0]


def _channel_first(v: torch.Tensor, channel_last: bool) -> torch.Tensor:
    """A ``(N, T, D)`` token map as ``(N, D, T)`` (a view); a channel-first map as it is."""
    return v.transpose(1, 2) if channel_last else v


def _block_sigma(f_in: torch.Tensor, f_out: torch.Tensor, gen: torch.Generator,
                 channel_last: bool = False) -> float | None:
    """Largest singular value of the sampled block Jacobian (AZ-NAS trainability), ``None`` for identity."""
    g_out = _rademacher(f_out.shape, gen).to(f_out.dtype)
    (g_in,) = torch.autograd.grad(f_out, f_in, g_out, retain_graph=True, allow_unused=True)
    if g_in is None:
        return math.nan
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return None
    if channel_last and g_in.dim() == 3 and g_out.dim() == 3:
        g_in, g_out = _channel_first(g_in, True), _channel_first(g_out, True)
    if g_in.dim() not in (3, 4) or g_out.dim() != g_in.dim():
        return math.nan
    if g_in.shape[2] != g_out.shape[2]:
        stride = int(g_in.shape[2] // max(g_out.shape[2], 1))
        if stride > 1 and all(d % stride == 0 for d in g_in.shape[2:]):
            g_in = _unshuffle(g_in, stride)
    if g_in.shape[2:] != g_out.shape[2:]:
        return math.nan
    n = g_out.shape[0] * math.prod(g_out.shape[2:])
    a = g_in.movedim(1, -1).reshape(n, -1)
    b = g_out.movedim(1, -1).reshape(n, -1)
    mat = (a.t() @ b / n).double()
    return _top_singular_value(mat)


def _top_singular_value(mat: torch.Tensor) -> float:
    """Largest singular value of a float64 matrix: the square root of the top eigenvalue of its smaller
    Gram matrix (the same value to rounding, a third cheaper than a full SVD); non-finite entries or a
    zero Gram spectrum go through the SVD itself."""
    if bool(torch.isfinite(mat).all()):
        gram = mat @ mat.t() if mat.shape[0] <= mat.shape[1] else mat.t() @ mat
        top = float(torch.linalg.eigvalsh(gram)[-1])
        if top > 0 and math.isfinite(top):
            return math.sqrt(top)
    return float(torch.linalg.svdvals(mat).max())


def _grad_stats(g: torch.Tensor) -> tuple[float, float]:
    """``(mean |g|, std g)`` of one activation gradient."""
    return float(g.abs().mean()), _std(g)


def _std(g: torch.Tensor) -> float:
    """Sample standard deviation (Bessel-corrected, as ``Tensor.std()``) of all elements of ``g``.

    ``Tensor.std()`` of a whole tensor centres on its float32 mean, then sums the squares one element
    at a time in float64; here the centred squares are summed in float32 per sample (vectorised) and
    the per-sample sums in float64: the same value to ~1e-8 relative, two to three times faster.
    """
    n = g.numel()
    if n < 2:
        return 0.0
    d = (g - g.mean()).reshape(g.shape[0] if g.dim() > 1 else 1, -1)
    return math.sqrt(float(d.mul_(d).sum(1).double().sum()) / (n - 1))


def _fed_by_weights(cg: CG, weighted: dict[int, nn.Module]) -> set[int]:
    """Node ids whose output depends on a conv/linear weight of ``weighted`` (the node itself included)."""
    fed: set[int] = set()
    for node in cg.nodes:
        if node.id in weighted or any(i in fed for i in node.inputs):
            fed.add(node.id)
    return fed


def _loss_backward(cg: CG, data: PassData, loss: torch.Tensor, acts: list[tuple[int, torch.Tensor]],
                   weighted: dict[int, nn.Module], first: bool, keep_graph: bool) -> None:
    """One half's backward of the loss: the weight gradients, and each activation's gradient reduced
    (mean |g|, std g on the first half; the Fisher term of conv/linear outputs) as autograd produces it.

    An activation that depends on a weight has its gradient computed on the way to that weight anyway:
    a hook reduces it there and lets it go, so the gradients of all activations never live at once
    (far fewer pages to fault in). Any other activation's gradient is asked for explicitly. Either
    way each reduction sees the same accumulated gradient ``torch.autograd.grad`` returns for it.
    """
    params = [m.weight for m in weighted.values()]
    fed = _fed_by_weights(cg, weighted)
    fisher: dict[int, float] = {}

    def reduce(ids: list[int], act: torch.Tensor, g: torch.Tensor) -> None:
        stats = _grad_stats(g) if first else None
        for nid in ids:  # several nodes can hold the very same tensor (an identity passes its input on)
            if stats is not None:
                data.act_grad_mean[nid], data.act_grad_std[nid] = stats
            if nid in weighted:
                prod = (act.detach() * g)
                per = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
                fan_in = weighted[nid].weight[0].numel()  # each channel's value counted once per weight
                fisher[nid] = fan_in * float(0.5 * per.pow(2).mean(0).sum())

    hooked: dict[int, tuple[torch.Tensor, list[int]]] = {}
    asked: list[tuple[int, torch.Tensor]] = []
    for nid, t in acts:
        if nid in fed:
            hooked.setdefault(id(t), (t, []))[1].append(nid)
        else:
            asked.append((nid, t))
    handles = [t.register_hook(lambda g, t=t, ids=ids: reduce(ids, t, g)) for t, ids in hooked.values()]
    try:
        grads = torch.autograd.grad(loss, params + [t for _, t in asked], retain_graph=keep_graph, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    data.weight_grads.append({nid: (g.detach() if g is not None else torch.zeros_like(p))
                              for nid, p, g in zip(weighted, params, grads[: len(params)])})
    for (nid, t), g in zip(asked, grads[len(params):]):
        if g is not None:
            reduce([nid], t, g)
    for nid, _ in acts:  # accumulated over the halves in node order, as the definition sums them
        if nid in fisher:
            data.fisher[nid] = data.fisher.get(nid, 0.0) + fisher[nid]


def run_pass(cg: CG, net: nn.Module, images: torch.Tensor, seed: int, needs: PassNeeds,
             block_ids: list[int], loss: str = "cross_entropy") -> PassData:
    """Run the shared pass (see the module docstring) of ``net`` (rebuilt from ``cg``) on ``images``.

    Args:
        cg: the graph ``net`` was rebuilt from (node ids, ops).
        net: a :class:`~cgpredict.rebuild.RebuiltModule` with ``forward_nodes``.
        images: ``(B, C, H, W)`` inputs (or ``(B, ..., C, H, W)``), ``B >= 4`` and even.
        seed: seed of the random labels and of the Rademacher vectors.
        needs: which parts to compute.
        block_ids: AZ-NAS block output nodes (only used with ``needs.blocks``).
        loss: the gradients' loss against random targets (:data:`LOSSES`, :func:`pass_loss`).

    Raises:
        ValueError: a batch that cannot be halved; whatever the network raises when it runs.
    """
    import time

    start = time.perf_counter()
    batch = int(images.shape[0])
    if batch < 4 or batch % 2:
        raise ValueError(f"the shared proxy pass needs an even batch of at least 4 images, got {batch}")
    half = batch // 2
    data = PassData(batch=batch, block_ids=list(block_ids))
    net.train()
    for module in net.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    weighted = weighted_nodes(cg, net) if needs.gradients else {}
    data.weights = {nid: m.weight.detach() for nid, m in weighted.items()}
    rectifier_ids = {n.id for n in cg.nodes if n.op in RECTIFIER_OPS}
    map_rank, channel_last = feature_map_layout(cg)
    out_inputs = cg.output_node.inputs
    gen = torch.Generator().manual_seed(seed * 1000 + 3)
    codes: dict[int, list] = {}  # rectifier id → [(batch, units) codes, halves written]
    grad_any = needs.gradients or needs.jacobian or needs.blocks
    for h in range(2):
        x = images[h * half:(h + 1) * half].clone()
        first = h == 0
        if first and needs.jacobian:
            x.requires_grad_(True)
        with torch.set_grad_enabled(grad_any):
            values = net.forward_nodes(x)
        logits = values[out_inputs[0]]
        if needs.activations:
            for nid in rectifier_ids:
                v = values.get(nid)
                if v is not None:
                    flat = v.detach().reshape(half, -1)
                    if first:
                        codes[nid] = [torch.empty((batch, flat.shape[1]), dtype=torch.float32), 0]
                    elif nid not in codes or codes[nid][0].shape[1] != flat.shape[1]:
                        continue
                    buf = codes[nid]  # both halves' 0/1 codes written straight into one float buffer
                    torch.gt(flat, 0, out=buf[0][h * half:(h + 1) * half])
                    buf[1] += 1
            if first:
                for node in cg.nodes:
                    v = values.get(node.id)
                    if node.op in ("input", "output") or v is None or v.dim() != map_rank:
                        continue
                    v = _channel_first(v, channel_last)
                    c, hw = int(v.shape[1]), math.prod(int(d) for d in v.shape[2:])
                    if c >= 2 and hw >= 2:
                        data.sample0[node.id] = v[0].detach().reshape(c, hw)
        if first and needs.blocks:
            for bid in block_ids:
                v = values.get(bid)
                if v is not None and v.dim() == map_rank:
                    v = _channel_first(v, channel_last)
                    data.block_feats[bid] = v.detach().movedim(1, -1).reshape(-1, v.shape[1])
        if needs.gradients:
            objective = pass_loss(logits, seed, h, loss)
            acts = [(nid, t) for nid, t in values.items()
                    if isinstance(t, torch.Tensor) and t.requires_grad and t.is_floating_point()
                    and cg.nodes[nid].op not in ("input", "output")]
            keep_graph = first and (needs.jacobian or needs.blocks)  # the second half's graph is done after this
            _loss_backward(cg, data, objective, acts, weighted, first, keep_graph)
        if first and needs.jacobian:
            (jac,) = torch.autograd.grad(logits, x, torch.ones_like(logits), retain_graph=True)
            data.jacobian = jac.detach().reshape(half, -1)
        if first and needs.blocks:
            for b_in, b_out in zip(block_ids[:-1], block_ids[1:]):
                f_in, f_out = values.get(b_in), values.get(b_out)
                if f_in is None or f_out is None or not f_out.requires_grad or not f_in.requires_grad:
                    data.block_vjp.append((b_in, b_out, math.nan))
                    continue
                data.block_vjp.append((b_in, b_out, _block_sigma(f_in, f_out, gen, channel_last)))
        del values, logits
    data.codes = {nid: buf for nid, (buf, halves) in codes.items() if halves == 2}
    data.seconds = time.perf_counter() - start
    return data

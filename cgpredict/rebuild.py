"""CG → executable ``torch.nn.Module``: :func:`cg_to_module` (also ``CG.to_module()``).

Why one module over 400 lines: one executable module per op type of the vocabulary; the table of op builders is the module.

Pipeline position: model → **CG → rebuilt module** → proxies (GenNAS / Eproxy) and search, which must
*run* a network that may only exist as a graph (an ONNX file, a mutated CG).

Every node becomes real computation with freshly initialised parameters (PyTorch's default init):

=================================  ======================================================================
CG node                            rebuilt as
=================================  ======================================================================
``input``                          the i-th argument of ``forward``
``conv``/``depthwise``/``grouped``  ``nn.Conv{1,2,3}d`` (``ConvTranspose*`` when ``attrs["transposed"]``,
                                   ``output_padding`` computed from the shapes)
``linear``                         ``nn.Linear(in, out, bias)``
``matmul``                         ``torch.matmul(a, b)``
``batch_norm``                     ``nn.BatchNorm{1,2,3}d`` (affine iff the node has parameters)
``layer_norm``                     by ``source_op``: ``nn.GroupNorm(1, C)`` for group norm (the group
                                   count is not recorded), ``nn.InstanceNorm*d`` for instance norm,
                                   ``nn.RMSNorm`` for RMS norm, else ``nn.LayerNorm(weight_shape)``
activations                        the ``torch.nn.functional`` function (softmax over the last dim)
``add`` / ``mul``                  ``a + b`` / ``a * b``; with one activation input: plus / times a
                                   learned tensor when the node owns parameters (its shape inferred
                                   from the count), else ``+ 0`` / ``* 1``
``concat``                         ``torch.cat`` (``torch.stack`` when the inputs have one dim fewer);
                                   one input plus parameters → a learned token concatenated in front
``split``                          ``torch.split(x, len, dim)[k]`` / ``torch.unbind`` for split-like
                                   sources (``index`` = output number; earlier chunks assumed of equal
                                   length), ``x.select`` when the rank drops, else ``x.narrow(dim,
                                   index, len)`` (``index`` = start; a strided slice becomes a
                                   contiguous one of the same length)
``max_pool``/``avg_pool``          ``F.*_pool{1,2,3}d`` (adaptive ones via ``F.adaptive_*``)
``global_pool``                    ``F.adaptive_{avg,max}_pool*d(x, 1)``, or ``mean``/``amax`` over the
                                   spatial dims when the output drops them
``mean``                           ``x.mean(dims)``
``reshape``                        ``x.reshape(N, *out_shape[1:])``. A collapsed permute/transpose is
                                   rebuilt as a plain reshape: same shapes, different element order —
                                   fine for proxies and search, not for reusing trained weights
``pad``                            ``F.pad(x, pad, mode)``
``upsample``                       ``F.interpolate(x, size=out spatial size, mode)``
``sdpa``                           ``F.scaled_dot_product_attention(q, k, v[, mask])``
``identity`` / ``zero``            modules with ``cg_op`` set (recorded back as one node each)
``output``                         ``forward`` returns its input (a tuple when there are several)
``unknown``                        an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` from the configuration its
                                   converter recorded (``attrs["rnn"]``), returning the sequence output;
                                   any other: :class:`RebuildError` naming the node and its ``source_op``
=================================  ======================================================================

A weighted node whose ``params`` is 0 although its layer has weights (a weight shared with an
earlier node) gets its weights as buffers, so ``CG.params`` is reproduced. Converting the rebuilt
module with :func:`cgpredict.converters.from_torch` gives the same op histogram, MACs and parameter
count; the structural hash differs only where the table above loses information (a collapsed
permute, a strided slice, an unknown group count).

:class:`RebuiltModule` can also return the outputs of chosen nodes (``forward_nodes``), which the
proxies use to read stage taps and per-node statistics aligned with ``cg.nodes``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cgpredict.cg import CG, Node
from cgpredict.errors import CGConversionError

__all__ = ["RebuildError", "RebuiltModule", "cg_to_module"]

_SPLIT_SOURCES = frozenset({
    "split", "chunk", "unbind", "split_with_sizes", "tensor_split", "unsafe_split", "unsafe_chunk",
    "split_", "chunk_",
})


#: Recurrent layers :meth:`RebuiltModule._rnn` rebuilds: ``source_op`` → (module class, fixed options).
_RNN_MODULES: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    "lstm": (nn.LSTM, {}), "gru": (nn.GRU, {}), "rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, {"nonlinearity": "relu"})}


class RebuildError(CGConversionError, ValueError):
    """A CG node cannot be rebuilt as executable PyTorch (the message names the node)."""


class _Zero(nn.Module):
    """A ``zero`` edge: zeros of the recorded per-sample output shape (recorded as one node)."""

    cg_op = "zero"

    def __init__(self, out_shape: tuple[int, ...], in_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.in_shape = tuple(in_shape) if in_shape is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * 0`` when shapes agree (keeps the autograd graph), else new zeros; spatial sides
        recorded as an exact stride of the input's follow an input of another size."""
        shape = list(self.out_shape[1:])
        if self.in_shape is not None and len(self.in_shape) == x.dim() == len(self.out_shape) >= 3:
            for d in range(2, x.dim()):
                side_in, side_out = int(self.in_shape[d]), int(self.out_shape[d])
                if side_out and side_in % side_out == 0 and int(x.shape[d]) != side_in:
                    shape[d - 1] = -(-int(x.shape[d]) // (side_in // side_out))
        if tuple(x.shape[1:]) == tuple(shape):
            return x.mul(0.0)
        return x.new_zeros((x.shape[0], *shape))


class _Identity(nn.Module):
    """An ``identity`` edge (recorded as one node)."""

    cg_op = "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns ``x``."""
        return x


def _where(node: Node) -> str:
    return f"node {node.id} ({node.op}, name {node.name!r}, source_op {node.source_op!r})"


def _param_shape(per_sample: tuple[int, ...], count: int) -> tuple[int, ...] | None:
    """A shape broadcastable to ``(1, *per_sample)`` holding ``count`` elements, or ``None``."""
    if count <= 0:
        return None
    if count == 1:
        return (1,)
    if math.prod(per_sample) == count:
        return (1, *per_sample)
    # channel vector of an (N, C, ...) tensor, e.g. ConvNeXt's layer scale (C, 1, 1)
    if per_sample and per_sample[0] == count:
        return (1, count) + (1,) * (len(per_sample) - 1)
    for start in range(1, len(per_sample)):  # a trailing block of dims, e.g. a bias over (L, C)
        if math.prod(per_sample[start:]) == count:
            return (1,) + (1,) * start + tuple(per_sample[start:])
    return None


def _to_buffers(module: nn.Module) -> None:
    """Turn every parameter of ``module`` into a buffer (a weight shared with an earlier node)."""
    for sub in module.modules():
        for pname, p in list(sub._parameters.items()):
            if p is None:
                continue
            del sub._parameters[pname]
            sub.register_buffer(pname, p.detach().clone())


def _module_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _channels_last_pays(x: torch.Tensor) -> bool:
    """Whether a 2-D pooling of ``x`` is worth running on a channels-last copy (CPU, 8+ channels)."""
    return x.dim() == 4 and x.device.type == "cpu" and x.shape[1] >= 8 and x.is_contiguous()


class _MaxPool2dCL(torch.autograd.Function):
    """``F.max_pool2d`` computed on a channels-last copy of a contiguous CPU input (PyTorch's
    channels-last kernel scans each window in the same order, so values *and* argmax indices are
    identical, 3-5× faster); the backward is PyTorch's own max-pool backward on those indices."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
                ceil: bool) -> torch.Tensor:
        out, idx = torch.ops.aten.max_pool2d_with_indices(x.contiguous(memory_format=torch.channels_last),
                                                          kernel, stride, padding, dilation, ceil)
        idx = idx.contiguous()
        ctx.save_for_backward(x, idx)
        ctx.args = (kernel, stride, padding, dilation, ceil)
        return out.contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        x, idx = ctx.saved_tensors
        return (torch.ops.aten.max_pool2d_with_indices_backward(grad, x, *ctx.args, idx),) + (None,) * 5


class _AvgPool2dCL(torch.autograd.Function):
    """``F.avg_pool2d`` (``count_include_pad=True``) computed, forward and backward, on channels-last
    copies of a contiguous CPU input: the same window sums in the same order, 3-5× faster."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kernel: tuple, stride: tuple, padding: tuple, ceil: bool) -> torch.Tensor:
        x_cl = x.contiguous(memory_format=torch.channels_last)
        ctx.save_for_backward(x_cl)
        ctx.args = (kernel, stride, padding, ceil)
        return F.avg_pool2d(x_cl, kernel, stride, padding, ceil_mode=ceil).contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        (x_cl,) = ctx.saved_tensors
        kernel, stride, padding, ceil = ctx.args
        g = torch.ops.aten.avg_pool2d_backward(grad.contiguous(memory_format=torch.channels_last), x_cl, kernel,
                                               stride, padding, ceil, True, None)
        return (g.contiguous(),) + (None,) * 4


class RebuiltModule(nn.Module):
    """An executable network rebuilt from a CG (see the module docstring for the per-op rules).

    Attributes:
        cg: the source graph (not copied; do not mutate it while the module is in use).
        layers: ``nn.ModuleDict`` of the nodes that own a module, keyed ``"n<node id>"``.
        tokens: ``nn.ParameterDict`` of learned tensors of ``add``/``mul``/``concat`` nodes.
        fast_pooling: run 2-D max/avg pooling of CPU tensors through channels-last copies (the same
            values and gradients, several times faster; first-order autograd only, and not for
            export or tracing). Off by default; the training-free proxy bank turns it on.
    """

    def __init__(self, cg: CG) -> None:
        super().__init__()
        self.cg = cg
        self.fast_pooling = False
        self.layers = nn.ModuleDict()
        self.tokens = nn.ParameterDict()
        self._fns: list[Any] = []
        self._inputs = [n.id for n in cg.nodes if n.op == "input"]
        self._uses = [0] * len(cg.nodes)
        for node in cg.nodes:
            for src in node.inputs:
                self._uses[src] += 1
        for node in cg.nodes:
            self._fns.append(self._build(node))

    # ------------------------------------------------------------------ construction
    def _layer(self, node: Node, module: nn.Module) -> Any:
        if node.params == 0 and _module_params(module) > 0:
            _to_buffers(module)
        key = f"n{node.id}"
        self.layers[key] = module
        return lambda m, xs, k=key: m.layers[k](xs[0])

    def _build(self, node: Node) -> Any:  # noqa: C901 - one branch per op type
        op = node.op
        ins = [tuple(s) for s in node.in_shapes]
        out = tuple(node.out_shape)
        if op in ("input", "output"):
            return None
        if op == "unknown":
            if node.source_op in _RNN_MODULES and isinstance(node.attrs.get("rnn"), dict):
                return self._rnn(node)
            raise RebuildError(f"cannot rebuild {_where(node)} of CG {self.cg.name!r}: unknown op "
                               f"{node.source_op!r} has no executable meaning")
        if op in ("conv", "depthwise_conv", "grouped_conv"):
            return self._conv(node)
        if op == "linear":
            if node.weight_shape is None or len(node.weight_shape) < 2:
                raise RebuildError(f"cannot rebuild {_where(node)}: a linear node needs weight_shape (out, in)")
            o, i = int(node.weight_shape[0]), int(node.weight_shape[-1])
            if ins[0][-1] != i:
                raise RebuildError(f"cannot rebuild {_where(node)}: input's last dim {ins[0][-1]} != weight in {i}")
            return self._layer(node, nn.Linear(i, o, bias=node.bias))
        if op == "matmul":
            return lambda m, xs: torch.matmul(xs[0], xs[1] if len(xs) > 1 else xs[0])
        if op == "batch_norm":
            c = int(ins[0][1]) if len(ins[0]) > 1 else int(ins[0][-1])
            cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}.get(len(ins[0]))
            if cls is None:
                raise RebuildError(f"cannot rebuild {_where(node)}: batch norm of a rank-{len(ins[0])} tensor")
            return self._layer(node, cls(c, affine=node.params > 0))
        if op == "layer_norm":
            return self._norm(node)
        if op == "relu" and node.attrs.get("negative_slope"):
            slope = float(node.attrs["negative_slope"])
            return lambda m, xs, slope=slope: F.leaky_relu(xs[0], slope)
        if op in ("relu", "relu6", "gelu", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh"):
            fn = getattr(F, op) if op not in ("sigmoid", "tanh") else getattr(torch, op)
            return lambda m, xs, fn=fn: fn(xs[0])
        if op == "softmax":
            return lambda m, xs: F.softmax(xs[0], dim=-1)
        if op in ("add", "mul"):
            return self._binary(node)
        if op == "concat":
            return self._concat(node)
        if op == "split":
            return self._split(node)
        if op in ("max_pool", "avg_pool"):
            return self._pool(node)
        if op == "global_pool":
            mode = node.attrs.get("mode", "avg")
            nd = len(ins[0]) - 2
            if len(out) == len(ins[0]):
                fn = getattr(F, f"adaptive_{'max' if mode == 'max' else 'avg'}_pool{nd}d", None)
                if fn is None:
                    raise RebuildError(f"cannot rebuild {_where(node)}: global pooling over {nd} dims")
                return lambda m, xs, fn=fn: fn(xs[0], 1)
            dims = tuple(range(2, len(ins[0])))
            if mode == "max":
                return lambda m, xs: torch.amax(xs[0], dim=dims)
            return lambda m, xs: xs[0].mean(dims)
        if op == "mean":
            dims = tuple(int(d) for d in node.attrs.get("dims", range(1, len(ins[0]))))
            keep = len(out) == len(ins[0])
            return lambda m, xs: xs[0].mean(dims, keepdim=keep)
        if op == "reshape":
            return self._reshape(node)
        if op == "pad":
            pad = [int(p) for p in node.attrs.get("pad", [])]
            mode = str(node.attrs.get("mode", "constant"))
            return lambda m, xs: F.pad(xs[0], pad, mode=mode)
        if op == "upsample":
            mode = str(node.attrs.get("mode", "nearest"))
            nd = len(out) - 2
            if mode in ("linear", "bilinear", "trilinear"):
                mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]
            size = tuple(int(s) for s in out[2:])
            return lambda m, xs: F.interpolate(xs[0], size=size, mode=mode)
        if op == "sdpa":
            causal = bool(node.attrs.get("is_causal", False))
            return lambda m, xs: F.scaled_dot_product_attention(
                xs[0], xs[1], xs[2], attn_mask=xs[3] if len(xs) > 3 else None, is_causal=causal)
        if op == "identity":
            return self._layer(node, _Identity())
        if op == "zero":
            return self._layer(node, _Zero(out, ins[0] if ins else None))
        raise RebuildError(f"cannot rebuild {_where(node)}: op {op!r} has no rebuild rule")

    def _rnn(self, node: Node) -> Any:
        """A recurrent layer (``unknown`` node of source ``lstm``/``gru``/``rnn_*`` whose converter
        recorded its configuration in ``attrs["rnn"]``): the torch module, its sequence output."""
        cfg = node.attrs["rnn"]
        ins = [tuple(s) for s in node.in_shapes]
        if not ins or len(ins[0]) != 3:
            raise RebuildError(f"cannot rebuild {_where(node)}: a recurrent layer over a rank-{len(ins[0]) if ins else 0} "
                               "input (a batched (N, T, C) or (T, N, C) sequence is needed)")
        cls, extra = _RNN_MODULES[node.source_op]
        proj = int(cfg.get("proj_size", 0))
        options = {**extra, "proj_size": proj} if proj else dict(extra)
        module = cls(ins[0][-1], int(cfg["hidden_size"]), num_layers=int(cfg["num_layers"]), bias=bool(cfg["bias"]),
                     batch_first=bool(cfg["batch_first"]), bidirectional=bool(cfg["bidirectional"]), **options)
        width = (proj or int(cfg["hidden_size"])) * (2 if cfg["bidirectional"] else 1)
        if tuple(node.out_shape)[-1:] != (width,):
            raise RebuildError(f"cannot rebuild {_where(node)}: its output {tuple(node.out_shape)} does not end in "
                               f"the {width} features its recorded configuration {cfg} gives")
        key = f"n{node.id}"
        self.layers[key] = module
        states = len(node.inputs) - 1  # initial states given as inputs: (h0, c0) for an LSTM, h0 otherwise

        def run(m: nn.Module, xs: list[torch.Tensor], k: str = key) -> torch.Tensor:
            layer = m.layers[k]
            with warnings.catch_warnings():  # torch's notice that oneDNN lacks LSTM projections: not the user's concern
                warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
                if states == 0:
                    return layer(xs[0])[0]
                return layer(xs[0], tuple(xs[1:]) if states > 1 else xs[1])[0]

        return run

    def _conv(self, node: Node) -> Any:
        ws = node.weight_shape
        ins = tuple(node.in_shapes[0])
        out = tuple(node.out_shape)
        if ws is None or len(ws) < 3:
            raise RebuildError(f"cannot rebuild {_where(node)}: a convolution needs weight_shape (out, in/g, k...)")
        nd = len(ws) - 2
        kernel = tuple(int(k) for k in (node.kernel or ws[2:]))
        stride = tuple(node.stride or (1,) * nd)
        padding = tuple(node.padding or (0,) * nd)
        dilation = tuple(node.dilation or (1,) * nd)
        groups = int(node.groups)
        c_in = int(ins[1])
        if node.attrs.get("transposed"):
            c_out = int(ws[1]) * groups
            base = [(i - 1) * s - 2 * p + d * (k - 1) + 1
                    for i, s, p, d, k in zip(ins[2:], stride, padding, dilation, kernel)]
            out_pad = tuple(max(0, int(o) - b) for o, b in zip(out[2:], base))
            cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[nd]
            module = cls(c_in, c_out, kernel, stride=stride, padding=padding, output_padding=out_pad,
                         groups=groups, bias=node.bias, dilation=dilation)
        else:
            c_out = int(ws[0])
            if c_in != int(ws[1]) * groups:
                raise RebuildError(f"cannot rebuild {_where(node)}: input has {c_in} channels but the weight "
                                   f"{tuple(ws)} with groups={groups} expects {int(ws[1]) * groups}")
            cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd]
            module = cls(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=node.bias)
        return self._layer(node, module)

    def _norm(self, node: Node) -> Any:
        ins = tuple(node.in_shapes[0])
        ws = tuple(int(v) for v in (node.weight_shape or (ins[1],)))
        source = node.source_op.lower()
        affine = node.params > 0
        c = int(ins[1]) if len(ins) > 1 else int(ins[-1])
        if "group" in source or ("instance" not in source and "rms" not in source
                                 and tuple(ins[-len(ws):]) != ws and ws == (c,)):
            return self._layer(node, nn.GroupNorm(1, c, affine=affine))
        if "instance" in source:
            cls = {3: nn.InstanceNorm1d, 4: nn.InstanceNorm2d, 5: nn.InstanceNorm3d}[len(ins)]
            return self._layer(node, cls(c, affine=affine))
        if tuple(ins[-len(ws):]) != ws:
            raise RebuildError(f"cannot rebuild {_where(node)}: normalized shape {ws} is not the trailing "
                               f"shape of the input {ins}")
        if "rms" in source:
            return self._layer(node, nn.RMSNorm(ws, elementwise_affine=affine))
        bias = affine and node.params > math.prod(ws)
        return self._layer(node, nn.LayerNorm(ws, elementwise_affine=affine, bias=bias))

    def _binary(self, node: Node) -> Any:
        add = node.op == "add"
        if len(node.inputs) >= 2:
            if add:
                return lambda m, xs: xs[0] + xs[1]
            return lambda m, xs: xs[0] * xs[1]
        shape = _param_shape(tuple(node.out_shape[1:]), node.params)
        if shape is not None:
            init = torch.zeros(shape) if add else torch.ones(shape)
            key = f"n{node.id}"
            self.tokens[key] = nn.Parameter(init)
            if add:
                return lambda m, xs, k=key: xs[0] + m.tokens[k]
            return lambda m, xs, k=key: xs[0] * m.tokens[k]
        if add:
            return lambda m, xs: xs[0] + 0.0
        return lambda m, xs: xs[0] * 1.0

    def _concat(self, node: Node) -> Any:
        dim = int(node.attrs.get("dim", 1))
        out = tuple(node.out_shape)
        ins = [tuple(s) for s in node.in_shapes]
        if ins and all(len(s) == len(out) for s in ins):  # dim as seen on the batch-first shapes
            differ = [d for d in range(len(out)) if any(s[d] != out[d] for s in ins)]
            if len(differ) == 1:
                dim = differ[0]
        if all(len(s) == len(out) - 1 for s in ins):
            return lambda m, xs: torch.stack(list(xs), dim=dim)
        extra = out[dim] - sum(s[dim] for s in ins)
        if extra > 0:
            tok_shape = (1, *out[1:dim], extra, *out[dim + 1:])
            if node.params and math.prod(tok_shape) != node.params:
                raise RebuildError(f"cannot rebuild {_where(node)}: {node.params} parameters do not form a "
                                   f"token block of shape {tok_shape}")
            key = f"n{node.id}"
            if node.params:
                self.tokens[key] = nn.Parameter(torch.zeros(tok_shape))
                return lambda m, xs, k=key: torch.cat(
                    [m.tokens[k].expand(xs[0].shape[0], *tok_shape[1:]), *xs], dim=dim)
            self.register_buffer(f"tok_{key}", torch.zeros(tok_shape))  # a constant block
            return lambda m, xs, k=key: torch.cat(
                [getattr(m, f"tok_{k}").expand(xs[0].shape[0], *tok_shape[1:]), *xs], dim=dim)
        return lambda m, xs: torch.cat(list(xs), dim=dim)

    def _split(self, node: Node) -> Any:
        ins = tuple(node.in_shapes[0])
        out = tuple(node.out_shape)
        dim = int(node.attrs.get("dim", 0))
        index = int(node.attrs.get("index", 0))
        if not 0 <= dim < len(ins):
            raise RebuildError(f"cannot rebuild {_where(node)}: split dim {dim} outside the input rank {len(ins)}")
        source = node.source_op.lower().split("+")[-1]
        # the recorded dim refers to the traced tensor's own layout; shapes are written batch-first
        # (e.g. the (3, L, N, E) q/k/v stack of nn.MultiheadAttention), so check it against them
        if len(out) == len(ins) - 1:
            fits = [d for d in range(len(ins)) if ins[:d] + ins[d + 1:] == out and ins[d] > index]
            if fits and dim not in fits:
                dim = next((d for d in fits if d > 0), fits[0])
        elif len(out) == len(ins):
            differ = [d for d in range(len(ins)) if ins[d] != out[d]]
            if len(differ) == 1:
                dim = differ[0]
        if len(out) == len(ins) - 1:  # rank drops: select / unbind
            if source == "unbind":
                return lambda m, xs: torch.unbind(xs[0], dim)[index]
            return lambda m, xs: xs[0].select(dim, index)
        if len(out) != len(ins):
            raise RebuildError(f"cannot rebuild {_where(node)}: split from shape {ins} to {out}")
        length, total = int(out[dim]), int(ins[dim])
        if source in _SPLIT_SOURCES or source == "split" or node.source_op == "Split":
            start = index * length
            if start + length <= total:
                sizes = [length] * index + [length] + ([total - start - length] if total > start + length else [])
                return lambda m, xs: torch.split(xs[0], sizes, dim)[index]
            sizes = [total - length, length]  # the last, shorter chunk
            return lambda m, xs: torch.split(xs[0], sizes, dim)[1]
        start = min(index, total - length)
        if 0 < start and start + length == total:  # x[..., a:]: to the end at any input size
            return lambda m, xs: xs[0].narrow(dim, start, xs[0].shape[dim] - start)
        return lambda m, xs: xs[0].narrow(dim, start, length)

    def _pool(self, node: Node) -> Any:
        ins = tuple(node.in_shapes[0])
        out = tuple(node.out_shape)
        nd = len(ins) - 2
        kind = "max" if node.op == "max_pool" else "avg"
        if node.attrs.get("adaptive"):
            size = tuple(int(s) for s in node.attrs.get("output_size", out[2:]))
            fn = getattr(F, f"adaptive_{kind}_pool{nd}d")
            return lambda m, xs: fn(xs[0], size)
        kernel = tuple(node.kernel or (1,) * nd)
        stride = tuple(node.stride or kernel)
        padding = tuple(node.padding or (0,) * nd)
        ceil = bool(node.attrs.get("ceil_mode", False))
        if kind == "max":
            dilation = tuple(node.dilation or (1,) * nd)
            fn = getattr(F, f"max_pool{nd}d")
            if nd == 2:
                return lambda m, xs: (_MaxPool2dCL.apply(xs[0], kernel, stride, padding, dilation, ceil)
                                      if m.fast_pooling and _channels_last_pays(xs[0])
                                      else fn(xs[0], kernel, stride, padding, dilation, ceil_mode=ceil))
            return lambda m, xs: fn(xs[0], kernel, stride, padding, dilation, ceil_mode=ceil)
        fn = getattr(F, f"avg_pool{nd}d")
        if nd == 2:
            return lambda m, xs: (_AvgPool2dCL.apply(xs[0], kernel, stride, padding, ceil)
                                  if m.fast_pooling and _channels_last_pays(xs[0])
                                  else fn(xs[0], kernel, stride, padding, ceil_mode=ceil))
        return lambda m, xs: fn(xs[0], kernel, stride, padding, ceil_mode=ceil)

    def _reshape(self, node: Node) -> Any:
        ins = tuple(node.in_shapes[0])
        out = tuple(node.out_shape)
        per_in = math.prod(ins[1:]) if ins else 1
        per_out = math.prod(out[1:]) if out else 1
        if ins and out and per_in == per_out:
            tail = out[1:]
            return lambda m, xs: xs[0].reshape(xs[0].shape[0], *tail)
        if math.prod(ins) == math.prod(out):  # the batch is merged into another dim
            return lambda m, xs: xs[0].reshape(out)
        if len(ins) == len(out) and all(a in (1, b) for a, b in zip(ins[1:], out[1:])):
            tail = out[1:]
            return lambda m, xs: xs[0].expand(xs[0].shape[0], *tail)
        raise RebuildError(f"cannot rebuild {_where(node)}: reshape from {ins} to {out} changes the element count")

    # ------------------------------------------------------------------ execution
    def forward_nodes(self, *inputs: torch.Tensor, keep: Iterable[int] | None = None,
                      stop_after: int | None = None) -> dict[int, torch.Tensor]:
        """Run the graph and return ``{node id: output}`` for the nodes in ``keep`` (default: all).

        ``stop_after`` ends the pass once that node is computed (e.g. the final stage tap, so the
        classifier never runs).
        """
        if len(inputs) != len(self._inputs):
            raise ValueError(f"the rebuilt CG {self.cg.name!r} takes {len(self._inputs)} input(s), got {len(inputs)}")
        want = None if keep is None else set(keep)
        values: dict[int, torch.Tensor] = {}
        remaining = list(self._uses)
        kept: dict[int, torch.Tensor] = {}
        for nid, x in zip(self._inputs, inputs):
            values[nid] = x
            if want is None or nid in want:
                kept[nid] = x
        for node, fn in zip(self.cg.nodes, self._fns):
            if fn is None:
                continue
            y = fn(self, [values[i] for i in node.inputs])
            values[node.id] = y
            if want is None or node.id in want:
                kept[node.id] = y
            for src in node.inputs:  # free intermediate tensors early
                remaining[src] -= 1
                if remaining[src] == 0 and src in values:
                    del values[src]
            if stop_after is not None and node.id == stop_after:
                break
        return kept

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Run the network; returns the output tensor (a tuple when the CG has several outputs)."""
        out_node = self.cg.output_node
        values = self.forward_nodes(*inputs, keep=out_node.inputs)
        outs = tuple(values[i] for i in out_node.inputs)
        return outs[0] if len(outs) == 1 else outs

    def example_inputs(self, batch: int | None = None, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Seeded random inputs of the CG's input shapes (batch replaced when given)."""
        gen = torch.Generator().manual_seed(seed)
        out = []
        for nid in self._inputs:
            shape = tuple(self.cg.nodes[nid].out_shape)
            if batch is not None and shape:
                shape = (batch, *shape[1:])
            out.append(torch.randn(shape, generator=gen))
        return tuple(out)


def cg_to_module(cg: CG) -> RebuiltModule:
    """An executable ``torch.nn.Module`` rebuilt from ``cg`` with freshly initialised weights.

    Raises:
        RebuildError: a node cannot be rebuilt (an ``unknown`` op, inconsistent shapes); the message
            names the node id, op, name and ``source_op``.
        TypeError: ``cg`` is not a :class:`~cgpredict.cg.CG`.

    Example:
        >>> import torchvision
        >>> from cgpredict.converters import from_torch
        >>> cg = from_torch(torchvision.models.resnet18(), input_shape=(1, 3, 64, 64))
        >>> net = cg_to_module(cg)
        >>> tuple(net(torch.randn(2, 3, 64, 64)).shape)
        (2, 1000)
    """
    if not isinstance(cg, CG):
        raise TypeError(f"cg_to_module expects a cgpredict CG, got {type(cg).__name__}")
    check_rebuild_size(cg)
    return RebuiltModule(cg)


#: Most weight elements a rebuilt network may allocate (1e9 float32 = 4 GB; ViT-H/14 has 0.63e9).
MAX_REBUILD_PARAMS = 1_000_000_000
#: Most elements of one activation (per sample) a rebuilt network may produce.
MAX_ACTIVATION = 2**31


def check_rebuild_size(cg: CG, max_params: int = MAX_REBUILD_PARAMS, max_activation: int = MAX_ACTIVATION) -> None:
    """Refuse, before any allocation, a CG whose weights or activations are too large to rebuild.

    A CG file is data: a schema-valid one can still ask for a 10^12-element weight. Raises
    :class:`RebuildError` naming the node (the largest activation) or the total.
    """
    total = 0
    for node in cg.nodes:
        if node.weight_shape:
            total += math.prod(int(v) for v in node.weight_shape)
        per_sample = math.prod(int(v) for v in node.out_shape[1:]) if node.out_shape else 0
        if per_sample > max_activation:
            raise RebuildError(f"node {node.id} ({node.op} {node.name!r}) outputs {per_sample:,} elements per sample, "
                               f"over the rebuild limit of {max_activation:,}; refusing to allocate it")
    if total > max_params:
        raise RebuildError(f"CG {cg.name!r} holds {total:,} weight elements, over the rebuild limit of "
                           f"{max_params:,} (cgpredict.rebuild.MAX_REBUILD_PARAMS); refusing to allocate it")

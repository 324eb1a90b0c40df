"""Shared lowering of canonical PyTorch op records to CG nodes (used by every tracing method).

Why one module over 400 lines: one lowering rule per recorded torch op; the rules share the batch-tracking state and read as one table.

Pipeline position: model → **CG** (this module) → features → predictor → ranking/search.

Both tracing sources of :func:`cgpredict.converters.from_torch` — the eager ``TorchFunctionMode``
recorder (:mod:`cgpredict.converters._torch_eager`) and the ``torch.export`` graph walker
(:mod:`cgpredict.converters._torch_export`) — turn what they see into the same canonical record:

``Lowerer.call(key, args, outs, module=..., source=...)``

* ``key``: a canonical op key from :func:`~cgpredict.converters._torch_records.canonical_key`
  (``"conv"``, ``"linear"``, ``"add"``, …), derived from the bare operator name (``conv2d``,
  ``add_``, ``__iadd__`` …);
* ``args``: arguments bound to their canonical names (``input``, ``weight``, ``stride`` …) by
  :func:`~cgpredict.converters._torch_records.bind_args`, with every tensor replaced by a
  :class:`~cgpredict.converters._torch_records.Ref` (a source-specific identity plus its shape);
* ``outs``: the output tensors as :class:`Ref` objects (``None`` for non-tensor outputs).

Lowering then goes through ONE table (:data:`_HANDLERS`), so the two sources cannot drift apart.
Output shapes are written batch-first (:mod:`cgpredict.converters._torch_batch`).
Values are tracked as *activations* (produced from a network input, carrying a CG node id) or
*static* values (parameters, buffers, constants, and anything computed only from them). A static
value remembers which parameters it was derived from; those parameters are folded into the
``params`` of the first node that consumes it, each parameter counted once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cgpredict.cg import CG, CGBuilder
from cgpredict.converters._torch_batch import canonical_shape, norm_dim, track_batch
from cgpredict.converters._conventions import einsum_is_matmul, split_attrs
from cgpredict.converters._torch_records import UPSAMPLE_MODES, Ref, iter_refs, unknown_name
from cgpredict.ops import conv_op_type

__all__ = ["Lowerer", "LoweringError"]


@dataclass
class _Val:
    """What the lowerer knows about one tensor value."""

    node: int | None  # CG node id for activations, None for static values
    params: frozenset[str] = field(default_factory=frozenset)  # parameters it was derived from
    # where the batch sits: the product of the (row-major) index extents outside of it, e.g. 1 for
    # (N, C, H, W), L for (L, N, E) and for (L·N, E); None when unknown
    bpre: int | None = 1


# ---------------------------------------------------------------------------- helpers
def _tuple(value: Any, n: int, default: int) -> tuple[int, ...]:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return (default,) * n
    if isinstance(value, (list, tuple)):
        vals = [int(v) for v in value]
        return tuple(vals * n) if len(vals) == 1 else tuple(vals)
    return (int(value),) * n


def _norm_dim(dim: int, rank: int) -> int:
    return norm_dim(dim, rank)


class LoweringError(RuntimeError):
    """A record could not be lowered (carries the op and module for the error message)."""


class Lowerer:
    """Turns a stream of canonical records into a :class:`CG` (see module docstring)."""

    def __init__(self, name: str, param_numel: dict[str, int]) -> None:
        self.builder = CGBuilder(name=name)
        self.vals: dict[Any, _Val] = {}
        self.param_numel = param_numel
        self.counted: set[str] = set()
        self.batch = 1
        self._next_bpre: dict[Any, int | None] = {}

    # ------------------------------------------------------------------ value registration
    def add_input(self, ref: Ref, index: int, count: int) -> None:
        """Register the ``index``-th of ``count`` network inputs as an ``input`` node."""
        name = "input" if count == 1 else f"input_{index}"
        if index == 0 and ref.shape:
            self.batch = max(1, int(ref.shape[0]))
        node = self.builder.add("input", [], ref.shape, name=name, source_op="input")
        self.vals[ref.key] = _Val(node, bpre=1 if ref.shape else None)

    def add_static(self, ref: Ref, param: str | None = None) -> None:
        """Register a parameter (by canonical name), buffer or constant tensor."""
        self.vals[ref.key] = _Val(None, frozenset((param,)) if param else frozenset())

    def alias(self, new: Ref, old: Ref) -> None:
        """``new`` is the same value as ``old`` (a no-op such as ``contiguous`` or ``getitem``)."""
        self.vals[new.key] = self.val(old)

    def val(self, ref: Ref) -> _Val:
        """The tracked value of ``ref`` (untracked tensors are constants)."""
        v = self.vals.get(ref.key)
        if v is None:
            v = _Val(None)
            self.vals[ref.key] = v
        return v

    def is_act(self, ref: Any) -> bool:
        """Whether ``ref`` is a tensor computed from a network input."""
        return isinstance(ref, Ref) and self.val(ref).node is not None

    def set_node(self, ref: Ref, node: int, bpre: int | None = 1) -> None:
        """Record that ``ref`` is the output of CG node ``node`` (batch location ``bpre``)."""
        self.vals[ref.key] = _Val(node, bpre=bpre)

    def canonical_shape(self, shape: tuple[int, ...], bpre: int | None) -> tuple[int, ...]:
        """``shape`` written batch-first (see :mod:`cgpredict.converters._torch_batch`)."""
        return canonical_shape(shape, bpre, self.batch)

    # ------------------------------------------------------------------ nodes
    def emit(self, op: str, inputs: list[Ref], out: Ref, *, module: str, source: str,
             statics: Iterable[Ref] = (), extra_params: Iterable[str] = (), **fields: Any) -> int:
        """Add a CG node reading the activations ``inputs``.

        Parameters that the static arguments ``statics`` derive from, and the named
        ``extra_params``, are folded into the node's ``params`` unless already counted.
        """
        params = 0
        names = [p for ref in statics for p in sorted(self.val(ref).params)] + list(extra_params)
        for p in names:
            if p not in self.counted:
                self.counted.add(p)
                params += self.param_numel.get(p, 0)
        if out.key in self._next_bpre:
            bpre = self._next_bpre[out.key]
        else:
            bpre = self.val(inputs[0]).bpre if inputs else 1
        node = self.builder.add(
            op, [self.val(r).node for r in inputs], self.canonical_shape(out.shape, bpre), name=module,
            source_op=source, params=params, **fields,
        )
        self.set_node(out, node, bpre)
        return node

    def call(self, key: str | None, name: str, args: dict[str, Any], outs: list[Ref | None],
             *, module: str = "") -> None:
        """Lower one canonical record (see module docstring)."""
        refs = list(iter_refs(args))
        acts = [r for r in refs if self.is_act(r)]
        tensor_outs = [o for o in outs if o is not None]
        if not tensor_outs or key == "ignore":
            return
        if not acts or key == "factory":
            derived = frozenset().union(*(self.val(r).params for r in refs)) if key != "factory" else frozenset()
            for o in tensor_outs:
                self.vals[o.key] = _Val(None, derived)
            return
        handler = _HANDLERS.get(key or "", _unknown)
        ctx = _Ctx(self, key or "", name, args, outs, acts, refs, module)
        try:
            x = ctx.x
            b = self.val(x).bpre
            self._next_bpre = {o.key: track_batch(key or "", name, args, x, b, o, self.batch)
                               for o in tensor_outs}
            handler(ctx)
        except LoweringError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise LoweringError(f"cannot lower {name!r} in module {module or '<root>'!r}: {exc}") from exc

    def finish(self, outputs: list[Ref], meta: dict[str, Any]) -> CG:
        """Add the ``output`` node and build the CG."""
        acts = [o for o in outputs if self.is_act(o)]
        if not acts:
            raise LoweringError("the model's output does not depend on its input (no traced path)")
        first = self.builder.nodes[self.val(acts[0]).node].out_shape
        self.builder.add("output", [self.val(o).node for o in acts], first, name="output",
                         source_op="output")
        self.builder.meta.update(meta)
        return self.builder.build()

@dataclass
class _Ctx:
    low: Lowerer
    key: str
    name: str
    args: dict[str, Any]
    outs: list[Ref | None]
    acts: list[Ref]
    refs: list[Ref]
    module: str

    def get(self, name: str, default: Any = None) -> Any:
        value = self.args.get(name, default)
        return default if value is None else value

    @property
    def x(self) -> Ref:
        first = self.args.get("input")
        return first if isinstance(first, Ref) and self.low.is_act(first) else self.acts[0]

    @property
    def out(self) -> Ref:
        for o in self.outs:
            if o is not None:
                return o
        raise LoweringError(f"{self.name} has no tensor output")

    def statics(self) -> list[Ref]:
        return [r for r in self.refs if not self.low.is_act(r)]

    def emit(self, op: str, inputs: list[Ref] | None = None, out: Ref | None = None, **fields: Any) -> int:
        return self.low.emit(op, self.acts if inputs is None else inputs, out or self.out,
                             module=self.module, source=self.name, statics=self.statics(), **fields)

    def alias_all(self, src: Ref) -> None:
        for o in self.outs:
            if o is not None:
                self.low.alias(o, src)


# ---------------------------------------------------------------------------- handlers
def _unknown(c: _Ctx) -> None:
    first = None
    for o in c.outs:
        if o is None:
            continue
        node = c.low.emit("unknown", c.acts, o, module=c.module, source=unknown_name(c.name),
                          statics=c.statics() if first is None else ())
        first = node if first is None else first


def _conv(c: _Ctx) -> None:
    x, w = c.x, c.args.get("weight")
    if not isinstance(w, Ref):
        raise LoweringError("convolution without a weight tensor")
    transposed = c.key == "conv_t" or bool(c.get("transposed", False))
    kernel = tuple(w.shape[2:])
    nd = len(kernel)
    stride = _tuple(c.get("stride"), nd, 1)
    dilation = _tuple(c.get("dilation"), nd, 1)
    padding = c.get("padding", 0)
    if isinstance(padding, str):
        padding = tuple(0 if padding == "valid" else d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    padding = _tuple(padding, nd, 0)
    groups = int(c.get("groups", 1))
    inputs = [x] + [r for r in c.acts if r is not x]
    c.emit(conv_op_type(int(x.shape[1]), groups), inputs, weight_shape=w.shape, kernel=kernel,
           stride=stride, padding=padding, dilation=dilation, groups=groups,
           bias=c.args.get("bias") is not None, attrs={"transposed": True} if transposed else {})


def _linear(c: _Ctx) -> None:
    w = c.args.get("weight")
    if c.low.is_act(w):
        c.emit("matmul", [c.x, w])
        return
    c.emit("linear", [c.x], weight_shape=w.shape if isinstance(w, Ref) else None,
           bias=c.args.get("bias") is not None)


def _matmul_like(c: _Ctx, a: Any, b: Any, bias: bool) -> None:
    if c.low.is_act(a) and c.low.is_act(b):
        c.emit("matmul", [a, b])
    elif c.low.is_act(a):  # x @ W: W is (in, out)
        ws = b.shape if isinstance(b, Ref) else ()
        ws = (ws[-1], ws[-2]) if len(ws) >= 2 else (1, ws[0]) if ws else None
        c.emit("linear", [a], weight_shape=ws, bias=bias)
    else:  # W @ x: W is (out, in)
        ws = a.shape if isinstance(a, Ref) else ()
        ws = (ws[-2], ws[-1]) if len(ws) >= 2 else (1, ws[0]) if ws else None
        c.emit("linear", [b], weight_shape=ws, bias=bias)


def _matmul(c: _Ctx) -> None:
    a, b = c.args.get("input"), c.args.get("other")
    if c.key == "rmatmul":
        a, b = b, a
    _matmul_like(c, a, b, False)


def _addmm(c: _Ctx) -> None:
    _matmul_like(c, c.args.get("mat1"), c.args.get("mat2"), c.args.get("input") is not None)


def _batch_norm(c: _Ctx) -> None:
    x = c.x
    c.emit("batch_norm", [x], weight_shape=(int(x.shape[1]),) if len(x.shape) > 1 else x.shape[-1:],
           bias=c.args.get("bias") is not None)


def _norm(c: _Ctx) -> None:
    x, w = c.x, c.args.get("weight")
    if isinstance(w, Ref):
        ws = w.shape
    elif c.args.get("normalized_shape") is not None:
        ns = c.args["normalized_shape"]
        ws = tuple(int(v) for v in (ns if isinstance(ns, (list, tuple)) else [ns]))
    else:
        ws = (int(x.shape[1]),)
    c.emit("layer_norm", [x], weight_shape=ws, bias=c.args.get("bias") is not None)


def _activation(op: str) -> Callable[[_Ctx], None]:
    def handler(c: _Ctx) -> None:
        c.emit(op, [c.x])

    return handler


def _leaky_relu(c: _Ctx) -> None:
    """``leaky_relu`` is a ``relu`` node whose ``attrs["negative_slope"]`` keeps the slope (0.01 by default)."""
    c.emit("relu", [c.x], attrs={"negative_slope": float(c.get("negative_slope", 0.01))})


def _binary(op: str) -> Callable[[_Ctx], None]:
    def handler(c: _Ctx) -> None:
        c.emit(op, list(c.acts))

    return handler


def _cat(c: _Ctx) -> None:
    if len(c.acts) == 1 and not c.statics():  # cat of one tensor is a copy (ONNX: Identity)
        c.alias_all(c.acts[0])
        return
    out = c.out
    c.emit("concat", list(c.acts), attrs={"dim": _norm_dim(c.get("dim", 0), len(out.shape))})


def _split(c: _Ctx) -> None:
    x = c.x
    dim = _norm_dim(c.get("dim", 0), len(x.shape))
    first = True
    start = 0
    for k, o in enumerate(c.outs):
        if o is None:
            continue
        keeps_rank = len(o.shape) == len(x.shape)
        c.low.emit("split", [x], o, module=c.module, source=c.name,
                   statics=c.statics() if first else (), attrs=split_attrs(dim, k, start if keeps_rank else k))
        start += int(o.shape[dim]) if keeps_rank else 1
        first = False


def _select(c: _Ctx) -> None:
    x = c.x
    dim = _norm_dim(c.get("dim", 0), len(x.shape))
    if c.key == "select":
        index = int(c.get("index", 0))
    else:
        index = int(c.get("start", 0))
    if index < 0:
        index += x.shape[dim]
    index = max(0, min(index, x.shape[dim]))
    if c.key != "select" and tuple(c.out.shape) == tuple(x.shape):
        c.alias_all(x)
        return
    c.emit("split", [x], attrs={"dim": dim, "index": index})


def _pool(op: str) -> Callable[[_Ctx], None]:
    def handler(c: _Ctx) -> None:
        x = c.x
        nd = len(x.shape) - 2
        kernel = _tuple(c.get("kernel_size"), nd, 1)
        stride = c.get("stride")
        stride = kernel if stride is None or (isinstance(stride, (list, tuple)) and not stride) else _tuple(stride, nd, 1)
        fields: dict[str, Any] = {
            "kernel": kernel, "stride": stride, "padding": _tuple(c.get("padding"), nd, 0),
        }
        if op == "max_pool":
            fields["dilation"] = _tuple(c.get("dilation"), nd, 1)
        attrs = {"ceil_mode": True} if c.get("ceil_mode", False) else {}
        out = c.outs[0] if c.outs[0] is not None else c.out
        c.low.emit(op, [x], out, module=c.module, source=c.name, statics=c.statics(), attrs=attrs, **fields)
        for o in c.outs[1:]:  # indices of max pooling: a constant
            if o is not None:
                c.low.add_static(o)

    return handler


def _adaptive(mode: str) -> Callable[[_Ctx], None]:
    def handler(c: _Ctx) -> None:
        x = c.x
        out = c.outs[0] if c.outs[0] is not None else c.out
        ins, outs = tuple(x.shape[2:]), tuple(out.shape[2:])
        if all(o == 1 for o in outs):
            c.low.emit("global_pool", [x], out, module=c.module, source=c.name, statics=c.statics(),
                       attrs={"mode": mode})
        else:
            kernel = tuple(math.ceil(i / o) for i, o in zip(ins, outs))
            stride = tuple(max(1, i // o) for i, o in zip(ins, outs))
            c.low.emit(f"{mode}_pool", [x], out, module=c.module, source=c.name, statics=c.statics(),
                       kernel=kernel, stride=stride, padding=(0,) * len(kernel),
                       **({"dilation": (1,) * len(kernel)} if mode == "max" else {}),
                       attrs={"adaptive": True, "output_size": list(outs)})
        for o in c.outs[1:]:
            if o is not None:
                c.low.add_static(o)

    return handler


def _reduce(c: _Ctx) -> None:
    x = c.x
    rank = len(x.shape)
    dim = c.args.get("dim")
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        dims = set(range(rank))
    else:
        dims = {_norm_dim(d, rank) for d in (dim if isinstance(dim, (list, tuple)) else [dim])}
    if c.key in ("mean", "amax") and rank >= 3 and dims == set(range(2, rank)):
        c.emit("global_pool", [x], attrs={"mode": "avg" if c.key == "mean" else "max"})
    elif c.key in ("mean", "sum"):
        c.emit("mean", [x], attrs={"dims": sorted(dims)})
    else:
        _unknown(c)


def _reshape(c: _Ctx) -> None:
    # only the first operand flows: the other operand of expand_as/view_as only supplies a shape
    c.emit("reshape", [c.x])


def _alias(c: _Ctx) -> None:
    c.alias_all(c.x)


def _pad(c: _Ctx) -> None:
    pad = c.get("pad", [])
    mode = c.get("mode", "constant")
    if c.name.startswith("reflection_pad"):
        mode = "reflect"
    elif c.name.startswith("replication_pad"):
        mode = "replicate"
    elif c.name.startswith("circular_pad"):
        mode = "circular"
    c.emit("pad", [c.x], attrs={"pad": [int(p) for p in pad], "mode": str(mode)})


def _upsample(c: _Ctx) -> None:
    x, out = c.x, c.out
    mode = UPSAMPLE_MODES.get(c.name.rstrip("_"), c.get("mode", "nearest"))
    ins, outs = tuple(x.shape[2:]), tuple(out.shape[2:])
    c.emit("upsample", [x], attrs={"mode": str(mode), "size": list(outs),
                                   "scale": [round(o / i, 6) if i else 0.0 for i, o in zip(ins, outs)]})


def _sdpa(c: _Ctx) -> None:
    q, k, v = c.args.get("query"), c.args.get("key"), c.args.get("value")
    qkv = [r for r in (q, k, v) if c.low.is_act(r)]
    extra = [r for r in c.acts if all(r is not s for s in qkv)]
    out = c.outs[0] if c.outs[0] is not None else c.out
    attrs = {"is_causal": True} if c.get("is_causal", False) else {}
    c.low.emit("sdpa", qkv + extra, out, module=c.module, source=c.name, statics=c.statics(), attrs=attrs)
    for o in c.outs[1:]:
        if o is not None:
            c.low.add_static(o)


def _einsum(c: _Ctx) -> None:
    """Two-activation einsum contracting only operand 0's last index (a batched matmul) → matmul."""
    eq = c.args.get("equation", c.args.get("arg0"))
    ops = list(iter_refs(c.args))
    if einsum_is_matmul(eq) and len(ops) == 2 and len(c.acts) == 2:
        c.emit("matmul", ops)
        return
    _unknown(c)


def _im2col(c: _Ctx) -> None:
    """``im2col`` (``nn.Unfold``) / ``col2im`` (``nn.Fold``) → ``reshape`` (0 MACs), op kept in attrs."""
    attrs: dict[str, Any] = {"op": c.name.rstrip("_")}
    for key in ("kernel_size", "dilation", "padding", "stride", "output_size"):
        value = c.args.get(key)
        if isinstance(value, (int, list, tuple)) and not isinstance(value, bool):
            attrs[key] = list(value) if isinstance(value, (list, tuple)) else [value]
    c.emit("reshape", [c.x], attrs=attrs)


def rnn_steps(shape: tuple[int, ...], batch_first: bool) -> int:
    """Time steps of a recurrent layer's input: ``(T, N, C)``, ``(N, T, C)`` or unbatched ``(T, C)``."""
    if len(shape) >= 3:
        return int(shape[1] if batch_first else shape[0])
    return int(shape[0]) if shape else 1


def _rnn(c: _Ctx) -> None:
    """``lstm``/``gru``/``rnn_*`` → ``unknown`` with the layer's real MACs in ``attrs["macs"]``.

    Each step multiplies the input by every ``w_ih`` and the hidden state by every ``w_hh`` (all
    gates, layers and directions: the 2-D weights), so MACs per sample = steps × Σ numel(2-D
    weights) (LSTM: 4·(in + H)·H per layer and direction, GRU 3·…). Further outputs (``h_n``,
    ``c_n``) become ``unknown`` nodes reading the main one, with 0 MACs.
    """
    x = c.x
    params = c.args.get("params")
    weights = [r for r in iter_refs(params) if len(r.shape) == 2 and not c.low.is_act(r)]
    macs = rnn_steps(tuple(x.shape), bool(c.get("batch_first", False))) * sum(math.prod(r.shape) for r in weights)
    main = next(o for o in c.outs if o is not None)
    attrs: dict[str, Any] = {"macs": int(macs)}
    config = _rnn_config(unknown_name(c.name), weights, c)
    if config is not None:
        attrs["rnn"] = config
    c.low.emit("unknown", [r for r in c.acts], main, module=c.module, source=unknown_name(c.name),
               statics=c.statics(), attrs=attrs)
    for o in c.outs:
        if o is not None and o is not main:
            c.low.emit("unknown", [main], o, module=c.module, source=unknown_name(c.name), attrs={"macs": 0})


#: Gates per recurrent layer kind (rows of ``w_ih`` = gates × hidden size).
RNN_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def _rnn_config(kind: str, weights: list[Ref], c: _Ctx) -> dict[str, Any] | None:
    """What :mod:`cgpredict.rebuild` needs to rebuild the layer (``hidden_size``, ``num_layers``,
    ``bidirectional``, ``batch_first``, ``bias``, ``proj_size``), or ``None`` when the weights do not
    read as one (then the node stays a plain ``unknown``)."""
    gates = RNN_GATES.get(kind)
    layers = int(c.get("num_layers", 1))
    bidirectional = bool(c.get("bidirectional", False))
    per_direction = 3 if kind == "lstm" and len(weights) == 3 * layers * (2 if bidirectional else 1) else 2
    if gates is None or len(weights) != per_direction * layers * (2 if bidirectional else 1):
        return None
    hidden = int(weights[0].shape[0]) // gates
    proj = int(weights[1].shape[1]) if per_direction == 3 else 0
    return {"hidden_size": hidden, "num_layers": layers, "bidirectional": bidirectional,
            "batch_first": bool(c.get("batch_first", False)), "bias": bool(c.get("has_biases", True)),
            "proj_size": proj}


def _embedding(c: _Ctx) -> None:
    """A table lookup → ``unknown`` (source ``embedding``) with 0 MACs counted; the table is params."""
    c.emit("unknown", [c.x], attrs={"macs": 0})


def _setitem(c: _Ctx) -> None:
    target = c.args.get("input")
    node_out = target if isinstance(target, Ref) else c.out
    c.low.emit("unknown", list(c.acts), node_out, module=c.module, source="setitem", statics=c.statics())


_HANDLERS: dict[str, Callable[[_Ctx], None]] = {
    "conv": _conv, "conv_t": _conv, "linear": _linear, "matmul": _matmul, "rmatmul": _matmul,
    "addmm": _addmm, "batch_norm": _batch_norm, "norm": _norm,
    **{op: _activation(op) for op in ("relu", "relu6", "gelu", "silu", "hardswish", "hardsigmoid",
                                      "sigmoid", "tanh", "softmax")},
    "leaky_relu": _leaky_relu,
    "add": _binary("add"), "mul": _binary("mul"), "cat": _cat, "stack": _cat, "split": _split,
    "select": _select, "slice": _select, "narrow": _select,
    "max_pool": _pool("max_pool"), "avg_pool": _pool("avg_pool"),
    "adaptive_avg": _adaptive("avg"), "adaptive_max": _adaptive("max"),
    "mean": _reduce, "sum": _reduce, "amax": _reduce, "reshape": _reshape, "alias": _alias,
    "pad": _pad, "upsample": _upsample, "sdpa": _sdpa, "setitem": _setitem, "einsum": _einsum,
    "im2col": _im2col, "rnn": _rnn, "embedding": _embedding,
}

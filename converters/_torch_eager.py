"""Eager op recorder for :func:`cgpredict.converters.from_torch` (a ``TorchFunctionMode``).

Pipeline position: model → **CG** (tracing source) → features → predictor → ranking/search.

Runs the model once under a ``TorchFunctionMode`` that sees every torch-level call (``F.conv2d``,
``F.linear``, ``torch.cat``, ``Tensor.__add__``, ``Tensor.view`` …) and hands each call to the
shared :class:`~cgpredict.converters._torch_lower.Lowerer` as a canonical record. Two flavours:

* ``meta`` — the fast path: ``torch.func.functional_call`` with every parameter and buffer replaced
  by an empty ``meta`` tensor and a ``meta`` input, so no real compute or memory is spent and the
  user's model is left untouched;
* ``real`` — the last fallback: the model's own weights and a seeded random CPU input, which
  handles data-dependent Python control flow (``if x.mean() > 0:``).

On meta tensors, convolutions, concatenations and shape-preserving ops (norms, activations) get
their output allocated directly instead of running their Python-decomposed meta kernels.

Python functions the lowering table does not know (``F.multi_head_attention_forward``,
``F.normalize`` …) are recorded through their inner calls; a C builtin it does not know becomes an
``unknown`` node. Forward pre/post hooks on every submodule give each node its module path, and a
module whose class has a ``cg_op`` attribute is recorded as one node of that op type.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from cgpredict.cg import CG
from cgpredict.converters._torch_lower import Lowerer
from cgpredict.converters._torch_records import Ref, bind_args, canonical_key
from cgpredict.ops import check_op

#: ops whose output has the input's shape and dtype: on meta tensors the recorder skips their
#: (sometimes slow, Python-decomposed) meta kernels and allocates the output directly
_SHAPE_PRESERVING = frozenset({"batch_norm", "norm", "relu", "relu6", "gelu", "silu", "hardswish",
                               "hardsigmoid", "sigmoid", "tanh", "softmax"})
_NO_TF_NAMES = ("has_torch_function", "has_torch_function_unary", "has_torch_function_variadic")
_CLONES: dict[Any, Callable[..., Any]] = {}


def meta_like(t: torch.Tensor) -> torch.Tensor:
    """An empty ``meta`` tensor with ``t``'s shape and dtype (cheap for any source device)."""
    if t.is_meta:
        return torch.empty(tuple(t.shape), dtype=t.dtype, device="meta")
    return torch.empty_like(t, device="meta")


_META_SHORTCUTS = _SHAPE_PRESERVING | {"conv", "cat"}


def _meta_shortcut(key: str, name: str, func: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
    """The output of a common op on meta tensors, without its (Python-decomposed) meta kernel.

    Returns ``None`` when the case is not covered (the real function is then called).
    """
    if key in _SHAPE_PRESERVING:
        x = args[0]
        if not isinstance(x, torch.Tensor) or not x.is_meta:
            return None
        bound = bind_args(key, func, args, kwargs, name)
        inplace = bool(bound.get("inplace")) or (name.endswith("_") and not name.endswith("__"))
        return x if inplace else meta_like(x)
    if "out" in kwargs:
        return None
    bound = bind_args(key, func, args, kwargs, name)
    if key == "cat":
        tensors = bound.get("tensors")
        if not isinstance(tensors, (list, tuple)) or not tensors:
            return None
        if not all(isinstance(t, torch.Tensor) and t.is_meta and t.dim() == tensors[0].dim()
                   and t.dtype == tensors[0].dtype for t in tensors) or tensors[0].dim() == 0:
            return None
        dim = int(bound.get("dim", 0) or 0) % tensors[0].dim()
        shape = list(tensors[0].shape)
        if any(list(t.shape[:dim]) + list(t.shape[dim + 1:]) != shape[:dim] + shape[dim + 1:] for t in tensors):
            return None
        shape[dim] = sum(int(t.shape[dim]) for t in tensors)
        return torch.empty(shape, dtype=tensors[0].dtype, device="meta")
    # convolution (not transposed)
    x, w = bound.get("input"), bound.get("weight")
    if not (isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor) and x.is_meta and w.is_meta):
        return None
    if bound.get("transposed") or x.dtype != w.dtype:
        return None
    kernel = tuple(int(k) for k in w.shape[2:])
    nd = len(kernel)
    if x.dim() not in (nd + 1, nd + 2) or x.shape[-nd - 1] != w.shape[1] * int(bound.get("groups", 1) or 1):
        return None

    def per_dim(value: Any, default: int) -> list[int]:
        if value is None:
            return [default] * nd
        if isinstance(value, int):
            return [value] * nd
        vals = [int(v) for v in value]
        return vals * nd if len(vals) == 1 else vals

    stride, dilation = per_dim(bound.get("stride"), 1), per_dim(bound.get("dilation"), 1)
    padding = bound.get("padding", 0)
    spatial = [int(s) for s in x.shape[-nd:]]
    if padding == "same":
        out_sp = spatial
    else:
        pads = [0] * nd if padding == "valid" else per_dim(padding, 0)
        out_sp = [(i + 2 * p - d * (k - 1) - 1) // s + 1
                  for i, p, d, k, s in zip(spatial, pads, dilation, kernel, stride)]
    if any(o <= 0 for o in out_sp):
        return None
    shape = list(x.shape[: x.dim() - nd - 1]) + [int(w.shape[0])] + out_sp
    return torch.empty(shape, dtype=x.dtype, device="meta")


def _false(*_args: Any, **_kwargs: Any) -> bool:
    return False


def _unchecked(func: Callable[..., Any]) -> Callable[..., Any] | None:
    """A copy of Python function ``func`` whose own ``has_torch_function`` checks are off.

    Calling it under the mode runs its body, so its inner torch calls are recorded (calling
    ``func`` itself would just re-dispatch to the mode).
    """
    if func in _CLONES:
        return _CLONES[func]
    clone = None
    if isinstance(func, types.FunctionType):
        glb = dict(func.__globals__)
        for n in _NO_TF_NAMES:
            if n in glb:
                glb[n] = _false
        clone = types.FunctionType(func.__code__, glb, func.__name__, func.__defaults__, func.__closure__)
        clone.__kwdefaults__ = func.__kwdefaults__
    _CLONES[func] = clone
    return clone


def func_name(func: Any) -> str:
    """The bare name of a torch-level callable (``conv2d``, ``__add__``, ``T`` for a property)."""
    name = getattr(func, "_opname", None) or getattr(func, "__name__", None)
    if name == "__get__":  # a Tensor property such as .T or .data
        owner = getattr(func, "__self__", None)
        name = getattr(owner, "__name__", "__get__")
    return str(name if name is not None else func)


def _flatten_tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten_tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten_tensors(v)]
    return []


class Recorder(TorchFunctionMode):
    """Records every torch-level call of one forward pass into a :class:`Lowerer`."""

    def __init__(self, lowerer: Lowerer) -> None:
        super().__init__()
        self.low = lowerer
        self.keep: list[torch.Tensor] = []  # keeps ids unique while recording
        self.stack: list[str] = [""]
        self.suppress = 0
        self.recursing: set[Any] = set()
        self.failed_at: tuple[str, str] | None = None
        self._cg_stack: list[list[Ref]] = []

    # ------------------------------------------------------------------ refs
    def ref(self, t: torch.Tensor) -> Ref:
        """A :class:`Ref` for tensor ``t`` (its ``id``; the tensor is kept alive)."""
        self.keep.append(t)
        return Ref(id(t), tuple(int(s) for s in t.shape))

    def to_refs(self, value: Any) -> Any:
        """``value`` with every tensor replaced by its :class:`Ref`."""
        if isinstance(value, torch.Tensor):
            return self.ref(value)
        if isinstance(value, (list, tuple)) and any(isinstance(v, (torch.Tensor, list, tuple)) for v in value):
            return [self.to_refs(v) for v in value]
        return value

    def _has_act(self, args: tuple, kwargs: dict[str, Any]) -> bool:
        vals = self.low.vals
        for t in _flatten_tensors(args) + _flatten_tensors(kwargs):
            v = vals.get(id(t))
            if v is not None and v.node is not None:
                return True
        return False

    # ------------------------------------------------------------------ the mode
    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if self.suppress:
            return func(*args, **kwargs)
        name = func_name(func)
        try:
            key = canonical_key(name)
            if key is None or key == "getitem":
                if self._has_act(args, kwargs):
                    if key == "getitem":
                        out = self._getitem(args[0], args[1])
                        if out is not None:
                            return out
                        key, name = None, "index"  # advanced indexing: aten.index on export
                    elif func not in self.recursing:
                        clone = _unchecked(func)
                        if clone is not None:
                            return self._recurse(func, clone, name, args, kwargs)
            out = None
            if key in _META_SHORTCUTS and args and isinstance(args[0], (torch.Tensor, list, tuple)):
                out = _meta_shortcut(key, name, func, args, kwargs)
            if out is None:
                out = func(*args, **kwargs)
            self._record(key, name, func, args, kwargs, out)
            return out
        except Exception:
            if self.failed_at is None:
                self.failed_at = (self.stack[-1], name)
            raise

    def _record(self, key: str | None, name: str, func: Any, args: tuple, kwargs: dict[str, Any], out: Any) -> None:
        outs = [self.ref(t) for t in _flatten_tensors(out)]
        if key == "setitem" and args and isinstance(args[0], torch.Tensor):
            outs = [self.ref(args[0])]
        if not outs:
            return
        bound = bind_args(key, func, tuple(self.to_refs(a) for a in args),
                          {k: self.to_refs(v) for k, v in kwargs.items()}, name)
        self.low.call(key, name, bound, outs, module=self.stack[-1])

    def _recurse(self, func: Any, clone: Callable[..., Any], name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        """Run an unknown Python function with the mode active so its inner calls are recorded."""
        self.recursing.add(func)
        try:
            with self:
                out = clone(*args, **kwargs)
        finally:
            self.recursing.discard(func)
        tensors = _flatten_tensors(out)
        vals = self.low.vals
        if tensors and all(vals.get(id(t)) is not None for t in tensors):
            return out
        # nothing recorded for its result: an opaque op
        self._record(None, name, func, args, kwargs, out)
        return out

    def _getitem(self, x: torch.Tensor, index: Any) -> torch.Tensor | None:
        """Basic indexing as the aten ops export records (select / slice / unsqueeze)."""
        if not isinstance(x, torch.Tensor):
            return None
        items = index if isinstance(index, tuple) else (index,)
        for i in items:
            if i is None or i is Ellipsis or isinstance(i, slice):
                if isinstance(i, slice) and not all(v is None or (isinstance(v, int) and not isinstance(v, bool))
                                                     for v in (i.start, i.stop, i.step)):
                    return None
                continue
            if isinstance(i, bool) or not isinstance(i, int):
                return None
        specified = sum(1 for i in items if i is not None and i is not Ellipsis)
        if specified > x.dim():
            return None
        aten = torch.ops.aten
        out, d = x, 0
        with self:
            for i in items:
                if i is Ellipsis:
                    d += x.dim() - specified
                elif i is None:
                    out = aten.unsqueeze.default(out, d)
                    d += 1
                elif isinstance(i, int):
                    out = aten.select.int(out, d, i)
                else:
                    if i.start is None and i.stop is None and i.step in (None, 1):
                        d += 1
                        continue
                    out = aten.slice.Tensor(out, d, i.start, i.stop, 1 if i.step is None else i.step)
                    d += 1
        return out

    # ------------------------------------------------------------------ module hooks
    def pre_hook(self, path: str, cg_op: str | None) -> Callable[..., None]:
        """A forward pre-hook pushing the module path (and opening a ``cg_op`` region)."""

        def hook(module: torch.nn.Module, args: tuple) -> None:
            self.stack.append(path)
            if cg_op is not None:
                refs = [self.ref(t) for t in _flatten_tensors(args)]
                self._cg_stack.append([r for r in refs if self.low.is_act(r)] if not self.suppress else [])
                self.suppress += 1

        return hook

    def post_hook(self, path: str, cg_op: str | None, param_names: list[str]) -> Callable[..., Any]:
        """A forward hook popping the module path (and closing a ``cg_op`` region as one node)."""

        def hook(module: torch.nn.Module, args: tuple, output: Any) -> Any:
            if self.stack and self.stack[-1] == path:
                self.stack.pop()
            if cg_op is None:
                return None
            self.suppress -= 1
            inputs = self._cg_stack.pop()
            if self.suppress or not isinstance(output, torch.Tensor) or not inputs:
                return None
            with torch._C.DisableTorchFunction():
                fresh = output.view(output.shape)  # a new object: the input keeps its own node
            self.low.emit(cg_op, inputs, self.ref(fresh), module=path, source=type(module).__name__,
                          extra_params=param_names)
            return fresh

        return hook


def _install_hooks(model: torch.nn.Module, rec: Recorder, param_names: list[str]) -> list[Any]:
    handles = []
    for path, module in model.named_modules():
        cg_op = getattr(type(module), "cg_op", None)
        if cg_op is not None:
            check_op(cg_op)
        prefix = f"{path}." if path else ""
        owned = [n for n in param_names if n.startswith(prefix)] if cg_op is not None else []
        handles.append(module.register_forward_pre_hook(rec.pre_hook(path, cg_op)))
        handles.append(module.register_forward_hook(rec.post_hook(path, cg_op, owned)))
    return handles


def record_eager(model: torch.nn.Module, inputs: tuple, *, meta: bool, name: str,
                 canonical: dict[int, str], param_numel: dict[str, int]) -> CG:
    """Run ``model(*inputs)`` under a :class:`Recorder` and lower the trace to a CG.

    Args:
        model: the model (not modified; hooks are removed afterwards).
        inputs: positional inputs (tensors are the network inputs).
        meta: run on empty ``meta`` copies of the parameters/buffers (fast path) instead of the
            model's own tensors.
        name: CG name.
        canonical: ``id(parameter) → canonical name`` for the model's own parameters.
        param_numel: canonical parameter name → numel.

    An exception raised by the forward pass gets a ``cg_where`` attribute ``(module path, op)``
    locating the call that failed (or ``None``).
    """
    low = Lowerer(name, param_numel)
    rec = Recorder(low)
    tensors_in = _flatten_tensors(inputs)
    for i, t in enumerate(tensors_in):
        low.add_input(rec.ref(t), i, len(tensors_in))
    handles = _install_hooks(model, rec, list(param_numel))
    try:
        if meta:
            pb: dict[str, torch.Tensor] = {}
            for pname, p in model.named_parameters():
                m = meta_like(p)
                pb[pname] = m
                low.add_static(rec.ref(m), canonical.get(id(p), pname))
            for bname, b in model.named_buffers():
                m = meta_like(b)
                pb[bname] = m
                low.add_static(rec.ref(m))
            with torch.no_grad(), rec:
                out = torch.func.functional_call(model, pb, inputs, strict=False, tie_weights=True)
        else:
            for p in model.parameters():
                low.add_static(rec.ref(p), canonical.get(id(p)))
            for b in model.buffers():
                low.add_static(rec.ref(b))
            with torch.no_grad(), rec:
                out = model(*inputs)
    except Exception as exc:
        exc.cg_where = rec.failed_at  # type: ignore[attr-defined]
        raise
    finally:
        for h in handles:
            h.remove()
    outs = [rec.ref(t) for t in _flatten_tensors(out)]
    return low.finish(outs, {})

"""Canonical records of PyTorch ops: op names → keys, argument binding, tensor references.

Pipeline position: model → **CG** (tracing, shared by every source) → features → predictor.

Both tracing sources of :func:`cgpredict.converters.from_torch` describe each op they see with a
bare operator name (``conv2d``, ``add_``, ``__iadd__``, ``aten`` overload names), the call's
arguments bound to canonical names by :func:`bind_args`, and tensors replaced by :class:`Ref`.
:func:`canonical_key` maps the name onto the key of the shared lowering table
(:mod:`cgpredict.converters._torch_lower`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ref:
    """A tensor seen by a tracer: a source-specific identity key and its shape."""

    key: Any
    shape: tuple[int, ...]


# ---------------------------------------------------------------------------- op names → keys
_ALIASES = {
    # convolutions
    "conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "convolution": "conv",
    "_convolution": "conv", "conv_transpose1d": "conv_t", "conv_transpose2d": "conv_t",
    "conv_transpose3d": "conv_t",
    # dense
    "linear": "linear", "addmm": "addmm", "matmul": "matmul", "mm": "matmul", "bmm": "matmul",
    "__matmul__": "matmul", "__rmatmul__": "rmatmul",
    # normalisation
    "batch_norm": "batch_norm", "_native_batch_norm_legit_no_training": "batch_norm",
    "native_batch_norm": "batch_norm", "_native_batch_norm_legit": "batch_norm",
    "layer_norm": "norm", "native_layer_norm": "norm", "group_norm": "norm",
    "native_group_norm": "norm", "instance_norm": "norm", "rms_norm": "norm",
    # activations
    "relu": "relu", "leaky_relu": "leaky_relu", "relu6": "relu6", "hardtanh": "relu6", "gelu": "gelu",
    "silu": "silu",
    "hardswish": "hardswish", "hardsigmoid": "hardsigmoid", "sigmoid": "sigmoid", "tanh": "tanh",
    "softmax": "softmax", "log_softmax": "softmax", "_softmax": "softmax", "_log_softmax": "softmax",
    # elementwise binary
    "add": "add", "sub": "add", "rsub": "add", "__add__": "add", "__radd__": "add",
    "__iadd__": "add", "__sub__": "add", "__rsub__": "add", "__isub__": "add",
    "mul": "mul", "div": "mul", "__mul__": "mul", "__rmul__": "mul", "__imul__": "mul",
    "__truediv__": "mul", "__rtruediv__": "mul", "__itruediv__": "mul", "__div__": "mul",
    "multiply": "mul", "divide": "mul", "true_divide": "mul", "subtract": "add",
    # joins and slices
    "cat": "cat", "concat": "cat", "concatenate": "cat", "stack": "stack",
    "split": "split", "split_with_sizes": "split", "chunk": "split", "unbind": "split",
    "tensor_split": "split", "unsafe_split": "split", "unsafe_chunk": "split",
    "select": "select", "slice": "slice", "narrow": "narrow",
    "__getitem__": "getitem", "__setitem__": "setitem",
    # pooling and reductions
    "max_pool1d": "max_pool", "max_pool2d": "max_pool", "max_pool3d": "max_pool",
    "max_pool1d_with_indices": "max_pool", "max_pool2d_with_indices": "max_pool",
    "max_pool3d_with_indices": "max_pool",
    "avg_pool1d": "avg_pool", "avg_pool2d": "avg_pool", "avg_pool3d": "avg_pool",
    "adaptive_avg_pool1d": "adaptive_avg", "adaptive_avg_pool2d": "adaptive_avg",
    "adaptive_avg_pool3d": "adaptive_avg", "_adaptive_avg_pool2d": "adaptive_avg",
    "_adaptive_avg_pool3d": "adaptive_avg",
    "adaptive_max_pool1d": "adaptive_max", "adaptive_max_pool2d": "adaptive_max",
    "adaptive_max_pool3d": "adaptive_max",
    "mean": "mean", "sum": "sum", "amax": "amax",
    # shape bookkeeping on activations
    "view": "reshape", "reshape": "reshape", "_unsafe_view": "reshape", "flatten": "reshape",
    "unflatten": "reshape", "permute": "reshape", "transpose": "reshape", "t": "reshape",
    "squeeze": "reshape", "unsqueeze": "reshape", "expand": "reshape", "expand_as": "reshape",
    "view_as": "reshape", "reshape_as": "reshape", "movedim": "reshape", "moveaxis": "reshape",
    "swapaxes": "reshape", "swapdims": "reshape", "ravel": "reshape", "broadcast_to": "reshape",
    "mT": "reshape",
    # no-ops
    "contiguous": "alias", "clone": "alias", "detach": "alias", "dropout": "alias",
    "alpha_dropout": "alias", "feature_alpha_dropout": "alias", "dropout1d": "alias",
    "dropout2d": "alias", "dropout3d": "alias", "feature_dropout": "alias", "native_dropout": "alias",
    "to": "alias", "type": "alias", "float": "alias", "double": "alias", "half": "alias",
    "bfloat16": "alias", "cuda": "alias", "cpu": "alias", "_to_copy": "alias", "alias": "alias",
    "lift_fresh_copy": "alias", "lift_fresh": "alias", "type_as": "alias", "requires_grad_": "alias",
    "identity": "alias", "_assert_tensor_metadata": "ignore", "data": "alias",
    # padding and resampling
    "pad": "pad", "constant_pad_nd": "pad", "reflection_pad1d": "pad", "reflection_pad2d": "pad",
    "reflection_pad3d": "pad", "replication_pad1d": "pad", "replication_pad2d": "pad",
    "replication_pad3d": "pad", "circular_pad1d": "pad", "circular_pad2d": "pad",
    "interpolate": "upsample", "upsample": "upsample", "upsample_nearest1d": "upsample",
    "upsample_nearest2d": "upsample", "upsample_nearest3d": "upsample",
    "_upsample_nearest_exact1d": "upsample", "_upsample_nearest_exact2d": "upsample",
    "_upsample_nearest_exact3d": "upsample", "upsample_bilinear2d": "upsample",
    "upsample_bicubic2d": "upsample", "upsample_linear1d": "upsample",
    "upsample_trilinear3d": "upsample", "_upsample_bilinear2d_aa": "upsample",
    "_upsample_bicubic2d_aa": "upsample",
    # patch extraction (im2col / col2im: data movement, 0 MACs)
    "im2col": "im2col", "col2im": "im2col",
    # recurrent layers and lookups (MACs from their weights; see _torch_lower._rnn)
    "lstm": "rnn", "gru": "rnn", "rnn_tanh": "rnn", "rnn_relu": "rnn", "embedding": "embedding",
    # attention
    "einsum": "einsum", "scaled_dot_product_attention": "sdpa",
    "_scaled_dot_product_flash_attention_for_cpu": "sdpa",
    "_scaled_dot_product_efficient_attention": "sdpa", "_scaled_dot_product_flash_attention": "sdpa",
    "_scaled_dot_product_cudnn_attention": "sdpa",
    # values that do not depend on an activation's values
    "zeros_like": "factory", "ones_like": "factory", "empty_like": "factory", "full_like": "factory",
    "rand_like": "factory", "randn_like": "factory", "randint_like": "factory",
    "new_zeros": "factory", "new_ones": "factory", "new_empty": "factory", "new_full": "factory",
    "new_tensor": "factory", "zeros": "factory", "ones": "factory", "empty": "factory",
    "full": "factory", "arange": "factory", "scalar_tensor": "factory", "tensor": "factory",
    "empty_strided": "factory", "new_empty_strided": "factory", "linspace": "factory",
}

UPSAMPLE_MODES = {
    "upsample_nearest1d": "nearest", "upsample_nearest2d": "nearest", "upsample_nearest3d": "nearest",
    "_upsample_nearest_exact1d": "nearest-exact", "_upsample_nearest_exact2d": "nearest-exact",
    "_upsample_nearest_exact3d": "nearest-exact", "upsample_bilinear2d": "bilinear",
    "upsample_bicubic2d": "bicubic", "upsample_linear1d": "linear",
    "upsample_trilinear3d": "trilinear", "_upsample_bilinear2d_aa": "bilinear",
    "_upsample_bicubic2d_aa": "bicubic",
}

# Canonical positional argument names, for callables without an introspectable signature
# (C builtins such as F.conv2d, torch.cat, Tensor.mean).
_POSITIONAL: dict[str, tuple[str, ...]] = {
    "conv": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "conv_t": ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"),
    "linear": ("input", "weight", "bias"),
    "addmm": ("input", "mat1", "mat2", "beta", "alpha"),
    "matmul": ("input", "other"),
    "rmatmul": ("input", "other"),
    "batch_norm": ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
    "norm": ("input", "normalized_shape", "weight", "bias", "eps"),
    "add": ("input", "other", "alpha"),
    "mul": ("input", "other"),
    "cat": ("tensors", "dim"),
    "stack": ("tensors", "dim"),
    "split": ("input", "split_size", "dim"),
    "select": ("input", "dim", "index"),
    "slice": ("input", "dim", "start", "end", "step"),
    "narrow": ("input", "dim", "start", "length"),
    "max_pool": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "avg_pool": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "adaptive_avg": ("input", "output_size"),
    "adaptive_max": ("input", "output_size"),
    "mean": ("input", "dim", "keepdim", "dtype"),
    "sum": ("input", "dim", "keepdim", "dtype"),
    "amax": ("input", "dim", "keepdim"),
    "pad": ("input", "pad", "mode", "value"),
    "upsample": ("input", "size", "scale_factor", "mode", "align_corners"),
    "sdpa": ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale"),
    "softmax": ("input", "dim"),
    "relu6": ("input", "min_val", "max_val"),
    "leaky_relu": ("input", "negative_slope", "inplace"),
    "rnn": ("input", "hx", "params", "has_biases", "num_layers", "dropout", "train", "bidirectional",
            "batch_first"),
    "im2col": ("input", "kernel_size", "dilation", "padding", "stride"),
    "embedding": ("input", "weight"),
}
# Per-name positional arguments of builtins whose canonical key is shared (shape bookkeeping).
_POSITIONAL_NAME: dict[str, tuple[str, ...]] = {
    "transpose": ("input", "dim0", "dim1"), "swapaxes": ("input", "dim0", "dim1"),
    "swapdims": ("input", "dim0", "dim1"), "unsqueeze": ("input", "dim"), "squeeze": ("input", "dim"),
    "unbind": ("input", "dim"), "movedim": ("input", "source", "destination"),
    "moveaxis": ("input", "source", "destination"),
    "col2im": ("input", "output_size", "kernel_size", "dilation", "padding", "stride"),
}
_RENAME = {"self": "input", "tensor": "input", "split_size_or_sections": "split_size",
           "split_sizes": "split_size", "train": "training", "axis0": "dim0", "axis1": "dim1", "a": "input", "other_": "other"}


def bare_name(name: str) -> str:
    """The bare operator name: ``aten::conv2d`` / ``aten.conv2d.default`` / ``conv2d`` → ``conv2d``."""
    name = name.split("::")[-1]
    if name.startswith("aten."):
        name = name.split(".")[1]
    return name


def canonical_key(name: str) -> str | None:
    """Canonical op key of a bare operator name (in-place ``_`` suffix ignored), or ``None``."""
    if name in _ALIASES:
        return _ALIASES[name]
    if name.endswith("_") and not name.endswith("__") and name[:-1] in _ALIASES:
        return _ALIASES[name[:-1]]
    return None


def unknown_name(name: str) -> str:
    """The ``source_op`` recorded for an ``unknown`` node (the same from every tracing source)."""
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name[:1] in ("i", "r") and name[1:] in ("add", "sub", "mul", "truediv", "and", "or", "xor", "pow", "mod", "floordiv"):
            name = name[1:]
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name


_SIG_CACHE: dict[Any, inspect.Signature | None] = {}


def _signature(func: Any) -> inspect.Signature | None:
    try:
        return _SIG_CACHE[func]
    except (KeyError, TypeError):
        pass
    sig: inspect.Signature | None
    try:
        sig = inspect.signature(func)
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values()):
            sig = None
    except (TypeError, ValueError):
        sig = None
    try:
        _SIG_CACHE[func] = sig
    except TypeError:
        pass
    return sig


def bind_args(key: str | None, func: Any, args: tuple, kwargs: dict[str, Any], name: str = "") -> dict[str, Any]:
    """Bind a call's arguments to canonical names.

    ``func`` is an ``OpOverload`` (names from its schema), a Python function (its signature) or a
    C builtin (the canonical positional names of ``key``). ``self``/``tensor`` become ``input``.
    """
    names: list[str] | tuple[str, ...] | None = None
    schema = getattr(func, "_schema", None)
    if schema is not None:
        names = [a.name for a in schema.arguments]
    else:
        sig = _signature(func)
        if sig is not None:
            names = list(sig.parameters)
        elif name.rstrip("_") in _POSITIONAL_NAME:
            names = _POSITIONAL_NAME[name.rstrip("_")]
        elif key is not None:
            names = _POSITIONAL.get(key)
    bound: dict[str, Any] = {}
    if names is None:
        for i, value in enumerate(args):
            bound[f"arg{i}"] = value
    else:
        for name, value in zip(names, args):
            bound[_RENAME.get(name, name)] = value
        for i, value in enumerate(args[len(names):]):
            bound[f"arg{len(names) + i}"] = value
    for name, value in kwargs.items():
        bound[_RENAME.get(name, name)] = value
    return bound


def iter_refs(value: Any) -> Iterable[Ref]:
    """All :class:`Ref` objects in a (nested) argument value, in order."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from iter_refs(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_refs(item)

"""PyTorch → computation graph: :func:`from_torch`.

Pipeline position: model → **CG** → features → predictor → ranking/search.

Tracing ladder (``method="auto"`` tries them in order; each can be chosen with ``method=``):

1. ``"meta"`` — eager ``TorchFunctionMode`` recorder on empty ``meta`` copies of the weights and a
   ``meta`` input (``torch.func.functional_call``): no real compute, ~0.05 s per torchvision model.
2. ``"export"`` — ``torch.export.export(strict=False)`` (fake tensors), training-IR aten graph.
3. ``"draft_export"`` — ``torch.export.draft_export`` with a seeded random input.
4. ``"real"`` — the eager recorder with the model's own weights and a seeded random CPU input
   (handles data-dependent Python control flow such as ``if x.mean() > 0:``).

A fallback emits a ``UserWarning`` naming the method used and why the earlier ones failed; when all
fail, :class:`cgpredict.errors.CGConversionError` names the model class, the module path and op
that failed, and each method's one-line error. Both kinds of source produce the same canonical
records and go through ONE lowering table (:mod:`cgpredict.converters._torch_lower`), so they give
the same CG (``CG.hash()``) for the same network.

Mapping table (shared convention with :func:`cgpredict.converters.from_onnx`)
-----------------------------------------------------------------------------
Parameters, buffers and constants are never nodes. A layer's weight sets ``weight_shape``; every
parameter a node consumes (directly or through ops on parameters only, e.g. ``class_token.expand``,
``table[index]``) adds its numel to the ``params`` of the FIRST node that consumes it, each
parameter counted once (weight tying). Buffers are not params. ``CG.params`` equals the number of
parameters used by the forward pass; ``meta["unused_params"]`` holds the rest.

=====================================================  =================================================
torch call (torch function / training-IR aten op)      CG node
=====================================================  =================================================
inputs of ``model(*inputs)``                           one ``input`` each (name ``input`` / ``input_i``)
``F.conv{1,2,3}d``, ``aten.conv*``, ``convolution``    ``conv_op_type(C_in, groups)`` → ``conv`` /
                                                       ``depthwise_conv`` / ``grouped_conv``;
                                                       ``weight_shape`` = weight.shape, ``kernel`` =
                                                       weight.shape[2:], ``stride``/``padding``/
                                                       ``dilation`` per spatial dim ("same" → (k-1)d//2),
                                                       ``groups``, ``bias``
``F.conv_transpose*``                                  as conv, ``attrs={"transposed": True}``
``F.linear``; ``matmul``/``mm``/``addmm`` with one     ``linear``, ``weight_shape`` = (out, in), ``bias``
parameter operand
``matmul``/``mm``/``bmm``/``@`` of two activations     ``matmul`` (inputs in operand order)
``F.batch_norm`` (any form)                            ``batch_norm``, ``weight_shape`` = (C,)
``layer_norm``/``group_norm``/``instance_norm``/       ``layer_norm``, ``weight_shape`` = weight.shape
``rms_norm``                                           (else normalized_shape, else (C,))
``relu``; ``relu6``/``hardtanh``; ``gelu``; ``silu``;   same name (``relu6`` for hardtanh);
``hardswish``; ``hardsigmoid``; ``sigmoid``; ``tanh``;  ``softmax`` for softmax and log_softmax
``softmax``/``log_softmax`` (in-place too)
``add``/``sub``/``rsub`` (``+``, ``-``, ``+=``, …)     ``add``; inputs = activation operands only
``mul``/``div`` (``*``, ``/``, …)                      ``mul``; a scalar/parameter operand → 1 input
``cat``; ``stack``                                     ``concat``, ``attrs={"dim": d ≥ 0}``
``split``/``chunk``/``unbind`` (k-th output)           ``split``, ``attrs={"dim": d, "index": k}``
``select(dim, i)``; ``slice``/``narrow`` from start s  ``split``, ``attrs={"dim": d, "index": i or s}``;
                                                       a slice keeping the full shape is no node
``x[...]`` basic indexing                              decomposed like aten: ``select`` per int,
                                                       ``slice`` per non-full slice, ``unsqueeze`` per
                                                       None (one node each, in index order); advanced
                                                       (tensor/bool) indexing → ``unknown`` ``index``
``einsum`` of two activations contracting only the     ``matmul`` (else ``unknown``)
last index of the first
``max_pool*``/``avg_pool*``                            ``max_pool``/``avg_pool`` with kernel, stride
                                                       (default = kernel), padding (+dilation for max),
                                                       ``attrs={"ceil_mode": True}`` when set
``adaptive_{avg,max}_pool*`` to 1×…×1;                 ``global_pool``, ``attrs={"mode": "avg"|"max"}``
``mean``/``amax`` over all dims after the 2nd
adaptive pooling to a size > 1                         ``avg_pool``/``max_pool``, kernel = ceil(in/out),
                                                       stride = in//out, ``attrs={"adaptive": True,
                                                       "output_size": [...]}``
other ``mean``/``sum``                                 ``mean``, ``attrs={"dims": [...]}``
view/reshape/flatten/unflatten/permute/transpose/t/     ``reshape`` (chains collapsed, no-ops removed
squeeze/unsqueeze/expand/movedim/``.T``                 by ``CGBuilder.build``)
contiguous/clone/detach/dropout*/to/type/float/…       no node (alias of the input)
``pad``/``constant_pad_nd``/reflection/replication     ``pad``, ``attrs={"pad": [...], "mode": m}``
``interpolate``/``upsample_*``                         ``upsample``, ``attrs={"mode", "size": out
                                                       spatial, "scale": out/in per dim}``
``scaled_dot_product_attention`` (+ fused variants)    ``sdpa``, inputs [q, k, v] (+ an activation mask)
``zeros_like``/``new_zeros``/``arange``/… factories     constants (no node)
module whose class has ``cg_op = "<op>"``              one node of that op (inside not traced; on the
                                                       export paths only if the module runs an op)
``F.unfold``/``nn.Unfold`` (``im2col``); ``F.fold``     ``reshape`` (0 MACs), ``attrs={"op": "im2col" |
(``col2im``)                                           "col2im", "kernel_size", …}`` (``source_op``
                                                       keeps the op when chains collapse)
``nn.LSTM``/``nn.GRU``/``nn.RNN`` (``lstm``, ``gru``,    ``unknown``, ``attrs={"macs": steps × Σ numel
``rnn_tanh``, ``rnn_relu``)                            (2-D weights), "rnn": {hidden_size, num_layers,
                                                       bidirectional, batch_first, bias, proj_size}}``
                                                       (LSTM: 4·(in+H)·H per layer and direction and
                                                       step, GRU 3·…; ``rnn`` lets ``CG.to_module``
                                                       rebuild the layer); ``h_n``/``c_n`` read it
                                                       with ``{"macs": 0}`` (not rebuildable)
``F.embedding``                                        ``unknown``, ``attrs={"macs": 0}``; table = params
``x[i] = y`` on an activation                          ``unknown`` (source_op ``setitem``)
anything else on an activation                         Python functions: recorded through their inner
                                                       calls (e.g. ``F.multi_head_attention_forward``);
                                                       otherwise ``unknown`` with ``source_op`` = bare
                                                       op name (``roll``, ``linalg_vector_norm``)
model outputs (tuples/lists/dicts flattened)           one ``output`` node; out_shape = first output
=====================================================  =================================================

Every ``unknown`` node without a counted ``attrs["macs"]`` counts 0 MACs; the conversion then emits
one :class:`~cgpredict.converters.UncountedOpWarning` per op type naming the op and module paths.

``source_op`` of known ops is the bare operator name (``conv2d``, ``add_``); node ``name`` is the
module path (``layer1.0.conv1``, ``""`` for the root module).

Shapes are written batch-first even where the network is not: the lowering tracks where the batch
of the first input sits through every op (its own dim, or merged into one as in the ``(L·N, E)``
views of ``nn.MultiheadAttention``), and writes such a shape with the batch moved to the front
(``(L, N, E)`` → ``(N, L, E)``; ``(L·N, E)`` → ``(N, L, E)``). A transpose that only moves the batch
thus becomes a no-op reshape (removed), and per-sample MACs are right for any batch size, also
where a model folds the batch into another dim (``(B, N, C)`` → ``(B·N, C)`` before a conv or
linear, as transformer-in-transformer models do: written ``(B, N, C)``). Where the location is lost
(after an op the tracker does not know) a shape ``(B·N, …)`` is still written ``(B, N, …)``, so
counting never divides by a folded size.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import torch

from cgpredict.cg import CG
from cgpredict.converters._conventions import warn_uncounted
from cgpredict.errors import CGConversionError

METHODS: tuple[str, ...] = ("meta", "export", "draft_export", "real")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = next((line.strip() for line in text if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}"


def _model_device(model: torch.nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _example_inputs(example_input: Any, input_shape: tuple[int, ...]) -> tuple:
    if example_input is None:
        if not isinstance(input_shape, (tuple, list)) or not all(isinstance(s, int) and s > 0 for s in input_shape):
            raise CGConversionError(f"input_shape must be a tuple of positive ints, got {input_shape!r}")
        return (torch.empty(tuple(input_shape), device="meta"),)
    if isinstance(example_input, torch.Tensor):
        return (example_input,)
    if isinstance(example_input, (tuple, list)):
        if not any(isinstance(t, torch.Tensor) for t in example_input):
            raise CGConversionError("example_input holds no tensor")
        return tuple(example_input)
    raise CGConversionError(
        f"example_input must be a tensor or a tuple of tensors, got {type(example_input).__name__}"
    )


def _map_inputs(inputs: tuple, fn: Any) -> tuple:
    return tuple(fn(t) if isinstance(t, torch.Tensor) else t for t in inputs)


def _seeded_like(t: torch.Tensor, device: torch.device, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if t.dtype.is_floating_point:
        value = torch.randn(tuple(t.shape), generator=gen, dtype=t.dtype)
    elif t.dtype == torch.bool:
        value = torch.randint(0, 2, tuple(t.shape), generator=gen).bool()
    else:
        value = torch.randint(0, 2, tuple(t.shape), generator=gen, dtype=t.dtype)
    return value.to(device)


def from_torch(
    model: torch.nn.Module,
    example_input: torch.Tensor | tuple | None = None,
    input_shape: tuple[int, ...] = (1, 3, 224, 224),
    *,
    method: str = "auto",
    name: str | None = None,
) -> CG:
    """Convert a PyTorch module to a computation graph (see the module docstring for the mapping).

    Args:
        model: any ``torch.nn.Module``; it is traced in eval mode and left unchanged (training
            flags, weights and devices are restored / never touched).
        example_input: a tensor or tuple of tensors giving the input shapes (and, for the
            ``"real"`` method, the values); default: one tensor of ``input_shape``.
        input_shape: shape of the default input, batch first.
        method: ``"auto"`` (ladder meta → export → draft_export → real) or one of them.
        name: CG name (default: the model's class name).

    Returns:
        The CG; ``cg.meta`` holds ``method`` (the one that succeeded), ``model_params`` (all
        parameters of the model), ``unused_params`` (those the forward pass does not use),
        ``input_shapes``, ``model_class`` and ``convert_seconds``.

    Raises:
        CGConversionError: ``model`` is not a module, the inputs are malformed, or every method
            failed (the message names the model class, the failing module/op and each error).

    Example:
        >>> import torchvision
        >>> cg = from_torch(torchvision.models.resnet18())
        >>> round(cg.flops / 1e9, 2), cg.params
        (1.81, 11689512)
    """
    if not isinstance(model, torch.nn.Module):
        raise CGConversionError(
            f"from_torch expects a torch.nn.Module, got {type(model).__module__}.{type(model).__name__}"
        )
    if method != "auto" and method not in METHODS:
        raise CGConversionError(f"unknown method {method!r}; choose 'auto' or one of {', '.join(METHODS)}")
    cls = type(model).__name__
    name = cls if name is None else name
    inputs = _example_inputs(example_input, input_shape)
    device = _model_device(model)

    canonical: dict[int, str] = {}
    fqn_canonical: dict[str, str] = {}
    param_numel: dict[str, int] = {}
    for pname, p in model.named_parameters(remove_duplicate=False):
        first = canonical.setdefault(id(p), pname)
        fqn_canonical[pname] = first
        param_numel[first] = int(p.numel())
    model_params = sum(param_numel.values())

    from cgpredict.converters._torch_eager import meta_like, record_eager
    from cgpredict.converters._torch_export import record_export

    def run(m: str) -> CG:
        if m == "meta":
            meta_in = _map_inputs(inputs, meta_like)
            return record_eager(model, meta_in, meta=True, name=name, canonical=canonical, param_numel=param_numel)
        if m == "real":
            if device.type == "meta":
                raise RuntimeError("the model's weights are on the meta device; real execution is impossible")
            real_in = _map_inputs(inputs, lambda t: t if t.device.type != "meta" else _seeded_like(t, device))
            return record_eager(model, real_in, meta=False, name=name, canonical=canonical, param_numel=param_numel)
        if m == "export":
            ex_in = _map_inputs(inputs, lambda t: torch.empty_like(t, device=device) if t.device != device else t)
            return record_export(model, ex_in, draft=False, name=name, fqn_canonical=fqn_canonical,
                                 param_numel=param_numel)
        if device.type == "meta":
            raise RuntimeError("draft_export needs real weights; the model is on the meta device")
        dr_in = _map_inputs(inputs, lambda t: t if t.device.type != "meta" else _seeded_like(t, device))
        return record_export(model, dr_in, draft=True, name=name, fqn_canonical=fqn_canonical,
                             param_numel=param_numel)

    ladder = METHODS if method == "auto" else (method,)
    errors: list[tuple[str, str]] = []
    where: tuple[str, str] | None = None
    training = [(mod, mod.training) for mod in model.modules()]
    start = time.perf_counter()
    cg: CG | None = None
    try:
        model.eval()
        for m in ladder:
            try:
                cg = run(m)
                break
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                errors.append((m, _one_line(exc)))
                where = where or getattr(exc, "cg_where", None)
    finally:
        for mod, flag in training:
            mod.training = flag
    if cg is None:
        loc = f" at module {where[0] or '<root>'!r}, op {where[1]!r}" if where else ""
        lines = "\n".join(f"  {m}: {e}" for m, e in errors)
        raise CGConversionError(f"could not convert {cls}{loc}; tried:\n{lines}")
    if errors:
        why = "; ".join(f"{m} failed ({e})" for m, e in errors)
        warnings.warn(f"from_torch({cls}): used the {m!r} fallback because {why}", UserWarning, stacklevel=2)
    warn_uncounted(cg, f"from_torch({cls})")
    in_shapes = [list(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
    cg.meta.update({
        "method": m,
        "model_class": cls,
        "model_params": model_params,
        "unused_params": model_params - cg.params,
        "input_shapes": in_shapes,
        "convert_seconds": round(time.perf_counter() - start, 4),
    })
    return cg

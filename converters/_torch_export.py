"""``torch.export`` tracing source for :func:`cgpredict.converters.from_torch`.

Pipeline position: model → **CG** (tracing source) → features → predictor → ranking/search.

Exports the model with ``torch.export.export(strict=False)`` (or ``torch.export.draft_export``)
and walks the resulting training-IR graph (``aten.conv2d``, ``aten.linear``, ``aten.batch_norm``,
``aten.scaled_dot_product_attention`` …), handing every ``call_function`` node to the shared
:class:`~cgpredict.converters._torch_lower.Lowerer` as the same canonical record the eager
recorder produces. Module paths come from each node's ``nn_module_stack``.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import operator
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from cgpredict.cg import CG
from cgpredict.converters._torch_lower import Lowerer
from cgpredict.converters._torch_records import Ref, bind_args, canonical_key

@contextmanager
def quiet_export_logs() -> Iterator[None]:
    """Silence logging and stdout while tracing (a failed export prints its partial graph)."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def _shape(val: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in val.shape)


def _module_path(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return str(path)


def _cg_op_owner(node: torch.fx.Node, cg_ops: dict[str, str]) -> tuple[str, str, str, str] | None:
    """``(stack key, module path, op, class name)`` of the outermost ``cg_op`` module running it."""
    if not cg_ops:
        return None
    for key, value in (node.meta.get("nn_module_stack") or {}).items():
        path = str(value[0])
        if path in cg_ops:
            return str(key), path, cg_ops[path], str(value[1]).split(".")[-1]
    return None


def lower_exported(ep: torch.export.ExportedProgram, *, name: str, fqn_canonical: dict[str, str],
                   param_numel: dict[str, int], cg_ops: dict[str, str] | None = None) -> CG:
    """Lower an ``ExportedProgram`` to a CG through the shared lowering table.

    ``cg_ops`` maps module paths whose class has a ``cg_op`` attribute to that op: the graph
    nodes such a module runs become one node (a module that runs no op at all, such as an
    identity returning its input, leaves nothing in the exported graph and is not recorded).
    """
    cg_ops = cg_ops or {}
    from torch.export.graph_signature import InputKind, OutputKind

    low = Lowerer(name, param_numel)
    specs = {s.arg.name: s for s in ep.graph_signature.input_specs if hasattr(s.arg, "name")}
    graph = ep.graph_module.graph
    user = [n for n in graph.nodes if n.op == "placeholder"
            and specs.get(n.name) is not None and specs[n.name].kind == InputKind.USER_INPUT
            and isinstance(n.meta.get("val"), torch.Tensor)]
    refs: dict[str, Ref] = {}

    def to_refs(value: Any) -> Any:
        if isinstance(value, torch.fx.Node):
            return refs.get(value.name, value.name)
        if isinstance(value, (list, tuple)):
            return [to_refs(v) for v in value]
        return value

    outputs: list[Ref] = []
    region: list[torch.fx.Node] = []
    region_owner: tuple[str, str, str, str] | None = None

    def flush() -> None:
        nonlocal region, region_owner
        if not region or region_owner is None:
            region, region_owner = [], None
            return
        inside = set(region)
        ext_in: list[Ref] = []
        statics: list[Ref] = []
        for n in region:
            for arg in n.all_input_nodes:
                ref = refs.get(arg.name)
                if arg in inside or ref is None:
                    continue
                (ext_in if low.is_act(ref) else statics).append(ref)
        outs = [n for n in region if any(u not in inside for u in n.users)]
        acts = list(dict.fromkeys(ext_in))
        if acts and outs:
            first = outs[0]
            val0 = first.meta.get("val")
            out_ref = Ref(first.name, _shape(val0)) if isinstance(val0, torch.Tensor) else None
            if out_ref is not None:
                low.emit(region_owner[2], acts, out_ref, module=region_owner[1],
                         source=region_owner[3], statics=statics)
                for n in outs[1:]:
                    refs[n.name] = out_ref
                    low.alias(Ref(n.name, out_ref.shape), out_ref)
                refs[first.name] = out_ref
        region, region_owner = [], None

    for node in graph.nodes:
        val = node.meta.get("val")
        if node.op == "call_function":
            owner = _cg_op_owner(node, cg_ops)
            if owner is not None and region_owner is not None and owner[0] != region_owner[0]:
                flush()
            if owner is not None:
                region.append(node)
                region_owner = owner
                continue
        flush()
        if node.op == "placeholder":
            if not isinstance(val, torch.Tensor):
                continue
            ref = refs[node.name] = Ref(node.name, _shape(val))
            spec = specs.get(node.name)
            if node in user:
                low.add_input(ref, user.index(node), len(user))
            elif spec is not None and spec.kind == InputKind.PARAMETER:
                low.add_static(ref, fqn_canonical.get(str(spec.target), str(spec.target)))
            else:
                low.add_static(ref)
        elif node.op == "get_attr":
            if isinstance(val, torch.Tensor):
                refs[node.name] = Ref(node.name, _shape(val))
                low.add_static(refs[node.name])
        elif node.op == "call_function":
            target = node.target
            if target is operator.getitem:
                src, idx = node.args
                src_ref = refs.get(f"{src.name}#{idx}") if isinstance(src, torch.fx.Node) else None
                if src_ref is not None:
                    refs[node.name] = src_ref
                continue
            if isinstance(val, torch.Tensor):
                outs: list[Ref | None] = [Ref(node.name, _shape(val))]
                refs[node.name] = outs[0]  # type: ignore[assignment]
            elif isinstance(val, (list, tuple)):
                outs = []
                for i, v in enumerate(val):
                    if isinstance(v, torch.Tensor):
                        r = Ref(f"{node.name}#{i}", _shape(v))
                        refs[r.key] = r
                        outs.append(r)
                    else:
                        outs.append(None)
            else:
                continue
            opname = getattr(target, "_opname", None) or getattr(target, "__name__", str(target))
            key = canonical_key(opname)
            bound = bind_args(key, target, tuple(to_refs(a) for a in node.args),
                              {k: to_refs(v) for k, v in node.kwargs.items()}, opname)
            low.call(key, opname, bound, outs, module=_module_path(node))
        elif node.op == "output":
            out_specs = ep.graph_signature.output_specs
            values = node.args[0] if isinstance(node.args[0], (list, tuple)) else [node.args[0]]
            for spec, value in zip(out_specs, values):
                if spec.kind == OutputKind.USER_OUTPUT and isinstance(value, torch.fx.Node) and value.name in refs:
                    outputs.append(refs[value.name])
    return low.finish(outputs, {})


def record_export(model: torch.nn.Module, inputs: tuple, *, draft: bool, name: str,
                  fqn_canonical: dict[str, str], param_numel: dict[str, int]) -> CG:
    """Export ``model`` (``strict=False``, or ``draft_export``) and lower the graph to a CG."""
    with quiet_export_logs():
        if draft:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                ep = torch.export.draft_export(model, inputs)
                gc.collect()  # draft_export leaves a report file open: reclaim it quietly
        else:
            ep = torch.export.export(model, inputs, strict=False)
    cg_ops = {path: str(type(m).cg_op) for path, m in model.named_modules() if getattr(type(m), "cg_op", None)}
    return lower_exported(ep, name=name, fqn_canonical=fqn_canonical, param_numel=param_numel, cg_ops=cg_ops)

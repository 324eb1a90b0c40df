"""Loading, checking and shape-inferring an ONNX model before it is converted to a CG.

Pipeline position: **model** (ONNX file / ``ModelProto``) → CG → features → predictor. This module
turns whatever the user passed into a checked, fully shape-inferred ``onnx.ModelProto`` and
raises :class:`cgpredict.errors.CGConversionError` (naming the file and the cause) on anything that
is not a usable ONNX model.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx.checker
import onnx.inliner
import onnx.shape_inference
from onnx import numpy_helper

from cgpredict.errors import CGConversionError

#: metadata key the torch dynamo exporter writes on each initializer's value_info
PARAM_KIND_KEY = "pkg.torch.export.graph_signature.InputSpec.kind"


@dataclass
class LoadedModel:
    """A checked, shape-inferred model plus what was learned while loading it."""

    model: onnx.ModelProto
    label: str  # how the model is named in messages (file path or graph name)
    path: Path | None
    #: large initializers kept out of ``model`` (declared there as graph inputs), by name
    weights: dict[str, onnx.TensorProto] = field(default_factory=dict)
    #: initializer name -> torch export kind (PARAMETER, BUFFER, CONSTANT, ...) when recorded
    param_kinds: dict[str, str] = field(default_factory=dict)
    #: graph inputs whose symbolic batch dimension was fixed to 1
    fixed_batch: list[str] = field(default_factory=list)
    #: values whose shape was assumed equal to the op's first input (ops shape inference skips)
    assumed_shapes: list[str] = field(default_factory=list)


#: initializers with more elements than this are kept out of checking and shape inference
_BIG_TENSOR = 4096
#: rounds of (shape inference, constant folding): each round can resolve one more level of shape
#: arithmetic that depends on a shape the previous round inferred (a deep legacy-exported Swin needs ~12)
_MAX_FOLD_ROUNDS = 64


def _skeleton(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, onnx.TensorProto]]:
    """A copy of ``model`` whose large initializers are declared as typed graph inputs instead.

    Checking and shape inference serialise the whole model; without the weight data they take a
    fraction of the time. Returns the skeleton and the removed initializers by name.
    """
    skeleton = onnx.ModelProto()
    for field_name in ("ir_version", "producer_name", "producer_version", "domain", "model_version", "doc_string"):
        setattr(skeleton, field_name, getattr(model, field_name))
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    skeleton.metadata_props.extend(model.metadata_props)
    src, dst = model.graph, skeleton.graph
    dst.name = src.name
    dst.node.extend(src.node)
    dst.output.extend(src.output)
    dst.value_info.extend(src.value_info)
    dst.input.extend(src.input)
    input_names = {i.name for i in src.input}
    weights: dict[str, onnx.TensorProto] = {}
    for tensor in src.initializer:
        if int(np.prod(tensor.dims, dtype=np.int64)) <= _BIG_TENSOR or tensor.data_location == onnx.TensorProto.EXTERNAL:
            dst.initializer.append(tensor)
            continue
        weights[tensor.name] = tensor
        if tensor.name not in input_names:
            dst.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    dst.sparse_initializer.extend(src.sparse_initializer)
    return skeleton, weights


def _read(model: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str, Path | None]:
    if isinstance(model, onnx.ModelProto):
        return model, f"ONNX model {model.graph.name or '<unnamed>'!r}", None
    if not isinstance(model, (str, os.PathLike)):
        raise CGConversionError(
            f"from_onnx expects a file path or an onnx.ModelProto, got {type(model).__name__}"
        )
    path = Path(model)
    label = f"ONNX file {str(path)!r}"
    if not path.exists():
        raise CGConversionError(f"{label} does not exist")
    if not path.is_file():
        raise CGConversionError(f"{label} is not a file")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError, external-data errors, ...
        raise CGConversionError(f"{label} is not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    return proto, label, path


def _param_kinds(model: onnx.ModelProto) -> dict[str, str]:
    """Initializer name -> export kind, from the metadata the torch exporter attaches."""
    kinds: dict[str, str] = {}
    init_names = {t.name for t in model.graph.initializer}
    for info in list(model.graph.value_info) + list(model.graph.input):
        if info.name not in init_names:
            continue
        for prop in info.metadata_props:
            if prop.key == PARAM_KIND_KEY:
                kinds[info.name] = prop.value
    for tensor in model.graph.initializer:
        for prop in getattr(tensor, "metadata_props", []):
            if prop.key == PARAM_KIND_KEY:
                kinds[tensor.name] = prop.value
    return kinds


def _fix_symbolic_dims(model: onnx.ModelProto, label: str) -> list[str]:
    """Set a symbolic batch dimension of the graph inputs/outputs to 1; refuse other symbols."""
    init_names = {t.name for t in model.graph.initializer}
    fixed = []
    for kind, infos in (("input", model.graph.input), ("output", model.graph.output)):
        for info in infos:
            if info.name in init_names or not info.type.HasField("tensor_type"):
                continue
            ttype = info.type.tensor_type
            if not ttype.HasField("shape"):
                if kind == "input":
                    raise CGConversionError(f"{label}: graph input {info.name!r} has no shape; give it a static shape")
                continue
            for axis, dim in enumerate(ttype.shape.dim):
                if dim.HasField("dim_value") and dim.dim_value > 0:
                    continue
                if axis == 0:
                    symbol = dim.dim_param or "?"
                    dim.Clear()
                    dim.dim_value = 1
                    if kind == "input":
                        fixed.append(f"{info.name}[{symbol}]")
                elif kind == "input":
                    raise CGConversionError(
                        f"{label}: graph input {info.name!r} has a symbolic dimension "
                        f"{dim.dim_param or '?'!r} at axis {axis}; only the batch axis may be dynamic. "
                        "Fix it, e.g. with onnx.tools.update_model_dims.update_inputs_outputs_dims"
                    )
                else:  # a symbolic output dim: let shape inference fill it
                    dim.Clear()
    return fixed


def _has_shape(info: onnx.ValueInfoProto) -> bool:
    if not info.type.HasField("tensor_type"):
        return False
    ttype = info.type.tensor_type
    return ttype.HasField("shape") and all(d.HasField("dim_value") for d in ttype.shape.dim)


def _infer(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise CGConversionError(f"{label}: ONNX shape inference failed ({type(exc).__name__}: {exc})") from None


_INT_TYPES = {
    onnx.TensorProto.INT64,
    onnx.TensorProto.INT32,
    onnx.TensorProto.INT16,
    onnx.TensorProto.INT8,
    onnx.TensorProto.UINT8,
    onnx.TensorProto.BOOL,
}


def _fold_shape_constants(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Infer shapes, replacing integer-valued constant subgraphs by ``Constant`` nodes until stable.

    ONNX shape inference cannot always see through shape bookkeeping (e.g. ``ReduceMean`` axes
    computed by a ``Reshape`` of constants); folding the integer constants (shapes, axes, pads,
    indices) lets the next inference round fill the shapes in.
    """
    from ._onnx_eval import evaluate_node

    opsets = {o.domain or "": o.version for o in model.opset_import}
    for _ in range(_MAX_FOLD_ROUNDS):
        model = _infer(model, label)
        graph = model.graph
        shapes: dict[str, tuple[int, ...] | None] = {}
        dtypes: dict[str, int] = {}
        for info in list(graph.input) + list(graph.value_info) + list(graph.output):
            if info.type.HasField("tensor_type"):
                dtypes[info.name] = info.type.tensor_type.elem_type
                shapes[info.name] = tuple(d.dim_value for d in info.type.tensor_type.shape.dim) if _has_shape(info) else None
        inits = {t.name: t for t in graph.initializer}
        for t in graph.initializer:
            shapes[t.name], dtypes[t.name] = tuple(t.dims), t.data_type
        values: dict[str, np.ndarray] = {}
        consts = set(inits)

        const_nodes: dict[str, onnx.NodeProto] = {}

        def value(name: str) -> np.ndarray:
            if name not in values:
                if name in inits:
                    values[name] = numpy_helper.to_array(inits[name])
                else:
                    values[name] = evaluate_node(const_nodes[name], {}, opsets, shapes, dtypes)[0]
            return values[name]

        new_nodes: list[onnx.NodeProto] = []
        changed = False
        for node in graph.node:
            outs = [o for o in node.output if o]
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                consts.update(outs)
                const_nodes[outs[0]] = node
                new_nodes.append(node)
                continue
            data_inputs = [i for i in node.input if i]
            if node.op_type in ("Shape", "Size"):
                data_inputs = []
                foldable = shapes.get(node.input[0]) is not None
            else:
                if node.op_type == "CastLike":
                    data_inputs = data_inputs[:1]
                foldable = all(i in consts for i in data_inputs) and all(dtypes.get(o) in _INT_TYPES for o in outs)
            if not foldable or node.domain not in ("", "ai.onnx") or not outs:
                new_nodes.append(node)
                continue
            try:
                results = evaluate_node(node, {i: value(i) for i in data_inputs}, opsets, shapes, dtypes)
            except Exception:  # leave it to the converter (it reports what fails, if it matters)
                new_nodes.append(node)
                continue
            for out, result in zip(node.output, results):
                if not out:
                    continue
                result = np.asarray(result)
                values[out] = result
                consts.add(out)
                new_nodes.append(
                    onnx.helper.make_node(
                        "Constant", [], [out], name=f"{node.name or out}_folded", value=numpy_helper.from_array(result, out)
                    )
                )
            changed = True
        if not changed:
            return model
        del graph.node[:]
        graph.node.extend(new_nodes)
    return _infer(model, label)


def _fill_unknown_op_shapes(model: onnx.ModelProto, label: str) -> tuple[onnx.ModelProto, list[str]]:
    """Give outputs of ops that shape inference cannot handle (custom domains) their input's type.

    Shape inference stops at an op it does not know, so everything downstream lacks shapes too.
    Each such op is assumed to keep its first input's shape (true for custom activations and
    elementwise ops); inference is re-run after each assumption. Returns the assumed value names.
    """
    assumed: list[str] = []
    for _ in range(len(model.graph.node) + 1):
        known = {v.name: v for v in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)}
        known_shaped = {name for name, v in known.items() if _has_shape(v)}
        known_shaped |= {t.name for t in model.graph.initializer}
        target = None
        for node in model.graph.node:
            missing = [o for o in node.output if o and o not in known_shaped]
            if not missing:
                continue
            first = next((i for i in node.input if i in known_shaped and i in known), None)
            if node.domain not in ("", "ai.onnx") and first is not None:
                target = (node, missing, known[first])
                break
        if target is None:
            return model, assumed
        node, missing, first_info = target
        for name in missing:
            info = onnx.ValueInfoProto()
            info.CopyFrom(first_info)
            info.name = name
            info.ClearField("metadata_props")
            model.graph.value_info.append(info)
            assumed.append(name)
        model = _infer(model, label)
    return model, assumed


def load_onnx(model: str | os.PathLike | onnx.ModelProto) -> LoadedModel:
    """Read, check and shape-infer ``model``; raise ``CGConversionError`` naming the cause."""
    proto, label, path = _read(model)
    if not proto.graph.node:
        raise CGConversionError(f"{label} holds no ONNX graph nodes (empty or not an ONNX model)")
    kinds = _param_kinds(proto)
    proto, weights = _skeleton(proto)  # a copy: the caller's ModelProto is never modified
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise CGConversionError(f"{label} fails the ONNX checker: {exc}") from None
    if proto.functions:
        try:
            proto = onnx.inliner.inline_local_functions(proto)
        except Exception as exc:  # pragma: no cover - only for unusual function bodies
            warnings.warn(f"{label}: could not inline local functions ({exc}); they become unknown ops", stacklevel=3)
    fixed = _fix_symbolic_dims(proto, label)
    # intermediate annotations may carry symbolic dims written by the exporter: re-infer them all
    del proto.graph.value_info[:]
    inferred = _fold_shape_constants(proto, label)
    inferred, assumed = _fill_unknown_op_shapes(inferred, label)
    return LoadedModel(inferred, label, path, weights, kinds, fixed, assumed)

"""ONNX → computation graph: :func:`from_onnx`.

Pipeline position: model (an ONNX file or ``onnx.ModelProto``) → **CG** → features → predictor →
ranking/search.

The model is checked (``onnx.checker``) and shape-inferred (``data_prop=True``); constant subgraphs
(initializers, ``Constant`` nodes and shape bookkeeping such as ``Shape → Gather → Concat →
Reshape``) are folded away; every remaining node is mapped onto the op vocabulary of
:mod:`cgpredict.ops` with the conventions shared with :func:`cgpredict.converters.from_torch`, and
the decompositions the torch exporters emit (``x·Sigmoid(x)``, the Erf form of GELU, the SDPA
MatMul/Softmax/MatMul chain, ``MatMul + Add`` linear layers, decomposed layer norm) are fused back.

Example:
    >>> import torch, torchvision
    >>> from cgpredict.converters import from_onnx
    >>> model = torchvision.models.resnet18().eval()
    >>> program = torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), dynamo=True, optimize=False)
    >>> cg = from_onnx(program.model_proto)
    >>> cg.params == sum(p.numel() for p in model.parameters())
    True
"""

from __future__ import annotations

import os
import warnings
from collections import Counter

import onnx

from cgpredict.cg import CG, CGBuilder
from cgpredict.errors import CGConversionError

from cgpredict.counting import counted_unknown_macs

from ._conventions import warn_uncounted
from ._onnx_load import load_onnx
from ._onnx_mapping import OnnxMapper
from ._onnx_values import ValueTable

__all__ = ["from_onnx"]


def from_onnx(model: str | os.PathLike | onnx.ModelProto, *, strict: bool = False, name: str | None = None) -> CG:
    """Convert an ONNX model into a :class:`~cgpredict.cg.CG`.

    Args:
        model: path of an ``.onnx`` file, or an ``onnx.ModelProto`` (e.g. ``program.model_proto``
            of ``torch.onnx.export(..., dynamo=True)``).
        strict: raise instead of warning when some ops fall outside the mapping (``unknown`` nodes
            whose MACs no rule counts); otherwise one
            :class:`~cgpredict.converters.UncountedOpWarning` per such op type.
        name: name of the CG; default: the file's stem, else the ONNX graph name.

    Returns:
        The computation graph, validated, with per-node MACs and parameters filled in.

    Raises:
        CGConversionError: the file is missing or not a (valid) ONNX model, shapes cannot be
            inferred statically, a constant cannot be evaluated, or (``strict``) unknown ops remain.
    """
    loaded = load_onnx(model)
    values = ValueTable(loaded)
    graph_name = name or (loaded.path.stem if loaded.path is not None else loaded.model.graph.name) or "onnx"
    meta = {
        "source": "onnx",
        "producer": f"{loaded.model.producer_name} {loaded.model.producer_version}".strip(),
        "opset": values.opsets.get("", 0),
    }
    if loaded.path is not None:
        meta["file"] = str(loaded.path)
    if loaded.fixed_batch:
        meta["fixed_batch"] = loaded.fixed_batch
    builder = CGBuilder(name=graph_name, meta=meta)
    mapper = OnnxMapper(values, builder)
    mapper.run()
    try:
        cg = builder.build()
    except ValueError as exc:
        raise CGConversionError(f"{loaded.label}: the converted graph is inconsistent: {exc}") from exc
    unknown = Counter(n.source_op for n in cg.nodes if n.op == "unknown" and counted_unknown_macs(n) is None)
    if unknown and strict:
        listing = ", ".join(f"{op} ×{count}" for op, count in sorted(unknown.items()))
        raise CGConversionError(f"{loaded.label}: ops outside the CG mapping: {listing}")
    warn_uncounted(cg, loaded.label)
    if loaded.assumed_shapes:
        warnings.warn(
            f"{loaded.label}: assumed the outputs of ops unknown to ONNX shape inference keep their "
            f"input's shape: {', '.join(loaded.assumed_shapes)}",
            stacklevel=2,
        )
    return cg

"""The value table of an ONNX graph: static shapes, constant folding and parameter provenance.

Pipeline position: model (ONNX) → **CG** (helper of :mod:`cgpredict.converters.onnx_converter`).

A value is *constant* when it is an initializer, the output of a ``Constant`` node, a shape
(``Shape``/``Size`` of anything: shapes are static after inference) or the output of a node whose
data inputs are all constant (``CastLike`` reads only the dtype of its second input). Constants
never become CG nodes; their numeric value is computed lazily (only when a consumer needs it, e.g. a
``Reshape`` target or ``ReduceMean`` axes), and each constant remembers which *learned*
initializers it derives from so that their numel can be folded into the first consuming node.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from cgpredict.errors import CGConversionError

from ._onnx_eval import evaluate_node, node_attr
from ._onnx_load import LoadedModel

#: ops whose second input only contributes its dtype (not its data)
_TYPE_ONLY_SECOND = {"CastLike"}
#: ops whose output depends only on the (static) shape of their input
_SHAPE_OPS = {"Shape", "Size"}
_FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.BFLOAT16,
    onnx.TensorProto.DOUBLE,
}


def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """The value of attribute ``name`` of ``node`` (bytes decoded), or ``default``."""
    return node_attr(node, name, default)


class ValueTable:
    """Shapes, dtypes, producers, consumers and constants of one shape-inferred ONNX graph."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        graph = loaded.model.graph
        self.label = loaded.label
        self.opsets = {o.domain or "": o.version for o in loaded.model.opset_import}
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        self.dtypes: dict[str, int] = {}
        for info in list(graph.input) + list(graph.value_info) + list(graph.output):
            if not info.type.HasField("tensor_type"):
                continue
            ttype = info.type.tensor_type
            self.dtypes[info.name] = ttype.elem_type
            if ttype.HasField("shape") and all(d.HasField("dim_value") for d in ttype.shape.dim):
                self.shapes[info.name] = tuple(int(d.dim_value) for d in ttype.shape.dim)
            else:
                self.shapes.setdefault(info.name, None)
        self.initializers: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
        self.initializers.update(loaded.weights)
        for t in self.initializers.values():
            self.shapes[t.name] = tuple(int(d) for d in t.dims)
            self.dtypes[t.name] = t.data_type
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in graph.node:
            for out in node.output:
                if out:
                    self.producer[out] = node
            for inp in node.input:
                if inp:
                    self.consumers[inp].append(node)
        self.graph_outputs = [o.name for o in graph.output]
        self.learned = self._learned_initializers(graph)
        self.numel = {name: int(np.prod(self.shapes[name], dtype=np.int64)) for name in self.initializers}
        self.counted: set[str] = set()
        self._const: dict[str, frozenset[str]] = {}  # constant value -> learned initializers it uses
        self._values: dict[str, np.ndarray] = {}
        for name in self.initializers:
            self._const[name] = frozenset({name}) if name in self.learned else frozenset()

    # ------------------------------------------------------------------ parameters
    def _learned_initializers(self, graph: onnx.GraphProto) -> set[str]:
        """Initializers that are learned parameters (buffers and constants excluded)."""
        # Exported by torch.export, an initializer says whether it is a PARAMETER or a BUFFER /
        # CONSTANT; initializers an optimiser created (folded or transposed weights) say nothing and,
        # like those of other producers, count when they are float tensors of more than one
        # element that are not batch-norm running statistics.
        kinds = self.loaded.param_kinds
        buffers = set()
        for node in graph.node:  # running statistics of batch norm are buffers
            if node.op_type == "BatchNormalization":
                buffers.update(i for i in node.input[3:5] if i)
        learned = set()
        for name, t in self.initializers.items():
            kind = kinds.get(name)
            if kind is not None:
                if kind == "PARAMETER":
                    learned.add(name)
            elif name not in buffers and t.data_type in _FLOAT_TYPES and int(np.prod(t.dims, dtype=np.int64)) > 1:
                learned.add(name)
        return learned

    def take_params(self, *names: str) -> int:
        """Numel of the learned initializers behind constant values ``names`` not yet counted."""
        total = 0
        for name in names:
            for init in sorted(self._const.get(name, ())):
                if init not in self.counted:
                    self.counted.add(init)
                    total += self.numel[init]
        return total

    def has_params(self, name: str) -> bool:
        """Whether constant ``name`` derives from a learned initializer."""
        return bool(self._const.get(name))

    # ------------------------------------------------------------------ constants
    def is_const(self, name: str) -> bool:
        """Whether value ``name`` is a constant (nodes are classified by :meth:`mark`, in order)."""
        return name in self._const

    def mark(self, node: onnx.NodeProto) -> bool:
        """Record ``node``'s outputs as constants if its data inputs are constant; return that."""
        op = node.op_type
        if op == "Constant":
            prov: frozenset[str] = frozenset()
        elif op in _SHAPE_OPS and node.domain in ("", "ai.onnx"):
            prov = frozenset()
        else:
            inputs = [i for i in node.input if i]
            if op in _TYPE_ONLY_SECOND:
                inputs = inputs[:1]
            if not all(i in self._const for i in inputs) or node.domain not in ("", "ai.onnx"):
                return False
            if op in ("RandomNormalLike", "RandomUniformLike", "EyeLike"):
                prov = frozenset()
            else:
                prov = frozenset().union(*(self._const[i] for i in inputs)) if inputs else frozenset()
        for out in node.output:
            if out:
                self._const[out] = prov
        return True

    def value(self, name: str) -> np.ndarray:
        """The numeric value of constant ``name`` (evaluated on demand and cached)."""
        if name in self._values:
            return self._values[name]
        if name not in self._const:
            raise CGConversionError(f"{self.label}: value {name!r} is not a constant")
        if name in self.initializers:
            result = numpy_helper.to_array(self.initializers[name])
        else:
            node = self.producer[name]
            outputs = self._evaluate(node)
            for out, val in zip(node.output, outputs):
                if out:
                    self._values[out] = np.asarray(val)
            result = self._values[name]
        self._values[name] = np.asarray(result)
        return self._values[name]

    def int_list(self, name: str) -> list[int]:
        """Constant ``name`` as a flat list of ints (axes, pads, shapes, indices)."""
        return [int(v) for v in np.asarray(self.value(name)).reshape(-1)]

    def _evaluate(self, node: onnx.NodeProto) -> list[np.ndarray]:
        feeds = {}
        for i in node.input:
            if i and not (node.op_type in _SHAPE_OPS or (node.op_type == "CastLike" and i == node.input[1])):
                feeds[i] = self.value(i)
        try:
            return evaluate_node(node, feeds, self.opsets, self.shapes, self.dtypes)
        except Exception as exc:
            raise CGConversionError(
                f"{self.label}: cannot evaluate constant {node.op_type} node {node.name!r} "
                f"({type(exc).__name__}: {exc})"
            ) from None

    # ------------------------------------------------------------------ shapes
    def shape(self, name: str, node: onnx.NodeProto | None = None) -> tuple[int, ...]:
        """Static shape of value ``name``; raises ``CGConversionError`` if inference left it open."""
        shape = self.shapes.get(name)
        if shape is None and name in self._values:
            return tuple(self._values[name].shape)
        if shape is None:
            where = f" (used by {node.op_type} node {node.name!r})" if node is not None else ""
            raise CGConversionError(
                f"{self.label}: value {name!r}{where} has no static shape after ONNX shape inference; "
                "export the model with static input shapes"
            )
        return shape

    def num_uses(self, name: str) -> int:
        """How many node input slots and graph outputs read the *data* of value ``name``.

        Reads of only its shape (``Shape``, ``Size``) or dtype (``CastLike``'s second input) do not count.
        """
        uses = 0
        for consumer in self.consumers.get(name, []):
            if consumer.op_type in _SHAPE_OPS:
                continue
            inputs = list(consumer.input)
            if consumer.op_type in _TYPE_ONLY_SECOND:
                inputs = inputs[:1]
            uses += inputs.count(name)
        return uses + self.graph_outputs.count(name)

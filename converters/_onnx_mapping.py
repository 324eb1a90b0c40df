"""The op-by-op mapping of ONNX nodes onto CG nodes (one handler per ONNX op family).

Why one module over 400 lines: one handler per ONNX op family over a shared value table; splitting the handlers would scatter the op-by-op mapping the converter documents.

Pipeline position: model (ONNX) → **CG** (helper of :mod:`cgpredict.converters.onnx_converter`).

:class:`OnnxMapper` walks the (topologically sorted) ONNX nodes once. Constant subgraphs are only
recorded in the :class:`~._onnx_values.ValueTable`; every node that computes on an activation is
mapped by its handler onto one CG node (or an alias when it is a no-op), following the mapping
conventions shared with :func:`cgpredict.converters.from_torch` (see :mod:`cgpredict.ops`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from cgpredict.cg import CGBuilder
from cgpredict.errors import CGConversionError
from cgpredict.ops import conv_op_type

from . import _onnx_patterns as pat
from ._onnx_batch import canonical_shape, track_batch
from ._conventions import einsum_is_matmul, split_attrs
from ._torch_lower import rnn_steps
from ._onnx_values import ValueTable, attr

_ACTIVATIONS = {
    "Relu": "relu",
    "Gelu": "gelu",
    "HardSwish": "hardswish",
    "HardSigmoid": "hardsigmoid",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softmax": "softmax",
    "LogSoftmax": "softmax",
}
_VIEWS = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Expand", "DepthToSpace", "SpaceToDepth"}
_REDUCTIONS = {"ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceLogSumExp", "ReduceSumSquare", "ReduceLogSum"}
_PAD_MODES = {"edge": "replicate", "wrap": "circular", "reflect": "reflect", "constant": "constant"}
_NORMS = {"LayerNormalization", "GroupNormalization", "InstanceNormalization", "RMSNormalization",
          "SimplifiedLayerNormalization", "SkipLayerNormalization"}


class OnnxMapper:
    """Builds a CG from a :class:`ValueTable` (use :meth:`run`, then ``builder.build()``)."""

    def __init__(self, values: ValueTable, builder: CGBuilder) -> None:
        self.v = values
        self.b = builder
        self.act: dict[str, int] = {}  # activation value name -> CG node id
        self.bpos: dict[str, int | None] = {}  # activation value name -> axis holding the batch
        self.batch = 1
        self.bias_foldable: set[int] = set()  # linear / decomposed norms a following Add may fold into
        self.affine_pending: set[int] = set()  # decomposed layer norms awaiting their Mul(gamma)
        self.half_pending: set[int] = set()  # gelu patterns whose final `* 0.5` is still to come
        self.handlers: dict[str, Callable[[onnx.NodeProto], None]] = {
            "Conv": self.conv,
            "ConvTranspose": self.conv,
            "Gemm": self.gemm,
            "MatMul": self.matmul,
            "BatchNormalization": self.batch_norm,
            "Clip": self.clip,
            "LeakyRelu": self.leaky_relu,
            "Add": self.elementwise,
            "Sub": self.elementwise,
            "Mul": self.elementwise,
            "Div": self.elementwise,
            "Concat": self.concat,
            "Split": self.split,
            "Slice": self.slice,
            "Gather": self.gather,
            "MaxPool": self.pool,
            "AveragePool": self.pool,
            "LpPool": self.pool,
            "GlobalAveragePool": self.global_pool,
            "GlobalMaxPool": self.global_pool,
            "Pad": self.pad,
            "Resize": self.resize,
            "Upsample": self.resize,
            "Attention": self.attention,
            "SplitToSequence": self.split_to_sequence,
            "LSTM": self.recurrent,
            "GRU": self.recurrent,
            "RNN": self.recurrent,
            "Col2Im": self.col2im,
            "Einsum": self.einsum,
            "SequenceAt": self.sequence_at,
        }
        #: SplitToSequence outputs: sequence name -> (input, axis, piece sizes, keepdims)
        self.sequences: dict[str, tuple[str, int, list[int], bool]] = {}
        for op in _ACTIVATIONS:
            self.handlers[op] = self.activation
        for op in _VIEWS:
            self.handlers[op] = self.view
        for op in _REDUCTIONS:
            self.handlers[op] = self.reduce
        for op in _NORMS:
            self.handlers[op] = self.norm
        for op in pat.PASS_THROUGH:
            self.handlers[op] = self.alias

    # ------------------------------------------------------------------ driving
    def run(self) -> None:
        """Map every node of the graph, then add the output node."""
        graph = self.v.loaded.model.graph
        for inp in graph.input:
            if inp.name in self.v.initializers:
                continue
            shape = self.v.shape(inp.name)
            if not self.act and shape:
                self.batch = max(1, int(shape[0]))
            self.bpos[inp.name] = 0 if shape else None
            self.act[inp.name] = self.b.add(
                "input", [], self.v.shape(inp.name), name=inp.name, source_op="input"
            )
        for node in graph.node:
            if self.v.mark(node):
                continue
            handler = self.handlers.get(node.op_type) if node.domain in ("", "ai.onnx") else None
            if node.domain == "com.microsoft" and node.op_type in _NORMS:
                handler = self.norm
            if handler is None:
                self.unknown(node)
            else:
                handler(node)
        outputs = [o for o in self.v.graph_outputs if not self.v.is_const(o)]
        if not outputs:
            raise CGConversionError(f"{self.v.label}: every graph output is a constant; nothing to convert")
        self.b.add(
            "output",
            [self.get(o) for o in outputs],
            self.b.nodes[self.get(outputs[0])].out_shape,
            name="output",
            source_op="output",
        )

    def get(self, name: str, node: onnx.NodeProto | None = None) -> int:
        """CG node id of activation ``name``."""
        try:
            return self.act[name]
        except KeyError:
            where = f" read by {node.op_type} node {node.name!r}" if node is not None else ""
            raise CGConversionError(f"{self.v.label}: value {name!r}{where} was never produced") from None

    def acts(self, node: onnx.NodeProto) -> list[str]:
        """Names of the non-constant inputs of ``node``."""
        return [i for i in node.input if i and not self.v.is_const(i)]

    def consts(self, node: onnx.NodeProto) -> list[str]:
        """Names of the constant inputs of ``node``."""
        return [i for i in node.input if i and self.v.is_const(i)]

    @staticmethod
    def source(node: onnx.NodeProto) -> str:
        """``source_op`` text of an ONNX node (domain-qualified outside the default domain)."""
        if node.domain in ("", "ai.onnx"):
            return node.op_type
        return f"{node.domain}.{node.op_type}"

    def emit(
        self,
        op: str,
        node: onnx.NodeProto,
        inputs: list[str],
        out: str | None = None,
        params: int | None = None,
        source_op: str | None = None,
        **fields: Any,
    ) -> int:
        """Add a CG node computing ``out`` (default: the node's first output) from ``inputs``.

        ``params`` defaults to the learned parameters behind the node's constant inputs.
        """
        out = out if out is not None else node.output[0]
        if params is None:
            params = self.v.take_params(*self.consts(node))
        shape = self.v.shape(out, node)
        if inputs:
            seq = self.sequences.get(node.input[0]) if node.op_type == "SequenceAt" else None
            source = node.input[0] if seq is None else seq[0]
            if source not in self.bpos or op in ("sdpa", "layer_norm", "gelu", "silu", "hardswish"):
                source = inputs[0]
            bpos = track_batch(
                self.v, node, source, out, self.bpos.get(source, 0), self.batch,
                (seq[1], seq[3]) if seq is not None else None,
            )
        else:
            bpos = 0
        self.bpos[out] = bpos
        node_id = self.b.add(
            op,
            [self.get(i, node) for i in inputs],
            canonical_shape(shape, bpos, self.batch),
            name=node.name or out,
            source_op=source_op or self.source(node),
            params=params,
            **fields,
        )
        self.act[out] = node_id
        return node_id

    def alias(self, node: onnx.NodeProto, src: str | None = None) -> None:
        """Make the node's first output the same CG node as ``src`` (default: first input)."""
        src = src if src is not None else node.input[0]
        self.act[node.output[0]] = self.get(src, node)
        self.bpos[node.output[0]] = self.bpos.get(src, 0)

    def const_ints(self, name: str) -> list[int] | None:
        """Constant ``name`` as a list of ints, or ``None`` when it is computed from activations."""
        return self.v.int_list(name) if self.v.is_const(name) else None

    def rank_axis(self, axis: int, rank: int) -> int:
        """A possibly negative ``axis`` as a non-negative index."""
        return axis + rank if axis < 0 else axis

    # ------------------------------------------------------------------ unknown ops
    def unknown(self, node: onnx.NodeProto) -> None:
        """An op outside the mapping: one ``unknown`` node per used output."""
        acts = self.acts(node)
        params = self.v.take_params(*self.consts(node))
        for out in node.output:
            if not out or (not self.v.consumers.get(out) and out not in self.v.graph_outputs):
                continue
            self.emit("unknown", node, acts, out=out, params=params)
            params = 0

    def recurrent(self, node: onnx.NodeProto) -> None:
        """LSTM/GRU/RNN → ``unknown`` with the layer's real MACs in ``attrs["macs"]``.

        Per sample: steps × (numel(W) + numel(R)) (all gates and directions), the rule of
        :func:`cgpredict.converters._torch_lower.rnn_steps` and ``_rnn``. Further used outputs
        (``Y_h``, ``Y_c``) read the main node with 0 MACs.
        """
        x = node.input[0]
        per_step = sum(math.prod(self.v.shape(w, node)) for w in node.input[1:3] if w)
        steps = rnn_steps(tuple(self.v.shape(x, node)), bool(attr(node, "layout", 0)))
        outs = [o for o in node.output if o and (self.v.consumers.get(o) or o in self.v.graph_outputs)]
        if not outs:
            return
        main = outs[0]
        self.emit("unknown", node, self.acts(node), out=main, attrs={"macs": int(steps * per_step)})
        for out in outs[1:]:
            self.emit("unknown", node, [main], out=out, params=0, attrs={"macs": 0})

    def einsum(self, node: onnx.NodeProto) -> None:
        """Einsum of two activations that is a batched matmul → matmul (the torch rule); else unknown."""
        acts = self.acts(node)
        if len(node.input) == 2 and len(acts) == 2 and einsum_is_matmul(attr(node, "equation", "")):
            self.emit("matmul", node, acts)
            return
        self.unknown(node)

    def col2im(self, node: onnx.NodeProto) -> None:
        """Col2Im (``nn.Fold``) → ``reshape`` (0 MACs), the op kept in ``attrs["op"]``."""
        self.emit("reshape", node, [node.input[0]], params=0, attrs={"op": "col2im"})

    # ------------------------------------------------------------------ layers with weights
    def conv(self, node: onnx.NodeProto) -> None:
        """Conv / ConvTranspose → conv, depthwise_conv or grouped_conv."""
        x, w = node.input[0], node.input[1]
        b = node.input[2] if len(node.input) > 2 and node.input[2] else None
        in_shape = self.v.shape(x, node)
        w_shape = self.v.shape(w, node)
        out_shape = self.v.shape(node.output[0], node)
        spatial = len(w_shape) - 2
        groups = int(attr(node, "group", 1))
        kernel = list(attr(node, "kernel_shape", None) or w_shape[2:])
        stride = list(attr(node, "strides", None) or [1] * spatial)
        dilation = list(attr(node, "dilations", None) or [1] * spatial)
        pads = list(attr(node, "pads", None) or [0] * (2 * spatial))
        auto_pad = attr(node, "auto_pad", "NOTSET")
        transposed = node.op_type == "ConvTranspose"
        if auto_pad in ("SAME_UPPER", "SAME_LOWER") and not transposed:
            pads = _same_pads(in_shape[2:], out_shape[2:], kernel, stride, dilation, auto_pad == "SAME_UPPER")
        attrs: dict[str, Any] = {}
        if list(pads[:spatial]) != list(pads[spatial:]):
            attrs["pads"] = pads
        if transposed:
            attrs["transposed"] = True
        inputs = [x] + [i for i in (w, b) if i is not None and not self.v.is_const(i)]
        self.emit(
            conv_op_type(in_shape[1], groups),
            node,
            inputs,
            weight_shape=w_shape,
            kernel=kernel,
            stride=stride,
            padding=pads[:spatial],
            dilation=dilation,
            groups=groups,
            bias=b is not None and self.v.has_params(b),
            attrs=attrs,
        )

    def gemm(self, node: onnx.NodeProto) -> None:
        """Gemm with a constant B → linear (weight as (out, in)); two activations → matmul."""
        a, bmat = node.input[0], node.input[1]
        c = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if self.v.is_const(bmat) and not self.v.is_const(a):
            b_shape = self.v.shape(bmat, node)
            weight = tuple(b_shape) if attr(node, "transB", 0) else tuple(b_shape[::-1])
            inputs = [a] + ([c] if c is not None and not self.v.is_const(c) else [])
            has_bias = c is not None and self.v.is_const(c) and self.v.has_params(c)
            node_id = self.emit("linear", node, inputs, weight_shape=weight, bias=has_bias)
            if not has_bias:
                self.bias_foldable.add(node_id)
            return
        self.emit("matmul", node, self.acts(node))

    def matmul(self, node: onnx.NodeProto) -> None:
        """MatMul with a constant right operand → linear; of two activations → matmul or sdpa."""
        a, bmat = node.input[0], node.input[1]
        if self.v.is_const(bmat) and not self.v.is_const(a):
            b_shape = self.v.shape(bmat, node)
            weight = (b_shape[-1], b_shape[-2]) if len(b_shape) >= 2 else (1, b_shape[0])
            self.bias_foldable.add(self.emit("linear", node, [a], weight_shape=weight, bias=False))
            return
        acts = self.acts(node)
        if len(acts) == 2:
            found = pat.attention_inputs(self.v, a, bmat)
            if found is not None:
                q, k, vv, matched = found
                self.emit("sdpa", node, [q, k, vv], source_op="+".join(matched))
                return
        self.emit("matmul", node, acts)

    def batch_norm(self, node: onnx.NodeProto) -> None:
        """BatchNormalization → batch_norm; running mean/var are buffers (not params)."""
        x, scale = node.input[0], node.input[1]
        bias = node.input[2] if len(node.input) > 2 else ""
        params = self.v.take_params(scale, bias)
        self.emit(
            "batch_norm",
            node,
            [x],
            params=params,
            weight_shape=self.v.shape(scale, node),
            bias=bool(bias) and self.v.has_params(bias),
        )

    def norm(self, node: onnx.NodeProto) -> None:
        """Layer/group/instance/RMS normalisation → layer_norm."""
        scale = node.input[1] if len(node.input) > 1 and node.input[1] else None
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if node.op_type == "SkipLayerNormalization":  # com.microsoft: x + skip, then LN
            scale, bias = node.input[2], (node.input[3] if len(node.input) > 3 and node.input[3] else None)
        has_weight = scale is not None and self.v.is_const(scale) and self.v.has_params(scale)
        self.emit(
            "layer_norm",
            node,
            self.acts(node),
            weight_shape=self.v.shape(scale, node) if has_weight else None,
            bias=bias is not None and self.v.is_const(bias) and self.v.has_params(bias),
        )

    # ------------------------------------------------------------------ activations
    def activation(self, node: onnx.NodeProto) -> None:
        """Relu, Gelu, HardSwish, HardSigmoid, Sigmoid, Tanh, Softmax, LogSoftmax."""
        self.emit(_ACTIVATIONS[node.op_type], node, self.acts(node)[:1])

    def clip(self, node: onnx.NodeProto) -> None:
        """Clip → relu6 (also hardtanh-like ranges), or relu for a lower bound 0 without upper bound."""
        lo = attr(node, "min", None)
        hi = attr(node, "max", None)
        if len(node.input) > 1 and node.input[1] and self.v.is_const(node.input[1]):
            lo = float(np.asarray(self.v.value(node.input[1])).reshape(-1)[0])
        if len(node.input) > 2 and node.input[2] and self.v.is_const(node.input[2]):
            hi = float(np.asarray(self.v.value(node.input[2])).reshape(-1)[0])
        op = "relu" if lo == 0 and (hi is None or math.isinf(hi)) else "relu6"
        self.emit(op, node, [node.input[0]], params=0)

    def leaky_relu(self, node: onnx.NodeProto) -> None:
        """LeakyRelu → ``relu`` with ``attrs["negative_slope"]`` (ONNX's ``alpha``, 0.01 by default)."""
        self.emit("relu", node, self.acts(node)[:1], params=0,
                  attrs={"negative_slope": float(attr(node, "alpha", 0.01))})

    # ------------------------------------------------------------------ elementwise
    def elementwise(self, node: onnx.NodeProto) -> None:
        """Add/Sub → add, Mul/Div → mul, with bias, silu, gelu and layer-norm fusions."""
        acts = self.acts(node)
        kind = "add" if node.op_type in ("Add", "Sub") else "mul"
        if not acts:  # pragma: no cover - mark() keeps all-constant nodes out
            return
        if len(acts) == 1:
            (x,) = acts
            src = self.get(x, node)
            const = self.consts(node)
            out_shape = self.v.shape(node.output[0], node)
            src_node = self.b.nodes[src]
            single_use = self.v.num_uses(x) == 1 and tuple(self.v.shape(x, node)) == tuple(out_shape)
            if kind == "add" and node.op_type == "Add" and single_use and src in self.bias_foldable:
                src_node.bias = True
                src_node.params += self.v.take_params(*const)
                src_node.source_op += "+Add"
                self.bias_foldable.discard(src)
                self.alias(node, x)
                return
            if kind == "mul" and single_use and src in self.affine_pending and node.op_type == "Mul":
                gamma = tuple(self.v.shape(const[0], node))
                if sum(1 for d in gamma if d != 1) <= 1:  # (C, 1, 1) or (1, 1, C) → (C,)
                    gamma = (math.prod(gamma),)
                src_node.weight_shape = gamma
                src_node.params += self.v.take_params(*const)
                src_node.source_op += "+Mul"
                self.affine_pending.discard(src)
                self.bias_foldable.add(src)
                self.alias(node, x)
                return
            if kind == "mul" and single_use and src in self.half_pending:
                self.half_pending.discard(src)
                self.alias(node, x)
                return
            self.emit(kind, node, [x])
            return
        if node.op_type == "Mul":
            if self._fuse_gated(node, acts) or self._fuse_gelu(node, acts):
                return
        if node.op_type == "Div":
            x = pat.decomposed_layer_norm(self.v, node.input[0], node.input[1])
            if x is not None:
                node_id = self.emit("layer_norm", node, [x], source_op="LayerNorm-pattern")
                self.affine_pending.add(node_id)
                return
        self.emit(kind, node, acts)

    def _fuse_gated(self, node: onnx.NodeProto, acts: list[str]) -> bool:
        """``x * Sigmoid(x)`` → silu, ``x * HardSigmoid(x)`` → hardswish."""
        for x, gate in (acts, acts[::-1]):
            found = pat.sigmoid_gate(self.v, gate)
            if found is not None and self.get(found[0], node) == self.get(x, node):
                op = "silu" if found[1] == "Sigmoid" else "hardswish"
                self.emit(op, node, [x], source_op=f"{found[1]}+Mul")
                return True
        return False

    def _fuse_gelu(self, node: onnx.NodeProto, acts: list[str]) -> bool:
        """``x * 0.5 * (1 + Erf(x/√2))`` (or the Tanh form) → gelu."""
        for x, other in (acts, acts[::-1]):
            found = pat.erf_gelu_source(self.v, other) or pat.tanh_gelu_source(self.v, other)
            if found is None:
                continue
            source, scaled = found
            target = self.get(source, node)
            if self.get(x, node) != target:
                inner = pat.const_scaled(self.v, pat.producer(self.v, x), ("Mul", "Div"))
                if inner is None or self.get(inner, node) != target:
                    continue
                scaled = True
            node_id = self.emit("gelu", node, [source], source_op="Erf/Tanh-gelu-pattern")
            if not scaled:
                self.half_pending.add(node_id)
            return True
        return False

    # ------------------------------------------------------------------ tensor plumbing
    def concat(self, node: onnx.NodeProto) -> None:
        """Concat → concat with a non-negative ``dim``; constant parts only add their params."""
        acts = self.acts(node)
        if len(acts) == 1 and not self.consts(node):  # one tensor: a copy (same rule as torch)
            self.alias(node, acts[0])
            return
        rank = len(self.v.shape(node.output[0], node))
        dim = self.rank_axis(int(attr(node, "axis", 0)), rank)
        self.emit("concat", node, acts, attrs={"dim": dim})

    def split(self, node: onnx.NodeProto) -> None:
        """Split → one split node per used output, attrs ``dim``, output ``index`` (and ``start``)."""
        rank = len(self.v.shape(node.input[0], node))
        dim = self.rank_axis(int(attr(node, "axis", 0)), rank)
        start = 0
        for index, out in enumerate(node.output):
            if out and (self.v.consumers.get(out) or out in self.v.graph_outputs):
                self.emit("split", node, [node.input[0]], out=out, params=0, attrs=split_attrs(dim, index, start))
            if out:
                start += self.v.shape(out, node)[dim]

    def split_to_sequence(self, node: onnx.NodeProto) -> None:
        """SplitToSequence (torch ``chunk``/``split``): no node; its SequenceAt reads become splits."""
        x = node.input[0]
        shape = self.v.shape(x, node)
        axis = self.rank_axis(int(attr(node, "axis", 0)), len(shape))
        keepdims = bool(attr(node, "keepdims", 1))
        size = shape[axis]
        if len(node.input) > 1 and node.input[1]:
            split = self.v.int_list(node.input[1])
            if np.ndim(self.v.value(node.input[1])) == 0:  # a chunk length
                step = max(1, split[0])
                split = [min(step, size - start) for start in range(0, size, step)]
            keepdims = True
        else:
            split = [1] * size
        self.sequences[node.output[0]] = (x, axis, split, keepdims)

    def sequence_at(self, node: onnx.NodeProto) -> None:
        """SequenceAt of a split sequence at a constant position → split (``dim``, ``index``)."""
        seq = self.sequences.get(node.input[0])
        if seq is None or not self.v.is_const(node.input[1]):
            self.unknown(node)
            return
        x, axis, sizes, keepdims = seq
        index = self.v.int_list(node.input[1])[0]
        index = index + len(sizes) if index < 0 else index
        out = node.output[0]
        if self.v.shapes.get(out) is None:
            shape = list(self.v.shape(x, node))
            shape[axis] = sizes[index]
            if not keepdims:
                del shape[axis]
            self.v.shapes[out] = tuple(shape)
        start = sum(sizes[:index]) if keepdims else index
        self.emit("split", node, [x], params=0, attrs=split_attrs(axis, index, start))

    def slice(self, node: onnx.NodeProto) -> None:
        """Slice → split on the first sliced axis (no node when nothing is cut off)."""
        x = node.input[0]
        in_shape = self.v.shape(x, node)
        out_shape = self.v.shape(node.output[0], node)
        if tuple(in_shape) == tuple(out_shape):
            self.alias(node)
            return
        if len(node.input) > 1:
            starts = self.const_ints(node.input[1])
            axes = self.const_ints(node.input[3]) if len(node.input) > 3 and node.input[3] else None
            if starts is None:  # data-dependent bounds: cut along the axes whose size changes
                axes = [a for a, (i, o) in enumerate(zip(in_shape, out_shape)) if i != o]
                starts = [0] * len(axes)
            axes = list(range(len(starts))) if axes is None else axes
        else:  # opset < 10: attributes
            starts = list(attr(node, "starts", []))
            axes = list(attr(node, "axes", None) or range(len(starts)))
        axes = [self.rank_axis(a, len(in_shape)) for a in axes]
        changed = [(a, s) for a, s in zip(axes, starts) if in_shape[a] != out_shape[a]] or list(zip(axes, starts))
        dim, start = changed[0]
        start = max(0, min(start + in_shape[dim] if start < 0 else start, in_shape[dim]))
        self.emit("split", node, [x], params=0, attrs={"dim": dim, "index": start})

    def gather(self, node: onnx.NodeProto) -> None:
        """Gather of an activation at constant indices → split; a table lookup → unknown."""
        data, indices = node.input[0], node.input[1]
        if self.v.is_const(data) and not self.v.is_const(indices):  # a table lookup (embedding)
            self.emit("unknown", node, [indices], attrs={"macs": 0})
            return
        if self.v.is_const(data) or not self.v.is_const(indices):
            self.unknown(node)
            return
        rank = len(self.v.shape(data, node))
        dim = self.rank_axis(int(attr(node, "axis", 0)), rank)
        idx = self.v.int_list(indices)
        size = self.v.shape(data, node)[dim]
        idx = [i + size if i < 0 else i for i in idx]
        if np.ndim(self.v.value(indices)) > 0 and sorted(idx) == list(range(size)):
            self.view(node)  # a permutation of a whole axis (how as_strided views are exported)
            return
        index: Any = idx[0] if np.ndim(self.v.value(indices)) == 0 or len(idx) == 1 else idx
        self.emit("split", node, [data], params=0, attrs={"dim": dim, "index": index})

    def view(self, node: onnx.NodeProto) -> None:
        """Reshape/Flatten/Transpose/Squeeze/Unsqueeze/Expand on an activation → reshape.

        ``Squeeze`` of the sliced axis right after a one-wide slice is the second half of an
        exported ``select``/``unbind``: it is merged into that ``split`` node.
        """
        x = node.input[0]
        if node.op_type == "Reshape" and self._fuse_group_norm(node):
            return
        if node.op_type == "Squeeze" and self.v.num_uses(x) == 1:
            src = self.b.nodes[self.get(x, node)]
            producer = self.v.producer.get(x)
            rank = len(self.v.shape(x, node))
            axes = self.const_ints(node.input[1]) if len(node.input) > 1 and node.input[1] else attr(node, "axes", [])
            axes = [self.rank_axis(int(a), rank) for a in axes or []]
            if (
                src.op == "split"
                and producer is not None
                and producer.op_type in ("Slice", "Split", "SequenceAt")
                and axes == [src.attrs.get("dim")]
            ):
                bpos = track_batch(self.v, node, x, node.output[0], self.bpos.get(x, 0), self.batch)
                src.out_shape = canonical_shape(self.v.shape(node.output[0], node), bpos, self.batch)
                src.source_op += "+Squeeze"
                self.act[node.output[0]] = src.id
                self.bpos[node.output[0]] = bpos
                return
        self.emit("reshape", node, [x])

    def _fuse_group_norm(self, node: onnx.NodeProto) -> bool:
        """``Reshape → InstanceNormalization(1, 0) → Reshape`` back (exported GroupNorm) → layer_norm.

        The affine ``Mul(gamma)``/``Add(beta)`` that follow are folded in afterwards.
        """
        inorm = pat.producer(self.v, node.input[0])
        if inorm is None or inorm.op_type != "InstanceNormalization" or self.v.num_uses(node.input[0]) != 1:
            return False
        if any(self.v.has_params(i) for i in inorm.input[1:] if i):
            return False
        first = pat.producer(self.v, inorm.input[0])
        if first is None or first.op_type != "Reshape" or self.v.is_const(first.input[0]):
            return False
        x = first.input[0]
        if self.v.shapes.get(x) != self.v.shapes.get(node.output[0]):
            return False
        node_id = self.emit("layer_norm", node, [x], params=0, source_op="GroupNorm-pattern")
        self.affine_pending.add(node_id)
        return True

    # ------------------------------------------------------------------ pooling and reductions
    def pool(self, node: onnx.NodeProto) -> None:
        """MaxPool/AveragePool → max_pool/avg_pool (adaptive pools keep ``output_size``)."""
        x = node.input[0]
        in_shape = self.v.shape(x, node)
        out_shape = self.v.shape(node.output[0], node)
        spatial = len(in_shape) - 2
        kernel = list(attr(node, "kernel_shape", [1] * spatial))
        stride = list(attr(node, "strides", None) or [1] * spatial)
        dilation = list(attr(node, "dilations", None) or [1] * spatial)
        pads = list(attr(node, "pads", None) or [0] * (2 * spatial))
        auto_pad = attr(node, "auto_pad", "NOTSET")
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pads = _same_pads(in_shape[2:], out_shape[2:], kernel, stride, dilation, auto_pad == "SAME_UPPER")
        attrs: dict[str, Any] = {}
        if list(pads[:spatial]) != list(pads[spatial:]):
            attrs["pads"] = pads
        if attr(node, "ceil_mode", 0):
            attrs["ceil_mode"] = True
        if _is_adaptive(node):
            attrs = {"adaptive": True, "output_size": list(out_shape[2:])}
            ins, outs = in_shape[2:], out_shape[2:]
            kernel = [math.ceil(i / max(o, 1)) for i, o in zip(ins, outs)]
            stride = [max(1, i // max(o, 1)) for i, o in zip(ins, outs)]
            pads = [0] * (2 * spatial)
        op = "max_pool" if node.op_type == "MaxPool" else "avg_pool"
        fields: dict[str, Any] = {"kernel": kernel, "stride": stride, "padding": pads[:spatial]}
        if op == "max_pool":
            fields["dilation"] = dilation
        self.emit(op, node, [x], params=0, attrs=attrs, **fields)

    def global_pool(self, node: onnx.NodeProto) -> None:
        """GlobalAveragePool/GlobalMaxPool → global_pool with ``mode``."""
        mode = "max" if node.op_type == "GlobalMaxPool" else "avg"
        self.emit("global_pool", node, [node.input[0]], params=0, attrs={"mode": mode})

    def reduce(self, node: onnx.NodeProto) -> None:
        """ReduceMean/ReduceMax over all spatial axes → global_pool; other reductions → mean."""
        x = node.input[0]
        rank = len(self.v.shape(x, node))
        axes = attr(node, "axes", None)
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.const_ints(node.input[1])
            if axes is None:  # data-dependent axes: the ones whose size changes
                out_shape = self.v.shape(node.output[0], node)
                axes = [a for a, s in enumerate(self.v.shape(x, node)) if a >= len(out_shape) or out_shape[a] != s]
        if axes is None or len(axes) == 0:
            axes = [] if attr(node, "noop_with_empty_axes", 0) else list(range(rank))
        axes = sorted(self.rank_axis(int(a), rank) for a in axes)
        if not axes:
            self.alias(node)
            return
        if node.op_type in ("ReduceMean", "ReduceMax") and rank >= 3 and axes == list(range(2, rank)):
            mode = "avg" if node.op_type == "ReduceMean" else "max"
            self.emit("global_pool", node, [x], params=0, attrs={"mode": mode})
            return
        self.emit("mean", node, [x], params=0, attrs={"dims": axes})

    # ------------------------------------------------------------------ resizing
    def pad(self, node: onnx.NodeProto) -> None:
        """Pad → pad (attrs ``pads`` and ``mode``)."""
        rank = len(self.v.shape(node.input[0], node))
        if len(node.input) > 1 and node.input[1]:
            pads = self.const_ints(node.input[1])
            if pads is None:  # data-dependent pads: the growth of each axis, all at its end
                growth = [o - i for i, o in zip(self.v.shape(node.input[0], node), self.v.shape(node.output[0], node))]
                pads = [0] * rank + growth
        else:
            pads = list(attr(node, "pads", []))
        axes_input = node.input[3] if len(node.input) > 3 and node.input[3] else None
        if axes_input is not None and self.const_ints(axes_input) is not None:  # opset 18: listed axes only
            axes = [self.rank_axis(a, rank) for a in self.const_ints(axes_input) or []]
            full = [0] * (2 * rank)
            for j, a in enumerate(axes):
                full[a], full[rank + a] = pads[j], pads[len(axes) + j]
            pads = full
        # torch's F.pad order: (last-dim begin, last-dim end, second-last begin, ...)
        torch_pad: list[int] = []
        for d in reversed(range(rank)):
            torch_pad += [int(pads[d]), int(pads[rank + d])]
        while len(torch_pad) > 2 and torch_pad[-2:] == [0, 0]:
            torch_pad = torch_pad[:-2]
        mode = _PAD_MODES.get(attr(node, "mode", "constant"), attr(node, "mode", "constant"))
        self.emit("pad", node, [node.input[0]], params=0, attrs={"pad": torch_pad, "mode": mode})

    def resize(self, node: onnx.NodeProto) -> None:
        """Resize/Upsample → upsample with per-spatial-axis ``scale`` and ``mode``."""
        in_shape = self.v.shape(node.input[0], node)
        out_shape = self.v.shape(node.output[0], node)
        ins, outs = in_shape[2:], out_shape[2:]
        mode = str(attr(node, "mode", "nearest"))
        if mode in ("linear", "cubic"):
            prefix = {1: "", 2: "bi", 3: "tri"}.get(len(ins), "")
            mode = prefix + mode if mode == "linear" else "bicubic"
        attrs = {"mode": mode, "size": list(outs), "scale": [round(o / i, 6) if i else 0.0 for i, o in zip(ins, outs)]}
        self.emit("upsample", node, [node.input[0]], params=0, attrs=attrs)

    def attention(self, node: onnx.NodeProto) -> None:
        """The ONNX Attention op (opset 23) → sdpa on its Q, K, V."""
        q, k, vv = node.input[:3]
        self.emit("sdpa", node, [q, k, vv])


def _same_pads(
    in_sizes: Any, out_sizes: Any, kernel: list[int], stride: list[int], dilation: list[int], upper: bool
) -> list[int]:
    """Explicit pads (begins then ends) of ``auto_pad=SAME_UPPER/LOWER``."""
    begins, ends = [], []
    for i, o, k, s, d in zip(in_sizes, out_sizes, kernel, stride, dilation):
        total = max((o - 1) * s + (k - 1) * d + 1 - i, 0)
        small, big = total // 2, total - total // 2
        begins.append(small if upper else big)
        ends.append(big if upper else small)
    return begins + ends


def _is_adaptive(node: onnx.NodeProto) -> bool:
    """Whether the torch exporter recorded this pool as an adaptive pool."""
    if "adaptive" in node.name:
        return True
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.fx_node" and "adaptive_" in prop.value:
            return True
        if prop.key == "pkg.torch.onnx.class_hierarchy":  # [..., module class, aten op]
            classes = prop.value.strip("[]").replace("'", "").split(", ")
            if len(classes) >= 2 and "Adaptive" in classes[-2].rsplit(".", 1)[-1]:
                return True
    return False

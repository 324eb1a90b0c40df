"""The computation-graph (CG) data model: one node per atomic op, edges along the data flow.

Why one module over 400 lines: the `Node`/`CG` data model with its builder and graph normalisation (reshape chains, dead nodes) is the contract every converter relies on; the JSON schema checks live in `cg_schema.py`.

Pipeline position: model → **CG** → features → predictor → ranking/search. Converters
(:mod:`cgpredict.converters`) build CGs with :class:`CGBuilder`; everything downstream consumes
:class:`CG`.

Conventions
-----------
* Nodes are stored in topological order and ``Node.id`` equals the node's index in ``CG.nodes``.
* Every node produces exactly one tensor (``out_shape``). An operator with several outputs (split,
  chunk, unbind) becomes one ``split`` node per output that is used.
* Shapes carry the batch dimension first: ``(N, C, H, W)`` for images, ``(N, tokens, channels)``
  for sequences, ``(N, C)`` for vectors. MACs are per sample (see :mod:`cgpredict.counting`).
* ``in_shapes[i]`` is the shape of the tensor produced by ``inputs[i]``. Parameters, buffers and
  constants are never nodes: they are folded into the consuming node (``weight_shape`` for a
  layer's weight, otherwise just its ``params`` count).
* Chains of pure view/reshape/permute ops are collapsed into one ``reshape`` node, or removed when
  the chain leaves the shape unchanged; nodes that do not reach the output are dropped.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgpredict.counting import count_macs, node_macs
from cgpredict.errors import CGSchemaError
from cgpredict.ops import OP_INDEX, check_op

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    import torch
    from torch_geometric.data import Data

#: Version of the JSON layout written by :meth:`CG.to_json`; bumped on incompatible changes.
SCHEMA_VERSION = 1
SCHEMA_NAME = "cgpredict.cg"

Shape = tuple[int, ...]


def _jsonable(value: Any) -> Any:
    """Normalise attribute values so that a JSON round trip returns them unchanged."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    # numpy / torch scalars and other objects
    try:
        return value.item()
    except AttributeError:
        return str(value)


def _shape(value: Any) -> Shape:
    return tuple(int(v) for v in value)


@dataclass
class Node:
    """One atomic operation of the forward pass.

    Attributes:
        id: index of the node in :attr:`CG.nodes` (topological order).
        op: op type from :data:`cgpredict.ops.OP_TYPES`.
        inputs: ids of the nodes whose outputs this node consumes, in argument order.
        in_shapes: shape of each input tensor (aligned with ``inputs``).
        out_shape: shape of the tensor this node produces.
        name: human-readable origin, usually the module path (``layer1.0.conv1``).
        source_op: the framework operator it came from (``aten.conv2d.default``, ``Conv``).
        weight_shape: shape of the weight tensor for weighted ops, else ``None``.
        kernel, stride, padding, dilation: spatial attributes of convolutions and pools.
        groups: convolution groups.
        bias: whether the op adds a learned bias.
        macs: multiply-accumulates for one sample (filled by :func:`cgpredict.counting.node_macs`).
        params: learned parameters folded into this node (weights, biases, affine terms, tokens).
        attrs: further JSON-serialisable attributes (e.g. ``dim`` of a concat, ``scale`` of an
            upsample, ``index`` of a split output).
    """

    id: int
    op: str
    inputs: list[int] = field(default_factory=list)
    in_shapes: list[Shape] = field(default_factory=list)
    out_shape: Shape = ()
    name: str = ""
    source_op: str = ""
    weight_shape: Shape | None = None
    kernel: Shape = ()
    stride: Shape = ()
    padding: Shape = ()
    dilation: Shape = ()
    groups: int = 1
    bias: bool = False
    macs: int = 0
    params: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the node (built by hand: ``dataclasses.asdict`` is ~10× slower)."""
        return {
            "id": self.id,
            "op": self.op,
            "inputs": list(self.inputs),
            "in_shapes": [list(s) for s in self.in_shapes],
            "out_shape": list(self.out_shape),
            "name": self.name,
            "source_op": self.source_op,
            "weight_shape": None if self.weight_shape is None else list(self.weight_shape),
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
            "bias": self.bias,
            "macs": self.macs,
            "params": self.params,
            "attrs": copy.deepcopy(self.attrs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        """Inverse of :meth:`to_dict`; raises :class:`CGSchemaError` naming any field outside the
        schema (see :func:`check_node_dict`)."""
        from cgpredict.cg_schema import check_node_dict

        check_node_dict(data)
        ws = data.get("weight_shape")
        return cls(
            id=int(data["id"]),
            op=check_op(data["op"]),
            inputs=[int(i) for i in data.get("inputs", [])],
            in_shapes=[_shape(s) for s in data.get("in_shapes", [])],
            out_shape=_shape(data.get("out_shape", ())),
            name=str(data.get("name", "")),
            source_op=str(data.get("source_op", "")),
            weight_shape=None if ws is None else _shape(ws),
            kernel=_shape(data.get("kernel", ())),
            stride=_shape(data.get("stride", ())),
            padding=_shape(data.get("padding", ())),
            dilation=_shape(data.get("dilation", ())),
            groups=int(data.get("groups", 1)),
            bias=bool(data.get("bias", False)),
            macs=int(data.get("macs", 0)),
            params=int(data.get("params", 0)),
            attrs=_jsonable(data.get("attrs", {})),
        )


@dataclass
class CG:
    """A computation graph: nodes in topological order plus graph-level metadata.

    Example:
        >>> import torchvision
        >>> from cgpredict.converters import from_torch
        >>> cg = from_torch(torchvision.models.resnet18())
        >>> round(cg.flops / 1e9, 2), cg.params
        (1.81, 11689512)
    """

    nodes: list[Node]
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ sizes and counts
    @property
    def num_nodes(self) -> int:
        """Number of nodes (input and output nodes included)."""
        return len(self.nodes)

    @property
    def edges(self) -> list[tuple[int, int]]:
        """Directed edges ``(source, target)``, one per input slot (repeats kept)."""
        return [(src, node.id) for node in self.nodes for src in node.inputs]

    @property
    def num_edges(self) -> int:
        """Number of edges, one per input slot."""
        return sum(len(node.inputs) for node in self.nodes)

    @property
    def flops(self) -> int:
        """Total multiply-accumulates per sample (torchvision/NAS-benchmark convention)."""
        return count_macs(self, "torchvision")

    def macs(self, mode: str = "torchvision") -> int:
        """Total MACs under a named counting mode (``torchvision``, ``conv_linear``, ``all``, …)."""
        return count_macs(self, mode)

    @property
    def params(self) -> int:
        """Number of learned parameters (each parameter tensor counted once)."""
        return sum(node.params for node in self.nodes)

    def op_histogram(self) -> dict[str, int]:
        """Count of nodes per op type, in vocabulary order."""
        counts = Counter(node.op for node in self.nodes)
        return {op: counts[op] for op in sorted(counts, key=OP_INDEX.__getitem__)}

    @property
    def input_nodes(self) -> list[Node]:
        """The ``input`` nodes."""
        return [n for n in self.nodes if n.op == "input"]

    @property
    def output_node(self) -> Node:
        """The ``output`` node."""
        for node in reversed(self.nodes):
            if node.op == "output":
                return node
        raise ValueError(f"CG {self.name!r} has no output node")

    def successors(self) -> list[list[int]]:
        """For each node, the ids of the nodes that consume it."""
        succ: list[list[int]] = [[] for _ in self.nodes]
        for node in self.nodes:
            for src in node.inputs:
                succ[src].append(node.id)
        return succ

    def reaches(self, a: int, b: int) -> bool:
        """Whether node ``b``'s output depends on node ``a``'s (ids are topological, so only ids ≥ ``a``
        are searched)."""
        stack, seen = [b], set()
        while stack:
            i = stack.pop()
            if i == a:
                return True
            for src in self.nodes[i].inputs:
                if src >= a and src not in seen:
                    seen.add(src)
                    stack.append(src)
        return False

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ``ValueError`` if the graph breaks one of the module-level conventions."""
        if not any(n.op == "output" for n in self.nodes):
            raise ValueError(f"CG {self.name!r} has no output node")
        nodes = self.nodes
        for index, node in enumerate(nodes):
            if node.id != index:
                raise ValueError(f"{self._where(index)}: id {node.id} differs from its position")
            check_op(node.op)
            if len(node.in_shapes) != len(node.inputs):
                raise ValueError(
                    f"{self._where(index)}: {len(node.inputs)} inputs but {len(node.in_shapes)} input shapes"
                )
            if node.op == "input" and node.inputs:
                raise ValueError(f"{self._where(index)}: an input node has predecessors")
            for slot, (src, shape) in enumerate(zip(node.inputs, node.in_shapes)):
                if not 0 <= src < index:
                    raise ValueError(f"{self._where(index)}: input {src} is not an earlier node (cycle or bad id)")
                if tuple(shape) != tuple(nodes[src].out_shape):
                    raise ValueError(
                        f"{self._where(index)}: input {slot} has shape {tuple(shape)} but node {src} produces "
                        f"{tuple(nodes[src].out_shape)}"
                    )

    def _where(self, index: int) -> str:
        """Names node ``index`` in an error message (formatted only when one is raised)."""
        node = self.nodes[index]
        return f"CG {self.name!r}, node {index} ({node.op} {node.name!r})"

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, tagged with the schema name and version."""
        return {
            "schema": SCHEMA_NAME,
            "version": SCHEMA_VERSION,
            "name": self.name,
            "meta": _jsonable(self.meta),
            "nodes": [node.to_dict() for node in self.nodes],
        }

    def to_json(self, path: str | Path | None = None, indent: int | None = None) -> str:
        """Serialise to JSON; also write it to ``path`` if given. Returns the JSON text."""
        text = json.dumps(self.to_dict(), indent=indent, sort_keys=True)
        if path is not None:
            from cgpredict.fileio import atomic_write

            atomic_write(path, text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CG:
        """Inverse of :meth:`to_dict`; refuses unknown schemas and versions, fields outside the
        schema (:func:`check_cg_document`) and graphs breaking the conventions (:meth:`validate`),
        each with a :class:`CGSchemaError` naming the field."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA_NAME:
            raise CGSchemaError(f"not a cgpredict CG document (schema {data.get('schema') if isinstance(data, dict) else None!r:.80})")
        version = data.get("version")
        if version != SCHEMA_VERSION:
            raise CGSchemaError(
                f"CG schema version {version!r:.40} is not supported by this cgpredict "
                f"(it reads version {SCHEMA_VERSION}); re-convert the model"
            )
        from cgpredict.cg_schema import check_cg_document

        check_cg_document({k: v for k, v in data.items() if k not in ("schema", "version")})
        try:
            nodes = [Node.from_dict(n) for n in data["nodes"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise CGSchemaError(f"malformed CG document: {exc}") from exc
        cg = cls(nodes=nodes, name=str(data.get("name", "")), meta=dict(data.get("meta", {})))
        try:
            cg.validate()
        except ValueError as exc:
            raise CGSchemaError(f"malformed CG document: {exc}") from None
        return cg

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> CG:
        """Load a CG from JSON text or from a ``.json`` file path.

        Raises:
            FileNotFoundError: the path does not exist.
            CGSchemaError: not JSON, nested too deeply, or content outside the schema; the message
                names the file (when read from one) and the field.
        """
        text = str(text_or_path)
        source = "CG JSON"
        if isinstance(text_or_path, Path) or not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            if path.is_dir():
                raise CGSchemaError(f"CG file {path} is a folder, not a JSON file")
            if not path.exists():
                raise FileNotFoundError(f"CG file {path} does not exist")
            source = f"CG file {path}"
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise CGSchemaError(f"{source} is not UTF-8 text: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CGSchemaError(f"{source} is not valid JSON: {exc}") from None
        except RecursionError:
            raise CGSchemaError(f"{source} is nested too deeply to be a CG") from None
        try:
            return cls.from_dict(data)
        except CGSchemaError as exc:
            if source == "CG JSON":
                raise
            raise CGSchemaError(f"{source}: {exc}") from None

    def structure_dict(self) -> list[dict[str, Any]]:
        """The node content that defines the network (names and metadata left out).

        The same dicts as :meth:`Node.to_dict` without ``name`` (and ``source_op`` unless the op is
        ``unknown``), built directly; ``attrs`` are shared, not copied (read-only views for hashing).
        """
        out = []
        for node in self.nodes:
            data = {"id": node.id, "op": node.op, "inputs": list(node.inputs),
                    "in_shapes": [list(s) for s in node.in_shapes], "out_shape": list(node.out_shape),
                    "weight_shape": None if node.weight_shape is None else list(node.weight_shape),
                    "kernel": list(node.kernel), "stride": list(node.stride), "padding": list(node.padding),
                    "dilation": list(node.dilation), "groups": node.groups, "bias": node.bias, "macs": node.macs,
                    "params": node.params, "attrs": node.attrs}
            if node.op == "unknown":
                data["source_op"] = node.source_op
            out.append(data)
        return out

    def hash(self) -> str:
        """A SHA-256 of the graph's structure, stable across runs and machines (for caching).

        Node names, the graph name and metadata are left out, so the same network reached two
        ways hashes the same.
        """
        text = json.dumps(self.structure_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # ------------------------------------------------------------------ views
    def to_networkx(self) -> nx.DiGraph:
        """A ``networkx.DiGraph``; node attributes are the node fields, edges carry ``count``."""
        import networkx as nx

        graph = nx.DiGraph(name=self.name, flops=self.flops, params=self.params)
        for node in self.nodes:
            graph.add_node(node.id, **node.to_dict())
        for src, dst in self.edges:
            if graph.has_edge(src, dst):
                graph[src][dst]["count"] += 1
            else:
                graph.add_edge(src, dst, count=1)
        return graph

    def to_pyg(self) -> Data:
        """A ``torch_geometric.data.Data`` with node features ``x`` (see :mod:`cgpredict.features`)."""
        from cgpredict.features import cg_to_pyg

        return cg_to_pyg(self)

    def to_module(self) -> torch.nn.Module:
        """An executable ``torch.nn.Module`` rebuilt from this CG (see :mod:`cgpredict.rebuild`)."""
        from cgpredict.rebuild import cg_to_module

        return cg_to_module(self)

    def summary(self) -> str:
        """One line: name, nodes, edges, GMACs and parameters."""
        return (
            f"{self.name or 'CG'}: {self.num_nodes} nodes, {self.num_edges} edges, "
            f"{self.flops / 1e9:.3f} GMACs, {self.params / 1e6:.3f} M params"
        )

    def __repr__(self) -> str:
        return f"CG({self.summary()})"


class CGBuilder:
    """Incrementally assembles a :class:`CG`; used by every converter.

    ``add(...)`` appends a node whose ``in_shapes`` are taken from its inputs; :meth:`build`
    collapses view chains, prunes nodes that do not reach the output, renumbers topologically,
    fills MACs and validates.
    """

    def __init__(self, name: str = "", meta: dict[str, Any] | None = None) -> None:
        self.name = name
        self.meta = dict(meta or {})
        self.nodes: list[Node] = []

    def add(self, op: str, inputs: list[int] | tuple[int, ...] = (), out_shape: Any = (), **fields: Any) -> int:
        """Append a node and return its id. ``fields`` are further :class:`Node` attributes."""
        check_op(op)
        inputs = [int(i) for i in inputs]
        for src in inputs:
            if not 0 <= src < len(self.nodes):
                raise ValueError(f"node input {src} does not exist yet")
        attrs = _jsonable(fields.pop("attrs", {}) or {})
        for key in ("kernel", "stride", "padding", "dilation"):
            if key in fields and fields[key] is not None:
                fields[key] = _shape(fields[key])
            else:
                fields.pop(key, None)
        if fields.get("weight_shape") is not None:
            fields["weight_shape"] = _shape(fields["weight_shape"])
        node = Node(
            id=len(self.nodes),
            op=op,
            inputs=inputs,
            in_shapes=[self.nodes[i].out_shape for i in inputs],
            out_shape=_shape(out_shape),
            attrs=attrs,
            **fields,
        )
        self.nodes.append(node)
        return node.id

    def build(self, validate: bool = True) -> CG:
        """Finish the graph (see class docstring) and return it."""
        nodes = _collapse_reshape_chains(self.nodes)
        nodes = _prune_and_renumber(nodes)
        for node in nodes:
            node.macs = node_macs(node)
        cg = CG(nodes=nodes, name=self.name, meta=self.meta)
        if validate:
            cg.validate()
        return cg


_ATOMIC = frozenset({int, float, str, bool, type(None)})


def _copy_attr(value: Any) -> Any:
    """A deep copy of a JSON-like attribute value (``copy.deepcopy`` is ~10× slower on these)."""
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if kind is list:
        return [_copy_attr(v) for v in value]
    if kind is dict:
        return {k: _copy_attr(v) for k, v in value.items()}
    return copy.deepcopy(value)


def _copy_node(node: Node) -> Node:
    """A copy of ``node`` whose lists and attrs can be changed without touching the original.

    Built from the instance dict (what ``copy.copy`` does, without its dispatch) with the attrs
    deep-copied by :func:`_copy_attr`; canonicalization copies every node several times.
    """
    new = node.__class__.__new__(node.__class__)
    state = new.__dict__
    state.update(node.__dict__)
    state["inputs"] = list(node.inputs)
    state["in_shapes"] = list(node.in_shapes)
    state["attrs"] = {k: _copy_attr(v) for k, v in node.attrs.items()} if node.attrs else {}
    return new


def _collapse_reshape_chains(nodes: list[Node], copy_nodes: bool = True) -> list[Node]:
    """Merge reshape→reshape chains and drop reshapes that leave the shape unchanged.

    Works on a copy (or, with ``copy_nodes=False``, on the caller's own nodes, which it changes);
    dropped nodes are rewired so their consumers read the dropped node's input.
    """
    nodes = [_copy_node(n) for n in nodes] if copy_nodes else list(nodes)
    consumers: dict[int, int] = Counter(src for n in nodes for src in n.inputs)
    replace: dict[int, int] = {}  # dropped node id -> node id that now provides its value

    def resolve(i: int) -> int:
        while i in replace:
            i = replace[i]
        return i

    for node in nodes:
        node.inputs = [resolve(i) for i in node.inputs]
        node.in_shapes = [nodes[i].out_shape for i in node.inputs]
        if node.op != "reshape" or len(node.inputs) != 1:
            continue
        src = nodes[node.inputs[0]]
        if src.op == "reshape" and len(src.inputs) == 1 and consumers[src.id] == 1:
            # absorb the upstream reshape: this node now reads the upstream's input
            node.inputs = [src.inputs[0]]
            node.in_shapes = [src.in_shapes[0]]
            node.params += src.params
            node.source_op = f"{src.source_op}+{node.source_op}" if src.source_op else node.source_op
            replace[src.id] = node.id  # nothing else reads it: drop it
        if tuple(node.in_shapes[0]) == tuple(node.out_shape) and node.params == 0:
            replace[node.id] = node.inputs[0]
    alive = []
    for node in nodes:
        if node.id in replace:
            continue
        alive.append(node)
    return alive


def live_nodes(nodes: list[Node]) -> list[Node]:
    """The nodes that feed an output node, plus every input and output node, in their given order
    (what is left after pruning dead branches; the ids are not changed)."""
    by_id = {n.id: n for n in nodes}
    keep = {n.id for n in nodes if n.op in ("output", "input")}
    stack = [n.id for n in nodes if n.op == "output"]
    while stack:
        for src in by_id[stack.pop()].inputs:
            if src not in keep:
                keep.add(src)
                stack.append(src)
    return [n for n in nodes if n.id in keep]


def renumber(ordered: list[Node]) -> list[Node]:
    """Give ``ordered`` (a topological order) ids ``0..n-1`` in that order, remapping every node's
    inputs and refreshing its input shapes from its producers; returns the list."""
    new_id = {n.id: i for i, n in enumerate(ordered)}
    for node in ordered:
        node.id = new_id[node.id]
        node.inputs = [new_id[i] for i in node.inputs]
        node.in_shapes = [ordered[i].out_shape for i in node.inputs]
    return ordered


def _prune_and_renumber(nodes: list[Node]) -> list[Node]:
    """Keep inputs and nodes that reach an output node; renumber ids 0..n-1 in id order."""
    return renumber(sorted(live_nodes(nodes), key=lambda n: n.id))

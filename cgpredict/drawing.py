"""Looking at a CG: a layered drawing (PNG/SVG/PDF via matplotlib) and a plain-text listing.

Pipeline position: model → **CG** (inspection) → features → predictor → ranking/search.

The drawing is pure Python (networkx + matplotlib, no graphviz binary): nodes are placed in the
topological generations of the graph from top to bottom, each labelled with its op type and output
shape (batch dimension left out); long graphs get a tall figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cgpredict.ops import ACTIVATION_OPS, CONV_OPS, POOL_OPS

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG, Node

#: fill colour by op family
_COLOURS: dict[str, str] = {
    "io": "#d9d9d9",
    "conv": "#9ecae1",
    "linear": "#c6dbef",
    "norm": "#fdd0a2",
    "act": "#c7e9c0",
    "pool": "#dadaeb",
    "merge": "#fcbba1",
    "attention": "#fa9fb5",
    "shape": "#f0f0f0",
    "unknown": "#ff6961",
}
_MAX_PIXELS = 60000  # matplotlib's Agg canvas refuses more than 2**16 pixels per side


def _family(op: str) -> str:
    if op in ("input", "output"):
        return "io"
    if op in CONV_OPS:
        return "conv"
    if op in ("linear", "matmul"):
        return "linear"
    if op in ("batch_norm", "layer_norm"):
        return "norm"
    if op in ACTIVATION_OPS:
        return "act"
    if op in POOL_OPS or op in ("mean", "upsample", "pad"):
        return "pool"
    if op in ("add", "mul", "concat", "split"):
        return "merge"
    if op == "sdpa":
        return "attention"
    if op == "unknown":
        return "unknown"
    return "shape"


def _shape_text(shape: tuple[int, ...]) -> str:
    body = shape[1:] if len(shape) > 1 else shape
    return "×".join(str(s) for s in body) if body else "scalar"


def node_label(node: Node) -> str:
    """Two-line label: op type (with the original op for unknown nodes) and output shape."""
    op = f"{node.op}:{node.source_op}" if node.op == "unknown" and node.source_op else node.op
    return f"{op}\n{_shape_text(tuple(node.out_shape))}"


def layered_layout(cg: CG) -> dict[int, tuple[float, float]]:
    """Node id → (x, y): topological generations top to bottom, centred within each row."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(n.id for n in cg.nodes)
    graph.add_edges_from(cg.edges)
    positions: dict[int, tuple[float, float]] = {}
    for depth, generation in enumerate(nx.topological_generations(graph)):
        row = sorted(generation)
        for k, node_id in enumerate(row):
            positions[node_id] = (k - (len(row) - 1) / 2.0, -float(depth))
    return positions


def draw_cg(cg: CG, path: str | Path, *, title: str | None = None, dpi: int = 100) -> Path:
    """Draw ``cg`` to an image file (format from the suffix: .png, .svg, .pdf) and return its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
        raise ValueError(f"cannot draw to {path}: use a .png, .svg, .pdf or .jpg file name")
    pos = layered_layout(cg)
    depth = 1 + int(max(-y for _, y in pos.values())) if pos else 1
    width_nodes = max((sum(1 for p in pos.values() if p[1] == -d) for d in range(depth)), default=1)
    width_in = min(max(6.0, 1.5 * width_nodes + 1), 200.0)
    height_in = max(4.0, 0.75 * depth + 1)
    dpi = int(max(10, min(dpi, _MAX_PIXELS / height_in, _MAX_PIXELS / width_in)))
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 0.98 if title or cg.name else 1))
    ax.set_axis_off()
    for src, dst in set(cg.edges):
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        span = y0 - y1
        # edges that skip generations bend sideways so that they do not run through other boxes
        rad = 0.0 if span <= 1 else min(0.6, 0.15 + 0.02 * span) * (1 if x1 >= x0 else -1)
        ax.annotate("", xy=(x1, y1 + 0.2), xytext=(x0, y0 - 0.2), zorder=1,
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "lw": 0.7, "shrinkA": 0, "shrinkB": 0,
                                "connectionstyle": f"arc3,rad={rad}"})
    for node in cg.nodes:
        x, y = pos[node.id]
        ax.text(x, y, node_label(node), ha="center", va="center", fontsize=7, zorder=2,
                bbox={"boxstyle": "round,pad=0.3", "fc": _COLOURS[_family(node.op)], "ec": "#333333", "lw": 0.6})
    xs = [p[0] for p in pos.values()] or [0.0]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(-depth + 0.4, 0.6)
    heading = title if title is not None else cg.summary()
    if heading:
        fig.suptitle(heading, fontsize=9, y=0.995)
    from cgpredict.fileio import atomic_writer

    fmt = {".jpg": "jpeg", ".jpeg": "jpeg"}.get(path.suffix.lower(), path.suffix.lower().lstrip("."))
    with atomic_writer(path) as handle:
        fig.savefig(handle, dpi=dpi, format=fmt)
    return path


def cg_listing(cg: CG) -> str:
    """A text table of the nodes: id, op, output shape, inputs, MACs, params and name."""
    lines = [cg.summary(), f"{'id':>4}  {'op':<15} {'out_shape':<22} {'inputs':<16} {'MACs':>12} {'params':>10}  name"]
    for node in cg.nodes:
        op = node.op if node.op != "unknown" else f"?{node.source_op}"
        inputs = ",".join(str(i) for i in node.inputs)
        lines.append(
            f"{node.id:>4}  {op:<15} {str(tuple(node.out_shape)):<22} {inputs:<16} {node.macs:>12,} "
            f"{node.params:>10,}  {node.name}"
        )
    return "\n".join(lines)

"""Shape-preserving mutations of computation graphs (the moves of the local search).

Why one module over 400 lines: each mutation is a small function sharing the same sub-graph helpers; they are listed together so the search's move set reads in one place.

Pipeline position: model → CG → features → predictor → ranking/**search**. Each mutation replaces
a small run of primitive ops by another sub-graph that keeps the H·W·C shape every consumer
expects (GENNAPE's CG-level edits, Mills et al., AAAI'23):

==================  ===================================================================
name                what it does
==================  ===================================================================
``kernel_size``     a convolution's k×k kernel becomes another odd size (padding keeps H×W)
``activation``      an activation becomes another (relu, relu6, silu, hardswish, gelu)
``to_separable``    conv k×k → depthwise k×k + BN + act + pointwise 1×1
``to_inverted``     conv k×k → 1×1 expand (×t) + BN + act + depthwise k×k + BN + act + 1×1
``to_dense``        depthwise(+expansion) … pointwise run → one dense k×k conv (inverse moves)
``width``           the channel count inside a conv → … → conv run (2-D or 1-D convs)
``add_skip``        x ↦ x + y for an earlier node y of the same shape
``drop_skip``       a residual add keeps only its main branch
``remove_block``    a residual add keeps only its identity input (the block disappears)
``add_block``       inserts a residual block (basic or inverted-residual) after a node
==================  ===================================================================

Every mutant is renumbered, re-counted (params, :func:`cgpredict.counting.node_macs`) and passes
:meth:`CG.validate` and :func:`~cgpredict.search.graph_edit.check_shapes`; its
``meta["mutations"]`` lists the readable descriptions of the moves applied since the start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cgpredict.cg import CG, Node
from cgpredict.ops import ACTIVATION_OPS
from cgpredict.search.graph_edit import (
    SWAPPABLE_ACTIVATIONS,
    Editor,
    ShapeError,
    check_shapes,
    conv_out_hw,
    conv_params,
    dominant_activation,
)

#: Ops a channel change may pass through (one input, channels follow the input).
CHANNEL_FOLLOWERS: frozenset[str] = frozenset(set(ACTIVATION_OPS) | {"batch_norm", "depthwise_conv", "identity",
                                                                     "max_pool", "avg_pool"})


def _is_plain_conv(node: Node, dense: bool = True) -> bool:
    """A non-transposed 2-D convolution with square odd kernel, dilation 1 and 'same' padding."""
    if node.op not in (("conv",) if dense else ("conv", "depthwise_conv")) or node.weight_shape is None:
        return False
    if len(node.out_shape) != 4 or len(node.kernel) != 2 or node.attrs.get("transposed"):
        return False
    k = node.kernel[0]
    return (node.kernel[1] == k and k % 2 == 1 and all(d == 1 for d in (node.dilation or (1, 1)))
            and tuple(node.padding) == ((k - 1) // 2, (k - 1) // 2))


def _label(node: Node) -> str:
    return node.name or f"node{node.id}"


class Mutation:
    """One kind of move: :meth:`sites` lists where it applies, :meth:`apply` makes a mutant."""

    name: str = ""

    def sites(self, cg: CG) -> list[int]:
        """Node ids where this mutation applies."""
        raise NotImplementedError

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        """A mutant of ``cg`` at node ``site`` (random choices from ``rng``), or ``None``."""
        raise NotImplementedError


class KernelSize(Mutation):
    """Swap a convolution's kernel size (1/3/5/7; depthwise 3/5/7), padding keeps the output size."""

    name = "kernel_size"
    sizes = (1, 3, 5, 7)

    def sites(self, cg: CG) -> list[int]:
        return [n.id for n in cg.nodes if _is_plain_conv(n, dense=False)]

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        node = cg.nodes[site]
        k = node.kernel[0]
        choices = [s for s in self.sizes if s != k and (node.op == "conv" or s > 1)]
        new_k = int(rng.choice(choices))
        pad = ((new_k - 1) // 2,) * 2
        if conv_out_hw(tuple(node.in_shapes[0][2:]), (new_k, new_k), node.stride, pad, (1, 1)) != tuple(node.out_shape[2:]):
            return None
        ed = Editor(cg)
        n = ed.by_id[site]
        n.kernel, n.padding = (new_k, new_k), pad
        n.weight_shape = (*n.weight_shape[:2], new_k, new_k)
        n.params = conv_params(n.weight_shape, n.bias)
        return ed.finish(f"kernel_size: {_label(node)} {k}x{k} -> {new_k}x{new_k}")


class Activation(Mutation):
    """Change an activation into another pointwise one."""

    name = "activation"

    def sites(self, cg: CG) -> list[int]:
        return [n.id for n in cg.nodes if n.op in SWAPPABLE_ACTIVATIONS]

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        node = cg.nodes[site]
        new_op = str(rng.choice([a for a in SWAPPABLE_ACTIVATIONS if a != node.op]))
        ed = Editor(cg)
        ed.by_id[site].op = new_op
        ed.by_id[site].source_op = f"search.{new_op}"
        return ed.finish(f"activation: {_label(node)} {node.op} -> {new_op}")


class ToSeparable(Mutation):
    """Dense k×k conv → depthwise k×k + BN + act + pointwise 1×1 (same output shape)."""

    name = "to_separable"

    def sites(self, cg: CG) -> list[int]:
        return [n.id for n in cg.nodes if _is_plain_conv(n) and n.kernel[0] > 1 and n.in_shapes[0][1] > 1]

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        node = cg.nodes[site]
        c_in, k = node.in_shapes[0][1], node.kernel[0]
        ed = Editor(cg)
        act_op = dominant_activation(cg)
        base = _label(node)
        dw = ed.conv(node.inputs[0], c_in, k, node.stride, c_in, f"{base}~sep.dw")
        bn = ed.bn(dw.id, f"{base}~sep.bn")
        act = ed.simple(act_op, [bn.id], f"{base}~sep.act")
        pw = ed.conv(act.id, node.out_shape[1], 1, (1, 1), 1, f"{base}~sep.pw", bias=node.bias)
        if pw.out_shape != tuple(node.out_shape):
            return None
        ed.rewire(site, pw.id)
        ed.insert_after(site, [dw, bn, act, pw])
        ed.remove({site})
        return ed.finish(f"to_separable: {base} conv{k}x{k} -> dw{k}x{k}+bn+{act_op}+pw1x1")


class ToInverted(Mutation):
    """Dense k×k conv → inverted residual sequence with expansion t ∈ {2, 4, 6}."""

    name = "to_inverted"
    expansions = (2, 4, 6)

    def sites(self, cg: CG) -> list[int]:
        return [n.id for n in cg.nodes if _is_plain_conv(n) and n.kernel[0] > 1]

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        node = cg.nodes[site]
        c_in, k = node.in_shapes[0][1], node.kernel[0]
        t = int(rng.choice(self.expansions))
        ed = Editor(cg)
        act_op = dominant_activation(cg)
        base = _label(node)
        ex = ed.conv(node.inputs[0], t * c_in, 1, (1, 1), 1, f"{base}~ir.expand")
        bn1 = ed.bn(ex.id, f"{base}~ir.bn1")
        a1 = ed.simple(act_op, [bn1.id], f"{base}~ir.act1")
        dw = ed.conv(a1.id, t * c_in, k, node.stride, t * c_in, f"{base}~ir.dw")
        bn2 = ed.bn(dw.id, f"{base}~ir.bn2")
        a2 = ed.simple(act_op, [bn2.id], f"{base}~ir.act2")
        pw = ed.conv(a2.id, node.out_shape[1], 1, (1, 1), 1, f"{base}~ir.project", bias=node.bias)
        if pw.out_shape != tuple(node.out_shape):
            return None
        ed.rewire(site, pw.id)
        ed.insert_after(site, [ex, bn1, a1, dw, bn2, a2, pw])
        ed.remove({site})
        return ed.finish(f"to_inverted: {base} conv{k}x{k} -> expand x{t}+dw{k}x{k}+project")


def _single_chain_forward(cg: CG, succ: list[list[int]], start: int, through: frozenset[str]) -> list[int] | None:
    """Follow single-consumer links from ``start`` through ops in ``through``; return the path
    ``[start, ..., end]`` where ``end`` is the first node not in ``through`` (None if it forks)."""
    path = [start]
    cur = start
    while True:
        if len(succ[cur]) != 1:
            return None
        cur = succ[cur][0]
        path.append(cur)
        if cg.nodes[cur].op not in through:
            return path


class ToDense(Mutation):
    """Depthwise k×k … pointwise 1×1 (optionally with the 1×1 expansion before) → one k×k conv."""

    name = "to_dense"
    _between = frozenset(set(SWAPPABLE_ACTIVATIONS) | {"batch_norm"})

    def _parts(self, cg: CG, succ: list[list[int]], site: int) -> tuple[int, int, int | None] | None:
        """(first removed node's input, pointwise id, expansion id or None)."""
        dw = cg.nodes[site]
        if not _is_plain_conv(dw, dense=False) or dw.op != "depthwise_conv":
            return None
        path = _single_chain_forward(cg, succ, site, self._between)
        if path is None:
            return None
        pw = cg.nodes[path[-1]]
        if pw.op != "conv" or pw.kernel != (1, 1) or pw.stride != (1, 1) or len(pw.out_shape) != 4:
            return None
        # optional expansion: 1x1 conv -> [bn/act]* -> dw, all single-consumer
        back = dw.inputs[0]
        while cg.nodes[back].op in self._between and len(succ[back]) == 1:
            back = cg.nodes[back].inputs[0]
        node = cg.nodes[back]
        expand = None
        if (node.op == "conv" and node.kernel == (1, 1) and node.stride == (1, 1) and len(succ[back]) == 1
                and back != site):
            expand = back
        return dw.inputs[0], pw.id, expand

    def sites(self, cg: CG) -> list[int]:
        succ = cg.successors()
        return [n.id for n in cg.nodes if n.op == "depthwise_conv" and self._parts(cg, succ, n.id) is not None]

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        succ = cg.successors()
        parts = self._parts(cg, succ, site)
        if parts is None:
            return None
        src, pw_id, expand = parts
        dw, pw = cg.nodes[site], cg.nodes[pw_id]
        what = "dw+pw"
        if expand is not None and rng.random() < 0.5:
            src = cg.nodes[expand].inputs[0]
            what = "expand+dw+pw"
        ed = Editor(cg)
        k = dw.kernel[0]
        conv = ed.conv(src, pw.out_shape[1], k, dw.stride, 1, f"{_label(dw)}~dense", bias=pw.bias)
        if conv.out_shape != tuple(pw.out_shape):
            return None
        ed.rewire(pw_id, conv.id)
        ed.insert_after(pw_id, [conv])
        ed.remove({pw_id})  # the rest of the run is dead now and pruned by finish()
        return ed.finish(f"to_dense: {_label(dw)} {what} -> conv{k}x{k}")


class Width(Mutation):
    """Change the channels produced by a conv and consumed by the next dense conv(s) (2-D or 1-D maps)."""

    name = "width"
    factors = (0.5, 0.75, 1.5, 2.0)

    @staticmethod
    def _region(cg: CG, succ: list[list[int]], site: int) -> tuple[list[int], list[int]] | None:
        """(followers whose channels change, terminal dense convs) reachable from ``site``."""
        rank = len(cg.nodes[site].out_shape)  # (N, C, H, W) maps, or (N, C, L) in a 1-D conv net
        followers: list[int] = []
        terminals: list[int] = []
        stack = list(succ[site])
        seen: set[int] = set()
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            node = cg.nodes[i]
            if node.op in CHANNEL_FOLLOWERS and len(node.inputs) == 1 and len(node.out_shape) == rank:
                followers.append(i)
                stack.extend(succ[i])
            elif (node.op == "conv" and len(node.inputs) == 1 and node.weight_shape is not None
                  and len(node.out_shape) == rank and not node.attrs.get("transposed")):
                terminals.append(i)
            else:
                return None
        return (followers, terminals) if terminals else None

    def sites(self, cg: CG) -> list[int]:
        succ = cg.successors()
        return [n.id for n in cg.nodes if n.op == "conv" and len(n.out_shape) in (3, 4) and n.weight_shape is not None
                and not n.attrs.get("transposed") and self._region(cg, succ, n.id) is not None]

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        region = self._region(cg, cg.successors(), site)
        if region is None:
            return None
        followers, terminals = region
        node = cg.nodes[site]
        c = node.out_shape[1]
        f = float(rng.choice(self.factors))
        step = 8 if c >= 32 else (4 if c >= 8 else 1)
        new_c = max(step, int(round(c * f / step)) * step)
        if new_c == c:
            return None
        ed = Editor(cg)

        def widen(n: Node) -> None:
            n.out_shape = (n.out_shape[0], new_c, *n.out_shape[2:])

        a = ed.by_id[site]
        widen(a)
        a.weight_shape = (new_c, *a.weight_shape[1:])
        a.params = conv_params(a.weight_shape, a.bias)
        for i in followers:
            n = ed.by_id[i]
            widen(n)
            if n.op == "batch_norm" and n.weight_shape is not None:
                n.params = n.params * new_c // max(1, n.weight_shape[0])
                n.weight_shape = (new_c,)
            elif n.op == "depthwise_conv":
                n.weight_shape = (new_c, *n.weight_shape[1:])
                n.groups = new_c
                n.params = conv_params(n.weight_shape, n.bias)
        for i in terminals:
            n = ed.by_id[i]
            n.weight_shape = (n.weight_shape[0], new_c // n.groups, *n.weight_shape[2:])
            n.params = conv_params(n.weight_shape, n.bias)
        return ed.finish(f"width: {_label(node)} {c} -> {new_c} channels")


def _residual_adds(cg: CG) -> list[tuple[int, int, int]]:
    """``(add id, identity input, branch input)`` for 2-input adds whose one input feeds the other."""
    out = []
    for node in cg.nodes:
        if node.op != "add" or len(node.inputs) != 2 or node.inputs[0] == node.inputs[1]:
            continue
        a, b = sorted(node.inputs)
        if cg.reaches(a, b):
            out.append((node.id, a, b))
    return out


class AddSkip(Mutation):
    """Add an earlier same-shaped node to a node's output (a new skip connection)."""

    name = "add_skip"
    window = 12

    def _partners(self, cg: CG, v: int) -> list[int]:
        node = cg.nodes[v]
        return [u for u in range(max(0, v - self.window), v - 1)
                if cg.nodes[u].out_shape == node.out_shape and u not in node.inputs
                and cg.nodes[u].op not in ("zero", "output")]

    def sites(self, cg: CG) -> list[int]:
        return [n.id for n in cg.nodes if len(n.out_shape) == 4 and n.op not in ("input", "output", "zero")
                and self._partners(cg, n.id)]

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        partners = self._partners(cg, site)
        if not partners:
            return None
        u = int(rng.choice(partners))
        ed = Editor(cg)
        add = ed.simple("add", [site, u], f"{_label(cg.nodes[site])}~skip")
        ed.rewire(site, add.id, skip={add.id})
        ed.insert_after(site, [add])
        return ed.finish(f"add_skip: {_label(cg.nodes[u])} -> {_label(cg.nodes[site])}")


class DropSkip(Mutation):
    """Remove the identity input of a residual add (the branch stays)."""

    name = "drop_skip"

    def sites(self, cg: CG) -> list[int]:
        return [add for add, _, _ in _residual_adds(cg)]

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        _, a, b = next(t for t in _residual_adds(cg) if t[0] == site)
        ed = Editor(cg)
        ed.rewire(site, b)
        ed.remove({site})
        return ed.finish(f"drop_skip: {_label(cg.nodes[site])} (skip from {_label(cg.nodes[a])})")


class RemoveBlock(Mutation):
    """Replace a residual block ``x + f(x)`` by ``x``."""

    name = "remove_block"

    def sites(self, cg: CG) -> list[int]:
        return [add for add, _, b in _residual_adds(cg) if cg.nodes[b].op != "zero"]

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        _, a, b = next(t for t in _residual_adds(cg) if t[0] == site)
        ed = Editor(cg)
        ed.rewire(site, a)
        ed.remove({site})
        return ed.finish(f"remove_block: {_label(cg.nodes[site])} (kept {_label(cg.nodes[a])})")


class AddBlock(Mutation):
    """Insert a residual block after an activation or add (inverted residual if the net uses depthwise convs)."""

    name = "add_block"

    def sites(self, cg: CG) -> list[int]:
        return [n.id for n in cg.nodes if (n.op == "add" or n.op in SWAPPABLE_ACTIVATIONS)
                and len(n.out_shape) == 4 and n.out_shape[1] >= 4]

    def apply(self, cg: CG, site: int, rng: np.random.Generator) -> CG | None:
        node = cg.nodes[site]
        c = node.out_shape[1]
        act_op = dominant_activation(cg)
        ed = Editor(cg)
        base = f"{_label(node)}~block"
        if any(n.op == "depthwise_conv" for n in cg.nodes):
            t = int(rng.choice((3, 6)))
            ex = ed.conv(site, t * c, 1, (1, 1), 1, f"{base}.expand")
            bn1 = ed.bn(ex.id, f"{base}.bn1")
            a1 = ed.simple(act_op, [bn1.id], f"{base}.act1")
            dw = ed.conv(a1.id, t * c, 3, (1, 1), t * c, f"{base}.dw")
            bn2 = ed.bn(dw.id, f"{base}.bn2")
            a2 = ed.simple(act_op, [bn2.id], f"{base}.act2")
            pw = ed.conv(a2.id, c, 1, (1, 1), 1, f"{base}.project")
            bn3 = ed.bn(pw.id, f"{base}.bn3")
            add = ed.simple("add", [site, bn3.id], f"{base}.add")
            new, last, kind = [ex, bn1, a1, dw, bn2, a2, pw, bn3, add], add, f"inverted residual x{t}"
        else:
            c1 = ed.conv(site, c, 3, (1, 1), 1, f"{base}.conv1")
            bn1 = ed.bn(c1.id, f"{base}.bn1")
            a1 = ed.simple(act_op, [bn1.id], f"{base}.act1")
            c2 = ed.conv(a1.id, c, 3, (1, 1), 1, f"{base}.conv2")
            bn2 = ed.bn(c2.id, f"{base}.bn2")
            add = ed.simple("add", [site, bn2.id], f"{base}.add")
            a2 = ed.simple(act_op, [add.id], f"{base}.act2")
            new, last, kind = [c1, bn1, a1, c2, bn2, add, a2], a2, "basic block"
        ed.rewire(site, last.id, skip={n.id for n in new})
        ed.insert_after(site, new)
        return ed.finish(f"add_block: {kind} ({c} ch) after {_label(node)}")


#: Every mutation by name, in the order of the module docstring.
MUTATIONS: dict[str, Mutation] = {m.name: m for m in (
    KernelSize(), Activation(), ToSeparable(), ToInverted(), ToDense(), Width(), AddSkip(), DropSkip(),
    RemoveBlock(), AddBlock())}


def get_mutations(names: Sequence[str] | None = None) -> list[Mutation]:
    """Mutation objects by name (all when ``names`` is ``None``); unknown names raise ``ValueError``."""
    if names is None:
        return list(MUTATIONS.values())
    unknown = [n for n in names if n not in MUTATIONS]
    if unknown:
        raise ValueError(f"unknown mutation(s) {unknown}; known: {', '.join(MUTATIONS)}")
    return [MUTATIONS[n] for n in names]


def applicable(cg: CG, mutations: Sequence[Mutation] | None = None) -> tuple[str, ...]:
    """Names of the mutations (default: all) with at least one site in ``cg``."""
    return tuple(m.name for m in (mutations if mutations is not None else MUTATIONS.values()) if m.sites(cg))


def mutate(cg: CG, rng: np.random.Generator, mutations: Sequence[Mutation] | None = None,
           max_tries: int = 8) -> CG | None:
    """One random mutant of ``cg``: a mutation kind chosen uniformly among those that apply, then a
    random site and random parameters. Returns ``None`` if no move succeeds in ``max_tries``."""
    kinds = list(mutations) if mutations is not None else list(MUTATIONS.values())
    for _ in range(max_tries):
        if not kinds:
            return None
        kind = kinds[int(rng.integers(len(kinds)))]
        sites = kind.sites(cg)
        if not sites:
            kinds.remove(kind)
            continue
        site = int(sites[int(rng.integers(len(sites)))])
        try:
            child = kind.apply(cg, site, rng)
        except ShapeError:
            child = None
        if child is not None:
            check_shapes(child)
            return child
    return None


MutateFn = Callable[[CG, np.random.Generator], "CG | None"]

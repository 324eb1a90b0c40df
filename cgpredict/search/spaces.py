"""Search spaces: what a candidate is, how it mutates, how it is sampled and scored.

Pipeline position: model → CG → features → predictor → ranking/**search**. The algorithms of
:mod:`cgpredict.search.algorithms` only talk to a :class:`SearchSpace`:

* :class:`CGSpace` — free-form: candidates are CGs, moves are the CG mutations of
  :mod:`cgpredict.search.mutations`, feasibility is the shape check (and optionally a real forward
  pass of ``CG.to_module()``), "random" candidates are random walks of mutations from the start.
* :class:`CellSpace` — a cell benchmark's own encoding (e.g. NAS-Bench-201's 6 edge ops): a move
  changes one position; it can be restricted to a fixed set of architectures (e.g. the labelled
  ones), in which case a move lands on the nearest allowed arch in Hamming distance.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from cgpredict.cg import CG
from cgpredict.search.graph_edit import canonical_key
from cgpredict.search.mutations import Mutation, get_mutations, mutate


class SearchSpace:
    """Interface of a search space (see module docstring)."""

    def key(self, item: Any) -> Hashable:
        """Identity of a candidate (duplicates are evaluated once)."""
        raise NotImplementedError

    def mutate(self, item: Any, rng: np.random.Generator) -> tuple[Any, str] | None:
        """A feasible neighbour and a description of the move, or ``None``."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        """A random candidate (random search, evolution's initial population)."""
        raise NotImplementedError

    def evaluate(self, items: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predicted accuracy, MACs and parameters of each item."""
        raise NotImplementedError

    def flops(self, item: Any) -> float:
        """MACs of one item (cheap; used to skip predictor queries over a hard budget)."""
        raise NotImplementedError


def run_check(cg: CG, batch: int = 1) -> None:
    """Build ``cg.to_module()`` and run a forward pass on zeros; raise if it fails or the output
    shape differs from the CG's.

    Raises:
        ImportError: when :mod:`cgpredict.rebuild` is not available.
        RuntimeError: when the forward pass fails or gives another shape.
    """
    import torch

    module = cg.to_module().eval()
    inputs = [torch.zeros((batch, *n.out_shape[1:])) for n in cg.input_nodes]
    with torch.no_grad():
        out = module(*inputs)
    outs = out if isinstance(out, (tuple, list)) else [out]
    expected = [tuple(s[1:]) for s in cg.output_node.in_shapes]
    got = [tuple(o.shape[1:]) for o in outs]
    if got != expected:
        raise RuntimeError(f"rebuilt {cg.name or 'CG'} returns shapes {got}, the CG says {expected}")


class CGSpace(SearchSpace):
    """Free-form space of CGs reachable from ``start`` by mutations.

    Args:
        scorer: batch scorer (``Callable[[list[CG]], np.ndarray]``), e.g. ``Predictor.predict``.
        mutations: mutation names (default: all).
        flops_mode: counting mode of the FLOPs objective (see :mod:`cgpredict.counting`).
        run_check: also build and run every candidate with ``CG.to_module()`` (slow).
        walk: mutations per random candidate in :meth:`sample`.
    """

    def __init__(self, start: CG, scorer: Callable[[list[CG]], np.ndarray], mutations: Sequence[str] | None = None,
                 flops_mode: str = "torchvision", run_check: bool = False, walk: int = 3) -> None:
        self.start = start
        self.scorer = scorer
        self.mutations: list[Mutation] = get_mutations(mutations)
        self.flops_mode = flops_mode
        self.run_check = run_check
        self.walk = walk

    def key(self, item: CG) -> Hashable:
        return canonical_key(item)

    def mutate(self, item: CG, rng: np.random.Generator) -> tuple[CG, str] | None:
        child = mutate(item, rng, self.mutations)
        if child is None:
            return None
        if self.run_check:
            try:
                run_check(child)
            except Exception:  # noqa: BLE001 - any failure makes the mutant infeasible
                return None
        return child, child.meta["mutations"][-1]

    def sample(self, rng: np.random.Generator) -> CG:
        cg = self.start
        for _ in range(self.walk):
            out = self.mutate(cg, rng)
            if out is not None:
                cg = out[0]
        return cg

    def flops(self, item: CG) -> float:
        return float(item.macs(self.flops_mode))

    def evaluate(self, items: list[CG]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pred = np.asarray(self.scorer(list(items)), dtype=float).ravel()
        if pred.size != len(items):
            raise ValueError(f"scorer returned {pred.size} values for {len(items)} CGs")
        flops = np.array([self.flops(c) for c in items], dtype=float)
        params = np.array([c.params for c in items], dtype=float)
        return pred, flops, params


class CellSpace(SearchSpace):
    """Cell encodings (tuples of op codes) with one-position edit moves.

    Args:
        n_positions, n_ops: tuple length and op codes ``0..n_ops-1``.
        scorer: maps a list of archs to predictions.
        flops_fn, params_fn: per-arch MACs / params (default 0).
        allowed: if given, the only archs the search may visit; a move that leaves the set goes
            to the nearest allowed arch (Hamming distance, random tie-break) that differs from the
            parent in the changed position.
    """

    def __init__(self, n_positions: int, n_ops: int, scorer: Callable[[list[tuple[int, ...]]], np.ndarray],
                 flops_fn: Callable[[tuple[int, ...]], float] | None = None,
                 params_fn: Callable[[tuple[int, ...]], float] | None = None,
                 allowed: Sequence[tuple[int, ...]] | None = None) -> None:
        self.n_positions, self.n_ops = n_positions, n_ops
        self.scorer = scorer
        self.flops_fn = flops_fn or (lambda a: 0.0)
        self.params_fn = params_fn or (lambda a: 0.0)
        self.allowed = None if allowed is None else [tuple(int(v) for v in a) for a in allowed]
        self._allowed_set = None if self.allowed is None else set(self.allowed)
        self._matrix = None if self.allowed is None else np.asarray(self.allowed, dtype=int)

    def key(self, item: tuple[int, ...]) -> Hashable:
        return tuple(item)

    def mutate(self, item: tuple[int, ...], rng: np.random.Generator) -> tuple[tuple[int, ...], str] | None:
        pos = int(rng.integers(self.n_positions))
        new_op = int(rng.choice([o for o in range(self.n_ops) if o != item[pos]]))
        child = list(item)
        child[pos] = new_op
        target = tuple(child)
        if self._allowed_set is None or target in self._allowed_set:
            return target, f"edge {pos}: {item[pos]} -> {new_op}"
        m = self._matrix
        ok = (m[:, pos] != item[pos]) & np.any(m != np.asarray(item), axis=1)
        if not ok.any():
            return None
        dist = np.where(ok, np.sum(m != np.asarray(target), axis=1), 10 ** 6)
        best = np.flatnonzero(dist == dist.min())
        arch = self.allowed[int(rng.choice(best))]
        return arch, f"edge {pos}: {item[pos]} -> {new_op} (nearest allowed, {int(dist.min())} more edits)"

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        if self.allowed is not None:
            return self.allowed[int(rng.integers(len(self.allowed)))]
        return tuple(int(v) for v in rng.integers(self.n_ops, size=self.n_positions))

    def flops(self, item: tuple[int, ...]) -> float:
        return float(self.flops_fn(item))

    def evaluate(self, items: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pred = np.asarray(self.scorer(list(items)), dtype=float).ravel()
        return (pred, np.array([self.flops(a) for a in items], dtype=float),
                np.array([self.params_fn(a) for a in items], dtype=float))

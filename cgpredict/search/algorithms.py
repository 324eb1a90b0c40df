"""Search algorithms: GENNAPE-style local search, regularized evolution and random search.

Pipeline position: model → CG → features → predictor → ranking/**search**.

All three share one evaluator: candidates are deduplicated by :meth:`SearchSpace.key`, a
*query* is one candidate scored by the predictor (over-budget candidates under a hard budget are
not sent to the predictor and cost no query, except in local search, which scores them to choose
promising over-budget parents), and every algorithm stops at ``max_queries``.
Seeded with ``numpy.random.default_rng(seed)``: the same seed gives the same history.

* :func:`local_search` (Mills et al., AAAI'23): for ``iterations`` rounds, mutate each of the
  current top-k candidates ``mutants`` times, score the new ones, keep the new top-k.
* :func:`regularized_evolution` (Real et al., 2019): population 50, tournament 10, the child of
  the tournament winner replaces the oldest member.
* :func:`random_search`: independent random candidates from :meth:`SearchSpace.sample`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cgpredict.gc_pause import gc_paused
from cgpredict.quiet import progress_bar
from cgpredict.search.objective import Objective, pareto_front
from cgpredict.search.spaces import SearchSpace


@dataclass
class Candidate:
    """One evaluated candidate of a search.

    Attributes:
        item: the CG (or arch) itself.
        key: its dedup key.
        pred: predicted accuracy (NaN when not queried: over a hard budget).
        flops: MACs per sample; params: parameters.
        value: objective value (``-inf`` when infeasible).
        query: 1-based index of the predictor query that scored it (0 = not queried).
        iteration: search round (local search) / step (evolution, random) that produced it.
        parent: key of the candidate it was mutated from (``None`` for start/samples).
        moves: the move descriptions from the start (CG space: ``meta["mutations"]``).
    """

    item: Any
    key: Hashable
    pred: float
    flops: float
    params: float
    value: float
    query: int
    iteration: int
    parent: Hashable | None = None
    moves: list[str] = field(default_factory=list)


@dataclass
class SearchResult:
    """History and outcome of one search run; ``top`` holds the best feasible candidates other
    than the start (which is reported in ``start``)."""

    method: str
    objective: Objective
    start: Candidate | None
    history: list[Candidate]
    queries: int
    top: list[Candidate]
    start_moves: tuple[str, ...] = ()  # the mutations with a site on the start network (set by search_cg)

    @property
    def best(self) -> Candidate | None:
        """The best feasible candidate (``None`` if none is feasible)."""
        return self.top[0] if self.top else None

    def below_start(self) -> str | None:
        """A warning when no returned candidate predicts at least the start's accuracy (e.g. a tight
        FLOPs budget the search could not compensate), naming the best feasible prediction and the
        start's; ``None`` otherwise."""
        if self.start is None or not math.isfinite(self.start.pred):
            return None
        if self.best is None:
            moves = f"; moves that apply to the start: {', '.join(self.start_moves)}" if self.start_moves else ""
            return (f"no candidate met the budget after {self.queries} queries "
                    f"(start predicts {self.start.pred:.3f}{moves})")
        if self.best.pred >= self.start.pred:
            return None
        return (f"the best candidate within the budget predicts {self.best.pred:.3f}, below the start's "
                f"{self.start.pred:.3f} ({self.queries} queries); more --iterations / --mutants or a "
                "looser budget may help")

    def pareto(self) -> list[Candidate]:
        """Non-dominated scored candidates (higher prediction, fewer FLOPs), by increasing FLOPs
        (over-budget ones that local search scored included: the trade-off beyond the budget)."""
        scored = [c for c in self.history if c.query > 0]
        idx = pareto_front([c.pred for c in scored], [c.flops for c in scored])
        return [scored[i] for i in idx]

    def trajectory(self) -> np.ndarray:
        """Best feasible objective value after each query, shape ``[queries]`` (``-inf`` before any)."""
        best = -math.inf
        out = np.full(self.queries, -math.inf)
        for c in sorted((c for c in self.history if c.query > 0), key=lambda c: c.query):
            best = max(best, c.value)
            out[c.query - 1] = best
        for i in range(1, out.size):
            out[i] = max(out[i], out[i - 1])
        return out


class _Evaluator:
    """Dedup, query budget, hard-budget skipping and history bookkeeping."""

    def __init__(self, space: SearchSpace, objective: Objective, max_queries: int | None, progress: bool,
                 desc: str, total: int | None = None) -> None:
        self.space, self.objective, self.max_queries = space, objective, max_queries
        self.seen: dict[Hashable, Candidate] = {}
        self.history: list[Candidate] = []
        self.queries = 0
        self.bar = progress_bar(total=max_queries or total, desc=desc, unit="query", progress=progress, leave=False)

    @property
    def exhausted(self) -> bool:
        return self.max_queries is not None and self.queries >= self.max_queries

    def evaluate(self, batch: list[tuple[Any, Hashable | None, int, list[str]]], force: bool = False,
                 score_infeasible: bool = False) -> list[Candidate]:
        """Score new items (``(item, parent key, iteration, moves)``); returns their candidates
        (already-seen items return their earlier candidate and cost nothing). ``force`` scores
        even over-budget items (the start, so that its prediction is known); ``score_infeasible``
        also queries over-budget items (their value stays ``-inf``; local search uses their
        prediction to pick promising parents)."""
        out: list[Candidate] = []
        todo: list[tuple[Any, Hashable, Hashable | None, int, list[str], float]] = []
        pending: set[Hashable] = set()
        for item, parent, iteration, moves in batch:
            key = self.space.key(item)
            if key in self.seen:
                out.append(self.seen[key])
                continue
            if key in pending:
                continue
            flops = self.space.flops(item)
            if not force and not score_infeasible and not self.objective.feasible(flops):
                cand = Candidate(item, key, math.nan, flops, math.nan, -math.inf, 0, iteration, parent, moves)
                self.seen[key] = cand
                self.history.append(cand)
                out.append(cand)
                continue
            if not force and self.max_queries is not None and self.queries + len(todo) >= self.max_queries:
                continue
            pending.add(key)
            todo.append((item, key, parent, iteration, moves, flops))
        if todo:
            pred, flops, params = self.space.evaluate([t[0] for t in todo])
            for (item, key, parent, iteration, moves, _), p, f, n in zip(todo, pred, flops, params):
                self.queries += 1
                cand = Candidate(item, key, float(p), float(f), float(n), self.objective.value(p, f),
                                 self.queries, iteration, parent, moves)
                self.seen[key] = cand
                self.history.append(cand)
                out.append(cand)
            self.bar.update(len(todo))
        return out

    def rank(self, cands: list[Candidate]) -> list[Candidate]:
        """Best first by the objective's sort key (ties: earlier query first)."""
        return sorted(cands, key=lambda c: (*self.objective.sort_key(c.pred, c.flops), -c.query), reverse=True)

    def result(self, method: str, start: Candidate | None, topk: int) -> SearchResult:
        self.bar.close()
        feasible = [c for c in self.history if c.query > 0 and math.isfinite(c.value) and c is not start]
        top = self.rank(feasible)[:topk]
        return SearchResult(method, self.objective, start, self.history, self.queries, top)


def _moves(space: SearchSpace, item: Any, parent: Candidate | None, move: str) -> list[str]:
    meta = getattr(item, "meta", None)
    if isinstance(meta, dict) and "mutations" in meta:
        return list(meta["mutations"])
    return [*(parent.moves if parent else []), move]


def _over_budget_order(cands: list[Candidate]) -> list[Candidate]:
    """Over-budget candidates, most promising first: scored ones by the sum of their rank by
    prediction (high first) and by FLOPs (low first), ties by fewer FLOPs; unscored ones last, by
    fewer FLOPs. Scale-free, so it needs no exchange rate between prediction and FLOPs."""
    scored = [c for c in cands if math.isfinite(c.pred)]
    by_pred = {c.key: i for i, c in enumerate(sorted(scored, key=lambda c: (-c.pred, c.flops, c.query)))}
    by_flops = {c.key: i for i, c in enumerate(sorted(scored, key=lambda c: (c.flops, -c.pred, c.query)))}
    scored.sort(key=lambda c: (by_pred[c.key] + by_flops[c.key], c.flops, c.query))
    unscored = sorted((c for c in cands if not math.isfinite(c.pred)), key=lambda c: (c.flops, c.query))
    return scored + unscored


def _select(ev: _Evaluator, cands: list[Candidate], topk: int, explore: float) -> list[Candidate]:
    """The ``topk`` parents of the next local-search round.

    While no candidate meets a hard budget, all parents are over-budget ones in
    :func:`_over_budget_order` (cheap cuts that keep the prediction are preferred to the
    lowest-FLOPs cut, which loses the most prediction). Once some are feasible,
    ``round(explore * topk)`` parents stay over budget (the most promising ones: a FLOPs-raising
    move with a high prediction plus a later cheap cut is a two-move path a hard budget alone never
    takes); the rest are the best feasible candidates. Free slots of either kind go to the other."""
    feasible = ev.rank([c for c in cands if math.isfinite(c.value)])
    over = _over_budget_order([c for c in cands if not math.isfinite(c.value)])
    n_over = topk if not feasible else min(len(over), int(round(explore * topk)))
    parents = feasible[:topk - n_over] + over[:n_over]
    if len(parents) < topk:
        chosen = {c.key for c in parents}
        parents += [c for c in [*feasible, *over] if c.key not in chosen][:topk - len(parents)]
    return parents


@gc_paused()
def local_search(space: SearchSpace, start: Any, objective: Objective | None = None, iterations: int = 6,
                 topk: int = 10, mutants: int = 8, max_queries: int | None = None, repair_rounds: int = 60,
                 patience: int = 10, explore: float = 0.5, seed: int = 0, progress: bool = True) -> SearchResult:
    """GENNAPE's local search from ``start``.

    Under a hard FLOPs budget the search runs in two phases: *repair* rounds (not counted in
    ``iterations``) while no candidate meets the budget, then ``iterations`` improvement rounds.
    Over-budget mutants are scored too (they cost queries) so that both phases can keep promising
    over-budget parents (see :func:`_select`); only candidates within the budget are returned.

    Args:
        space: the search space (scores, mutates).
        start: the starting candidate (a CG for :class:`~cgpredict.search.spaces.CGSpace`).
        objective: budget/penalty (default: no budget).
        iterations: rounds T; topk: parents kept per round; mutants: children per parent.
        max_queries: stop after this many predictor queries (default: no limit).
        repair_rounds: when the start is over a hard budget, up to this many extra rounds (not
            counted in ``iterations``) walk towards the budget until a candidate meets it.
        patience: stop after this many rounds without any new candidate (a local optimum).
        explore: share of the parents kept over a hard budget once feasible candidates exist
            (0 = feasible parents only).
        seed: RNG seed.
        progress: tqdm bar over queries.
    """
    if iterations < 0 or topk < 1 or mutants < 1:
        raise ValueError(f"need iterations >= 0, topk >= 1, mutants >= 1 (got {iterations}, {topk}, {mutants})")
    if not 0 <= explore <= 1:
        raise ValueError(f"explore must be in [0, 1], got {explore}")
    objective = objective or Objective()
    rng = np.random.default_rng(seed)
    ev = _Evaluator(space, objective, max_queries, progress, "local search",
                    total=1 + iterations * topk * mutants)  # an upper bound: duplicates cost nothing
    start_c = ev.evaluate([(start, None, 0, [])], force=True)[0]
    pool = [start_c]
    iteration, repairs, stale = 0, 0, 0
    while iteration < iterations:
        if ev.exhausted:
            break
        if any(math.isfinite(c.value) for c in pool) or repairs >= repair_rounds:
            iteration += 1
        else:
            repairs += 1  # no feasible candidate yet: this round walks towards the budget
        batch = []
        for parent in pool:
            for _ in range(mutants):
                out = space.mutate(parent.item, rng)
                if out is not None:
                    child, move = out
                    batch.append((child, parent.key, iteration + repairs, _moves(space, child, parent, move)))
        if not batch:
            break
        before = ev.queries + len(ev.history)
        new = ev.evaluate(batch, score_infeasible=objective.hard)
        stale = stale + 1 if ev.queries + len(ev.history) == before else 0
        if stale >= patience:
            break  # a local optimum: every mutant of the top-k has been seen
        merged = {c.key: c for c in [*pool, *new]}
        pool = _select(ev, list(merged.values()), topk, explore)
    return ev.result("local", start_c, topk)


@gc_paused()
def regularized_evolution(space: SearchSpace, start: Any | None = None, objective: Objective | None = None,
                          population: int = 50, tournament: int = 10, max_queries: int = 300, topk: int = 10,
                          seed: int = 0, progress: bool = True) -> SearchResult:
    """Regularized (aging) evolution with tournament selection.

    The initial population is ``start`` (if given) plus :meth:`SearchSpace.sample` candidates;
    then each step mutates the best of ``tournament`` random members and drops the oldest.
    """
    if population < 2 or not 1 <= tournament <= population:
        raise ValueError(f"need population >= 2 and 1 <= tournament <= population (got {population}, {tournament})")
    objective = objective or Objective()
    rng = np.random.default_rng(seed)
    ev = _Evaluator(space, objective, max_queries, progress, "evolution")
    start_c = ev.evaluate([(start, None, 0, [])], force=True)[0] if start is not None else None
    pop: deque[Candidate] = deque([start_c] if start_c is not None else [], maxlen=population)
    tries = 0
    while len(pop) < population and not ev.exhausted and tries < 20 * population:
        tries += 1
        item = space.sample(rng)
        got = ev.evaluate([(item, None, 0, _moves(space, item, None, "sample"))])
        if got:
            pop.append(got[0])
    step = 0
    stall = 0
    while not ev.exhausted and pop and stall < 50 * population:
        step += 1
        idx = rng.choice(len(pop), size=min(tournament, len(pop)), replace=False)
        parent = ev.rank([pop[int(i)] for i in idx])[0]
        out = space.mutate(parent.item, rng)
        if out is None:
            stall += 1
            continue
        child, move = out
        before = ev.queries
        got = ev.evaluate([(child, parent.key, step, _moves(space, child, parent, move))])
        stall = stall + 1 if ev.queries == before else 0
        if got:
            pop.append(got[0])  # deque(maxlen) drops the oldest
    return ev.result("evolution", start_c, topk)


@gc_paused()
def random_search(space: SearchSpace, start: Any | None = None, objective: Objective | None = None,
                  max_queries: int = 300, topk: int = 10, seed: int = 0, progress: bool = True) -> SearchResult:
    """Score ``max_queries`` distinct random candidates (plus ``start`` if given)."""
    objective = objective or Objective()
    rng = np.random.default_rng(seed)
    ev = _Evaluator(space, objective, max_queries, progress, "random search")
    start_c = ev.evaluate([(start, None, 0, [])], force=True)[0] if start is not None else None
    step, stall = 0, 0
    while not ev.exhausted and stall < 1000:
        step += 1
        item = space.sample(rng)
        before = ev.queries
        ev.evaluate([(item, None, step, _moves(space, item, None, "sample"))])
        stall = stall + 1 if ev.queries == before else 0
    return ev.result("random", start_c, topk)


METHODS = {"local": local_search, "evolution": regularized_evolution, "random": random_search}

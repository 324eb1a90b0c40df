"""Proxy-task search: regularized evolution over the proxy configuration, fitness = Spearman ρ.

Pipeline position: model → CG → **proxy task chosen per family** → proxy features → predictor.

GenNAS and Eproxy both tune their synthetic task to a search space with a handful of labelled
networks (GenNAS: regularized evolution, population 50, sample 10, 400 iterations; Eproxy's
"Discrete Proxy Search": population 40, sample 10, 200 cycles, mutation rate 0.2). We reimplement
that loop (Real et al., 2019, "Regularized Evolution"):

1. Draw ``population`` random genomes, evaluate each.
2. For ``cycles`` cycles: draw ``sample`` members of the population, take the fittest as parent,
   mutate it (each gene re-drawn with probability ``mutation``, at least one gene changes),
   evaluate the child, append it and drop the *oldest* member.
3. Return the fittest genome ever evaluated.

Fitness: Spearman rank correlation between the proxy score (−loss, optionally times the FLOPs
factor ``(1 + α·norm(MACs))`` on the loss) and the labels of the given networks (20 in the
papers). Each evaluation runs the proxy on every network through
:func:`cgpredict.proxies.features.proxy_features`, so results are cached on disk by CG hash and
config and repeated genomes cost nothing. A genome on which some network fails gets fitness −1.

Search spaces (:data:`EPROXY_SPACE`, :data:`GENNAS_SPACE`) cover what the papers search: the signal
mix and its channels and frequency bands, the transform/barrier kernel sizes and widths, the
learning rate, tap standardisation, the network's weight-init scheme
(:data:`~cgpredict.proxies.features.INIT_SCHEMES`) and the FLOPs factor α.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from cgpredict.cg import CG
from cgpredict.proxies.features import INIT_SCHEMES, ProxyConfig, proxy_features
from cgpredict.proxies.signals import SignalSpec
from cgpredict.quiet import progress_bar

__all__ = ["EPROXY_SETTINGS", "EPROXY_SPACE", "GENNAS_SETTINGS", "GENNAS_SPACE", "TaskSearchResult",
           "genome_to_config", "search_proxy_task"]

#: The papers' evolution sizes.
GENNAS_SETTINGS: dict[str, Any] = {"population": 50, "sample": 10, "cycles": 400, "mutation": 0.2}
EPROXY_SETTINGS: dict[str, Any] = {"population": 40, "sample": 10, "cycles": 200, "mutation": 0.2}

_ALPHAS = (-0.5, -0.2, 0.0, 0.2, 0.5)
_EXTRA: dict[str, tuple[SignalSpec, ...]] = {
    "none": (),
    "sin_low": (SignalSpec("sin2d", 4, band="low", level=0.5),),
    "sin_medium": (SignalSpec("sin2d", 4, band="medium", level=0.5),),
    "sin_high": (SignalSpec("sin2d", 4, band="high", level=0.5),),
    "sin_low_medium": (SignalSpec("sin2d", 4, band="low", level=0.5), SignalSpec("sin2d", 4, band="medium", level=0.5)),
    "dot50": (SignalSpec("dot", 4, ratio=0.5, level=0.5),),
    "gdot20": (SignalSpec("gdot", 4, ratio=0.2, level=0.5),),
}
#: Gene name → choices for Eproxy (fields of :class:`~cgpredict.proxies.eproxy.EproxyConfig`, plus α).
EPROXY_SPACE: dict[str, tuple[Any, ...]] = {
    "teacher_channels": (16, 32, 64),
    "target_channels": (8, 16, 32),
    "transform_channels": (16, 32, 64, 128),
    "transform_kernel": (1, 3),
    "barrier_kernel": (1, 3, 5),
    "activation": ("relu", "tanh", "none"),
    "extra": tuple(_EXTRA),
    "lr": (0.1, 0.3, 1.0, 3.0),
    "num_stages": (1, 2, 3),
    "normalize_taps": (True, False),
    "init": INIT_SCHEMES,
    "alpha": _ALPHAS,
}


def _stage_menu() -> dict[str, tuple[SignalSpec, ...]]:
    menu: dict[str, tuple[SignalSpec, ...]] = {"none": ()}
    for ch in (2, 4, 8):
        for band in ("low", "medium", "high"):
            menu[f"sin1d_{band}_{ch}"] = (SignalSpec("sin1d", ch, band=band),)
            menu[f"sin2d_{band}_{ch}"] = (SignalSpec("sin2d", ch, band=band),)
        menu[f"dot100_{ch}"] = (SignalSpec("dot", ch, ratio=1.0),)
        menu[f"gdot20_{ch}"] = (SignalSpec("gdot", ch, ratio=0.2),)
    menu["resize"] = (SignalSpec("resize"),)
    return menu


_STAGE_MENU = _stage_menu()
#: Gene name → choices for GenNAS (two signal groups per stage, lr, standardisation, α).
GENNAS_SPACE: dict[str, tuple[Any, ...]] = {
    **{f"stage{s}_{j}": tuple(_STAGE_MENU) for s in (1, 2, 3) for j in ("a", "b")},
    "lr": (0.01, 0.03, 0.1, 0.3),
    "normalize_taps": (True, False),
    "init": INIT_SCHEMES,
    "alpha": _ALPHAS,
}


def _space(method: str) -> dict[str, tuple[Any, ...]]:
    if method == "eproxy":
        return EPROXY_SPACE
    if method == "gennas":
        return GENNAS_SPACE
    raise ValueError(f"unknown proxy method {method!r}; expected 'gennas' or 'eproxy'")


def genome_to_config(method: str, genome: dict[str, Any], base: ProxyConfig | None = None) -> tuple[ProxyConfig, float]:
    """The :class:`ProxyConfig` (preset fields overridden) and FLOPs factor α of a genome."""
    base = base or ProxyConfig(method=method)
    over: dict[str, Any] = {}
    for key, value in genome.items():
        if key in ("alpha", "init") or key.startswith("stage"):
            continue
        over[key] = _EXTRA[value] if key == "extra" else value
    if method == "gennas":
        stages = tuple(_STAGE_MENU[genome[f"stage{s}_a"]] + _STAGE_MENU[genome[f"stage{s}_b"]] for s in (1, 2, 3))
        if not any(stages):
            stages = stages[:2] + (_STAGE_MENU["dot100_4"],)
        over["stages"] = stages
    config = ProxyConfig(method=method, preset=base.preset, iterations=base.iterations, batch_size=base.batch_size,
                         target_size=base.target_size, seed=base.seed, inputs=base.inputs,
                         num_stages=base.num_stages, init=str(genome.get("init", base.init)),
                         overrides=tuple(sorted(over.items())))
    return config, float(genome.get("alpha", 0.0))


@dataclass
class TaskSearchResult:
    """Outcome of :func:`search_proxy_task`.

    Attributes:
        best_genome, best_fitness: the fittest genome ever evaluated and its Spearman ρ.
        best_config, best_alpha: its proxy configuration and FLOPs factor.
        history: ``(genome, fitness)`` of every evaluation, in order.
        evaluations: distinct genomes evaluated (proxy runs = evaluations × networks, minus cache hits).
    """

    best_genome: dict[str, Any]
    best_fitness: float
    best_config: ProxyConfig
    best_alpha: float
    history: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    evaluations: int = 0


def _fitness(cgs: Sequence[CG], labels: np.ndarray, config: ProxyConfig, alpha: float, cache: bool) -> float:
    losses = []
    for cg in cgs:
        feats = proxy_features(cg, config, cache=cache)
        if not feats.ok:
            return -1.0
        losses.append(feats.loss)
    loss = np.asarray(losses)
    if alpha:
        macs = np.asarray([cg.flops for cg in cgs], dtype=float)
        span = macs.max() - macs.min()
        norm = (macs - macs.min()) / span if span > 0 else np.zeros_like(macs)
        loss = loss * (1.0 + alpha * norm)
    if np.ptp(loss) == 0:
        return 0.0
    rho = spearmanr(-loss, labels).statistic
    return float(rho) if math.isfinite(rho) else 0.0


def search_proxy_task(
    cgs: Sequence[CG],
    labels: Sequence[float] | np.ndarray,
    method: str = "eproxy",
    *,
    population: int | None = None,
    sample: int | None = None,
    cycles: int | None = None,
    mutation: float | None = None,
    base: ProxyConfig | None = None,
    seed: int = 0,
    cache: bool = True,
    progress: bool = True,
) -> TaskSearchResult:
    """Search the proxy configuration that best ranks ``cgs`` by ``labels`` (module docstring).

    Args:
        cgs: labelled networks of the target family (20 in the papers), converted at the proxy's
            input size.
        labels: their accuracies (higher is better).
        method: ``"eproxy"`` or ``"gennas"`` (search space :data:`EPROXY_SPACE` / :data:`GENNAS_SPACE`).
        population, sample, cycles, mutation: evolution sizes; ``None`` = the method's paper
            setting (:data:`EPROXY_SETTINGS`, :data:`GENNAS_SETTINGS`).
        base: fixed settings of every run (iterations, batch size, seed…).
        seed: seed of the evolution (the proxy runs use ``base.seed``).
        cache: use the proxy-feature disk cache.
        progress: tqdm bar over the evaluations.

    Raises:
        ValueError: fewer than 3 networks, mismatched labels, or bad sizes.
    """
    labels = np.asarray(labels, dtype=float)
    if len(cgs) != len(labels):
        raise ValueError(f"search_proxy_task: {len(cgs)} networks but {len(labels)} labels")
    if len(cgs) < 3:
        raise ValueError("search_proxy_task needs at least 3 labelled networks for a Spearman fitness")
    space = _space(method)
    defaults = EPROXY_SETTINGS if method == "eproxy" else GENNAS_SETTINGS
    population = int(population or defaults["population"])
    sample = int(sample or defaults["sample"])
    cycles = int(defaults["cycles"] if cycles is None else cycles)
    mutation = float(defaults["mutation"] if mutation is None else mutation)
    if population < 1 or not 1 <= sample <= population or cycles < 0 or not 0.0 <= mutation <= 1.0:
        raise ValueError(f"bad evolution sizes: population={population}, sample={sample}, cycles={cycles}, "
                         f"mutation={mutation}")
    base = base or ProxyConfig(method=method)
    rng = random.Random(seed)
    memo: dict[tuple, float] = {}
    history: list[tuple[dict[str, Any], float]] = []
    bar = progress_bar(total=population + cycles, desc=f"proxy-task search ({method})", unit="eval", progress=progress)

    def evaluate(genome: dict[str, Any]) -> float:
        key = tuple(sorted((k, repr(v)) for k, v in genome.items()))
        if key not in memo:
            config, alpha = genome_to_config(method, genome, base)
            memo[key] = _fitness(cgs, labels, config, alpha, cache)
        fit = memo[key]
        history.append((dict(genome), fit))
        bar.update(1)
        bar.set_postfix(best=f"{max(f for _, f in history):.3f}")
        return fit

    def mutate(parent: dict[str, Any]) -> dict[str, Any]:
        child = dict(parent)
        genes = [g for g in space if len(space[g]) > 1]
        forced = rng.choice(genes)
        for gene in genes:
            if gene == forced or rng.random() < mutation:
                choices = [c for c in space[gene] if c != parent[gene]]
                child[gene] = rng.choice(choices)
        return child

    pop: list[tuple[dict[str, Any], float]] = []
    try:
        for _ in range(population):
            genome = {g: rng.choice(choices) for g, choices in space.items()}
            pop.append((genome, evaluate(genome)))
        for _ in range(cycles):
            contenders = rng.sample(pop, sample)
            parent = max(contenders, key=lambda item: item[1])[0]
            child = mutate(parent)
            pop.append((child, evaluate(child)))
            pop.pop(0)  # regularized evolution: the oldest dies
    finally:
        bar.close()
    best_genome, best_fit = max(history, key=lambda item: item[1])
    config, alpha = genome_to_config(method, best_genome, base)
    return TaskSearchResult(best_genome=best_genome, best_fitness=best_fit, best_config=config, best_alpha=alpha,
                            history=history, evaluations=len(memo))

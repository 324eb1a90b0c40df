"""A toy family of small conv-net CGs with a known synthetic "accuracy", for testing predictors.

Pipeline position: (stand-in for model → CG) → features → **predictor**. The networks are built
directly with :class:`cgpredict.CGBuilder`; their label is a smooth, deterministic function of
depth, width, kernel sizes and skip connections plus small noise, so a predictor that reads the
graph structure can learn it while FLOPs alone cannot explain it fully. Not a benchmark: use the
real families of :mod:`cgpredict.datasets` for any reported number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cgpredict.cg import CG, CGBuilder


@dataclass(frozen=True)
class ToySpec:
    """Structure of one toy network: per-block output widths, kernel sizes and skip flags."""

    widths: tuple[int, ...]
    kernels: tuple[int, ...]
    skips: tuple[bool, ...]
    resolution: int = 16


def build_toy(spec: ToySpec, name: str = "") -> CG:
    """Build the CG of a toy network: stem conv, blocks of conv-BN-ReLU (+ residual add where
    ``skips`` is set and widths match, with a stride-2 block every third block), global pool,
    linear classifier."""
    b = CGBuilder(name or "toy")
    res = spec.resolution
    x = b.add("input", out_shape=(1, 3, res, res), name="input")
    ch = spec.widths[0]
    h = b.add("conv", [x], (1, ch, res, res), weight_shape=(ch, 3, 3, 3), kernel=(3, 3), stride=(1, 1),
              padding=(1, 1), dilation=(1, 1), params=ch * 27, name="stem")
    for i, (width, k, skip) in enumerate(zip(spec.widths, spec.kernels, spec.skips)):
        stride = 2 if (i % 3 == 2 and res > 4) else 1
        out_res = res // stride
        c = b.add("conv", [h], (1, width, out_res, out_res), weight_shape=(width, ch, k, k), kernel=(k, k),
                  stride=(stride, stride), padding=(k // 2, k // 2), dilation=(1, 1), params=width * ch * k * k,
                  name=f"block{i}.conv")
        bn = b.add("batch_norm", [c], (1, width, out_res, out_res), weight_shape=(width,), params=2 * width)
        r = b.add("relu", [bn], (1, width, out_res, out_res))
        if skip and width == ch and stride == 1:
            r = b.add("add", [r, h], (1, width, out_res, out_res))
        h, ch, res = r, width, out_res
    p = b.add("global_pool", [h], (1, ch, 1, 1))
    v = b.add("reshape", [p], (1, ch))
    fc = b.add("linear", [v], (1, 10), weight_shape=(10, ch), bias=True, params=10 * ch + 10)
    b.add("output", [fc], (1, 10))
    return b.build()


def toy_accuracy(spec: ToySpec) -> float:
    """The synthetic accuracy (%) of a toy network (noise-free part).

    Rises with depth up to 7 blocks then falls, rises with log width, rewards 3x3 kernels and
    skip connections in deep networks.
    """
    depth = len(spec.widths)
    width = float(np.mean(spec.widths))
    k3 = float(np.mean([k == 3 for k in spec.kernels]))
    skips = float(np.mean(spec.skips))
    acc = 55.0 + 2.5 * depth - 0.35 * (depth - 7) ** 2 + 3.0 * math.log2(width / 8.0)
    acc += 4.0 * k3 + 3.0 * skips * (depth / 8.0)
    return float(acc)


def toy_family(n: int, seed: int = 0, noise: float = 0.5, min_depth: int = 2, max_depth: int = 10,
               widths: tuple[int, ...] = (8, 16, 32, 48)) -> tuple[list[CG], np.ndarray]:
    """``n`` random toy CGs and their synthetic accuracies (deterministic for a given seed).

    ``min_depth``/``max_depth``/``widths`` shape the family, so a second family with other ranges
    serves as an out-of-distribution target.
    """
    rng = np.random.default_rng(seed)
    cgs: list[CG] = []
    labels = np.empty(n)
    for i in range(n):
        depth = int(rng.integers(min_depth, max_depth + 1))
        base = int(rng.choice(widths))
        ws = tuple(int(base * (2 ** (j // 3)) if rng.random() < 0.5 else base) for j in range(depth))
        ks = tuple(int(rng.choice((1, 3, 5))) for _ in range(depth))
        sk = tuple(bool(rng.random() < 0.5) for _ in range(depth))
        spec = ToySpec(ws, ks, sk)
        cgs.append(build_toy(spec, name=f"toy{seed}_{i}"))
        labels[i] = toy_accuracy(spec) + noise * rng.standard_normal()
    return cgs, labels

"""Shared training utilities of the predictors: seeding, MLPs, losses and the mini-batch loop.

Pipeline position: model → CG → features → **predictor (training)** → ranking/search.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


def set_seed(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch ``Generator`` seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


class MLP(nn.Sequential):
    """``layers`` linear layers (``layers - 1`` hidden of width ``hidden``) with ReLU and dropout."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int = 4, dropout: float = 0.0) -> None:
        if layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got {layers}")
        mods: list[nn.Module] = []
        dim = in_dim
        for _ in range(layers - 1):
            mods += [nn.Linear(dim, hidden), nn.ReLU()]
            if dropout > 0:
                mods.append(nn.Dropout(dropout))
            dim = hidden
        mods.append(nn.Linear(dim, out_dim))
        super().__init__(*mods)


def pairwise_hinge_loss(pred: torch.Tensor, target: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Mean over ordered pairs with ``target_i > target_j`` of ``max(0, margin - (pred_i - pred_j))``."""
    diff_t = target[:, None] - target[None, :]
    diff_p = pred[:, None] - pred[None, :]
    mask = diff_t > 0
    if not mask.any():
        return pred.sum() * 0.0
    return torch.relu(margin - diff_p[mask]).mean()


def regression_loss(kind: str, pred: torch.Tensor, target: torch.Tensor, hinge_weight: float = 1.0) -> torch.Tensor:
    """``mse``, ``hinge`` (pairwise ranking) or ``mse+hinge``."""
    if kind == "mse":
        return nn.functional.mse_loss(pred, target)
    if kind == "hinge":
        return pairwise_hinge_loss(pred, target)
    if kind == "mse+hinge":
        return nn.functional.mse_loss(pred, target) + hinge_weight * pairwise_hinge_loss(pred, target)
    raise ValueError(f"unknown loss {kind!r}; use 'mse', 'hinge' or 'mse+hinge'")


def fit_loop(step: Callable[[np.ndarray], torch.Tensor], params: Iterable[nn.Parameter], n: int, epochs: int,
             batch_size: int, lr: float, seed: int, desc: str, weight_decay: float = 0.0,
             progress: bool = True) -> list[float]:
    """Generic Adam loop: each epoch shuffles ``range(n)`` (seeded) into mini-batches and calls
    ``step(indices)`` which returns the loss. Cosine learning-rate decay; returns the epoch losses."""
    params = list(params)
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    rng = np.random.default_rng(seed)
    history: list[float] = []
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        order = rng.permutation(n)
        total, count = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if idx.size < 2 and n >= 2 and batch_size > 1:
                continue  # a trailing single-item batch: ranking losses need pairs (batch_size=1 trains on every item)
            opt.zero_grad()
            loss = step(idx)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.size
            count += idx.size
        sched.step()
        history.append(total / max(count, 1))
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    return history

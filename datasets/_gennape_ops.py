"""Building blocks shared by GENNAPE's HiAML, Inception and Two-Path families.

Pipeline position: **model** builders (this module) → CG → features → predictor → ranking/search.

All primitives are Conv → BatchNorm → ReLU ("CBR") based, CIFAR-10-sized (32×32 input, 10
classes), and take ``(c_in, c_out, stride)`` so that a family builder can chain them freely.
Pools cannot change the channel count; :func:`make_op` appends a 1×1 CBR projection when a pool
has to.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias) → BatchNorm2d → ReLU; ``kernel`` may be an int or an ``(kh, kw)`` pair."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int | tuple[int, int] = 3, stride: int = 1, groups: int = 1, relu: bool = True
    ) -> None:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, (kh, kw), stride=stride, padding=(kh // 2, kw // 2), groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class DepthwiseSeparable(nn.Sequential):
    """Depthwise k×k CBR (stride here) → pointwise 1×1 CBR (MobileNet-style)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(ConvBNReLU(c_in, c_in, kernel, stride, groups=c_in), ConvBNReLU(c_in, c_out, 1))


class SpatiallySeparable(nn.Sequential):
    """Inception-v3 factorised k×k: a 1×k CBR then a k×1 CBR (the stride on the first)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(ConvBNReLU(c_in, c_out, (1, kernel), stride), ConvBNReLU(c_out, c_out, (kernel, 1)))


class ParallelSeparable(nn.Module):
    """Inception-v3 "expanded" k×k: 1×k and k×1 CBRs in parallel on the same input, concatenated."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        half = c_out // 2
        self.row = ConvBNReLU(c_in, half, (1, kernel), stride)
        self.col = ConvBNReLU(c_in, c_out - half, (kernel, 1), stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenation of the two factorised convolutions along channels."""
        return torch.cat([self.row(x), self.col(x)], dim=1)


class Bottleneck(nn.Sequential):
    """1×1 CBR to ``c_hidden`` → k×k CBR (stride here) → 1×1 CBR to ``c_out``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, c_hidden: int, stride: int = 1) -> None:
        c_hidden = max(1, c_hidden)
        super().__init__(
            ConvBNReLU(c_in, c_hidden, 1), ConvBNReLU(c_hidden, c_hidden, kernel, stride), ConvBNReLU(c_hidden, c_out, 1)
        )


class Pool(nn.Sequential):
    """3×3 average or max pooling (stride as given), plus a 1×1 CBR when channels change."""

    def __init__(self, kind: str, c_in: int, c_out: int, stride: int = 1) -> None:
        pool = nn.AvgPool2d(3, stride, 1, count_include_pad=False) if kind == "avg" else nn.MaxPool2d(3, stride, 1)
        layers: list[nn.Module] = [pool]
        if c_in != c_out:
            layers.append(ConvBNReLU(c_in, c_out, 1))
        super().__init__(*layers)


def _bottleneck(kernel: int, ratio: float) -> Callable[[int, int, int], nn.Module]:
    return lambda c_in, c_out, stride: Bottleneck(c_in, c_out, kernel, int(c_in * ratio), stride)


#: Named single operators: ``name → (c_in, c_out, stride) → module``.
OPS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "conv1x1": lambda ci, co, s: ConvBNReLU(ci, co, 1, s),
    "conv3x3": lambda ci, co, s: ConvBNReLU(ci, co, 3, s),
    "conv5x5": lambda ci, co, s: ConvBNReLU(ci, co, 5, s),
    "double1x1": lambda ci, co, s: nn.Sequential(ConvBNReLU(ci, co, 1, s), ConvBNReLU(co, co, 1)),
    "double3x3": lambda ci, co, s: nn.Sequential(ConvBNReLU(ci, co, 3, s), ConvBNReLU(co, co, 3)),
    "depthwise3x3": lambda ci, co, s: DepthwiseSeparable(ci, co, 3, s),
    "depthwise5x5": lambda ci, co, s: DepthwiseSeparable(ci, co, 5, s),
    "inception_s3x3": lambda ci, co, s: SpatiallySeparable(ci, co, 3, s),
    "inception_s5x5": lambda ci, co, s: SpatiallySeparable(ci, co, 5, s),
    "inception_p3x3": lambda ci, co, s: ParallelSeparable(ci, co, 3, s),
    "inception_p5x5": lambda ci, co, s: ParallelSeparable(ci, co, 5, s),
    "bottleneck-r2-k3": _bottleneck(3, 0.5),
    "bottleneck-r4-k3": _bottleneck(3, 0.25),
    "bottleneck-e2-k3": _bottleneck(3, 2.0),
    "bottleneck-r2-k1": _bottleneck(1, 0.5),
    "bottleneck-e2-k1": _bottleneck(1, 2.0),
    "avgpool3x3": lambda ci, co, s: Pool("avg", ci, co, s),
    "maxpool3x3": lambda ci, co, s: Pool("max", ci, co, s),
}


def make_op(name: str, c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    """Instantiate the operator ``name`` from :data:`OPS`."""
    try:
        factory = OPS[name]
    except KeyError:
        raise ValueError(f"unknown operator {name!r}; known: {', '.join(OPS)}") from None
    return factory(c_in, c_out, stride)


class Stem(ConvBNReLU):
    """The 3×3 CBR stem on the RGB input."""

    def __init__(self, c_out: int) -> None:
        super().__init__(3, c_out, 3, 1)


class Classifier(nn.Sequential):
    """Global average pool → flatten → linear classifier."""

    def __init__(self, c_in: int, num_classes: int = 10) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))


def literal(text: str, family: str) -> Any:
    """``ast.literal_eval`` of an arch string, with a ``ValueError`` naming the family on failure."""
    if not isinstance(text, str):
        raise ValueError(f"{family} arch text must be a string, got {type(text).__name__}")
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"{family} arch {text!r} is not a Python literal ({exc})") from None


def as_int(value: Any, low: int, high: int, what: str) -> int:
    """``value`` as an int in ``[low, high]``, else ``ValueError`` describing ``what``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what} = {value} is out of range [{low}, {high}]")
    return int(value)


def as_tuple(value: Any, min_len: int, max_len: int, what: str) -> tuple[Any, ...]:
    """``value`` (tuple or list) as a tuple of length in ``[min_len, max_len]``."""
    if not isinstance(value, (tuple, list)):
        raise ValueError(f"{what} must be a tuple, got {value!r}")
    if not min_len <= len(value) <= max_len:
        raise ValueError(f"{what} has {len(value)} entries, expected {min_len} to {max_len}")
    return tuple(value)


def unique_samples(draw: Callable[[], Any], n: int, limit: int | None = None) -> list[Any]:
    """Call ``draw`` until ``n`` distinct archs are collected (or ``limit``, the space size, is reached)."""
    target = n if limit is None else min(n, limit)
    seen: set[Any] = set()
    out: list[Any] = []
    attempts = 0
    while len(out) < target:
        arch = draw()
        attempts += 1
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
        elif attempts > 100 * max(n, 1):  # pragma: no cover - only for tiny spaces
            break
    return out

"""Shared blocks and arch helpers of the mobile / OFA families (ProxylessNAS, OFA-MobileNetV3, OFA-ResNet50).

Pipeline position: **model** builders (this module) → CG → features → predictor → ranking/search.
The family modules :mod:`cgpredict.datasets.proxylessnas`, :mod:`cgpredict.datasets.ofa_mbv3` and
:mod:`cgpredict.datasets.ofa_resnet50` build their networks from these blocks. Activations are the
standard torch modules (``nn.ReLU6``, ``nn.Hardswish``, ``nn.Hardsigmoid``) so that the converter
maps each onto its own CG op type.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without going below 90 % of it.

    The channel rounding rule of MobileNetV2/V3 and Once-for-All.
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return int(new_value)


def conv_bn_act(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    act: Callable[[], nn.Module] | None = None,
    groups: int = 1,
) -> nn.Sequential:
    """Conv2d (same padding, no bias) → BatchNorm → optional activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation of MobileNetV3 / OFA: global pool → 1×1 conv (bias) → ReLU → 1×1 conv
    (bias) → hard sigmoid, then the input scaled channel-wise. Hidden width
    ``make_divisible(channels / reduction, 8)``."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = make_divisible(channels / reduction, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.relu = nn.ReLU(inplace=False)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` times its channel attention."""
        return x * self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2/V3, ProxylessNAS, OFA).

    1×1 expansion conv → BN → act (omitted when ``expand == 1``), k×k depthwise conv (stride) → BN
    → act, optional squeeze-excite, 1×1 projection conv → BN; identity residual when the stride is
    1 and the channels match.

    Args:
        c_in, c_out: input / output channels.
        kernel: depthwise kernel size.
        stride: depthwise stride.
        mid: expanded (hidden) channels.
        act: activation factory (``nn.ReLU6``, ``nn.ReLU``, ``nn.Hardswish``).
        se: whether to add squeeze-excite after the depthwise conv.
        expand: whether there is a 1×1 expansion conv (False for expansion ratio 1).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        mid: int,
        act: Callable[[], nn.Module],
        se: bool = False,
        expand: bool = True,
    ) -> None:
        super().__init__()
        if expand:
            self.expand_conv: nn.Module = conv_bn_act(c_in, mid, 1, 1, act)
        else:
            if mid != c_in:
                raise ValueError(f"MBConv without expansion needs mid == c_in, got {mid} != {c_in}")
            self.expand_conv = nn.Identity()
        self.depthwise = conv_bn_act(mid, mid, kernel, stride, act, groups=mid)
        self.se: nn.Module = SqueezeExcite(mid) if se else nn.Identity()
        self.project = conv_bn_act(mid, c_out, 1, 1, None)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output (plus ``x`` when the block is residual)."""
        out = self.project(self.se(self.depthwise(self.expand_conv(x))))
        return out + x if self.residual else out


def literal(text: object, family: str) -> object:
    """``ast.literal_eval`` of an arch text (non-strings pass through), with a clear error."""
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"{family}: cannot parse arch text {text!r} ({exc})") from None


def is_int(value: object) -> bool:
    """Whether ``value`` is an int (bools excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_choice(value: object, choices: tuple[int, ...], what: str, family: str) -> int:
    """Return ``value`` if it is one of ``choices``, else raise ValueError naming ``what``."""
    if not is_int(value) or value not in choices:
        raise ValueError(f"{family}: {what} is {value!r}; allowed: {', '.join(map(str, choices))}")
    return int(value)


def check_block_stages(
    arch: object,
    depths: tuple[tuple[int, int], ...],
    kernels: tuple[int, ...],
    expands: tuple[int, ...],
    family: str,
) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Validate a per-stage list of ``(kernel, expand)`` blocks and return it as nested tuples.

    Args:
        arch: a sequence with one entry per stage, each a sequence of ``(kernel, expand)`` pairs.
        depths: per stage the allowed ``(min, max)`` number of blocks.
        kernels, expands: allowed kernel sizes and expansion ratios.

    Raises:
        ValueError: naming the stage/block that is malformed or out of range.
    """
    if not isinstance(arch, (tuple, list)) or len(arch) != len(depths):
        raise ValueError(f"{family}: arch must be a sequence of {len(depths)} stages, got {arch!r}")
    stages = []
    for s, (stage, (lo, hi)) in enumerate(zip(arch, depths)):
        if not isinstance(stage, (tuple, list)):
            raise ValueError(f"{family}: stage {s} must be a sequence of (kernel, expand) blocks, got {stage!r}")
        if not lo <= len(stage) <= hi:
            raise ValueError(f"{family}: stage {s} has {len(stage)} blocks; allowed {lo}..{hi}")
        blocks = []
        for b, block in enumerate(stage):
            if not isinstance(block, (tuple, list)) or len(block) != 2:
                raise ValueError(f"{family}: stage {s} block {b} must be a (kernel, expand) pair, got {block!r}")
            k = check_choice(block[0], kernels, f"kernel of stage {s} block {b}", family)
            e = check_choice(block[1], expands, f"expansion of stage {s} block {b}", family)
            blocks.append((k, e))
        stages.append(tuple(blocks))
    return tuple(stages)


def format_nested(value: object) -> str:
    """Text of nested int tuples in Python tuple syntax (one-element tuples with a trailing comma)."""
    return repr(value)

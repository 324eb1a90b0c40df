"""Synthetic signal bases used as regression targets by GenNAS (and optionally Eproxy).

Pipeline position: model → proxy inputs → **targets** → GenNAS / Eproxy regression → proxy score.

Signal bases (Li et al., NeurIPS'21, "Generic Neural Architecture Search via Regression"), all on a
``size``×``size`` grid with pixel coordinates ``x, y ∈ {0, …, size−1}`` and frequencies in cycles
per target pixel (0.5 is the Nyquist limit):

* ``sin1d``: ``sin(2π f·u + φ)`` along one random axis ``u ∈ {x, y}``.
* ``sin2d``: ``sin(2π (f_x·x + f_y·y) + φ)``.
  The frequency band is ``low`` = f ∈ (0, 0.125), ``medium`` = (0.125, 0.375), ``high`` =
  (0.375, 0.5); f (and f_x, f_y) are uniform in the band, φ uniform in [0, 2π).
* ``dot``: ±1 (random sign) on ``ratio`` of the pixels chosen at random, 0 elsewhere.
* ``gdot``: a ``dot`` map blurred with a Gaussian (σ = 1 pixel), rescaled to peak |value| 1.
* ``resize``: the input image itself, area-resized to the grid (3 channels, always per sample).

``scope="global"`` draws one map per channel and shares it across the batch; ``scope="local"``
draws an independent map per sample. Every channel is multiplied by ``level``. Randomness comes
only from the ``torch.Generator`` passed in, so targets are reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["FREQ_BANDS", "SIGNAL_KINDS", "SignalSpec", "build_target", "make_signal"]

#: Frequency bands in cycles per target pixel.
FREQ_BANDS: dict[str, tuple[float, float]] = {"low": (0.0, 0.125), "medium": (0.125, 0.375), "high": (0.375, 0.5)}
SIGNAL_KINDS: tuple[str, ...] = ("sin1d", "sin2d", "dot", "gdot", "resize")


@dataclass(frozen=True)
class SignalSpec:
    """One group of target channels.

    Attributes:
        kind: one of :data:`SIGNAL_KINDS`.
        channels: number of independently drawn channels (``resize`` always gives 3).
        band: frequency band of the sine kinds (key of :data:`FREQ_BANDS`).
        ratio: fraction of pixels set by ``dot``/``gdot`` (1.0 = every pixel ±1).
        scope: ``"global"`` (same map for the whole batch) or ``"local"`` (one per sample).
        level: multiplier of the signal.
    """

    kind: str
    channels: int = 1
    band: str = "low"
    ratio: float = 1.0
    scope: str = "global"
    level: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in SIGNAL_KINDS:
            raise ValueError(f"unknown signal kind {self.kind!r}; expected one of {SIGNAL_KINDS}")
        if self.band not in FREQ_BANDS:
            raise ValueError(f"unknown frequency band {self.band!r}; expected one of {tuple(FREQ_BANDS)}")
        if self.scope not in ("global", "local"):
            raise ValueError(f"signal scope must be 'global' or 'local', got {self.scope!r}")
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"dot ratio must be in (0, 1], got {self.ratio}")
        if self.channels < 1:
            raise ValueError(f"signal channels must be >= 1, got {self.channels}")

    @property
    def out_channels(self) -> int:
        """Channels this spec contributes to the target."""
        return 3 if self.kind == "resize" else self.channels


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _sines(n: int, size: int, band: str, two_d: bool, gen: torch.Generator) -> torch.Tensor:
    lo, hi = FREQ_BANDS[band]
    coords = torch.arange(size, dtype=torch.float64)
    y = coords.view(1, size, 1)
    x = coords.view(1, 1, size)
    phase = _uniform(n, 0.0, 2 * math.pi, gen).view(n, 1, 1)
    if two_d:
        fx = _uniform(n, lo, hi, gen).view(n, 1, 1)
        fy = _uniform(n, lo, hi, gen).view(n, 1, 1)
        arg = 2 * math.pi * (fx * x + fy * y) + phase
    else:
        f = _uniform(n, lo, hi, gen).view(n, 1, 1)
        along_x = (torch.rand(n, generator=gen) < 0.5).view(n, 1, 1)
        arg = 2 * math.pi * f * torch.where(along_x, x.expand(n, size, size), y.expand(n, size, size)) + phase
    return torch.sin(arg).float()


def _dots(n: int, size: int, ratio: float, gen: torch.Generator) -> torch.Tensor:
    k = max(1, round(ratio * size * size))
    scores = torch.rand(n, size * size, generator=gen)
    idx = scores.argsort(dim=1)[:, :k]
    signs = torch.where(torch.rand(n, k, generator=gen) < 0.5, -1.0, 1.0)
    maps = torch.zeros(n, size * size)
    maps.scatter_(1, idx, signs)
    return maps.view(n, size, size)


def _gaussian_blur(maps: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    radius = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k1 = torch.exp(-(t**2) / (2 * sigma**2))
    k1 = k1 / k1.sum()
    kernel = (k1.view(-1, 1) * k1.view(1, -1)).view(1, 1, 2 * radius + 1, 2 * radius + 1)
    out = F.conv2d(maps.unsqueeze(1), kernel, padding=radius).squeeze(1)
    peak = out.abs().flatten(1).amax(dim=1).clamp_min(1e-8).view(-1, 1, 1)
    return out / peak


def make_signal(spec: SignalSpec, batch_size: int, size: int, gen: torch.Generator, images: torch.Tensor | None = None) -> torch.Tensor:
    """The target channels of one spec, shape ``(batch_size, spec.out_channels, size, size)``.

    Args:
        spec: what to draw.
        batch_size: batch size of the target.
        size: side of the target grid.
        gen: random generator (advanced by the draw).
        images: the input batch, needed by ``resize``.
    """
    if spec.kind == "resize":
        if images is None:
            raise ValueError("the 'resize' signal needs the input images")
        out = F.adaptive_avg_pool2d(images.float().cpu(), size)
        return spec.level * out
    n = spec.channels * (batch_size if spec.scope == "local" else 1)
    if spec.kind in ("sin1d", "sin2d"):
        maps = _sines(n, size, spec.band, spec.kind == "sin2d", gen)
    elif spec.kind == "dot":
        maps = _dots(n, size, spec.ratio, gen)
    else:  # gdot
        maps = _gaussian_blur(_dots(n, size, spec.ratio, gen))
    if spec.scope == "local":
        maps = maps.view(batch_size, spec.channels, size, size)
    else:
        maps = maps.view(1, spec.channels, size, size).expand(batch_size, -1, -1, -1).contiguous()
    return spec.level * maps


def build_target(specs: list[SignalSpec] | tuple[SignalSpec, ...], batch_size: int, size: int, seed: int, images: torch.Tensor | None = None) -> torch.Tensor:
    """Stack the channels of ``specs`` into one target ``(batch_size, ΣC, size, size)`` (CPU, float32)."""
    if not specs:
        raise ValueError("build_target needs at least one SignalSpec")
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([make_signal(s, batch_size, size, gen, images) for s in specs], dim=1)

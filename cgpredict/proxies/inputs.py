"""Input batches for the regression proxies: real photo crops (no download) or synthetic noise.

Pipeline position: model → **proxy inputs** → GenNAS / Eproxy regression → proxy score.

GenNAS and Eproxy train on a single batch. :func:`natural_images` cuts seeded random crops out of
the two sample photographs that ship inside scikit-learn (``china.jpg`` and ``flower.jpg``,
427×640 each, via :func:`sklearn.datasets.load_sample_images`; if scikit-image is installed its
``skimage.data`` photographs are added). Each crop has a random side between 48 and 256 pixels, is
resized to ``size``×``size`` (bilinear, antialiased), randomly flipped, and normalised per channel
with the ImageNet mean and standard deviation, so the batch resembles CIFAR/ImageNet inputs.
:func:`noise_images` is the synthetic alternative (standard normal pixels). Both are deterministic
given ``seed`` and never touch the global random state.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "make_inputs", "natural_images", "noise_images", "sample_photos"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@lru_cache(maxsize=1)
def sample_photos() -> tuple[torch.Tensor, ...]:
    """The bundled sample photographs as float tensors ``(3, H, W)`` in ``[0, 1]``."""
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(img) for img in load_sample_images().images]
    try:  # optional: scikit-image's photographs
        from skimage import data as skdata  # type: ignore[import-not-found]

        for name in ("astronaut", "coffee", "chelsea", "rocket"):
            photos.append(np.asarray(getattr(skdata, name)()))
    except Exception:  # noqa: BLE001 - scikit-image absent or its data missing
        pass
    out = []
    for arr in photos:
        if arr.ndim == 3 and arr.shape[2] == 3:
            out.append(torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous())
    return tuple(out)


def natural_images(batch_size: int = 16, size: int = 32, seed: int = 0) -> torch.Tensor:
    """A normalised batch ``(batch_size, 3, size, size)`` of random crops of real photographs.

    Args:
        batch_size: number of crops.
        size: output side in pixels.
        seed: crops, flips and photo choice are drawn from ``torch.Generator().manual_seed(seed)``.
    """
    if batch_size < 1 or size < 1:
        raise ValueError(f"natural_images: batch_size and size must be positive, got {batch_size}, {size}")
    photos = sample_photos()
    gen = torch.Generator().manual_seed(seed)
    crops = []
    for _ in range(batch_size):
        photo = photos[int(torch.randint(len(photos), (1,), generator=gen))]
        _, h, w = photo.shape
        lo = min(48, h, w)
        hi = min(256, h, w)
        side = int(torch.randint(lo, hi + 1, (1,), generator=gen))
        top = int(torch.randint(h - side + 1, (1,), generator=gen))
        left = int(torch.randint(w - side + 1, (1,), generator=gen))
        crop = photo[:, top : top + side, left : left + side].unsqueeze(0)
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if bool(torch.rand((), generator=gen) < 0.5):
            crop = crop.flip(-1)
        crops.append(crop)
    batch = torch.cat(crops)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (batch - mean) / std


def noise_images(batch_size: int = 16, size: int = 32, seed: int = 0, channels: int = 3) -> torch.Tensor:
    """Standard-normal pixel noise ``(batch_size, channels, size, size)``, seeded."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, channels, size, size, generator=gen)


def make_inputs(kind: str = "natural", batch_size: int = 16, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Dispatch on ``kind``: ``"natural"`` (:func:`natural_images`) or ``"noise"`` (:func:`noise_images`)."""
    if kind == "natural":
        return natural_images(batch_size, size, seed)
    if kind == "noise":
        return noise_images(batch_size, size, seed)
    raise ValueError(f"unknown input kind {kind!r}; expected 'natural' or 'noise'")

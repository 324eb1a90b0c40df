"""Labelled families by name for evaluation: ``"family/task"`` → a labelled Family with its CGs.

Pipeline position: model (labelled family) → CG → features → predictor → **evaluation** →
ranking/search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cgpredict.evaluation.splits import subset_indices

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.datasets import Family

__all__ = ["load_labelled", "parse_spec"]


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"family/task"`` (or ``"family"``) → ``(family, task)``.

    Raises:
        ValueError: an empty spec or an empty family name.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a target must be 'family/task', got {spec!r}")
    family, _, task = spec.strip().partition("/")
    if not family:
        raise ValueError(f"a target must be 'family/task', got {spec!r}")
    return family, (task or None)


def load_labelled(spec: str, data_dir: str | None = None, limit: int | None = None, seed: int = 0,
                  progress: bool = True) -> Family:
    """The labelled ``family/task`` of the registry (table under ``data_dir``, default
    ``$CGPREDICT_DATA``) with its CGs in memory (converted once, disk-cached); ``limit`` keeps a
    seeded random subset (:func:`~cgpredict.evaluation.splits.subset_indices` keyed by ``spec``
    and ``seed``)."""
    from cgpredict.datasets import load_family

    family, task = parse_spec(spec)
    fam = load_family(family, task=task, data_dir=data_dir)
    if fam.labels is None:
        raise ValueError(f"{spec} has no labels")
    if limit is not None and limit < len(fam):
        fam = fam.subset(subset_indices(len(fam), limit, "limit", spec, seed))
    return fam.with_cgs(progress=progress)

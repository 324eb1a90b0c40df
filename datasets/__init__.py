"""Architecture families, their builders and labels (installed as ``cgpredict.datasets``).

Pipeline position: **model** (families of networks, with labels) → CG → features → predictor →
ranking/search.

Public API (names fixed):

* :func:`list_families` — the family names.
* :func:`build` ``(family, arch, task=None)`` → ``torch.nn.Module``; :func:`sample` ``(family, n, seed)``.
* :func:`load_family` ``(family, task=None, data_dir=None)`` → :class:`Family` (labels from
  ``<data_dir>/naslib/<family>__<task>.csv``, ``data_dir`` defaulting to ``$CGPREDICT_DATA``; or
  ``n=..., seed=...`` for sampled, unlabelled architectures; or ``"custom"``).
* :class:`Family` — ``.archs``, ``.labels``, ``.table_flops``, ``.table_params``, ``.extra``,
  ``.cgs()`` (cached on disk, see :mod:`cgpredict.datasets.cache`), ``.to_pyg_dataset()``,
  ``.subset()``, ``.with_cgs()``, ``Family.from_csv(...)``, ``Family.from_onnx_folder(...)``,
  ``Family.from_cgs(...)``.
* :class:`FamilySpec`, :func:`register_family`, :func:`family_spec` — the family registry as data
  (see :mod:`cgpredict.datasets.registry`; a family = one module registering its spec).

Each family's builder module (``cgpredict.datasets.<family>``) is imported only when used.

Example:
    >>> from cgpredict.datasets import list_families, load_family, sample, build
    >>> fam = load_family("hiaml", n=50, seed=0)       # GENNAPE's HiAML family, unlabelled
    >>> cgs = fam.cgs()
"""

from __future__ import annotations

from cgpredict.datasets.cache import CONVERTER_VERSION, CGCache, cache_dir
from cgpredict.datasets.family import Family, load_family
from cgpredict.datasets.registry import (
    FamilySpec,
    FamilyUnavailableError,
    build,
    family_module,
    family_spec,
    input_shape,
    is_available,
    list_families,
    register_family,
    sample,
)

__all__ = [
    "CGCache",
    "CONVERTER_VERSION",
    "Family",
    "FamilySpec",
    "FamilyUnavailableError",
    "build",
    "cache_dir",
    "family_module",
    "family_spec",
    "input_shape",
    "is_available",
    "list_families",
    "load_family",
    "register_family",
    "sample",
]

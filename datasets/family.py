"""A loaded architecture family: architectures, labels, table columns and their CGs.

Why one module over 400 lines: `Family` and `load_family` are one object and its loader (subsets, CG conversion and caching share its fields); large tables live in `tables.py`, worker processes in `_workers.py`.

Pipeline position: **model** (a family of networks with labels) → CG → features → predictor →
ranking/search.

:func:`load_family` reads a registered family's label table (validated row by row, see
:mod:`cgpredict.datasets._table`) or samples an unlabelled family; :class:`Family` turns its
architectures into CGs (cached on disk, see :mod:`cgpredict.datasets.cache`) and into a PyG
dataset. User families come from :meth:`Family.from_csv` and :meth:`Family.from_onnx_folder`.
"""

from __future__ import annotations

import os
import pickle
import time
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cgpredict.datasets import registry
from cgpredict.datasets._table import read_table
from cgpredict.datasets.cache import CGCache
from cgpredict.quiet import progress_bar

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch_geometric.data import InMemoryDataset

    from cgpredict.cg import CG

#: Seconds between partial cache writes while converting (progress survives an interrupt).
FLUSH_INTERVAL_S = 20.0


@dataclass(eq=False)
class Family:
    """Architectures of one family and task, with labels and benchmark-table columns.

    Attributes:
        name: family name (``nasbench201``, ``custom``, …).
        task: the labelled task (``cifar10``, …) or ``None``.
        archs: canonical architectures (hashable), or file names for ONNX-folder families.
        labels: label per architecture (``numpy`` float array) or ``None`` when unlabelled.
        table_flops: the table's ``flops`` column (MMACs) if present, else ``None``.
        table_params: the table's ``params`` column (millions) if present, else ``None``.
        extra: the table's other numeric columns (e.g. zero-cost proxies), NaN where absent.
        input_shape: input shape (batch first) used to convert the networks.
        source: the label table the family was read from, if any.
        lines: line number of each architecture in ``source`` (for error messages).
        graphs: the CGs, when already in memory (:meth:`with_cgs`, :meth:`from_cgs`): :meth:`cgs`
            then returns them instead of reading the disk cache or converting.

    Example:
        >>> from cgpredict.datasets import load_family
        >>> fam = load_family("nasbench201", task="cifar10")    # needs CGPREDICT_DATA
        >>> cgs = fam.cgs()                                      # converted once, then cached
        >>> fam.labels[:3], cgs[0].flops
    """

    name: str
    task: str | None
    archs: list[Any]
    labels: np.ndarray | None = None
    table_flops: np.ndarray | None = None
    table_params: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    input_shape: tuple[int, ...] = (1, 3, 32, 32)
    source: Path | None = None
    lines: list[int] | None = None
    builder: Callable[[Any], torch.nn.Module] | None = field(default=None, repr=False)
    converter: Callable[[Any], CG] | None = field(default=None, repr=False)
    arch_key: Callable[[Any], str] = field(default=str, repr=False)
    cache_name: str | None = field(default=None, repr=False)
    graphs: list[CG] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.archs = list(self.archs)
        self.input_shape = tuple(int(v) for v in self.input_shape)
        n = len(self.archs)
        for attr in ("labels", "table_flops", "table_params"):
            value = getattr(self, attr)
            if value is not None:
                value = np.asarray(value, dtype=np.float64)
                if value.shape != (n,):
                    raise ValueError(f"family {self.name!r}: {attr} has shape {value.shape}, expected ({n},)")
                setattr(self, attr, value)
        for key, value in list(self.extra.items()):
            value = np.asarray(value, dtype=np.float64)
            if value.shape != (n,):
                raise ValueError(f"family {self.name!r}: extra column {key!r} has shape {value.shape}, expected ({n},)")
            self.extra[key] = value
        if self.lines is not None and len(self.lines) != n:
            raise ValueError(f"family {self.name!r}: {len(self.lines)} line numbers for {n} architectures")
        if self.graphs is not None:
            self.graphs = list(self.graphs)
            if len(self.graphs) != n:
                raise ValueError(f"family {self.name!r}: {len(self.graphs)} CGs for {n} architectures")

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.archs)

    def __repr__(self) -> str:
        labelled = "labelled" if self.labels is not None else "unlabelled"
        return f"Family({self.name!r}, task={self.task!r}, {len(self)} archs, {labelled})"

    def subset(self, indices: Iterable[int] | np.ndarray) -> Family:
        """A new family holding the architectures at ``indices`` (in that order)."""
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask has shape {idx.shape}, family has {len(self)} archs")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"subset index out of range for family {self.name!r} of {len(self)} archs")

        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[idx]

        return replace(
            self,
            archs=[self.archs[i] for i in idx],
            labels=pick(self.labels),
            table_flops=pick(self.table_flops),
            table_params=pick(self.table_params),
            extra={k: v[idx] for k, v in self.extra.items()},
            lines=None if self.lines is None else [self.lines[i] for i in idx],
            graphs=None if self.graphs is None else [self.graphs[i] for i in idx],
        )

    @property
    def label(self) -> str:
        """``family/task`` (or the family name alone when it has no task)."""
        return f"{self.name}/{self.task}" if self.task else self.name

    def key(self, index: int) -> str:
        """The canonical text of architecture ``index`` (its cache key)."""
        return self.arch_key(self.archs[index])

    def build(self, index: int) -> torch.nn.Module:
        """The network of architecture ``index``."""
        if self.builder is None:
            raise ValueError(f"family {self.name!r} has no network builder (its CGs come from files)")
        return self.builder(self.archs[index])

    # ------------------------------------------------------------------ CGs
    def convert(self, index: int) -> CG:
        """Convert architecture ``index`` to a CG (no cache)."""
        if self.converter is not None:
            cg = self.converter(self.archs[index])
        else:
            import torch

            from cgpredict.converters import from_torch

            try:  # building on the meta device allocates no weights (much faster for big nets)
                with torch.device("meta"):
                    model = self.build(index)
            except Exception:  # a builder that needs real tensors: build it normally
                model = self.build(index)
            cg = from_torch(model, input_shape=self.input_shape)
        cg.name = f"{self.name}/{self.key(index)}"
        cg.meta.setdefault("family", self.name)
        if self.task is not None:
            cg.meta.setdefault("task", self.task)
        return cg

    def cache(self, root: str | os.PathLike[str] | None = None) -> CGCache | None:
        """The on-disk CG cache bundle of this family/task, or ``None`` if caching is off."""
        if self.cache_name is None:
            return None
        return CGCache(self.cache_name, self.task, self.input_shape, root=root)

    def cgs(self, progress: bool = True, cache: bool = True, cache_root: str | os.PathLike[str] | None = None,
            workers: int = 1, executor: Any = None) -> list[CG]:
        """The CG of every architecture, converted on first use and cached on disk.

        ``workers > 1`` converts in that many worker processes (worth it from a few hundred
        missing CGs: each worker first spends ~2 s importing torch); a family that cannot be sent
        to a worker process (e.g. a lambda builder) is converted here instead, with a warning.
        ``executor`` (an :mod:`cgpredict.executors` executor or a spec such as ``"ray:auto"``)
        converts the missing nets there instead (CGs come back as JSON and are cached here).
        Partial progress is written every :data:`FLUSH_INTERVAL_S` seconds (or ten times the last
        write's duration, for large bundles) and when the loop ends (also on ``KeyboardInterrupt``),
        so an interrupted conversion resumes where it stopped.
        """
        if self.graphs is not None:
            return list(self.graphs)
        store = self.cache(cache_root) if cache else None
        keys = [self.key(i) for i in range(len(self))]
        out: list[CG | None] = store.get_many(keys) if store is not None else [None] * len(self)
        missing = [i for i, cg in enumerate(out) if cg is None]
        if not missing:
            return out  # type: ignore[return-value]
        desc = f"CGs {self.name}" + (f"/{self.task}" if self.task else "")
        bar = progress_bar(total=len(missing), desc=desc, progress=progress, unit="net")
        interval, last_flush = FLUSH_INTERVAL_S, time.monotonic()
        try:
            if executor is None:
                converted = self._converted(missing, workers)
            else:
                from cgpredict.datasets._workers import convert_with_executor

                converted = convert_with_executor(self, missing, executor)
            for i, cg in converted:
                out[i] = cg
                bar.update()
                if store is not None:
                    store.put(keys[i], cg)
                    if time.monotonic() - last_flush > interval:
                        t0 = time.monotonic()
                        store.flush()
                        last_flush = time.monotonic()
                        interval = max(FLUSH_INTERVAL_S, 10 * (last_flush - t0))
        finally:
            bar.close()
            if store is not None:
                store.flush()
        return out  # type: ignore[return-value]

    def with_cgs(self, progress: bool = True, workers: int = 1) -> Family:
        """This family with its CGs held in memory (:attr:`graphs`): later :meth:`cgs` calls and
        subsets return the same CG objects without touching the disk cache."""
        if self.graphs is not None:
            return self
        return replace(self, graphs=self.cgs(progress=progress, workers=workers))

    def _converted(self, indices: list[int], workers: int) -> Iterator[tuple[int, CG]]:
        """``(index, CG)`` for every index, converted here or by ``workers`` processes."""
        if workers > 1 and len(indices) > 1:
            try:
                pickle.dumps(self)
            except Exception as exc:  # noqa: BLE001 - anything unpicklable: convert serially
                warnings.warn(f"family {self.name!r} cannot be sent to worker processes ({exc}); "
                              "converting in this process", RuntimeWarning, stacklevel=3)
            else:
                from cgpredict.datasets._workers import convert_with_executor
                from cgpredict.executors import LocalExecutor

                with LocalExecutor(workers=workers) as pool:
                    yield from convert_with_executor(self, indices, pool)
                return
        for i in indices:
            yield i, self.convert(i)

    def to_pyg_dataset(self, root: str | os.PathLike[str] | None = None, progress: bool = True) -> InMemoryDataset:
        """A ``torch_geometric`` ``InMemoryDataset`` of the CGs with ``y`` = labels (NaN if unlabelled)."""
        from cgpredict.datasets._pyg import FamilyGraphDataset

        return FamilyGraphDataset(self, root=root, progress=progress)

    # ------------------------------------------------------------------ user families
    @classmethod
    def from_cgs(
        cls,
        cgs: Sequence[CG],
        labels: Sequence[float] | np.ndarray | None = None,
        name: str = "custom",
        task: str | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> Family:
        """A family of CGs already in memory (e.g. converted by you), optionally labelled; the
        architectures are the CGs' names (their index where a CG has none). ``extra``: numeric
        columns per CG (e.g. zero-cost proxies), scored as baselines by
        :func:`cgpredict.evaluation.evaluate_transfer`."""
        cgs = list(cgs)
        return cls(name=name, task=task, archs=[cg.name or str(i) for i, cg in enumerate(cgs)], labels=labels,
                   extra=dict(extra or {}), graphs=cgs)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        builder: Callable[[Any], torch.nn.Module],
        parse: Callable[[str], Hashable] | None = None,
        input_shape: Sequence[int] = (1, 3, 224, 224),
        name: str = "custom",
        cache: bool = False,
    ) -> Family:
        """A user family from ``arch,label`` rows; see :func:`cgpredict.datasets.custom.family_from_csv`."""
        from cgpredict.datasets.custom import family_from_csv

        return family_from_csv(path, builder=builder, parse=parse, input_shape=input_shape, name=name, cache=cache)

    @classmethod
    def from_onnx_folder(
        cls,
        folder: str | os.PathLike[str],
        labels_csv: str | os.PathLike[str],
        name: str = "custom",
    ) -> Family:
        """A user family of ONNX files with ``file,label`` rows; see :mod:`cgpredict.datasets.custom`."""
        from cgpredict.datasets.custom import family_from_onnx_folder

        return family_from_onnx_folder(folder, labels_csv, name=name)


@dataclass(frozen=True)
class _RegisteredBuilder:
    """``build(arch)`` of a registered family and task (picklable, for worker processes)."""

    family: str
    task: str | None

    def __call__(self, arch: Any) -> torch.nn.Module:
        return registry.family_spec(self.family).build(arch, self.task)


def _registered_family(family: str, task: str | None, archs: list[Any], **fields: Any) -> Family:
    spec = registry.family_spec(family)
    return Family(
        name=family,
        task=task,
        archs=archs,
        input_shape=spec.shape(task),
        builder=_RegisteredBuilder(family, task),
        arch_key=spec.format,
        cache_name=family,
        **fields,
    )


def load_family(
    family: str,
    task: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    n: int | None = None,
    seed: int = 0,
    table: str | None = None,
    **custom: Any,
) -> Family:
    """Load a family: a labelled table, or ``n`` sampled architectures without labels.

    Args:
        family: a name from :func:`cgpredict.datasets.list_families`, or ``"custom"``.
        task: the labelled task; defaults to the family's first task.
        data_dir: the labelled-data folder; defaults to ``$CGPREDICT_DATA``. Tables are read from
            ``<data_dir>/naslib/<family>__<task>.csv`` (header ``arch,val_accuracy[,flops,params,...]``).
        n, seed: sample ``n`` architectures with ``seed`` instead of reading labels (required for
            families without labels here, e.g. ``hiaml``).
        custom: for ``family="custom"``: either ``builder=`` (and optionally ``parse=``,
            ``input_shape=``, ``name=``, ``csv=`` a file name inside ``data_dir``, default
            ``labels.csv``) for an ``arch,label`` table, or ``labels_csv=`` (default
            ``labels.csv``) for a folder of ONNX files with ``file,label`` rows.
        table: read this registered table instead of the NASLib one (``nb101_30k``,
            ``nb201_200ep``, ``nb201_12epoch``; see :mod:`cgpredict.datasets.tables`); ``None``
            (default) keeps the NASLib table.

    Raises:
        ValueError: unknown family or task, no data folder, or a malformed table row (file+line).
        FileNotFoundError: the label table is missing.
        FamilyUnavailableError: the family's builder module cannot be imported.
    """
    if table is not None:  # a large table with its own column roles (cgpredict.datasets.tables)
        if n is not None or custom:
            raise ValueError(f"load_family({family!r}, table={table!r}) takes no n=... or custom arguments")
        from cgpredict.datasets.tables import load_table

        return load_table(family, table, task=task, data_dir=data_dir)
    if family == "custom":
        return _load_custom(data_dir, **custom)
    if custom:
        raise TypeError(f"load_family({family!r}) got unexpected arguments {sorted(custom)}")
    spec = registry.family_spec(family)
    task = spec.check_task(task)
    if n is not None:
        archs = registry.sample(family, n, seed)
        return _registered_family(family, task, archs)
    if task is None:
        raise ValueError(
            f"family {family!r} has no labels here; sample it instead with load_family({family!r}, n=..., seed=...)"
        )
    path = registry.label_path(family, task, data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"label table for family {family!r} task {task!r} not found at {path}; {registry.LABEL_FORMAT_HELP}")
    if spec.read_labels is not None:  # a family whose table has its own layout
        table = spec.read_labels(path, task)
    else:
        table = read_table(path, spec.parse, key_column="arch")
    columns = dict(table.columns)
    flops = columns.pop("flops", None)
    params = columns.pop("params", None)
    return _registered_family(
        family,
        task,
        table.keys,
        labels=table.labels,
        table_flops=flops,
        table_params=params,
        extra=columns,
        source=path,
        lines=table.lines,
    )


def _load_custom(data_dir: str | os.PathLike[str] | None, **kwargs: Any) -> Family:
    root = registry.resolve_data_dir(data_dir)
    if root is None:
        raise ValueError(
            "load_family('custom') needs data_dir=...: a CSV file (or a folder holding labels.csv) of "
            "`arch,label` rows with builder=..., or a folder of ONNX files with a `file,label` labels.csv"
        )
    if "builder" in kwargs:
        csv_name = kwargs.pop("csv", "labels.csv")
        path = root if root.is_file() else root / csv_name
        return Family.from_csv(path, **kwargs)
    labels_csv = Path(kwargs.pop("labels_csv", "labels.csv"))
    if kwargs:
        raise TypeError(f"load_family('custom') got unexpected arguments {sorted(kwargs)} (pass builder=... for an arch table)")
    if not labels_csv.is_absolute():
        labels_csv = root / labels_csv
    return Family.from_onnx_folder(root, labels_csv)

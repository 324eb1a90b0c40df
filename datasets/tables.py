"""The large labelled tables beside the NASLib ones: which column is a label, a fidelity or neither.

Pipeline position: **model** (labelled families of networks) → CG → features → predictor →
ranking/search.

``load_family(name, task=..., table=...)`` (:func:`cgpredict.datasets.load_family`) reads one of
the tables registered here instead of the family's default NASLib table:

======================  ===============  ===========================================================
table                   family           content
======================  ===============  ===========================================================
``nb101_30k``           nasbench101      30,001 NB-101 cells (pruned), CIFAR-10 validation accuracy
                                         after 108 epochs of **one** training run; the same run at
                                         4/12/36 epochs as fidelities
``nb201_200ep``         nasbench201      all 15,625 NB-201 cells, test accuracy after 200 epochs
                                         (mean over seeds) on cifar10 / cifar100 / ImageNet16-120
``nb201_12epoch``       nasbench201      all 15,625 NB-201 cells after **12** epochs: low fidelity
                                         only, never the truth (the family has no ``labels``)
======================  ===============  ===========================================================

Every column of a table has one declared role (:class:`TableSpec`): the task's label, a
low-fidelity label (:attr:`TableFamily.fidelities`), ``params``, a per-network fact that is not a
score (:attr:`TableFamily.info`, e.g. ``train_seconds``), a text column (:attr:`TableFamily.text`,
e.g. ``nb101_hash``), or another task's column (dropped). A column without a role is an error, so
nothing new in a file silently becomes a zero-cost "proxy": :attr:`Family.extra` stays empty for
these tables, which keeps fidelities and training times out of
:func:`cgpredict.evaluation.baseline_scores` (it ranks every ``extra`` column as a baseline).

The tables' CGs are cached in their own bundles (``nasbench101_30k``, ``nasbench201_all`` shared by
both NB-201 tables), so loading the 500/725-net NASLib families does not read the large bundles.

Example:
    >>> from cgpredict.datasets import load_family
    >>> fam = load_family("nasbench101", table="nb101_30k")     # needs CGPREDICT_DATA
    >>> len(fam), fam.labels[:2], sorted(fam.fidelities)
    >>> low = load_family("nasbench201", task="cifar100", table="nb201_12epoch")
    >>> low.labels is None, low.low_fidelity_label                 # (True, 'cifar100-test@12ep')
"""

from __future__ import annotations

import csv
import functools
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cgpredict.datasets import registry
from cgpredict.datasets.family import Family


@dataclass(frozen=True)
class TableSpec:
    """The layout of one labelled table and the role of each of its columns.

    Attributes:
        name: the table's name (``table=`` of :func:`load_family`).
        family: the family whose architectures it holds.
        file: path relative to the data folder.
        labels: task → label column; for a low-fidelity table (``truth=False``) the column that
            :attr:`TableFamily.low_fidelity_label` points at instead.
        fidelities: task → {fidelity name: column} of lower-budget labels of the same networks.
        params_tasks: tasks whose network the ``params`` column (millions) counts.
        info: numeric per-network columns that are neither labels nor scores (kept in ``info``).
        text: text columns kept as strings (``text``).
        derived: text column → function of the arch that must reproduce it on every row.
        truth: ``False`` for a table that must never be used as the truth (labels are ``None``).
        cache_name: the CG cache bundle of the table's networks.
        description: one line for listings and error messages.
    """

    name: str
    family: str
    file: str
    labels: Mapping[str, str]
    fidelities: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    params_tasks: tuple[str, ...] = ()
    info: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    derived: Mapping[str, Callable[[Any], str]] = field(default_factory=dict, repr=False)
    truth: bool = True
    cache_name: str = ""
    description: str = ""

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks the table labels."""
        return tuple(self.labels)

    def known_columns(self) -> set[str]:
        """Every column name the table may have (``arch`` included)."""
        cols = {"arch", *self.labels.values(), *self.info, *self.text}
        for per_task in self.fidelities.values():
            cols.update(per_task.values())
        if self.params_tasks:
            cols.add("params")
        return cols


def _nb201_string(arch: Any) -> str:
    from cgpredict.datasets.nasbench201 import to_official_string

    return to_official_string(arch)


_NB201_TASKS = ("cifar10", "cifar100", "ImageNet16-120")

#: The registered tables, by name.
TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            name="nb101_30k",
            family="nasbench101",
            file="nb101_30k/nasbench101_30k.csv",
            labels={"cifar10": "val_accuracy"},
            fidelities={"cifar10": {c: c for c in ("val_accuracy_4ep", "val_accuracy_12ep", "val_accuracy_36ep")}},
            params_tasks=("cifar10",),
            info=("train_seconds",),
            text=("nb101_hash",),
            cache_name="nasbench101_30k",
            description="30,001 NB-101 cells (pruned), one training run each, validation accuracy after 108 epochs",
        ),
        TableSpec(
            name="nb201_200ep",
            family="nasbench201",
            file="nb201_200ep/nasbench201_200ep.csv",
            labels={t: f"{t}-test" for t in _NB201_TASKS},
            info=("index",),
            text=("arch_str",),
            derived={"arch_str": _nb201_string},
            cache_name="nasbench201_all",
            description="all 15,625 NB-201 cells, test accuracy after 200 epochs (mean over seeds)",
        ),
        TableSpec(
            name="nb201_12epoch",
            family="nasbench201",
            file="nb201_12epoch/nasbench201_12epoch.csv",
            labels={t: f"{t}-test" for t in _NB201_TASKS},
            fidelities={t: {f"{t}-test@12ep": f"{t}-test", f"{t}-val@12ep": f"{t}-val"} for t in _NB201_TASKS},
            info=("index",),
            text=("arch_str",),
            derived={"arch_str": _nb201_string},
            truth=False,
            cache_name="nasbench201_all",
            description="all 15,625 NB-201 cells after 12 epochs: low-fidelity signal only, never the truth",
        ),
    )
}


def list_tables(family: str | None = None) -> list[str]:
    """Names of the registered tables (of ``family`` only, when given)."""
    return [name for name, spec in TABLES.items() if family is None or spec.family == family]


def table_spec(name: str, family: str | None = None) -> TableSpec:
    """The :class:`TableSpec` called ``name``, checked to belong to ``family`` when given.

    Raises:
        ValueError: unknown table, or a table of another family (both listing the known tables).
    """
    spec = TABLES.get(name)
    if spec is None:
        raise ValueError(f"unknown table {name!r}; known tables: "
                         + ", ".join(f"{n} ({s.family})" for n, s in TABLES.items()))
    if family is not None and spec.family != family:
        raise ValueError(f"table {name!r} holds family {spec.family!r}, not {family!r}; tables of {family!r}: "
                         f"{', '.join(list_tables(family)) or 'none'}")
    return spec


@dataclass(eq=False)
class TableFamily(Family):
    """A :class:`Family` read from a registered table, with the columns that are neither labels nor scores.

    Attributes (beyond :class:`Family`'s; ``extra`` is always empty):
        table: the table's name.
        fidelities: lower-budget labels of the same networks (e.g. ``val_accuracy_12ep``); never
            zero-cost baselines.
        info: numeric per-network facts (``train_seconds``, ``index``).
        text: text columns (``nb101_hash``, ``arch_str``).
        truth: ``False`` for a low-fidelity table (then ``labels`` is ``None``).
        low_fidelity_label: for a low-fidelity table, the fidelity to train on when it is used as
            extra signal (:mod:`cgpredict.datasets.groups`); ``None`` otherwise.
    """

    table: str = ""
    fidelities: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, np.ndarray] = field(default_factory=dict)
    text: dict[str, list[str]] = field(default_factory=dict)
    truth: bool = True
    low_fidelity_label: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        n = len(self.archs)
        for attr in ("fidelities", "info"):
            columns = getattr(self, attr)
            for key, value in list(columns.items()):
                value = np.asarray(value, dtype=np.float64)
                if value.shape != (n,):
                    raise ValueError(f"table {self.table!r}: {attr} column {key!r} has shape {value.shape}, expected ({n},)")
                columns[key] = value
        for key, value in self.text.items():
            if len(value) != n:
                raise ValueError(f"table {self.table!r}: text column {key!r} has {len(value)} values for {n} archs")
        if self.low_fidelity_label is not None and self.low_fidelity_label not in self.fidelities:
            raise ValueError(f"table {self.table!r}: low_fidelity_label {self.low_fidelity_label!r} is not a fidelity")

    def __repr__(self) -> str:
        kind = "labelled" if self.labels is not None else "low fidelity only"
        return f"TableFamily({self.name!r}, task={self.task!r}, table={self.table!r}, {len(self)} archs, {kind})"

    def subset(self, indices: Iterable[int] | np.ndarray) -> TableFamily:
        """A new table family holding the architectures at ``indices`` (in that order), all columns sliced."""
        raw = indices if isinstance(indices, np.ndarray) else np.asarray(list(indices))
        if raw.dtype == bool and raw.shape != (len(self),):
            raise ValueError(f"boolean mask has shape {raw.shape}, family has {len(self)} archs")
        idx = np.arange(len(self))[raw.astype(bool) if raw.dtype == bool else raw.astype(np.int64).reshape(-1)]
        bare = replace(self, fidelities={}, info={}, text={}, low_fidelity_label=None)
        sub = Family.subset(bare, idx)
        assert isinstance(sub, TableFamily)
        sub.fidelities = {k: v[idx] for k, v in self.fidelities.items()}
        sub.info = {k: v[idx] for k, v in self.info.items()}
        sub.text = {k: [v[i] for i in idx] for k, v in self.text.items()}
        sub.low_fidelity_label = self.low_fidelity_label
        return sub

    def low_fidelity_labels(self) -> np.ndarray:
        """The values to train on when this low-fidelity table is used as extra signal.

        Raises:
            ValueError: the table is the truth (use ``labels``).
        """
        if self.low_fidelity_label is None:
            raise ValueError(f"table {self.table!r} is not a low-fidelity table; use .labels")
        return self.fidelities[self.low_fidelity_label]


@dataclass
class TableColumns:
    """The validated columns of a table that one task uses (see :func:`read_spec_table`)."""

    archs: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    numeric: dict[str, list[float]] = field(default_factory=dict)
    text: dict[str, list[str]] = field(default_factory=dict)


_INT_TUPLE = re.compile(r"\(\s*-?\d+(?:\s*,\s*-?\d+)*\s*,?\s*\)")


def _int_tuple(text: str) -> tuple[int, ...] | str:
    """``"(0, 1, 4)"`` as a tuple of ints without ``ast`` (3× faster on 30k rows); other text unchanged
    (the family's ``parse_arch`` then parses and reports it)."""
    if _INT_TUPLE.fullmatch(text):
        return tuple(int(v) for v in text[1:-1].split(",") if v.strip())
    return text


def read_spec_table(path: str | os.PathLike[str], spec: TableSpec, task: str) -> TableColumns:
    """Read and validate ``path`` laid out as ``spec``, keeping the columns ``task`` uses.

    Checked on every row (errors name the file and the line): the field count, the arch (the
    family's ``parse_arch``), a finite label, numeric fidelity/params/info cells (empty = NaN for
    those), every ``derived`` text column reproduced from the arch, and no arch twice.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a column without a role in ``spec``, a missing column, or a malformed row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table {spec.name!r} ({spec.description}) not found at {path}")
    module = registry.family_module(spec.family)
    label_col = spec.labels[task]
    numeric = [label_col, *spec.fidelities.get(task, {}).values(), *spec.info]
    if task in spec.params_tasks:
        numeric.append("params")
    numeric = list(dict.fromkeys(numeric))  # a low-fidelity table's label column is also a fidelity
    out = TableColumns(numeric={c: [] for c in numeric}, text={c: [] for c in spec.text})
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise ValueError(f"{path}, line 1: empty file (table {spec.name!r})")
        unknown = [c for c in header if c not in spec.known_columns()]
        if unknown:
            raise ValueError(f"{path}, line 1: column(s) {unknown} have no role in table {spec.name!r} "
                             f"(known: {sorted(spec.known_columns())}); declare them in its TableSpec")
        missing = [c for c in ("arch", *numeric, *spec.text) if c not in header]
        if missing or len(set(header)) != len(header):
            raise ValueError(f"{path}, line 1: header {header} lacks {missing} or repeats a column (table {spec.name!r})")
        pos = {c: header.index(c) for c in header}
        seen: dict[Any, int] = {}
        previous = 1
        for row in reader:
            line, previous = previous + 1, reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            where = f"{path}, line {line}"
            if len(row) != len(header):
                raise ValueError(f"{where}: {len(row)} fields but the header has {len(header)}")
            text = row[pos["arch"]].strip()
            try:
                arch = module.parse_arch(_int_tuple(text))
            except (ValueError, TypeError, SyntaxError) as exc:
                raise ValueError(f"{where}: cannot parse arch {text!r}: {exc}") from None
            if arch in seen:
                raise ValueError(f"{where}: arch {text!r} repeats line {seen[arch]}")
            seen[arch] = line
            for col in numeric:
                cell = row[pos[col]].strip()
                try:
                    value = float(cell) if cell else math.nan
                except ValueError:
                    raise ValueError(f"{where}: column {col!r} value {cell!r} is not a number") from None
                if col == label_col and not math.isfinite(value):
                    raise ValueError(f"{where}: label {col!r} is {cell!r}, not a finite number")
                out.numeric[col].append(value)
            for col in spec.text:
                cell = row[pos[col]].strip()
                check = spec.derived.get(col)
                if check is not None and check(arch) != cell:
                    raise ValueError(f"{where}: {col} {cell!r} does not match arch {text!r} (expected {check(arch)!r})")
                out.text[col].append(cell)
            out.archs.append(arch)
            out.lines.append(line)
    return out


def load_table(
    family: str,
    table: str,
    task: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> TableFamily:
    """The :class:`TableFamily` of ``table`` for ``task`` (what ``load_family(..., table=...)`` returns).

    Raises:
        ValueError: unknown table, a table of another family, a task the table does not label, no
            data folder, or a malformed row (file and line).
        FileNotFoundError: the table is missing under the data folder.
    """
    spec = table_spec(table, family)
    task = registry.check_task(family, task)
    if task not in spec.labels:
        raise ValueError(f"table {table!r} has no task {task!r}; its tasks: {', '.join(spec.tasks)}")
    root = registry.resolve_data_dir(data_dir)
    if root is None:
        raise ValueError(f"no data folder for table {table!r}: pass data_dir=... or set {registry.DATA_ENV}")
    path = root / spec.file
    cols = read_spec_table(path, spec, task)
    fidelity_cols = spec.fidelities.get(task, {})
    fidelities = {name: cols.numeric[col] for name, col in fidelity_cols.items()}
    label = cols.numeric[spec.labels[task]]
    low = None
    if not spec.truth:  # the label column is only a fidelity here
        low = next(name for name, col in fidelity_cols.items() if col == spec.labels[task])
    module = registry.family_module(family)
    return TableFamily(
        name=family,
        task=task,
        archs=cols.archs,
        labels=label if spec.truth else None,
        table_params=cols.numeric.get("params"),
        input_shape=registry.input_shape(family, task),
        source=path,
        lines=cols.lines,
        builder=functools.partial(registry.build, family, task=task),
        arch_key=module.format_arch,
        cache_name=spec.cache_name,
        table=table,
        fidelities=fidelities,
        info={c: cols.numeric[c] for c in spec.info},
        text=cols.text,
        truth=spec.truth,
        low_fidelity_label=low,
    )

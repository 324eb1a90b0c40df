"""The family registry: each family's specification as data, its module imported only when used.

Pipeline position: **model** (families of networks) → CG → features → predictor → ranking/search.

Every family lives in its own module ``cgpredict.datasets.<name>``, which registers a
:class:`FamilySpec` (tasks, input shape per task, FLOPs counting mode and rule, arch
parse/format, build, sample, label-table naming) with the :func:`register_family` decorator::

    @register_family
    def nasbench201() -> FamilySpec:  # the function is named after the family, as timm's entry points
        return FamilySpec(name=NAME, tasks=TASKS, input_shape=INPUT_SHAPE, flops_mode=FLOPS_MODE, ...)

:data:`FAMILIES` lists the names whose modules are imported on first use (``cgpredict families``
stays fast, and a missing or broken module only affects its own family, reported with a
:class:`FamilyUnavailableError` naming it). Adding a family = one module with such a function +
its name in :data:`FAMILIES`. A family registered from elsewhere (a plug-in module the user
imports) is listed after them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any

from cgpredict.errors import CGError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from cgpredict.cg import CG

#: The families shipped here, in listing order: each is the module ``cgpredict.datasets.<name>``.
FAMILIES: tuple[str, ...] = (
    "nasbench101",
    "nasbench201",
    "nasbench301",
    "transbench101_micro",
    "nats_sss",
    "proxylessnas",
    "ofa_mbv3",
    "ofa_resnet50",
    "hiaml",
    "inception",
    "two_path",
)

#: Environment variable naming the labelled-data folder.
DATA_ENV = "CGPREDICT_DATA"

LABEL_FORMAT_HELP = (
    "label files go to <data_dir>/naslib/<family>__<task>.csv, one row per network with the "
    "header `arch,val_accuracy[,flops,params,...]` (arch in the family's encoding, val_accuracy "
    "the label, optional flops in MMACs, params in millions and further numeric columns)"
)


class FamilyUnavailableError(ImportError, CGError):
    """A family's module is missing, fails to import or registers no :class:`FamilySpec`.

    An ``ImportError`` (it is one) and a :class:`cgpredict.errors.CGError` (so the CLI reports it
    as a one-line error).
    """


@dataclass(frozen=True)
class FamilySpec:
    """What the library needs to know about an architecture family (registered by :func:`register_family`).

    Attributes:
        name: the family name (``nasbench201``); also the CG cache's bundle name.
        tasks: its labelled tasks (``()`` for families without labels here).
        input_shape: the input shape (batch first) its networks are converted with.
        flops_mode: the :mod:`~cgpredict.counting` mode that reproduces its tables' ``flops``
            column (``torchvision`` unless the benchmark counts its own way).
        parse: table text of an architecture → canonical (hashable) architecture.
        format: architecture → canonical text (``parse(format(a)) == a``; the CG cache key).
        build: ``(arch, task)`` → ``torch.nn.Module``.
        sample: ``(n, seed)`` → ``n`` distinct valid architectures, deterministic for ``seed``.
        task_input_shapes: input shapes of the tasks whose shape differs from ``input_shape``.
        label_table: path of a task's label table under the data folder, with ``{family}`` and
            ``{task}`` placeholders; ``None`` when no labels can be given for the family.
        read_labels: ``(path, task)`` → :class:`~cgpredict.datasets._table.Table`, for a label
            table that is not ``arch,val_accuracy,...`` (e.g. one file with a column per task).
        counting: the whole-graph MAC rule registered as ``flops_mode`` (for a family-specific
            mode; ``None`` when ``flops_mode`` is a built-in one).
    """

    name: str
    tasks: tuple[str, ...]
    input_shape: tuple[int, ...]
    flops_mode: str
    parse: Callable[[str], Any]
    format: Callable[[Any], str]
    build: Callable[[Any, str | None], torch.nn.Module]
    sample: Callable[[int, int], list[Any]]
    task_input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    label_table: str | None = "naslib/{family}__{task}.csv"
    counting: Callable[[CG], int] | None = None
    read_labels: Callable[[Path, str], Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        shapes = {task: tuple(int(v) for v in shape) for task, shape in dict(self.task_input_shapes).items()}
        unknown = sorted(set(shapes) - set(self.tasks))
        if unknown:
            raise ValueError(f"family {self.name!r}: input shapes for unknown task(s) {unknown}")
        object.__setattr__(self, "task_input_shapes", MappingProxyType(shapes))

    def check_task(self, task: str | None) -> str | None:
        """Resolve ``task`` (``None`` → the first task) and check it belongs to the family (any
        task name passes for a family without tasks here: user labels may name their own)."""
        if task is None:
            return self.tasks[0] if self.tasks else None
        if self.tasks and task not in self.tasks:
            raise ValueError(f"family {self.name!r} has no task {task!r}; its tasks: {', '.join(self.tasks)}")
        return task

    def shape(self, task: str | None = None) -> tuple[int, ...]:
        """The input shape (batch first) of ``task``'s networks."""
        task = self.check_task(task)
        return self.task_input_shapes.get(task, self.input_shape) if task is not None else self.input_shape

    def label_file(self, task: str | None = None) -> str:
        """Path of ``task``'s label table relative to the data folder.

        Raises:
            ValueError: the family takes no labels, or has no tasks and none is named.
        """
        task = self.check_task(task)
        if self.label_table is None or task is None:
            raise ValueError(f"family {self.name!r} has no labelled tasks here"
                             + ("" if task is None else f" (asked for {task!r})"))
        return self.label_table.format(family=self.name, task=task)


#: Registered specs, by name (filled by :func:`register_family` as family modules are imported).
_SPECS: dict[str, FamilySpec] = {}


def register_family(factory: Callable[[], FamilySpec]) -> Callable[[], FamilySpec]:
    """Decorator: register the :class:`FamilySpec` that ``factory`` returns (called once, now).

    Its ``counting`` rule, if any, becomes the counting mode ``flops_mode``
    (:func:`cgpredict.counting.register_counting_mode`). Returns ``factory`` unchanged.
    """
    from cgpredict.counting import register_counting_mode

    spec = factory()
    if not isinstance(spec, FamilySpec):
        raise TypeError(f"{getattr(factory, '__qualname__', factory)} must return a FamilySpec, got {type(spec).__name__}")
    _SPECS[spec.name] = spec
    if spec.counting is not None:
        register_counting_mode(spec.flops_mode, spec.counting)
    return factory


def list_families() -> list[str]:
    """The names of all known architecture families (whether or not their module imports): the
    shipped ones (:data:`FAMILIES`), then any registered from elsewhere."""
    return [*FAMILIES, *(name for name in _SPECS if name not in FAMILIES)]


def check_family_name(family: str) -> str:
    """Return ``family`` if it is a known family name, else raise ``ValueError`` listing them."""
    if family not in FAMILIES and family not in _SPECS:
        raise ValueError(f"unknown family {family!r}; known families: {', '.join(list_families())}")
    return family


def family_module(family: str) -> ModuleType:
    """Import and return the module of a shipped family (it registers the family's spec).

    Raises:
        ValueError: ``family`` is not a known family name.
        FamilyUnavailableError: the module is missing, fails to import or registers no spec of that name.
    """
    check_family_name(family)
    module_name = f"cgpredict.datasets.{family}"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any failure only disables this family
        raise FamilyUnavailableError(
            f"family {family!r} is unavailable: its builder module {module_name} could not be "
            f"imported ({type(exc).__name__}: {exc})"
        ) from exc
    if family not in _SPECS:
        raise FamilyUnavailableError(
            f"family {family!r} is unavailable: module {module_name} registers no FamilySpec named {family!r} "
            "(decorate a function returning one with @register_family)"
        )
    return module


def family_spec(family: str) -> FamilySpec:
    """The registered :class:`FamilySpec` of ``family``, importing its module on first use.

    Raises:
        ValueError: ``family`` is not a known family name.
        FamilyUnavailableError: its module cannot be imported or registers no spec.
    """
    if family not in _SPECS:
        family_module(family)
    return _SPECS[family]


def load_counting_modes() -> None:
    """Import every shipped family module, so that each registers its own counting mode; a
    module that fails to import is skipped (it only affects its family)."""
    for family in FAMILIES:
        if family not in _SPECS:
            try:
                family_module(family)
            except FamilyUnavailableError:
                continue


def is_available(family: str) -> bool:
    """Whether the family's builder module imports and registers its :class:`FamilySpec`."""
    try:
        family_spec(family)
    except (FamilyUnavailableError, ValueError):
        return False
    return True


def tasks(family: str) -> tuple[str, ...]:
    """The labelled tasks of a family (``()`` for families without labels here)."""
    return family_spec(family).tasks


def default_task(family: str) -> str | None:
    """The family's first task, or ``None`` for unlabelled families."""
    family_tasks = tasks(family)
    return family_tasks[0] if family_tasks else None


def check_task(family: str, task: str | None) -> str | None:
    """Resolve ``task`` (``None`` → the first task) and check it belongs to the family."""
    return family_spec(family).check_task(task)


def input_shape(family: str, task: str | None = None) -> tuple[int, ...]:
    """The input shape (batch first) a family's networks are converted with for ``task``."""
    return family_spec(family).shape(task)


def build(family: str, arch: Any, task: str | None = None) -> torch.nn.Module:
    """Build the network of ``arch`` in ``family`` (for ``task``: classes/decoder differ per task).

    Example:
        >>> from cgpredict.datasets import build, sample
        >>> net = build("hiaml", sample("hiaml", 1, seed=0)[0])
    """
    spec = family_spec(family)
    return spec.build(arch, spec.check_task(task))


def sample(family: str, n: int, seed: int) -> list[Any]:
    """``n`` random valid architectures of ``family``, deterministic for ``seed``."""
    if int(n) < 0:
        raise ValueError(f"sample size n must be >= 0, got {n}")
    return list(family_spec(family).sample(int(n), int(seed)))


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """``data_dir`` if given, else ``$CGPREDICT_DATA``, else ``None``."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else None


def label_path(family: str, task: str | None = None, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the label table of ``family``/``task`` under the data folder.

    Raises:
        ValueError: no data folder given and ``$CGPREDICT_DATA`` unset, or the family has no tasks.
    """
    spec = family_spec(family)
    task = spec.check_task(task)
    if task is None:
        raise ValueError(f"family {family!r} has no labelled tasks here; sample it with n=... instead")
    root = resolve_data_dir(data_dir)
    if root is None:
        raise ValueError(
            f"no data folder for the labels of family {family!r} (task {task!r}): pass data_dir=... "
            f"or set the environment variable {DATA_ENV}; {LABEL_FORMAT_HELP}"
        )
    return root / spec.label_file(task)

"""The family registry: names of the architecture families and lazy access to their modules.

Pipeline position: **model** (families of networks) → CG → features → predictor → ranking/search.

Every family lives in its own module ``cgpredict.datasets.<name>`` exposing the family module
interface (``NAME``, ``TASKS``, ``INPUT_SHAPE``, ``FLOPS_MODE``, ``input_shape``, ``data_file``,
``parse_arch``, ``format_arch``, ``build``, ``sample``; optionally ``read_labels(path, task)`` for a
table that is not ``arch,val_accuracy,...``). Modules are imported by name only when a
family is used, so a missing or broken module only affects its own family and is reported with a
:class:`FamilyUnavailableError` naming it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from cgpredict.errors import CGError

#: The fixed family names, in listing order.
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

#: Names every family module must define.
INTERFACE: tuple[str, ...] = (
    "NAME",
    "TASKS",
    "INPUT_SHAPE",
    "FLOPS_MODE",
    "input_shape",
    "data_file",
    "parse_arch",
    "format_arch",
    "build",
    "sample",
)

#: Environment variable naming the labelled-data folder.
DATA_ENV = "CGPREDICT_DATA"

LABEL_FORMAT_HELP = (
    "label files go to <data_dir>/naslib/<family>__<task>.csv, one row per network with the "
    "header `arch,val_accuracy[,flops,params,...]` (arch in the family's encoding, val_accuracy "
    "the label, optional flops in MMACs, params in millions and further numeric columns)"
)


class FamilyUnavailableError(ImportError, CGError):
    """A family's module is missing, fails to import or lacks part of the module interface.

    An ``ImportError`` (it is one) and a :class:`cgpredict.errors.CGError` (so the CLI reports it
    as a one-line error).
    """


def list_families() -> list[str]:
    """The names of all known architecture families (whether or not their module imports)."""
    return list(FAMILIES)


def check_family_name(family: str) -> str:
    """Return ``family`` if it is a known family name, else raise ``ValueError`` listing them."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known families: {', '.join(FAMILIES)}")
    return family


def family_module(family: str) -> ModuleType:
    """Import and return the module of a family, checking that it implements the interface.

    Raises:
        ValueError: ``family`` is not a known family name.
        FamilyUnavailableError: the module is missing, fails to import or lacks interface names.
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
    missing = [name for name in INTERFACE if not hasattr(module, name)]
    if missing:
        raise FamilyUnavailableError(
            f"family {family!r} is unavailable: module {module_name} lacks {', '.join(missing)} "
            "of the family module interface"
        )
    return module


def is_available(family: str) -> bool:
    """Whether the family's builder module imports and implements the interface."""
    try:
        family_module(family)
    except (FamilyUnavailableError, ValueError):
        return False
    return True


def tasks(family: str) -> tuple[str, ...]:
    """The labelled tasks of a family (``()`` for families without labels here)."""
    return tuple(family_module(family).TASKS)


def default_task(family: str) -> str | None:
    """The family's first task, or ``None`` for unlabelled families."""
    family_tasks = tasks(family)
    return family_tasks[0] if family_tasks else None


def check_task(family: str, task: str | None) -> str | None:
    """Resolve ``task`` (``None`` → the first task) and check it belongs to the family."""
    module = family_module(family)
    family_tasks = tuple(module.TASKS)
    if task is None:
        return family_tasks[0] if family_tasks else None
    if family_tasks and task not in family_tasks:
        raise ValueError(f"family {family!r} has no task {task!r}; its tasks: {', '.join(family_tasks)}")
    return task


def input_shape(family: str, task: str | None = None) -> tuple[int, ...]:
    """The input shape (batch first) a family's networks are converted with for ``task``."""
    module = family_module(family)
    return tuple(int(v) for v in module.input_shape(check_task(family, task)))


def build(family: str, arch: Any, task: str | None = None) -> torch.nn.Module:
    """Build the network of ``arch`` in ``family`` (for ``task``: classes/decoder differ per task).

    Example:
        >>> from cgpredict.datasets import build, sample
        >>> net = build("hiaml", sample("hiaml", 1, seed=0)[0])
    """
    module = family_module(family)
    return module.build(arch, check_task(family, task))


def sample(family: str, n: int, seed: int) -> list[Any]:
    """``n`` random valid architectures of ``family``, deterministic for ``seed``."""
    if int(n) < 0:
        raise ValueError(f"sample size n must be >= 0, got {n}")
    return list(family_module(family).sample(int(n), int(seed)))


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
    module = family_module(family)
    task = check_task(family, task)
    if task is None:
        raise ValueError(f"family {family!r} has no labelled tasks here; sample it with n=... instead")
    root = resolve_data_dir(data_dir)
    if root is None:
        raise ValueError(
            f"no data folder for the labels of family {family!r} (task {task!r}): pass data_dir=... "
            f"or set the environment variable {DATA_ENV}; {LABEL_FORMAT_HELP}"
        )
    return root / module.data_file(task)

"""Which predictor a command uses, and the options only one predictor kind has.

Pipeline position: CLI → **predictor choice** → predictor → ranking/search.

``cgpredict predict``, ``rank``, ``search`` and ``finetune`` use the shipped generalist
(:class:`~cgpredict.generalist.GeneralistPredictor`, ``--pretrained generalist``) unless
``--checkpoint DIR`` (``--predictor DIR`` for ``search``) names a saved folder or ``--pretrained
NAME`` another shipped one (``nb101``: the GENNAPE predictor). The kind is read from the folder's
``config.json`` ``format`` before anything is loaded, so an option the chosen kind does not have
(``--adapt``, ``--proxy`` … with a generalist; ``--no-proxies`` … with GENNAPE) fails at once with
a :class:`~cgpredict.errors.UsageError` naming the option.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PRETRAINED", "add_arguments", "check_kind_options", "is_generalist", "predictor_folder"]

#: The shipped checkpoint used when neither a folder nor a name is given.
DEFAULT_PRETRAINED = "generalist"


def add_arguments(parser: argparse.ArgumentParser, folder_flag: str = "--checkpoint", no_proxies: bool = True) -> None:
    """Add ``folder_flag DIR`` (a saved predictor), ``--pretrained NAME`` and, if ``no_proxies``,
    ``--no-proxies``."""
    parser.add_argument(folder_flag, default=None, metavar="DIR", dest=folder_flag.lstrip("-").replace("-", "_"),
                        help="saved predictor folder: a generalist, a GENNAPE Predictor or a PredictorBag "
                             f"(default: the shipped {DEFAULT_PRETRAINED!r})")
    parser.add_argument("--pretrained", default=None, metavar="NAME",
                        help=f"shipped checkpoint by name: {DEFAULT_PRETRAINED} (default; ranks sets of nets), "
                             "generalist_demo, or nb101 (the GENNAPE predictor, accuracies on NB-101's scale)")
    if no_proxies:
        parser.add_argument("--no-proxies", action="store_true",
                            help="generalist only: rank from the graph alone (FLOPs, params, CG descriptors); "
                                 "no network is run, so it is fast")


def predictor_folder(folder: str | Path | None, pretrained: str | None, flag: str = "--checkpoint") -> Path:
    """The checkpoint folder the options name (checked: it exists and is a folder).

    Raises:
        UsageError: both ``flag`` and ``--pretrained`` were given.
        FileNotFoundError: no such folder / no shipped checkpoint of that name.
        CheckpointError: ``folder`` is a file.
    """
    from cgpredict.commands.predict import check_checkpoint_arg
    from cgpredict.errors import UsageError
    from cgpredict.predictor.checkpoint import pretrained_path

    if folder is not None and pretrained is not None:
        raise UsageError(f"give {flag} DIR or --pretrained NAME, not both")
    if folder is not None:
        return check_checkpoint_arg(str(folder))  # type: ignore[return-value]
    return pretrained_path(pretrained or DEFAULT_PRETRAINED)


def is_generalist(folder: Path) -> bool:
    """Whether the checkpoint in ``folder`` is a generalist (its ``config.json`` ``format``); a folder
    that is no readable checkpoint counts as GENNAPE (whose loader then reports what is wrong)."""
    from cgpredict.generalist.model import GENERALIST_FORMAT
    from cgpredict.predictor import CheckpointError, read_checkpoint_config

    try:
        return read_checkpoint_config(folder).get("format") == GENERALIST_FORMAT
    except CheckpointError:
        return False


def _given(value: Any) -> bool:
    return value is not None and value is not False


def check_kind_options(args: argparse.Namespace, generalist: bool, gennape_only: Mapping[str, str] | None = None,
                       generalist_only: Mapping[str, str] | None = None) -> None:
    """Refuse an option the chosen predictor kind does not have.

    Args:
        args: parsed options.
        generalist: the chosen predictor is a generalist.
        gennape_only / generalist_only: ``{dest: "--flag"}`` of the options only that kind reads
            (an option counts as given when its value is neither ``None`` nor ``False``).

    Raises:
        UsageError: naming the first such option given.
    """
    from cgpredict.errors import UsageError

    if generalist:
        for dest, flag in (gennape_only or {}).items():
            if _given(getattr(args, dest, None)):
                raise UsageError(f"{flag} applies to the GENNAPE Predictor only; the default predictor is the "
                                 "generalist: add --pretrained nb101 or --checkpoint DIR of a GENNAPE checkpoint")
    else:
        for dest, flag in (generalist_only or {}).items():
            if _given(getattr(args, dest, None)):
                raise UsageError(f"{flag} applies to the generalist only, not to this GENNAPE checkpoint "
                                 "(leave out --pretrained nb101 / --checkpoint to use the generalist)")

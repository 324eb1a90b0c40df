"""The ``cgpredict`` command line: one sub-command per pipeline stage.

Each sub-command lives in :mod:`cgpredict.commands` as a module with ``register(subparsers)``
that adds its parser and sets ``func`` (a callable taking the parsed args, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cgpredict.errors import CGError
from cgpredict.quiet import hide_known_warnings

#: Modules under cgpredict.commands, in the order their sub-commands are listed in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "convert", "show", "families", "predict", "rank", "finetune", "eval", "proxy", "search",
)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every available sub-command registered."""
    from cgpredict import __version__

    parser = argparse.ArgumentParser(prog="cgpredict", description="Predict network accuracy from computation graphs.")
    parser.add_argument("--version", action="version", version=f"cgpredict {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"cgpredict.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cgpredict`` console script."""
    hide_known_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CGError, FileNotFoundError, ValueError) as exc:
        print(f"cgpredict {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

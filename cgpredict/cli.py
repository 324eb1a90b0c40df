"""The ``cgpredict`` command line: one sub-command per pipeline stage.

Each sub-command lives in :mod:`cgpredict.commands` as a module with ``register(subparsers)``
that adds its parser and sets ``func`` (a callable taking the parsed args, returning an exit code).

Errors: every expected failure (a :class:`cgpredict.errors.CGError`, a missing or misplaced file,
a malformed value) ends in one line ``cgpredict COMMAND: error: ...`` naming the culprit and exit
status 2 (as argparse's own usage errors); anything unexpected prints one line too, with exit
status 1. ``--debug`` (anywhere on the command line, or ``CGPREDICT_DEBUG=1``) lets the traceback
through instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from cgpredict.errors import CGError
from cgpredict.quiet import hide_known_warnings

#: Modules under cgpredict.commands, in the order their sub-commands are listed in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "convert", "show", "families", "predict", "rank", "finetune", "eval", "proxy", "search",
)

#: Exit status of an input / usage error (argparse uses the same) and of an unexpected failure.
EXIT_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130

#: Expected failures: reported in one line, exit status :data:`EXIT_INPUT`.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    CGError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError, ValueError,
)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every available sub-command registered."""
    from cgpredict import __version__

    parser = argparse.ArgumentParser(prog="cgpredict", description="Predict network accuracy from computation graphs.")
    parser.add_argument("--version", action="version", version=f"cgpredict {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also accepted after the sub-command)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"cgpredict.commands.{name}")
        module.register(subparsers)
    return parser


def one_line(exc: BaseException) -> str:
    """The error message of ``exc`` as one line (its lines joined with ``; ``; its type only when
    the message is empty)."""
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cgpredict`` console script; returns the exit status."""
    hide_known_warnings()
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list or os.environ.get("CGPREDICT_DEBUG") == "1"
    args_list = [a for a in args_list if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INPUT
    prefix = f"cgpredict {args.command}: error:"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"cgpredict {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EXPECTED_ERRORS as exc:
        if debug:
            raise
        print(f"{prefix} {one_line(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:  # e.g. a full disk while writing: the previous file is intact (atomic writes)
        if debug:
            raise
        print(f"{prefix} {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback; --debug shows it
        if debug:
            raise
        print(f"{prefix} unexpected {type(exc).__name__}: {one_line(exc)} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

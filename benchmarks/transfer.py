"""Benchmark: the GENNAPE transfer protocol (NB-101 → other families), written as markdown.

Pipeline position: model → CG → features → predictor → **evaluation across families**.

The same options as ``cgpredict eval`` (:mod:`cgpredict.commands.eval`); runs
:func:`cgpredict.transfer.run_transfer` one seed at a time and rewrites the report after each
seed, so an interrupted run still leaves every finished seed on disk. The reproducing command is
written into the report. Needs the labelled data (``$CGPREDICT_DATA`` or ``--data-dir``).

Examples::

    CGPREDICT_DATA=/work/shared/data python benchmarks/transfer.py --quick
    CGPREDICT_DATA=/work/shared/data python benchmarks/transfer.py --seeds 2 --preset reduced \\
        --targets nasbench201/cifar10 nasbench301/cifar10 --out benchmarks/results/transfer_reduced.md

Seeds are independent, so a long protocol can run as one process per seed (``--first-seed S
--seeds 1 --json sS.json``, same other options) and be merged into one report afterwards: the same
options with ``--seeds N`` plus ``--merge s0.json s1.json ...`` (and ``--note TEXT`` per note line)
write the report from the saved rows without running anything.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from cgpredict.commands.eval import add_arguments, config_from_args, run_protocol, write_outputs


COMMAND = "CGPREDICT_DATA=/work/shared/data python benchmarks/transfer.py "


def merged_rows(paths: list[str], seeds: range) -> list[dict[str, Any]]:
    """The per-seed rows of earlier ``--json`` files, checked to cover exactly ``seeds`` once each.

    Raises ``ValueError`` naming the file when one is not a list of protocol rows, when two files
    hold the same seed, or when the seeds found differ from the ones the options describe.
    """
    rows: list[dict[str, Any]] = []
    owner: dict[int, str] = {}
    for path in paths:
        try:
            part = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"--merge: cannot read rows from {path}: {exc}") from exc
        if not isinstance(part, list) or not all(isinstance(r, dict) and {"setting", "target", "seed", "method"} <= r.keys()
                                                 for r in part):
            raise ValueError(f"--merge: {path} is not a list of protocol rows (write it with --json)")
        for seed in sorted({int(r["seed"]) for r in part}):
            if seed in owner:
                raise ValueError(f"--merge: seed {seed} is in both {owner[seed]} and {path}")
            owner[seed] = path
        rows += part
    if sorted(owner) != list(seeds):
        raise ValueError(f"--merge: the files hold seeds {sorted(owner)}, the options describe seeds {list(seeds)} "
                         "(set --first-seed/--seeds to match)")
    return rows


def write_merged(args: argparse.Namespace, argv: list[str]) -> str:
    """The report of the ``--merge`` files' rows, written to ``--out`` (rows to ``--json``) if given.

    ``argv`` is the command line without the merge options: the one-process command for the same seeds.
    """
    from cgpredict.transfer import to_markdown

    config = config_from_args(args)
    rows = merged_rows(args.merge, range(config.first_seed, config.first_seed + config.seeds))
    text = to_markdown(rows, config, COMMAND + " ".join(map(shlex.quote, argv)), args.note)
    write_outputs(args, text, rows)
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--merge", nargs="+", default=None, metavar="ROWS.json",
                        help="write the report from the --json rows of earlier runs (one per seed, say) instead of "
                             "running; the other options must describe the merged run")
    parser.add_argument("--note", action="append", default=[], metavar="TEXT", help="a note line for a --merge report")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if args.merge:
        text = write_merged(args, _without_merge_options(argv))
    else:
        text = run_protocol(args, COMMAND + " ".join(map(shlex.quote, argv)))
    if not args.out:
        print(text)
    return 0


def _without_merge_options(argv: list[str]) -> list[str]:
    """``argv`` minus ``--merge FILES...`` and ``--note TEXT``: the command that runs the merged seeds at once."""
    kept: list[str] = []
    skip = 0  # 1: inside --merge's file list; 2: the next argument is --note's text
    for arg in argv:
        if skip == 2:
            skip = 0
            continue
        if arg in ("--merge", "--note") or arg.startswith(("--merge=", "--note=")):
            skip = 2 if arg == "--note" else (1 if arg == "--merge" else 0)
            continue
        if skip == 1 and not arg.startswith("-"):
            continue
        skip = 0
        kept.append(arg)
    return kept


if __name__ == "__main__":
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    sys.exit(main())

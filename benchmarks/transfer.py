"""Benchmark: the GENNAPE transfer protocol (NB-101 → other families), written as markdown.

Pipeline position: model → CG → features → predictor → **evaluation across families**.

The protocol itself is the ``protocol`` package beside this script (``benchmarks/protocol/``,
built on :mod:`cgpredict.evaluation`); this script runs it one seed at a time and rewrites the
report after each seed, so an interrupted run still leaves every finished seed on disk. The
reproducing command is written into the report. Needs the labelled data (``$CGPREDICT_DATA`` or
``--data-dir``).

Examples::

    CGPREDICT_DATA=/work/shared/data python benchmarks/transfer.py --quick
    CGPREDICT_DATA=/work/shared/data python benchmarks/transfer.py --seeds 2 --preset reduced \\
        --targets nasbench201/cifar10 nasbench301/cifar10 --out benchmarks/results/transfer_reduced.md
    # every labelled family/task of the registry; fits cached, per-net scores kept
    python benchmarks/transfer.py --targets all --settings zero-shot --cache-dir ~/.cache/cgpredict/fits \\
        --scores-dir scores/ --out zs.md
    # leave-one-family-out on one task per family, 300 nets each
    python benchmarks/transfer.py --settings lofo --lofo-sources nasbench101/cifar10 nasbench201/cifar10 \\
        nasbench301/cifar10 transbench101_micro/class_scene --lofo-max 300 --out lofo.md

Seeds are independent, so a long protocol can run as one process per seed (``--first-seed S
--seeds 1 --json sS.json``, same other options) and be merged into one report afterwards: the same
options with ``--seeds N`` plus ``--merge s0.json s1.json ...`` (and ``--note TEXT`` per note line)
write the report from the saved rows without running anything.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:  # the protocol package beside this script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from protocol import add_arguments, config_from_args, merged_rows, run_protocol, to_markdown, write_outputs

COMMAND = "CGPREDICT_DATA=/work/shared/data python benchmarks/transfer.py "


def write_merged(args: argparse.Namespace, argv: list[str]) -> str:
    """The report of the ``--merge`` files' rows, written to ``--out`` (rows to ``--json``) if given.

    ``argv`` is the command line without the merge options: the one-process command for the same seeds.
    """
    config = config_from_args(args)
    rows = merged_rows(args.merge, range(config.first_seed, config.first_seed + config.seeds))
    text = to_markdown(rows, config, COMMAND + " ".join(map(shlex.quote, argv)), args.note)
    write_outputs(args.out, args.json, text, rows)
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

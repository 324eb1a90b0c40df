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
"""

from __future__ import annotations

import argparse
import shlex
import sys

from cgpredict.commands.eval import add_arguments, run_protocol


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = "CGPREDICT_DATA=/work/shared/data python benchmarks/transfer.py " + " ".join(map(shlex.quote, argv))
    text = run_protocol(args, command)
    if not args.out:
        print(text)
    return 0


if __name__ == "__main__":
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    sys.exit(main())

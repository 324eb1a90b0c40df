"""``cgpredict rank``: rank a family's networks with a trained predictor (zero-shot or fine-tuned).

Pipeline position: model → CG → features → predictor → **ranking**.

Example::

    cgpredict rank --family nasbench201 --n 50                # the shipped generalist (proxy bank, cached)
    cgpredict rank --family ofa_mbv3 --n 100 --no-proxies     # graph-only ranker: no network is run
    CGPREDICT_DATA=data cgpredict rank --family nasbench201 --task cifar10 --n 200
    cgpredict rank --family hiaml --n 50 --checkpoint my.ckpt -o ranking.csv
    # the GENNAPE predictor, with the training-free Proxy member (GenNAS loss + SynFlow)
    CGPREDICT_DATA=data cgpredict rank --family nasbench201 --n 100 --pretrained nb101 --proxy cpu --zero-cost synflow

The predictor is the shipped generalist unless ``--checkpoint`` / ``--pretrained`` say otherwise
(``--adapt``, ``--proxy``, ``--zero-cost`` and ``--proxy-weights`` need a GENNAPE one, e.g.
``--pretrained nb101``). With labels (a family table under ``$CGPREDICT_DATA`` or ``--data``) the
family's labelled nets are ranked (a seeded subset of ``--n`` of them if given) and SRCC, Kendall τ
and NDCG@10 of the ranking against the true labels are printed; without labels ``--n`` nets
(default 100) are sampled with ``--seed``. The top ``--top`` rows are printed: rank, architecture,
score, MMACs (with GENNAPE also the predicted accuracy and the OOD flag) and the true label when
known. A generalist's scores rank the nets of this set; they are not accuracies.
"""

from __future__ import annotations

import argparse
from typing import Any

from cgpredict.commands import predictor_args, proxy_member_args
from cgpredict.ranking import DEFAULT_N, load_ranked_family, rank_family

__all__ = ["register", "load_ranked_family", "rank_family"]


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


#: Options that only the GENNAPE predictor reads (dest → flag).
GENNAPE_ONLY = {"adapt": "--adapt", "proxy": "--proxy", "zero_cost": "--zero-cost", "proxy_weights": "--proxy-weights"}


def _check_args(args: argparse.Namespace) -> bool:
    """Validate the options before any work (:class:`~cgpredict.errors.UsageError` naming the option);
    returns whether the predictor is a generalist."""
    from pathlib import Path

    from cgpredict.commands.checks import check_executor_spec, check_file_output
    from cgpredict.commands.predictor_args import check_kind_options, is_generalist, predictor_folder
    from cgpredict.datasets.registry import resolve_data_dir
    from cgpredict.errors import UsageError

    if args.n is not None and args.n < 2:
        raise UsageError(f"--n must be at least 2 to rank, got {args.n}")
    if args.top < 0 or args.arch_width < 2:
        raise UsageError("--top must be >= 0 and --arch-width >= 2")
    if args.data is not None:
        if not Path(args.data).exists():
            raise FileNotFoundError(f"--data folder {args.data} does not exist")
        if not Path(args.data).is_dir():
            raise UsageError(f"--data {args.data} is a file; give the labelled-data folder")
    generalist = is_generalist(predictor_folder(args.checkpoint, args.pretrained))
    check_kind_options(args, generalist, gennape_only=GENNAPE_ONLY, generalist_only={"no_proxies": "--no-proxies"})
    proxy_member_args.proxy_option(args.proxy)
    check_executor_spec(args.executor)
    if args.output:
        check_file_output(args.output, inputs=[args.checkpoint], force=args.force,
                          folders=[args.checkpoint, args.data, resolve_data_dir(None)])
    return generalist


def _run(args: argparse.Namespace) -> int:
    from cgpredict.commands.predict import format_table, load_predictor, write_rows
    from cgpredict.errors import InputError
    from cgpredict.quiet import progress_wanted
    from cgpredict.ranking import SCORE_NOTE, coverage_line, generalist_columns, ood_text

    generalist = _check_args(args)
    progress = progress_wanted(not args.quiet)
    predictor = load_predictor(args.checkpoint, progress=progress, pretrained=args.pretrained)
    proxy_member_args.apply(predictor, args)
    if args.proxy_weights and "Proxy" not in predictor.members:
        raise ValueError("--proxy-weights needs the Proxy member: add --proxy and/or --zero-cost")
    fam = load_ranked_family(args.family, args.task, args.n, args.seed, args.data)
    labelled = fam.labels is not None
    if args.data is not None and not labelled:
        raise InputError(f"--data {args.data} holds no label table for {args.family}"
                         f"{'/' + fam.task if fam.task else ''}; leave --data out to rank sampled, unlabelled nets")
    print(f"ranking {len(fam)} {'labelled' if labelled else 'sampled, unlabelled'} nets of "
          f"{fam.name}{'/' + fam.task if fam.task else ''}")
    if generalist and not args.no_proxies:
        print("the generalist runs the training-free proxy bank on each net (cached on disk by CG hash; "
              "--no-proxies ranks from the graph alone)")
    executor = None
    if args.executor is not None:
        from cgpredict.executors import get_executor

        executor = get_executor(args.executor)
    try:
        cgs = fam.cgs(progress=progress, executor=executor)
        use_proxies = False if args.no_proxies else None
        # a generalist's columns once: the ranking and the coverage line below both read them
        raw = generalist_columns(predictor, cgs, use_proxies, executor) if generalist else None
        rows, metrics = rank_family(predictor, fam, progress=progress, adapt=args.adapt, cgs=cgs, raw=raw,
                                    proxy_weights=args.proxy_weights, executor=executor, use_proxies=use_proxies)
    finally:
        if executor is not None:
            executor.close()
    if args.proxy_weights:
        print("member weights (agreement with the Proxy member): "
              + ", ".join(f"{k} {v:.2f}" for k, v in predictor.weights.items()))
    shown = [{**r, "arch": _short(r["arch"], args.arch_width)} for r in rows[: args.top]]
    columns = [("rank", "#", "d"), ("arch", "architecture", ""), ("score", "score", ".3f")]
    if not generalist:
        shown = [{**r, "ood_text": ood_text(r)} for r in shown]
        columns += [("predicted_acc", "pred acc %", ".2f")]
    columns.append(("mmacs", "MMACs", ".1f"))
    if not generalist:
        columns.append(("ood_text", "OOD", ""))
    if labelled:
        columns.append(("label", "true", ".2f"))
    print(format_table(shown, columns))
    if generalist:
        how = "graph-only ranker, no network run" if args.no_proxies else "proxy bank + graph"
        print(f"\n{SCORE_NOTE} ({how})")
        print(coverage_line(predictor, cgs, raw=raw))
    else:
        n_ood = sum(r["ood"] for r in rows)
        print(f"\n{n_ood}/{len(rows)} nets flagged out-of-distribution for this checkpoint")
    if metrics:
        what = "generalist score" if generalist else "ensemble score"
        print(f"SRCC {metrics['srcc']:.3f}   Kendall tau {metrics['kendall_tau']:.3f}   "
              f"NDCG@10 {metrics['ndcg@10']:.3f}   ({what} vs true labels, {len(rows)} nets)")
    if args.output:
        write_rows(rows, args.output)
        print(f"wrote {args.output}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``rank`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "rank",
        help="rank a family's networks with the generalist or a saved predictor (metrics when labels exist)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--family", required=True, help="family name (see `cgpredict families`)")
    parser.add_argument("--task", default=None, help="labelled task (default: the family's first)")
    parser.add_argument("--n", type=int, default=None,
                        help=f"number of nets: a seeded subset of the labelled ones, or sampled (default {DEFAULT_N})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset / sample")
    predictor_args.add_arguments(parser)
    parser.add_argument("--data", default=None, metavar="DIR", help="labelled-data folder (default $CGPREDICT_DATA)")
    parser.add_argument("--adapt", action="store_true",
                        help="GENNAPE only: re-centre the predictor's head inputs on these nets first "
                             "(label-free; Predictor.adapt)")
    parser.add_argument("--top", type=int, default=10, help="rows to print")
    parser.add_argument("--arch-width", type=int, default=60, help="truncate architecture text to this width")
    parser.add_argument("-o", "--output", default=None, metavar="CSV", help="write the full ranking as CSV")
    parser.add_argument("-f", "--force", action="store_true", help="replace an existing -o file")
    proxy_member_args.add_arguments(parser)
    parser.add_argument("--proxy-weights", action="store_true",
                        help="GENNAPE only: weight the members by their agreement with the Proxy member on these nets "
                             "(label-free zero-shot weights; Predictor.reweight_by_proxy)")
    parser.add_argument("--executor", default=None, metavar="SPEC",
                        help="convert the nets (and run the generalist's proxy bank) on this executor: 'local:N' (N processes), 'ray' (a local Ray "
                             "session), 'ray:auto' (the cluster of `ray start --head`) or 'ray:HOST:PORT'")
    parser.add_argument("--ray", dest="executor", metavar="ADDRESS", type=lambda a: f"ray:{a}",
                        help="shorthand for --executor ray:ADDRESS (e.g. --ray auto)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)
    return parser

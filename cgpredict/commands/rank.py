"""``cgpredict rank``: rank a family's networks with a trained predictor (zero-shot or fine-tuned).

Pipeline position: model → CG → features → predictor → **ranking**.

Example::

    cgpredict rank --family ofa_mbv3 --n 100                  # sampled nets, no labels needed
    CGPREDICT_DATA=data cgpredict rank --family nasbench201 --task cifar10 --n 200
    cgpredict rank --family hiaml --n 50 --checkpoint my.ckpt -o ranking.csv
    # add the training-free Proxy member (GenNAS loss + SynFlow) to the zero-shot ensemble
    CGPREDICT_DATA=data cgpredict rank --family nasbench201 --n 100 --proxy cpu --zero-cost synflow

With labels (a family table under ``$CGPREDICT_DATA`` or ``--data``) the family's labelled nets
are ranked (a seeded subset of ``--n`` of them if given) and SRCC, Kendall τ and NDCG@10 of the
ranking against the true labels are printed; without labels ``--n`` nets (default 100) are
sampled with ``--seed``. The top ``--top`` rows are printed: rank, architecture, predicted
accuracy, MMACs, OOD flag (and the true label when known).
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import numpy as np

from cgpredict.commands import proxy_member_args

__all__ = ["register", "load_ranked_family", "rank_family"]

DEFAULT_N = 100


def load_ranked_family(family: str, task: str | None = None, n: int | None = None, seed: int = 0,
                       data_dir: str | None = None) -> Any:
    """The labelled family if its table is available (seeded subset of ``n``), else ``n``
    (default :data:`DEFAULT_N`) sampled unlabelled nets. Returns a :class:`cgpredict.datasets.Family`."""
    from cgpredict.datasets import load_family
    from cgpredict.datasets.registry import check_task, resolve_data_dir

    task = check_task(family, task)
    if task is not None and resolve_data_dir(data_dir) is not None:
        try:
            fam = load_family(family, task=task, data_dir=data_dir)
        except FileNotFoundError:
            fam = None
        if fam is not None:
            if n is not None and n < len(fam):
                pick = np.sort(np.random.default_rng(seed).choice(len(fam), n, replace=False))
                fam = fam.subset(pick)
            return fam
    return load_family(family, task=task, n=DEFAULT_N if n is None else n, seed=seed)


def rank_family(predictor: Any, fam: Any, progress: bool = True, adapt: bool = False,
                proxy_weights: bool = False) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Rank ``fam`` with ``predictor``: rows best first (``rank``, ``arch``, ``predicted_acc``,
    ``score``, ``mmacs``, ``ood``, ``max_membership``, ``label``) and, if labelled, metrics
    ``srcc``, ``kendall_tau``, ``ndcg@10`` of the ensemble score. ``adapt`` first calls
    ``predictor.adapt`` on the family's CGs (label-free, transductive zero-shot); ``proxy_weights``
    weights the members by agreement with the ``Proxy`` member on them
    (``predictor.reweight_by_proxy``, also label-free)."""
    from cgpredict.metrics import kendall_tau, ndcg_at_k, spearman
    from cgpredict.models.fcm import OutOfDistributionWarning

    cgs = fam.cgs(progress=progress)
    if adapt:
        predictor.adapt(cgs)
    if proxy_weights:
        predictor.reweight_by_proxy(cgs)
    score = predictor.score(cgs)
    pred = predictor.predict(cgs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        try:
            ood = predictor.ood(cgs, name=fam.name)
        except RuntimeError:
            ood = {"flag": np.zeros(len(cgs), dtype=bool), "max_membership": np.full(len(cgs), np.nan)}
    order = np.argsort(-score, kind="stable")
    rows = []
    for place, i in enumerate(order, start=1):
        rows.append({"rank": place, "arch": fam.key(int(i)), "predicted_acc": float(pred[i]), "score": float(score[i]),
                     "mmacs": cgs[i].flops / 1e6, "ood": bool(ood["flag"][i]),
                     "max_membership": float(ood["max_membership"][i]),
                     "label": float(fam.labels[i]) if fam.labels is not None else float("nan")})
    metrics: dict[str, float] = {}
    if fam.labels is not None:
        y = np.asarray(fam.labels, dtype=np.float64)
        metrics = {"srcc": spearman(y, score), "kendall_tau": kendall_tau(y, score), "ndcg@10": ndcg_at_k(y, score, 10)}
    return rows, metrics


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _check_args(args: argparse.Namespace) -> None:
    """Validate the options before any work (:class:`~cgpredict.errors.UsageError` naming the option)."""
    from pathlib import Path

    from cgpredict.commands.checks import check_file_output
    from cgpredict.commands.predict import check_checkpoint_arg
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
    check_checkpoint_arg(args.checkpoint)
    proxy_member_args.proxy_option(args.proxy)
    if args.output:
        check_file_output(args.output, inputs=[args.checkpoint], force=args.force,
                          folders=[args.checkpoint, args.data, resolve_data_dir(None)])


def _run(args: argparse.Namespace) -> int:
    from cgpredict.commands.predict import format_table, load_predictor, ood_text, write_rows
    from cgpredict.errors import InputError
    from cgpredict.quiet import progress_wanted

    _check_args(args)
    progress = progress_wanted(not args.quiet)
    predictor = load_predictor(args.checkpoint, progress=progress)
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
    rows, metrics = rank_family(predictor, fam, progress=progress, adapt=args.adapt,
                                proxy_weights=args.proxy_weights)
    if args.proxy_weights:
        print("member weights (agreement with the Proxy member): "
              + ", ".join(f"{k} {v:.2f}" for k, v in predictor.weights.items()))
    shown = [{**r, "arch": _short(r["arch"], args.arch_width), "ood_text": ood_text(r)}
             for r in rows[: args.top]]
    columns = [("rank", "#", "d"), ("arch", "architecture", ""), ("score", "score", ".3f"),
               ("predicted_acc", "pred acc %", ".2f"), ("mmacs", "MMACs", ".1f"), ("ood_text", "OOD", "")]
    if labelled:
        columns.append(("label", "true", ".2f"))
    print(format_table(shown, columns))
    n_ood = sum(r["ood"] for r in rows)
    print(f"\n{n_ood}/{len(rows)} nets flagged out-of-distribution for this checkpoint")
    if metrics:
        print(f"SRCC {metrics['srcc']:.3f}   Kendall tau {metrics['kendall_tau']:.3f}   "
              f"NDCG@10 {metrics['ndcg@10']:.3f}   (ensemble score vs true labels, {len(rows)} nets)")
    if args.output:
        write_rows(rows, args.output)
        print(f"wrote {args.output}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``rank`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "rank",
        help="rank a family's networks with a trained predictor (metrics when labels exist)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--family", required=True, help="family name (see `cgpredict families`)")
    parser.add_argument("--task", default=None, help="labelled task (default: the family's first)")
    parser.add_argument("--n", type=int, default=None,
                        help=f"number of nets: a seeded subset of the labelled ones, or sampled (default {DEFAULT_N})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset / sample")
    parser.add_argument("--checkpoint", default=None, metavar="DIR",
                        help="predictor folder (default: the shipped NB-101 checkpoint)")
    parser.add_argument("--data", default=None, metavar="DIR", help="labelled-data folder (default $CGPREDICT_DATA)")
    parser.add_argument("--adapt", action="store_true",
                        help="re-centre the predictor's head inputs on these nets first (label-free; Predictor.adapt)")
    parser.add_argument("--top", type=int, default=10, help="rows to print")
    parser.add_argument("--arch-width", type=int, default=60, help="truncate architecture text to this width")
    parser.add_argument("-o", "--output", default=None, metavar="CSV", help="write the full ranking as CSV")
    parser.add_argument("-f", "--force", action="store_true", help="replace an existing -o file")
    proxy_member_args.add_arguments(parser)
    parser.add_argument("--proxy-weights", action="store_true",
                        help="weight the members by their agreement with the Proxy member on these nets "
                             "(label-free zero-shot weights; Predictor.reweight_by_proxy)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)
    return parser

"""``cgpredict finetune``: adapt the pretrained predictor to your own labelled networks and save it.

Pipeline position: model → CG → features → **predictor (fine-tuning)** → ranking/search.

Example::

    # a CSV of `arch,label` rows in a registered family's encoding (the shipped generalist)
    cgpredict finetune --labels my50.csv --family nasbench201 -o my.ckpt
    # your own search space: `arch` cells are Python literals passed to a builder function
    cgpredict finetune --labels widths.csv --builder my_space.py:build --input-shape 1,3,32,32 -o my.ckpt
    cgpredict rank --family nasbench201 --checkpoint my.ckpt
    # the GENNAPE predictor, with the Proxy member (GenNAS loss + SynFlow, re-weighted by a ridge on your labels)
    cgpredict finetune --labels my50.csv --family nasbench201 --pretrained nb101 --epochs 100 -o my.ckpt
    cgpredict finetune --labels my50.csv --family nasbench201 --pretrained nb101 --proxy cpu \
        --zero-cost synflow -o my.ckpt

**The generalist** (default; a generalist ``--checkpoint``) is adapted with
:meth:`~cgpredict.generalist.GeneralistPredictor.finetune`: a ridge fit of its ranker on your
nets' set-relative features and within-set label ranks, pulled towards the pretrained
coefficients by ``--strength`` (default 0.1), then a Weisfeiler-Lehman graph-kernel ridge on your
nets' graphs that learns what those features miss (its weights picked by leave-one-out on your nets;
``--no-graph-kernel``: the linear step only). The proxy bank runs on each net (disk-cached). The
folder it writes is a generalist checkpoint.

**A GENNAPE predictor** (``--pretrained nb101`` or a GENNAPE ``--checkpoint``): keeps the
contrastive encoder and FCM clusters of the starting checkpoint, trains the heads and the k-GNN
``--epochs`` more epochs on the given nets and re-weights the ensemble members from how they rank
nets they were not fine-tuned on (scores cross-fitted over ``--weight-folds`` folds): by a
non-negative least-squares fit of the labels' ranks on the members' ranks (``--weighting stacked``,
default) or by GENNAPE's softmax of each member's Kendall τ (``--weighting kendall``;
``--weight-folds 0`` = in-sample τ). The result is a checkpoint folder that ``cgpredict predict/rank
--checkpoint`` and ``Predictor.load`` read.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cgpredict.commands import predictor_args, proxy_member_args

__all__ = ["register", "load_builder", "labelled_family"]


def load_builder(spec: str) -> Callable[[Any], Any]:
    """The function ``fn`` of ``path/file.py:fn`` (``arch → torch.nn.Module``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: malformed spec, import error, or no such callable.
    """
    path_text, sep, fn_name = spec.rpartition(":")
    if not sep or not path_text or not fn_name:
        raise ValueError(f"--builder must look like path/file.py:function, got {spec!r}")
    from cgpredict.model_spec import import_user_file

    path = Path(path_text)
    module = import_user_file(path, "builder")
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        names = sorted(n for n, obj in vars(module).items() if callable(obj) and not n.startswith("_"))
        raise ValueError(f"{path} has no function {fn_name!r}; its callables: {', '.join(names) or 'none'}")
    return fn


def labelled_family(labels: str, family: str | None = None, builder: str | None = None, task: str | None = None,
                    input_shape: tuple[int, ...] | None = None, label_column: str | None = None) -> Any:
    """A labelled :class:`cgpredict.datasets.Family` from an ``arch,label`` CSV, with archs in a
    registered ``family``'s encoding or passed to a ``builder`` (``file.py:fn``); the label column
    is ``label_column`` or one of the recognised names (:data:`cgpredict.datasets._table.LABEL_COLUMNS`)."""
    from cgpredict.datasets.custom import family_from_csv
    from cgpredict.datasets.registry import check_task, family_module
    from cgpredict.datasets.registry import input_shape as family_input_shape

    if (family is None) == (builder is None):
        raise ValueError("give exactly one of --family NAME or --builder file.py:fn")
    if family is not None:
        module = family_module(family)
        task = check_task(family, task)
        shape = input_shape or family_input_shape(family, task)
        fam = family_from_csv(labels, builder=lambda arch: module.build(arch, task), parse=module.parse_arch,
                              input_shape=shape, name=family, label_column=label_column)
        fam.arch_key = module.format_arch
        return fam
    return family_from_csv(labels, builder=load_builder(str(builder)), input_shape=input_shape or (1, 3, 224, 224),
                           name=Path(labels).stem, label_column=label_column)


def _temperature(text: str) -> float:
    """``--weight-temperature``: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


#: Entries a checkpoint folder may hold (``--force`` replaces only such a folder).
CHECKPOINT_ENTRY = re.compile(r"^(config\.json|weights\.pt|MODEL_CARD\.md|bag\d+|[A-Za-z_]*manifest[A-Za-z_.]*)$",
                              re.IGNORECASE)

#: Options that only the GENNAPE predictor reads (dest → flag).
GENNAPE_ONLY = {"epochs": "--epochs", "adapt": "--adapt", "weight_folds": "--weight-folds", "weighting": "--weighting",
                "weight_temperature": "--weight-temperature", "proxy": "--proxy", "zero_cost": "--zero-cost"}
#: Options that only the generalist reads.
GENERALIST_ONLY = {"strength": "--strength", "no_graph_kernel": "--no-graph-kernel"}
#: GENNAPE fine-tuning defaults of the options left unset.
DEFAULT_EPOCHS = 100
DEFAULT_WEIGHT_FOLDS = 2


def check_checkpoint_target(out: Path) -> None:
    """Refuse (even with ``--force``) to replace an existing folder that is not a cgpredict
    checkpoint or that holds other files: the checkpoint is written whole and swapped in, so
    anything else there would be lost."""
    from cgpredict.errors import InputError
    from cgpredict.fileio import OutputExistsError
    from cgpredict.predictor import read_checkpoint_config

    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        doc = read_checkpoint_config(out)
    except (InputError, ValueError, OSError, RecursionError):
        doc = None
    if not isinstance(doc, dict) or not str(doc.get("format", "")).startswith("cgpredict"):
        raise OutputExistsError(f"-o {out} is a folder that is not a cgpredict checkpoint; give a new folder "
                                "(--force replaces only an earlier checkpoint)")
    foreign = sorted(p.name for p in out.iterdir() if not CHECKPOINT_ENTRY.match(p.name))
    if foreign:
        raise OutputExistsError(f"-o {out} holds files that are not part of a checkpoint ({', '.join(foreign[:5])}); "
                                "give a new folder (nothing there is replaced)")


def _check_args(args: argparse.Namespace) -> tuple[Path, bool]:
    """Validate the options before any work; returns the output folder and whether the starting
    predictor is a generalist."""
    from cgpredict.commands.checks import check_folder_output
    from cgpredict.commands.predictor_args import check_kind_options, is_generalist, predictor_folder
    from cgpredict.errors import LabelFileError, UsageError

    generalist = is_generalist(predictor_folder(args.checkpoint, args.pretrained))
    check_kind_options(args, generalist, gennape_only=GENNAPE_ONLY, generalist_only=GENERALIST_ONLY)
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.weight_folds is not None and (args.weight_folds < 0 or args.weight_folds == 1):
        raise UsageError(f"--weight-folds must be 0 (in-sample) or at least 2, got {args.weight_folds}")
    if args.strength is not None and not args.strength >= 0:
        raise UsageError(f"--strength must be >= 0, got {args.strength}")
    labels = Path(args.labels)
    if labels.is_dir():
        raise LabelFileError(f"--labels {labels} is a folder, not a CSV file")
    if not labels.is_file():
        raise FileNotFoundError(f"--labels file {labels} does not exist")
    proxy_member_args.proxy_option(args.proxy)
    builder_file = args.builder.rpartition(":")[0] if args.builder else None
    out = check_folder_output(args.output, inputs=[args.labels, args.checkpoint, builder_file],
                              folders=[args.checkpoint], force=args.force)
    check_checkpoint_target(out)
    return out, generalist


def _run(args: argparse.Namespace) -> int:
    from cgpredict.commands.predict import load_predictor
    from cgpredict.quiet import progress_wanted

    out, generalist = _check_args(args)
    progress = progress_wanted(not args.quiet)
    fam = labelled_family(args.labels, args.family, args.builder, args.task, _input_shape(args),
                          label_column=args.label_column)
    if len(fam) < (3 if generalist else 2):
        raise ValueError(f"{args.labels}: fine-tuning needs at least {3 if generalist else 2} labelled nets, "
                         f"found {len(fam)}")
    predictor = load_predictor(args.checkpoint, progress=progress, pretrained=args.pretrained)
    cgs = fam.cgs(progress=progress)
    y = np.asarray(fam.labels, dtype=np.float64)
    if generalist:
        return _finetune_generalist(predictor, cgs, y, out, args)
    return _finetune_gennape(predictor, cgs, y, out, args)


def _input_shape(args: argparse.Namespace) -> tuple[int, ...] | None:
    from cgpredict.model_spec import parse_input_shape

    return parse_input_shape(args.input_shape)


def _report(y: np.ndarray, before: np.ndarray, after: np.ndarray) -> None:
    from cgpredict.metrics import kendall_tau, spearman

    print(f"SRCC on these nets: {spearman(y, before):.3f} before, {spearman(y, after):.3f} after; "
          f"Kendall tau {kendall_tau(y, before):.3f} -> {kendall_tau(y, after):.3f}")


def _finetune_generalist(model: Any, cgs: list, y: np.ndarray, out: Path, args: argparse.Namespace) -> int:
    """Adapt a generalist to the labelled nets (``GeneralistPredictor.finetune``) and save it to ``out``."""
    from cgpredict.fileio import atomic_directory

    from cgpredict.generalist.model import FINETUNE_STRENGTH

    raw = model.columns(cgs)  # the proxy bank runs once (disk-cached); both calls below reuse it
    before = model.predict(cgs, raw=raw)
    model.finetune(cgs, y, strength=args.strength, raw=raw, graph_kernel=not args.no_graph_kernel)
    after = model.predict(cgs, raw=raw)
    strength = FINETUNE_STRENGTH if args.strength is None else args.strength
    kernel = getattr(model, "kernel_", None)
    facts = {"labels": Path(args.labels).name, "n": len(cgs), "strength": strength, "graph_kernel": kernel is not None}
    if kernel is not None:
        facts["graph_kernel_picks"] = [list(c) for c in kernel.selected_]
    card = {**getattr(model, "card_", {}), "finetuned": facts}
    with atomic_directory(out) as tmp:  # the previous checkpoint survives any crash before the swap
        model.save(tmp, card=card)
    print(f"fine-tuned the generalist on {len(cgs)} nets from {args.labels} (pull towards the pretrained "
          f"ranker: strength {strength:g})")
    _report(y, before, after)
    if kernel is not None:
        beta, lam, loo = kernel.selected_[0]
        print(f"graph kernel: leave-one-out SRCC on these nets {loo:.3f} (in-sample SRCC above is optimistic; "
              f"best pick: weight of the linear score {beta:g}, ridge {lam:g})")
    print("(in-sample: these nets trained the ranker; scores rank a set, they are not accuracies)")
    print(f"wrote {out} (use it with --checkpoint {out})")
    return 0


def _finetune_gennape(predictor: Any, cgs: list, y: np.ndarray, out: Path, args: argparse.Namespace) -> int:
    """Fine-tune a GENNAPE predictor (heads, k-GNN, member weights) and save it to ``out``."""
    from cgpredict.fileio import atomic_directory

    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    folds = DEFAULT_WEIGHT_FOLDS if args.weight_folds is None else args.weight_folds
    proxy_member_args.apply(predictor, args)
    if args.weight_temperature is not None:
        predictor.weight_temperature = args.weight_temperature
    if args.weighting is not None:
        predictor.weighting = args.weighting
    before = predictor.score(cgs)
    predictor.finetune(cgs, y, epochs=epochs, adapt=args.adapt, weight_folds=folds)
    after = predictor.score(cgs)
    with atomic_directory(out) as tmp:  # the previous checkpoint survives any crash before the swap
        predictor.save(tmp)
    print(f"fine-tuned on {len(cgs)} nets from {args.labels} ({epochs} epochs)")
    _report(y, before, after)
    how = f"{folds}-fold cross-fitted" if folds else "in-sample"
    rule = (f"stacked on {how} ranks" if predictor.weighting == "stacked"
            else f"softmax of {how} Kendall tau / {predictor.weight_temperature:g}")
    print(f"member weights ({rule}): "
          + ", ".join(f"{name} {w:.2f} (tau {predictor.taus_.get(name, float('nan')):.2f})"
                      for name, w in predictor.weights.items()))
    print(f"wrote {out} (use it with --checkpoint {out})")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``finetune`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune the generalist (or a GENNAPE predictor) on your labelled nets (CSV arch,label) and save it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--labels", required=True, metavar="CSV", help="CSV with a header and `arch,label` rows")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--family", default=None, help="registered family whose encoding the `arch` cells use")
    source.add_argument("--builder", default=None, metavar="FILE.py:FN",
                        help="function building a torch.nn.Module from an `arch` cell (parsed as a Python literal)")
    parser.add_argument("--task", default=None, help="the family's task (network head), default its first")
    parser.add_argument("--input-shape", default=None, metavar="N,C,H,W",
                        help="input shape (default: the family's; 1,3,224,224 for --builder)")
    predictor_args.add_arguments(parser, no_proxies=False)
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write the fine-tuned checkpoint")
    parser.add_argument("-f", "--force", action="store_true",
                        help="replace an existing checkpoint folder (never a folder holding anything else)")
    parser.add_argument("--label-column", default=None, metavar="NAME",
                        help="the label column of --labels (default: val_accuracy, label, accuracy or y)")
    parser.add_argument("--strength", type=float, default=None,
                        help="generalist only: pull of the fine-tuned ranker towards the pretrained one "
                             "(default 0.1; larger = closer to the generalist)")
    parser.add_argument("--no-graph-kernel", action="store_true",
                        help="generalist only: skip the Weisfeiler-Lehman graph-kernel step (the linear re-weighting only)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"GENNAPE only: fine-tuning epochs of the heads and the k-GNN (default {DEFAULT_EPOCHS})")
    parser.add_argument("--adapt", action="store_true",
                        help="GENNAPE only: re-fit the heads' input standardisation to these nets before training "
                             "(Predictor.adapt)")
    parser.add_argument("--weight-folds", type=int, default=None,
                        help="GENNAPE only: folds of the cross-fitted Kendall tau behind the member weights "
                             f"(0 = in-sample; default {DEFAULT_WEIGHT_FOLDS})")
    parser.add_argument("--weighting", choices=("stacked", "kendall"), default=None,
                        help="GENNAPE only: member weights: a non-negative least-squares fit on the cross-fitted ranks (stacked, "
                             "the default) or the paper's softmax of Kendall tau (kendall)")
    parser.add_argument("--weight-temperature", type=_temperature, default=None, metavar="T",
                        help="GENNAPE only, with --weighting kendall: temperature of the softmax (default: the checkpoint's, 0.1)")
    proxy_member_args.add_arguments(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)
    return parser

"""``cgpredict predict``: a ranking score (generalist) or a predicted accuracy (GENNAPE) per model.

Pipeline position: model → CG → features → **predictor** → ranking/search.

Example::

    cgpredict predict torchvision:resnet18 torchvision:mobilenet_v2 torchvision:resnet50
    cgpredict predict my_net.py:Net --input-shape 1,3,32,32 --no-proxies
    cgpredict predict model.onnx --checkpoint my.ckpt -o predictions.csv
    cgpredict predict torchvision:resnet18 --pretrained nb101     # the GENNAPE predictor

Uses the shipped generalist (``GeneralistPredictor.pretrained("generalist")``) unless
``--checkpoint`` names a saved folder (a generalist, or a GENNAPE one written by ``Predictor.save``,
``PredictorBag.save`` or ``cgpredict finetune``) or ``--pretrained`` another shipped one.

With a generalist it prints per model a ranking **score** and its rank among the given models
(higher = predicted better; the scores rank the given set and are not accuracies; one model alone
is placed against the training group nearest in FLOPs) and MMACs. It runs the training-free proxy
bank on each model (disk-cached), unless ``--no-proxies`` (graph-only ranker: no network is run).

With a GENNAPE checkpoint it prints the predicted accuracy (on the training family's scale),
MMACs, and the FCM out-of-distribution check: the largest fuzzy membership, the distance to the
nearest cluster centre and whether that distance is above the training family's 99th percentile
(``OOD = yes``: treat the prediction with care).
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cgpredict.commands import predictor_args
from cgpredict.ranking import format_table, ood_text, predict_rows

__all__ = ["register", "load_predictor", "format_table", "predict_rows", "write_rows"]


def check_checkpoint_arg(checkpoint: str | None) -> Path | None:
    """``--checkpoint`` as a path, checked before any work: it must be an existing folder."""
    if checkpoint is None:
        return None
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint folder {path} does not exist (write one with `cgpredict finetune -o {path}`)")
    if not path.is_dir():
        from cgpredict.predictor import CheckpointError

        raise CheckpointError(f"checkpoint {path} is a file; a checkpoint is a folder (config.json + weights.pt)")
    return path


def load_predictor(checkpoint: str | None, progress: bool = False, pretrained: str | None = None) -> Any:
    """The predictor in folder ``checkpoint`` (dispatched on its format: generalist, GENNAPE
    predictor or bag), else the shipped one named ``pretrained`` (default: the ``generalist``), with
    its progress bars set to ``progress``.

    Raises:
        UsageError: both ``checkpoint`` and ``pretrained`` given.
        FileNotFoundError: the folder does not exist (or no checkpoint ships with this install).
        cgpredict.predictor.CheckpointError: the folder is not a loadable checkpoint (any failure
            while reading it is reported as one, naming the folder and the cause).
    """
    from cgpredict.commands.predictor_args import predictor_folder
    from cgpredict.errors import CGError
    from cgpredict.predictor import CheckpointError
    from cgpredict.predictor import load_predictor as load_checkpoint
    from cgpredict.quiet import set_progress

    path = predictor_folder(checkpoint, pretrained)
    try:
        predictor = load_checkpoint(path, progress=progress)
    except (CGError, FileNotFoundError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged or hand-edited checkpoint: name it, not the traceback
        where = path if checkpoint is not None else f"the shipped checkpoint {path.name!r}"
        raise CheckpointError(f"checkpoint {where} cannot be loaded ({type(exc).__name__}: {exc}); "
                              "it is damaged or was not written by cgpredict") from exc
    return set_progress(predictor, progress)


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Write result rows as CSV (columns of the first row), atomically."""
    from cgpredict.commands.checks import write_csv_rows

    write_csv_rows(rows, path)


PREDICT_COLUMNS = [("model", "model", ""), ("predicted_acc", "pred acc %", ".2f"), ("mmacs", "MMACs", ".1f"),
                   ("max_membership", "max memb", ".3f"), ("centroid_distance", "distance", ".3f"),
                   ("ood_text", "OOD", "")]
#: Columns printed for a generalist (ranking scores, no accuracy, no OOD check).
SCORE_COLUMNS = [("model", "model", ""), ("score", "score", ".3f"), ("rank", "rank", "d"), ("mmacs", "MMACs", ".1f")]


def _check_args(args: argparse.Namespace) -> tuple[list[str], bool]:
    """Validate the options before any work; returns the MODEL specs and whether the predictor is a generalist."""
    from cgpredict.commands.checks import check_file_output, check_model_arg
    from cgpredict.commands.predictor_args import check_kind_options, is_generalist, predictor_folder

    specs = [check_model_arg(spec) for spec in args.models]
    generalist = is_generalist(predictor_folder(args.checkpoint, args.pretrained))
    check_kind_options(args, generalist, generalist_only={"no_proxies": "--no-proxies"})
    if args.output:
        check_file_output(args.output, inputs=[*specs, args.checkpoint], folders=[args.checkpoint], force=args.force)
    return specs, generalist


def _run(args: argparse.Namespace) -> int:
    from cgpredict.model_spec import parse_input_shape, spec_to_cg
    from cgpredict.quiet import progress_wanted
    from cgpredict.ranking import SCORE_NOTE, coverage_line, generalist_columns

    specs, generalist = _check_args(args)
    shape = parse_input_shape(args.input_shape)
    predictor = load_predictor(args.checkpoint, progress=progress_wanted(not args.quiet), pretrained=args.pretrained)
    cgs = []
    for spec in specs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            cgs.append(spec_to_cg(spec, input_shape=shape))
    if generalist:
        use_proxies = False if args.no_proxies else None
        raw = generalist_columns(predictor, cgs, use_proxies)  # read twice below
        rows = predict_rows(predictor, cgs, args.models, use_proxies=use_proxies, raw=raw)
        print(format_table(rows, SCORE_COLUMNS))
        alone = " (one model alone is placed against the training group nearest in FLOPs)" if len(rows) == 1 else ""
        print(f"\n{SCORE_NOTE}{alone}")
        print(coverage_line(predictor, cgs, raw=raw))
        if args.output:
            write_rows(rows, args.output)
            print(f"wrote {args.output}")
        return 0
    rows = predict_rows(predictor, cgs, args.models)
    for row in rows:
        row["ood_text"] = ood_text(row)
    print(format_table(rows, PREDICT_COLUMNS))
    if any(row["ood"] for row in rows):
        print("\nOOD = yes: the model lies outside the checkpoint's training clusters; its predicted accuracy "
              "may not transfer (fine-tune with `cgpredict finetune` on a few labelled nets of its family).")
    if args.output:
        write_rows([{k: v for k, v in row.items() if k != "ood_text"} for row in rows], args.output)
        print(f"wrote {args.output}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``predict`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "predict",
        help="score models (torchvision:NAME, file.py:Class, model.onnx) with the generalist, or predict their "
             "accuracy with a GENNAPE checkpoint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="torchvision:NAME, timm:NAME, path/file.py:ClassName or model.onnx")
    predictor_args.add_arguments(parser)
    parser.add_argument("--input-shape", default=None, metavar="N,C,H,W",
                        help="input shape, batch first (default: the model's natural size)")
    parser.add_argument("-o", "--output", default=None, metavar="CSV", help="also write the rows as CSV")
    parser.add_argument("-f", "--force", action="store_true", help="replace an existing -o file")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)
    return parser

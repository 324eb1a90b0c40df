"""``cgpredict predict``: predicted accuracy, MACs and an out-of-distribution flag per model.

Pipeline position: model → CG → features → **predictor** → ranking/search.

Example::

    cgpredict predict torchvision:resnet18 torchvision:mobilenet_v2
    cgpredict predict my_net.py:Net --input-shape 1,3,32,32
    cgpredict predict model.onnx --checkpoint my.ckpt -o predictions.csv

Uses the shipped NB-101 checkpoint (``Predictor.pretrained()``) unless ``--checkpoint`` names a
folder written by ``Predictor.save``, ``PredictorBag.save`` or ``cgpredict finetune``. Per model it prints the predicted
accuracy (on the training family's scale), MMACs, and the FCM out-of-distribution check: the
largest fuzzy membership, the distance to the nearest cluster centre and whether that distance is
above the training family's 99th percentile (``OOD = yes``: treat the prediction with care).
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def load_predictor(checkpoint: str | None, progress: bool = False) -> Any:
    """The predictor in folder ``checkpoint``, or the shipped ``nb101`` one when ``None``, with its
    progress bars set to ``progress``.

    Raises:
        FileNotFoundError: the folder does not exist (or no checkpoint ships with this install).
        cgpredict.predictor.CheckpointError: the folder is not a loadable checkpoint (any failure
            while reading it is reported as one, naming the folder and the cause).
    """
    from cgpredict.errors import CGError
    from cgpredict.predictor import CheckpointError
    from cgpredict.predictor import load_predictor as load_checkpoint
    from cgpredict.quiet import set_progress

    path = check_checkpoint_arg(checkpoint)
    try:
        predictor = load_checkpoint(path, progress=progress)  # None: the shipped predictor
    except (CGError, FileNotFoundError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged or hand-edited checkpoint: name it, not the traceback
        where = path if path is not None else "the shipped checkpoint"
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


def _run(args: argparse.Namespace) -> int:
    from cgpredict.commands.checks import check_file_output, check_model_arg
    from cgpredict.model_spec import parse_input_shape, spec_to_cg
    from cgpredict.quiet import progress_wanted

    specs = [check_model_arg(spec) for spec in args.models]
    if args.output:
        check_file_output(args.output, inputs=[*specs, args.checkpoint], folders=[args.checkpoint], force=args.force)
    shape = parse_input_shape(args.input_shape)
    predictor = load_predictor(args.checkpoint, progress=progress_wanted(not args.quiet))
    cgs = []
    for spec in specs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            cgs.append(spec_to_cg(spec, input_shape=shape))
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
        help="predict the accuracy of models (torchvision:NAME, file.py:Class, model.onnx) with a trained predictor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="torchvision:NAME, timm:NAME, path/file.py:ClassName or model.onnx")
    parser.add_argument("--checkpoint", default=None, metavar="DIR",
                        help="predictor folder (default: the shipped NB-101 checkpoint)")
    parser.add_argument("--input-shape", default=None, metavar="N,C,H,W",
                        help="input shape, batch first (default: the model's natural size)")
    parser.add_argument("-o", "--output", default=None, metavar="CSV", help="also write the rows as CSV")
    parser.add_argument("-f", "--force", action="store_true", help="replace an existing -o file")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run)
    return parser

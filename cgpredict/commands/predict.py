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
import csv
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["register", "load_predictor", "format_table", "predict_rows", "write_rows"]


def load_predictor(checkpoint: str | None, progress: bool = False) -> Any:
    """:func:`cgpredict.predictor.load_predictor` with progress bars off by default (imported on
    first use: it pulls in torch): the folder ``checkpoint``, or the shipped ``nb101`` predictor."""
    from cgpredict.predictor import load_predictor as load

    return load(checkpoint, progress=progress)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """Aligned text table: ``columns`` are ``(key, header, format spec)``; text left, numbers right."""
    cells = [[format(row[key], spec) if spec and isinstance(row[key], (int, float)) else str(row[key])
              for key, _, spec in columns] for row in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h, _) in enumerate(columns)]
    numeric = [bool(spec) for _, _, spec in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line([h for _, h, _ in columns]), line(["-" * w for w in widths])]
    out += [line(c) for c in cells]
    return "\n".join(out)


def predict_rows(predictor: Any, cgs: Sequence[Any], names: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per CG: ``model``, ``predicted_acc``, ``mmacs``, ``max_membership``,
    ``centroid_distance``, ``ood`` (bool)."""
    import numpy as np

    from cgpredict.models.fcm import OutOfDistributionWarning

    pred = predictor.predict(list(cgs))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDistributionWarning)
            ood = predictor.ood(list(cgs))
    except RuntimeError:  # a checkpoint without FCM members
        nan = np.full(len(cgs), np.nan)
        ood = {"max_membership": nan, "centroid_distance": nan, "flag": np.zeros(len(cgs), dtype=bool)}
    return [{"model": name, "predicted_acc": float(pred[i]), "mmacs": cg.flops / 1e6,
             "max_membership": float(ood["max_membership"][i]), "centroid_distance": float(ood["centroid_distance"][i]),
             "ood": bool(ood["flag"][i])} for i, (name, cg) in enumerate(zip(names, cgs))]


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Write result rows as CSV (columns of the first row)."""
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


PREDICT_COLUMNS = [("model", "model", ""), ("predicted_acc", "pred acc %", ".2f"), ("mmacs", "MMACs", ".1f"),
                   ("max_membership", "max memb", ".3f"), ("centroid_distance", "distance", ".3f"),
                   ("ood_text", "OOD", "")]


def _run(args: argparse.Namespace) -> int:
    from cgpredict.model_spec import parse_input_shape, spec_to_cg

    predictor = load_predictor(args.checkpoint)
    shape = parse_input_shape(args.input_shape)
    cgs = []
    for spec in args.models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            cgs.append(spec_to_cg(spec, input_shape=shape))
    rows = predict_rows(predictor, cgs, args.models)
    for row in rows:
        row["ood_text"] = "yes" if row["ood"] else "no"
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
    parser.set_defaults(func=_run)
    return parser

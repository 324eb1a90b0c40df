"""Benchmark: CGs per second of ``Predictor.predict`` on NB-201 CGs (CPU) and ensemble training time.

Pipeline position: model → CG → features → **predictor (inference / training cost)**.

Prediction speed does not depend on how well the predictor is trained, only on its sizes, so by
default the predictor has the library's default architecture (paper sizes) and is trained for one
epoch per member on ``--n-train`` NB-101 CGs; ``--checkpoint`` times a saved predictor instead.
Reported per thread count:

* ``cold``: first call on CG objects never seen (includes ``CG.to_pyg()`` of every CG and, with
  ``canonical`` on, its canonical form, :func:`cgpredict.canonical.canonicalize`);
* ``warm``: repeated call (PyG conversions and canonical forms cached per CG object);
* the seconds of the contrastive encoder and of the k-GNN alone (a warm call runs them, and the
  heads, as parallel per-chunk jobs when torch has several threads, so they do not add up);
* the same warm call with the fast inference path switched off
  (:func:`cgpredict.models.dedup.fast_inference`: per-node message passing and attention over every
  node, one job), measured in the same run, and the speed-up against it.

``--train`` also times every member's training on the labelled NB-101 train split (80%) for
``--train-epochs`` epochs and extrapolates linearly to the default epoch counts (the full
ensemble fit). Needs the labelled data (``$CGPREDICT_DATA``).

Example::

    CGPREDICT_DATA=/work/shared/data python benchmarks/predict_speed.py --threads 1 2 --train
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import torch

from cgpredict.evaluation import load_labelled, split_indices
from cgpredict.models.contrastive import ContrastiveEncoder
from cgpredict.models.dedup import fast_inference
from cgpredict.models.gnn import GNNPredictor
from cgpredict.models.graph_data import clear_cache, flops_of
from cgpredict.models.heads import EmbeddingRegressor, PairwiseRanker
from cgpredict.predictor import Predictor
from cgpredict.predictor.inputs import clear_canonical_cache
from cgpredict.quiet import progress_bar

ONE_EPOCH = {"encoder": {"epochs": 1}, "regressor": {"epochs": 1}, "pairwise": {"epochs": 1}, "kgnn": {"epochs": 1}}


def _time(fn: Any, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def predict_speed(pred: Predictor, cgs: list, threads: int, repeat: int = 3) -> dict[str, float]:
    """CGs/s of ``pred.predict`` (cold and warm), the seconds of the encoder and the k-GNN alone,
    and the warm CGs/s of the plain inference path."""
    torch.set_num_threads(threads)
    clear_cache()
    clear_canonical_cache()
    cold = _time(lambda: pred.predict(cgs))
    warm = _time(lambda: pred.predict(cgs), repeat)
    emb = _time(lambda: pred.encoder.transform(cgs), repeat) if pred.encoder is not None else 0.0
    kgnn = _time(lambda: pred.models["k-GNN"].predict(cgs), repeat) if "k-GNN" in pred.models else 0.0
    with fast_inference(False):
        plain = _time(lambda: pred.predict(cgs), repeat)
    return {"threads": threads, "n": len(cgs), "cold_cgs_per_s": len(cgs) / cold, "warm_cgs_per_s": len(cgs) / warm,
            "warm_s": warm, "encoder_s": emb, "kgnn_s": kgnn, "plain_cgs_per_s": len(cgs) / plain,
            "speedup": plain / warm}


def training_time(cgs: list, y: np.ndarray, epochs: int, threads: int, progress: bool) -> dict[str, float]:
    """Seconds per member for ``epochs`` epochs, and extrapolated to the default epoch counts."""
    torch.set_num_threads(threads)
    defaults = {"encoder": ContrastiveEncoder().epochs, "CL+FCM+T": EmbeddingRegressor().epochs,
                "CL+T": EmbeddingRegressor().epochs, "CL+Pairwise": PairwiseRanker().epochs,
                "CL+FCM+Pairwise": PairwiseRanker().epochs, "k-GNN": GNNPredictor().epochs}
    out: dict[str, float] = {}
    bar = progress_bar(total=len(defaults), desc="timing members", progress=progress)
    t0 = time.perf_counter()
    enc = ContrastiveEncoder(epochs=epochs, progress=False).fit(cgs)
    out["encoder"] = time.perf_counter() - t0
    bar.update()
    emb, g = enc.transform(cgs), flops_of(cgs)
    for name, make in (("CL+FCM+T", lambda: EmbeddingRegressor(enc.dim, n_clusters=10, epochs=epochs, progress=False)),
                       ("CL+T", lambda: EmbeddingRegressor(enc.dim, epochs=epochs, progress=False)),
                       ("CL+Pairwise", lambda: PairwiseRanker(enc.dim, epochs=epochs, progress=False)),
                       ("CL+FCM+Pairwise", lambda: PairwiseRanker(enc.dim, n_clusters=10, epochs=epochs,
                                                                  progress=False))):
        t0 = time.perf_counter()
        make().fit(emb, g, y)
        out[name] = time.perf_counter() - t0
        bar.update()
    t0 = time.perf_counter()
    GNNPredictor(epochs=epochs, progress=False).fit(cgs, y)
    out["k-GNN"] = time.perf_counter() - t0
    bar.update()
    bar.close()
    full = {k: v / epochs * defaults[k] for k, v in out.items()}
    return {"measured": out, "default_epochs": defaults, "extrapolated_s": full, "total_s": sum(full.values())}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to time")
    ap.add_argument("--n-train", type=int, default=128, help="NB-101 CGs for the 1-epoch predictor")
    ap.add_argument("--n-predict", type=int, default=None, help="NB-201 CGs to predict (default: all 725)")
    ap.add_argument("--checkpoint", default=None, help="time this saved predictor instead")
    ap.add_argument("--repeat", type=int, default=3, help="warm repetitions (best is reported)")
    ap.add_argument("--train", action="store_true", help="also time ensemble training on NB-101")
    ap.add_argument("--train-epochs", type=int, default=2, help="epochs per member for --train")
    ap.add_argument("--canonical", choices=("on", "off", "both"), default="both",
                    help="time with the predictor reading canonical CGs, as converted, or both (the "
                         "predictions differ, the work per CG does not otherwise)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    progress = not args.no_progress
    target = load_labelled("nasbench201/cifar10", args.data_dir, args.n_predict, progress=progress)
    source = load_labelled("nasbench101/cifar10", args.data_dir, progress=progress)
    if args.checkpoint:
        pred = Predictor.load(args.checkpoint, progress=False)
    else:
        pred = Predictor(progress=False, **ONE_EPOCH).fit(source.cgs()[: args.n_train], source.labels[: args.n_train])
    nodes = np.mean([len(cg.nodes) for cg in target.cgs()])
    print(f"torch {torch.__version__}; {len(target.cgs())} NB-201 CGs, {nodes:.0f} nodes on average")
    print("| canonical | threads | cold CGs/s | warm CGs/s | warm s | encoder alone s | k-GNN alone s "
          "| plain path warm CGs/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.canonical]
    for canonical in modes:
        pred.canonical = canonical
        for threads in args.threads:
            r = predict_speed(pred, target.cgs(), threads, args.repeat)
            print(f"| {'on' if canonical else 'off'} | {threads} | {r['cold_cgs_per_s']:.0f} | "
                  f"{r['warm_cgs_per_s']:.0f} | {r['warm_s']:.2f} | {r['encoder_s']:.2f} | {r['kgnn_s']:.2f} | "
                  f"{r['plain_cgs_per_s']:.0f} | {r['speedup']:.2f}x |", flush=True)
    if args.train:
        train, _, _ = split_indices(len(source.cgs()), 0)
        keep = [i for i in train if source.labels[i] >= 80.0]
        source_cgs = source.cgs()
        cgs, y = [source_cgs[i] for i in keep], source.labels[keep]
        r = training_time(cgs, y, args.train_epochs, max(args.threads), progress)
        print(f"\nensemble training on {len(cgs)} NB-101 CGs, {max(args.threads)} thread(s), "
              f"measured over {args.train_epochs} epoch(s) per member, extrapolated to default epochs:")
        print("| member | measured s | default epochs | extrapolated s |")
        print("|---|---|---|---|")
        for name, secs in r["measured"].items():
            print(f"| {name} | {secs:.1f} | {r['default_epochs'][name]} | {r['extrapolated_s'][name]:.0f} |")
        print(f"| total | | | {r['total_s']:.0f} |")
    return 0


if __name__ == "__main__":
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    sys.exit(main())

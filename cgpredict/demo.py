"""`make demo`: convert a few models, then rank an unseen family zero-shot with the shipped predictor.

Pipeline position: the whole pipeline — model → CG → features → predictor → **ranking**.

1. Converts three torchvision models to CGs and prints nodes, edges, GMACs, parameters and the
   op histogram.
2. Loads the shipped GENNAPE checkpoint (pre-trained on NAS-Bench-101, ``Predictor.pretrained()``),
   samples ``--n`` OFA-MobileNetV3 networks (a family it never saw) and prints the predicted top 10
   (architecture summary, predicted accuracy, MMACs, out-of-distribution flag).
3. Plots a t-SNE of the CG embeddings in the FCM feature space — NB-101 CGs (the training family),
   the OFA-MBv3 sample and, with labels, NB-201 — with the training FCM cluster centres marked, to
   ``<out>/embeddings.png``.
4. When ``$CGPREDICT_DATA`` (or ``--data``) holds the labelled tables, it also ranks NB-201 CIFAR-10
   nets (``--nb201-n``, seeded subset; all 725 by default), prints SRCC / Kendall τ / NDCG@10
   against the true accuracies and plots predicted vs true to ``<out>/pred_vs_true.png``.

Run: ``python -m cgpredict.demo [--n 100] [--nb201-n 725] [--out demo_output]``
(a few minutes on 2 CPU cores the first time; converted CGs are cached in ``~/.cache/cgpredict``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from cgpredict.quiet import hide_known_warnings

DEFAULT_MODELS = ("resnet18", "mobilenet_v2", "efficientnet_b0")
TARGET_FAMILY = "ofa_mbv3"


def _row(label: str, cg: Any, seconds: float) -> str:
    hist = cg.op_histogram()
    top = ", ".join(f"{op}:{n}" for op, n in sorted(hist.items(), key=lambda kv: -kv[1])[:5])
    return (f"{label:<18} {cg.num_nodes:>6} {cg.num_edges:>6} {cg.flops / 1e9:>7.3f} "
            f"{cg.params / 1e6:>9.2f} {seconds:>5.1f}  {top}")


def conversion_table(models: list[str]) -> None:
    """Part 1: convert torchvision models and print one row each."""
    import torchvision

    from cgpredict.converters import from_torch

    header = f"{'model':<18} {'nodes':>6} {'edges':>6} {'GMACs':>7} {'params(M)':>9} {'sec':>5}  top ops"
    print(header)
    print("-" * len(header))
    for name in models:
        model = torchvision.models.get_model(name, weights=None).eval()
        start = time.perf_counter()
        cg = from_torch(model, name=name)
        print(_row(name, cg, time.perf_counter() - start))


def arch_summary(arch: Any, width: int = 46) -> str:
    """Short text of an architecture: for block-stage families (OFA, ProxylessNAS) the depth per
    stage and mean kernel / expansion, else the canonical text truncated to ``width``."""
    try:
        stages = [list(stage) for stage in arch]
        blocks = [b for s in stages for b in s]
        if blocks and all(isinstance(b, tuple) and len(b) == 2 and all(isinstance(v, int) for v in b) for b in blocks):
            depth = "-".join(str(len(s)) for s in stages)
            k = np.mean([b[0] for b in blocks])
            e = np.mean([b[1] for b in blocks])
            return f"depths {depth}, mean k {k:.1f}, mean e {e:.1f}"
    except TypeError:
        pass
    text = str(arch)
    return text if len(text) <= width else text[: width - 1] + "…"


def _fcm_space(predictor: Any) -> tuple[Any, np.ndarray | None]:
    member = next((predictor.models[n] for n in ("CL+FCM+T", "CL+FCM+Pairwise") if n in predictor.models), None)
    if member is None or member.fcm is None:
        return None, None
    return member.fcm_features, member.fcm.centers_


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="torchvision models for the conversion table")
    parser.add_argument("--n", type=int, default=100, help=f"sampled {TARGET_FAMILY} nets to rank")
    parser.add_argument("--n-train", type=int, default=300, help="NB-101 CGs shown in the embedding plot")
    parser.add_argument("--nb201-n", type=int, default=725, help="NB-201 CIFAR-10 nets ranked when labels exist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="predictor folder (default: the shipped NB-101 one)")
    parser.add_argument("--data", default=None, help="labelled-data folder (default $CGPREDICT_DATA)")
    parser.add_argument("--out", default="demo_output", help="folder for the PNGs")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("--n must be at least 2")
    from cgpredict.quiet import progress_wanted

    progress = progress_wanted(not args.no_progress)  # no bars in a log or pipe: they are escape junk there
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hide_known_warnings()

    from cgpredict.predictor import load_predictor
    from cgpredict.datasets import load_family
    from cgpredict.predictor import Predictor
    from cgpredict.ranking import format_table, ood_text, rank_family
    from cgpredict.datasets.registry import resolve_data_dir
    from cgpredict.demo_plots import plot_embeddings, plot_pred_vs_true
    from cgpredict.models.graph_data import flops_of

    print("== 1. Models -> computation graphs ==")
    conversion_table([m for m in args.models.split(",") if m])

    print(f"\n== 2. Zero-shot ranking of {args.n} sampled {TARGET_FAMILY} nets (predictor trained on NB-101) ==")
    predictor = (Predictor.pretrained(progress=progress) if args.checkpoint is None
                 else load_predictor(args.checkpoint, progress=progress))
    target = load_family(TARGET_FAMILY, n=args.n, seed=args.seed)
    rows, _ = rank_family(predictor, target, progress=progress)
    by_key = {target.key(i): target.archs[i] for i in range(len(target))}
    top = [{**r, "arch": arch_summary(by_key[r["arch"]]), "ood_text": ood_text(r)} for r in rows[:10]]
    print(format_table(top, [("rank", "#", "d"), ("arch", "architecture", ""), ("score", "score", ".3f"),
                             ("predicted_acc", "pred acc %", ".2f"), ("mmacs", "MMACs", ".1f"),
                             ("ood_text", "OOD", "")]))
    n_ood = sum(r["ood"] for r in rows)
    print(f"{n_ood}/{len(rows)} {TARGET_FAMILY} nets lie outside the NB-101 clusters (OOD); predicted accuracies "
          "are on NB-101's CIFAR-10 scale, so read the order, not the values.")

    labelled = resolve_data_dir(args.data) is not None
    nb201 = None
    if labelled:
        try:
            nb201 = load_family("nasbench201", task="cifar10", data_dir=args.data)
        except (FileNotFoundError, ValueError) as exc:
            print(f"\n(no NB-201 labels: {exc})")
            nb201 = None
    if nb201 is not None and args.nb201_n < len(nb201):
        pick = np.sort(np.random.default_rng(args.seed).choice(len(nb201), max(2, args.nb201_n), replace=False))
        nb201 = nb201.subset(pick)

    print("\n== 3. Embeddings ==")
    fcm_features, centres = _fcm_space(predictor)
    train_cgs = load_family("nasbench101", n=args.n_train, seed=1).cgs(progress=progress)
    groups_cgs = {"NB-101 (training family)": train_cgs, f"{TARGET_FAMILY} (unseen)": target.cgs(progress=False)}
    if nb201 is not None:
        groups_cgs["NB-201 (unseen)"] = nb201.cgs(progress=progress)
    groups = {}
    for name, cgs in groups_cgs.items():
        emb = predictor.embed(cgs)
        groups[name] = fcm_features.transform(emb, flops_of(cgs)) if fcm_features is not None else emb
    png = plot_embeddings(groups, centres, out / "embeddings.png", seed=args.seed,
                          title="CG embeddings of the shipped predictor (t-SNE of the FCM feature space)")
    print(f"wrote {png}")

    if nb201 is not None:
        print(f"\n== 4. Zero-shot ranking of {len(nb201)} labelled NB-201 CIFAR-10 nets ==")
        rows201, metrics = rank_family(predictor, nb201, progress=progress)
        print(f"SRCC {metrics['srcc']:.3f}   Kendall tau {metrics['kendall_tau']:.3f}   NDCG@10 {metrics['ndcg@10']:.3f}")
        best = [{**r, "ood_text": ood_text(r)} for r in rows201[:5]]
        print(format_table(best, [("rank", "#", "d"), ("arch", "architecture", ""), ("score", "score", ".3f"),
                                  ("mmacs", "MMACs", ".1f"), ("label", "true acc", ".2f")]))
        true = np.array([r["label"] for r in rows201])
        png = plot_pred_vs_true(true, np.array([r["predicted_acc"] for r in rows201]),
                                np.array([r["score"] for r in rows201]), out / "pred_vs_true.png",
                                title=f"NB-201 CIFAR-10, {len(rows201)} nets, predictor trained on NB-101 only",
                                metrics={"SRCC": metrics["srcc"], "KT": metrics["kendall_tau"],
                                         "NDCG@10": metrics["ndcg@10"]},
                                ood=np.array([r["ood"] for r in rows201]))
        print(f"wrote {png}")
    else:
        print("\n(set CGPREDICT_DATA to the labelled-data folder to also rank NB-201 against its true accuracies)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""`make demo`: convert a few models, then rank networks zero-shot with the shipped generalist.

Pipeline position: the whole pipeline — model → CG → features → predictor → **ranking**.

1. Converts three torchvision models to CGs and prints nodes, edges, GMACs, parameters and the
   op histogram.
2. **The generalist** (the package's default predictor, :class:`~cgpredict.generalist.GeneralistPredictor`).

   * When ``$CGPREDICT_DATA`` (or ``--data``) holds the labelled tables: ranks a seeded sample of
     ``--nb201-n`` (default 100) labelled NB-201 CIFAR-10 nets zero-shot with the
     ``generalist_demo`` checkpoint, which was trained without any NB-201-cell family (NB-201,
     NATS size space, TransNAS micro), and prints its Spearman / Kendall τ beside FLOPs alone, the
     best single proxy of the bank on the same nets (picked with the labels, so an upper bound
     no zero-shot user could pick), the generalist's graph-only ranker and the GENNAPE predictor
     pre-trained on NB-101; plots score vs true accuracy and the comparison to
     ``<out>/generalist_nb201.png``. The proxy bank costs ~0.6 s per NB-201 net the first time
     (disk-cached afterwards).
   * Without labels: ranks ``--n`` sampled nets of ``--family`` (default NB-201) with the shipped
     ``generalist`` and prints the predicted top 10 (scores rank the set; they are not accuracies).

3. **The GENNAPE predictor** (``Predictor.pretrained("nb101")``): plots a t-SNE of its CG
   embeddings in the FCM feature space — NB-101 CGs (its training family) and the nets of part 2
   — with the training FCM cluster centres marked, to ``<out>/embeddings.png``.

Run: ``python -m cgpredict.demo [--nb201-n 100] [--n 100] [--family nasbench201] [--no-proxies]
[--out demo_output]`` (a few minutes on 2 CPU cores the first time; converted CGs and proxy scores
are cached in ``~/.cache/cgpredict``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgpredict.quiet import hide_known_warnings

DEFAULT_MODELS = ("resnet18", "mobilenet_v2", "efficientnet_b0")
#: Family ranked (unlabelled sample) when no labelled tables are available.
DEFAULT_FAMILY = "nasbench201"


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


def _finite(values: Sequence[float]) -> np.ndarray:
    """``values`` with NaN / ±inf (a proxy that failed or degenerated) set below every finite value."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    low = float(v[ok].min()) - 1.0 if ok.any() else 0.0
    return np.where(ok, v, low)


def rank_metrics(labels: np.ndarray, score: Sequence[float]) -> tuple[float, float]:
    """``(Spearman, Kendall τ)`` of ``score`` against ``labels`` (non-finite scores ranked last)."""
    from cgpredict.metrics import kendall_tau, spearman

    s = _finite(score)
    return spearman(labels, s), kendall_tau(labels, s)


def best_single_proxy(labels: np.ndarray, bank: Sequence[Any], proxies: Sequence[str]) -> tuple[str, float, float]:
    """``(name, Spearman, Kendall τ)`` of the bank proxy whose scores rank ``labels`` best — picked
    *with the labels*, so an upper bound for any one proxy, not something a zero-shot user could choose."""
    best: tuple[str, float, float] | None = None
    for name in proxies:
        srcc, tau = rank_metrics(labels, [r.scores.get(name, float("nan")) for r in bank])
        if np.isfinite(srcc) and (best is None or srcc > best[1]):
            best = (name, srcc, tau)
    return best if best is not None else ("none", float("nan"), float("nan"))


def generalist_on_labels(cgs: list, labels: np.ndarray, arch_keys: list[str], out: Path, progress: bool,
                         use_proxies: bool, gennape: Any = None) -> Path:
    """Part 2 with labels: rank the labelled nets zero-shot with ``generalist_demo``; print and plot
    its Spearman / Kendall τ beside FLOPs, the best single proxy, the graph-only ranker and GENNAPE."""
    from cgpredict.demo_plots import plot_generalist
    from cgpredict.generalist import GeneralistPredictor
    from cgpredict.ranking import SCORE_NOTE, format_table

    model = GeneralistPredictor.pretrained("generalist_demo", progress=progress)
    excluded = (getattr(model, "card_", None) or {}).get("excluded")
    if excluded:
        print(f"generalist_demo was trained without {', '.join(excluded)}: NB-201 cells are unseen (zero-shot)")
    else:
        print("note: this generalist_demo checkpoint's card names no excluded family, so NB-201 may have been "
              "in its training data (not zero-shot)")
    start = time.perf_counter()
    bank = model.bank_results(cgs) if use_proxies else None
    bank_seconds = time.perf_counter() - start
    score = model.predict(cgs, bank=bank, use_proxies=use_proxies)
    compare: dict[str, tuple[float, float]] = {}
    compare["generalist (zero-shot)" if use_proxies else "generalist, graph only"] = rank_metrics(labels, score)
    if use_proxies:
        compare["generalist, graph only"] = rank_metrics(labels, model.predict(cgs, use_proxies=False))
        name, srcc, tau = best_single_proxy(labels, bank, model.proxies)
        compare[f"best single proxy: {name}"] = (srcc, tau)
    compare["FLOPs"] = rank_metrics(labels, [c.flops for c in cgs])
    if gennape is not None:
        compare["GENNAPE nb101 (zero-shot)"] = rank_metrics(labels, gennape.score(cgs))
    width = max(len(k) for k in compare)
    print(f"{'ranker':<{width}}  Spearman  Kendall tau")
    for key, (srcc, tau) in compare.items():
        print(f"{key:<{width}}  {srcc:>8.3f}  {tau:>11.3f}")
    if use_proxies:
        print(f"(best single proxy: picked with the labels among the {len(model.proxies)} proxies of the bank, "
              f"from the same bank results; the bank took {bank_seconds:.0f} s for {len(cgs)} nets: ~0.6 s per "
              "NB-201 net the first time, read from the disk cache afterwards)")
    order = np.argsort(-score, kind="stable")
    top = [{"rank": place, "arch": arch_keys[i], "score": float(score[i]), "mmacs": cgs[i].flops / 1e6,
            "label": float(labels[i])} for place, i in enumerate(order[:5], start=1)]
    print(format_table(top, [("rank", "#", "d"), ("arch", "architecture", ""), ("score", "score", ".3f"),
                             ("mmacs", "MMACs", ".1f"), ("label", "true acc", ".2f")]))
    print(SCORE_NOTE)
    trained = f"generalist_demo trained without {', '.join(excluded)}" if excluded else "generalist_demo"
    return plot_generalist(labels, score, compare, out / "generalist_nb201.png",
                           title=f"NB-201 CIFAR-10, {len(cgs)} nets, {trained}")


def generalist_on_sample(fam: Any, progress: bool, use_proxies: bool) -> list:
    """Part 2 without labels: rank sampled nets of ``fam`` with the shipped generalist; returns their CGs."""
    from cgpredict.generalist import GeneralistPredictor
    from cgpredict.ranking import SCORE_NOTE, format_table, rank_family

    model = GeneralistPredictor.pretrained("generalist", progress=progress)
    rows, _ = rank_family(model, fam, progress=progress, use_proxies=use_proxies)
    by_key = {fam.key(i): fam.archs[i] for i in range(len(fam))}
    top = [{**r, "arch": arch_summary(by_key[r["arch"]])} for r in rows[:10]]
    print(format_table(top, [("rank", "#", "d"), ("arch", "architecture", ""), ("score", "score", ".3f"),
                             ("mmacs", "MMACs", ".1f")]))
    print(SCORE_NOTE + ("" if use_proxies else " (graph-only ranker: no network was run)"))
    return fam.cgs(progress=False)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="torchvision models for the conversion table")
    parser.add_argument("--nb201-n", type=int, default=100,
                        help="labelled NB-201 CIFAR-10 nets ranked when labels exist")
    parser.add_argument("--n", type=int, default=100, help="sampled --family nets ranked when there are no labels")
    parser.add_argument("--family", default=DEFAULT_FAMILY, help="family sampled when there are no labels")
    parser.add_argument("--no-proxies", action="store_true",
                        help="the generalist's graph-only ranker (no network is run; fast)")
    parser.add_argument("--n-train", type=int, default=300, help="NB-101 CGs shown in the embedding plot")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="labelled-data folder (default $CGPREDICT_DATA)")
    parser.add_argument("--out", default="demo_output", help="folder for the PNGs")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.n < 2 or args.nb201_n < 2:
        parser.error("--n and --nb201-n must be at least 2")
    from cgpredict.quiet import progress_wanted

    progress = progress_wanted(not args.no_progress)  # no bars in a log or pipe: they are escape junk there
    use_proxies = not args.no_proxies
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hide_known_warnings()

    from cgpredict.datasets import load_family
    from cgpredict.datasets.registry import resolve_data_dir
    from cgpredict.demo_plots import plot_embeddings
    from cgpredict.models.graph_data import flops_of
    from cgpredict.predictor import Predictor

    print("== 1. Models -> computation graphs ==")
    conversion_table([m for m in args.models.split(",") if m])

    nb201 = None
    if resolve_data_dir(args.data) is not None:
        try:
            nb201 = load_family("nasbench201", task="cifar10", data_dir=args.data)
        except (FileNotFoundError, ValueError) as exc:
            print(f"\n(no NB-201 labels: {exc})")
    gennape = Predictor.pretrained("nb101", progress=progress)
    if nb201 is not None:
        if args.nb201_n < len(nb201):
            pick = np.sort(np.random.default_rng(args.seed).choice(len(nb201), args.nb201_n, replace=False))
            nb201 = nb201.subset(pick)
        print(f"\n== 2. The generalist: zero-shot ranking of {len(nb201)} labelled NB-201 CIFAR-10 nets "
              "with generalist_demo ==")
        ranked_cgs = nb201.cgs(progress=progress)
        png = generalist_on_labels(ranked_cgs, np.asarray(nb201.labels, dtype=np.float64),
                                   [nb201.key(i) for i in range(len(nb201))], out, progress, use_proxies, gennape)
        print(f"wrote {png}")
        ranked_name = "NB-201 (ranked above)"
    else:
        fam = load_family(args.family, n=args.n, seed=args.seed)
        print(f"\n== 2. The generalist: zero-shot ranking of {len(fam)} sampled {args.family} nets ==")
        ranked_cgs = generalist_on_sample(fam, progress, use_proxies)
        ranked_name = f"{args.family} (ranked above)"
        print("\n(set CGPREDICT_DATA to the labelled-data folder to rank NB-201 against its true accuracies)")

    print("\n== 3. The GENNAPE predictor (pre-trained on NB-101): CG embeddings ==")
    fcm_features, centres = _fcm_space(gennape)
    train_cgs = load_family("nasbench101", n=args.n_train, seed=1).cgs(progress=progress)
    groups = {}
    for name, cgs in {"NB-101 (training family)": train_cgs, ranked_name: ranked_cgs}.items():
        emb = gennape.embed(cgs)
        groups[name] = fcm_features.transform(emb, flops_of(cgs)) if fcm_features is not None else emb
    png = plot_embeddings(groups, centres, out / "embeddings.png", seed=args.seed,
                          title="CG embeddings of the GENNAPE nb101 predictor (t-SNE of the FCM feature space)")
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

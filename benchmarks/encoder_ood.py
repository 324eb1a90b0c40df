"""Leave-one-family-out: does GENNAPE's encoder + FCM, trained on many families, flag a family it never saw? (issue 23)

Pipeline position: families (sampled from the builders, no labels) → CGs → **contrastive encoder
(spectral soft positives) → PCA + log FLOPs → fuzzy C-means** → out-of-distribution score per net.

Issue 23 asks for the GENNAPE core to be pre-trained on the CGs of every family so that "FCM
clusters span families, so memberships and the OOD flag mean something for a new family". This
script measures exactly that, label-free: for each family ``h`` of :func:`cgpredict.datasets.list_families`,

* an encoder (:class:`cgpredict.models.contrastive.ContrastiveEncoder`, seed 0) is trained on the
  ``--n-train`` sampled CGs of every *other* family, then PCA (32) + standardised log GFLOPs and
  FCM (C = 10, m = 2, :class:`cgpredict.models.fcm.FuzzyCMeans`) on their embeddings, as the
  GENNAPE predictor does; the flag threshold is the 99th percentile of the training nets'
  nearest-centre distance (GENNAPE's rule in this package);
* the ``--n-test`` other sampled nets of each training family (never trained on) are *in*, the
  nets of ``h`` are *out*; reported: the share of *out* nets flagged, the share of *in* nets
  flagged (false alarms), and the AUROC of the nearest-centre distance for out vs in;
* baseline on the same nets: the same PCA + FCM rule on the generalist's 10 CG descriptors
  (:func:`cgpredict.generalist.descriptors.cg_descriptors`, standardised), no encoder.

The NB-201 cell families (``nasbench201``, ``nats_sss``, ``transbench101_micro``) share a cell
vocabulary, so a held-out one of them is not new in the sense the others are: read those rows apart.

Each held-out family is one encoder fit; ``--held`` runs a subset (one process per core), results
are kept per family under ``--out`` and ``--merge`` writes the report::

    OMP_NUM_THREADS=1 python benchmarks/encoder_ood.py --held nasbench101 nasbench201 ... --out /tmp/ood
    OMP_NUM_THREADS=1 python benchmarks/encoder_ood.py --merge --out /tmp/ood --report benchmarks/results/encoder_ood.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

NB201_CELL = ("nasbench201", "nats_sss", "transbench101_micro")


def pools(n_train: int, n_test: int, seed: int, progress: bool, executor: str | None = None) -> dict[str, tuple[list, list]]:
    """``family → (train CGs, test CGs)``: ``n_train + n_test`` sampled nets (seeded), split in order."""
    from cgpredict.datasets import list_families, load_family

    out = {}
    for family in list_families():
        start = time.perf_counter()
        cgs = load_family(family, n=n_train + n_test, seed=seed).cgs(progress=progress, executor=executor)
        out[family] = (list(cgs[:n_train]), list(cgs[n_train:]))
        print(f"{family}: {len(cgs)} CGs ({time.perf_counter() - start:.0f} s)", flush=True)
    return out


def _auroc(out_scores: np.ndarray, in_scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(out_scores)), np.zeros(len(in_scores))]
    return float(roc_auc_score(y, np.r_[out_scores, in_scores]))


def _fcm_rule(train_x: np.ndarray, train_gflops: np.ndarray, seed: int):  # noqa: ANN202
    """PCA + log GFLOPs → FCM fitted on the training rows; returns ``score(x, gflops) -> distance``,
    the flag threshold and the training rows' own distances."""
    from cgpredict.models.fcm import FCMFeatures, FuzzyCMeans

    feats = FCMFeatures(32).fit(train_x, train_gflops)
    fcm = FuzzyCMeans(10, 2.0, seed=seed).fit(feats.transform(train_x, train_gflops))

    def score(x: np.ndarray, gflops: np.ndarray) -> np.ndarray:
        return fcm.distances(feats.transform(x, gflops)).min(1)

    return score, float(fcm.ood_threshold_), score(train_x, train_gflops)


def _set_percentile(scores: np.ndarray, train: np.ndarray) -> float:
    """Where a set's median distance falls among the training nets' distances (0–100)."""
    return float(100.0 * np.mean(train < np.median(scores)))


def run_one(held: str, data: dict[str, tuple[list, list]], epochs: int, seed: int) -> dict:
    """One held-out family: encoder + FCM and the descriptor baseline, scored on in/out nets."""
    from cgpredict.generalist.descriptors import cg_descriptors
    from cgpredict.models.contrastive import ContrastiveEncoder
    from cgpredict.predictor.inputs import gflops_of

    train = [cg for f, (tr, _) in data.items() if f != held for cg in tr]
    inside = {f: te for f, (_, te) in data.items() if f != held}
    outside = data[held][0] + data[held][1]
    start = time.perf_counter()
    enc = ContrastiveEncoder(epochs=epochs, seed=seed, progress=False).fit(train)
    fit_s = time.perf_counter() - start
    result: dict = {"held": held, "n_train": len(train), "n_out": len(outside), "epochs": epochs, "seed": seed,
                    "encoder_seconds": round(fit_s, 1)}
    desc = {id(cg): cg_descriptors(cg) for cgs in (train, outside, *inside.values()) for cg in cgs}  # once per net
    desc_train = np.stack([desc[id(cg)] for cg in train])
    mu, sd = desc_train.mean(0), desc_train.std(0) + 1e-9
    views = {
        "encoder": lambda cgs: enc.transform(cgs),
        "descriptors": lambda cgs: (np.stack([desc[id(cg)] for cg in cgs]) - mu) / sd,
    }
    for name, view in views.items():
        score, threshold, s_train = _fcm_rule(view(train), gflops_of(train), seed)
        s_out = score(view(outside), gflops_of(outside))
        s_in = {f: score(view(cgs), gflops_of(cgs)) for f, cgs in inside.items()}
        all_in = np.concatenate(list(s_in.values()))
        result[name] = {
            "flagged_out": float((s_out > threshold).mean()),
            "flagged_in": float((all_in > threshold).mean()),
            "flagged_in_by_family": {f: float((v > threshold).mean()) for f, v in s_in.items()},
            "auroc": _auroc(s_out, all_in),
            "set_percentile_out": _set_percentile(s_out, s_train),
            "set_percentile_in_max": max(_set_percentile(v, s_train) for v in s_in.values()),
            "distances": {"train": s_train.round(5).tolist(), "out": s_out.round(5).tolist(),
                          "in": {f: v.round(5).tolist() for f, v in s_in.items()}},
        }
    print(json.dumps({k: v for k, v in result.items() if k not in ("encoder", "descriptors")}),
          {n: {k: round(v, 3) for k, v in result[n].items() if isinstance(v, float)} for n in views}, flush=True)
    return result


def graph_columns(data: dict[str, tuple[list, list]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``family → (train, test)`` arrays of the generalist's graph columns (:data:`GRAPH_COLUMNS`: log
    FLOPs, log params, CG descriptors), as :meth:`GeneralistPredictor.columns` computes them."""
    from cgpredict.generalist import GRAPH_COLUMNS, GeneralistPredictor

    model = GeneralistPredictor(progress=False)
    keep = [model.column_names.index(c) for c in GRAPH_COLUMNS]
    return {f: tuple(model.columns(cgs, use_proxies=False)[:, keep] for cgs in parts) for f, parts in data.items()}


def coverage_rule(columns: dict[str, tuple[np.ndarray, np.ndarray]], held: str) -> dict[str, float]:
    """The shipped generalist's set-level rule (:meth:`GeneralistPredictor.coverage`) in this protocol:
    each training family's ``n_train`` nets are one group; a set's coverage is the best group's share of
    (net, column) values inside that group's [min, max]; flagged below :data:`OOD_COVERAGE`."""
    ranges = [(np.nanmin(train, 0), np.nanmax(train, 0)) for f, (train, _) in columns.items() if f != held]

    def best(cols: np.ndarray) -> float:
        return max(float(np.mean((cols >= lo) & (cols <= hi))) for lo, hi in ranges)

    out_cover = best(np.concatenate(columns[held]))
    in_cover = min(best(test) for f, (_, test) in columns.items() if f != held)
    return {"coverage_out": out_cover, "coverage_in_min": in_cover}


def merge(out_dir: Path, report: str | None, command: str, data: dict[str, tuple[list, list]]) -> int:
    """Collect the per-family results into one table (and a markdown report)."""
    from cgpredict.provenance import code_line

    from cgpredict.generalist.model import OOD_COVERAGE

    rows = [json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json"))]
    if not rows:
        print(f"no results under {out_dir}")
        return 1
    columns = graph_columns(data)
    for r in rows:
        r["coverage"] = coverage_rule(columns, r["held"])
    head = "nets flagged out / in | AUROC | set percentile out / in max"
    lines = [f"| held-out family | NB-201 cell | nets out | encoder: {head} | descriptors: {head} | "
             "coverage rule: out / in min |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{v['flagged_out']:.0%} / {v['flagged_in']:.1%} | {v['auroc']:.3f} | "
                 f"{v['set_percentile_out']:.0f} / {v['set_percentile_in_max']:.0f}"
                 for v in (r["encoder"], r["descriptors"])]
        cov = r["coverage"]
        lines.append(f"| {r['held']} | {'yes' if r['held'] in NB201_CELL else ''} | {r['n_out']} | {cells[0]} | "
                     f"{cells[1]} | {cov['coverage_out']:.0%}{' (flag)' if cov['coverage_out'] < OOD_COVERAGE else ''} / "
                     f"{cov['coverage_in_min']:.0%} |")
    summary = []
    for name in ("encoder", "descriptors"):
        for subset, pick in (("all", lambda r: True), ("not NB-201 cell", lambda r: r["held"] not in NB201_CELL)):
            sel = [r[name] for r in rows if pick(r)]
            above = sum(s["set_percentile_out"] > s["set_percentile_in_max"] for s in sel)
            summary.append(
                f"- {name}, {subset} ({len(sel)} families): nets flagged out {np.mean([s['flagged_out'] for s in sel]):.0%}"
                f", in {np.mean([s['flagged_in'] for s in sel]):.1%}; AUROC {np.mean([s['auroc'] for s in sel]):.3f}; "
                f"held-out set's median distance above every in-family set's in {above}/{len(sel)}")
    for subset, pick in (("all", lambda r: True), ("not NB-201 cell", lambda r: r["held"] not in NB201_CELL)):
        sel = [r["coverage"] for r in rows if pick(r)]
        summary.append(f"- coverage rule, {subset} ({len(sel)} families): held-out family flagged (coverage < "
                       f"{OOD_COVERAGE:.0%}) in {sum(c['coverage_out'] < OOD_COVERAGE for c in sel)}/{len(sel)} "
                       f"(< 50%, the rule before: {sum(c['coverage_out'] < 0.5 for c in sel)}/{len(sel)}); held-out "
                       f"coverage below every in-family set's in "
                       f"{sum(c['coverage_out'] < c['coverage_in_min'] for c in sel)}/{len(sel)}; an in-family set "
                       f"flagged in {sum(c['coverage_in_min'] < OOD_COVERAGE for c in sel)}/{len(sel)} runs")
    from cgpredict.generalist import GeneralistPredictor

    shipped = ["| family | " + " | ".join(f"`{n}`: nearest group, coverage" for n in ("generalist", "generalist_demo"))
               + " |", "|---|---|---|"]
    models = {n: GeneralistPredictor.pretrained(n, progress=False) for n in ("generalist", "generalist_demo")}
    for family, (train, test) in data.items():
        cells = []
        for model in models.values():
            rep = model.ood(train + test)
            cells.append(f"{rep['nearest_group']}, {rep['coverage']:.2f}{' **flag**' if rep['flag'] else ''}")
        shipped.append(f"| {family} | " + " | ".join(cells) + " |")
    r0 = rows[0]
    text = "\n".join([
        "# Encoder + FCM out-of-distribution flag, leave-one-family-out (issue 23)", "",
        "Reproduce with:", "", "```", command, "```", "", code_line(), "",
        f"Each row: a contrastive encoder ({r0['epochs']} epochs, seed {r0['seed']}) trained on "
        f"{r0['n_train']} sampled CGs of the other families (label-free), PCA + FCM on its embeddings; "
        "*out* = every sampled net of the held-out family, *in* = the training families' other sampled nets "
        "(not trained on). Flag = nearest-centre distance above the training 99th percentile; AUROC of "
        "that distance, out vs in. *descriptors* = the same rule on the generalist's 10 standardised CG "
        "descriptors, no encoder. *Set percentile*: where a set's median nearest-centre distance falls among "
        "the training nets' own distances (out = the held-out family; in max = the highest of the training "
        "families' held-back sets): a set-level rule flags a family when its percentile is high. "
        "*coverage rule*: the shipped generalist's `ood` rule (best training family's share of the set's graph "
        f"column values inside its [min, max]; flag below {OOD_COVERAGE:.0%}) with each training family's sampled "
        "nets as one group; *in min* is the lowest coverage of a training family's held-back set. "
        "Encoder fit seconds per row: "
        + ", ".join(f"{r['held']} {r['encoder_seconds']:.0f}" for r in rows) + ".", "",
        *lines, "", "Means over held-out families:", "", *summary, "",
        "## The shipped checkpoints' rule on the same sampled nets", "",
        f"`GeneralistPredictor.ood` of all {len(next(iter(data.values()))[0]) + len(next(iter(data.values()))[1])} "
        f"sampled nets of each family (graph columns only, no network run; flag below {OOD_COVERAGE:.0%} coverage). "
        "`generalist` was trained on NB-101, NB-201, NB-301, TransNAS micro and NATS size space tables; "
        "`generalist_demo` on NB-101 and NB-301 only; neither saw ProxylessNAS, OFA-MBv3, OFA-ResNet50, "
        "HiAML, Inception or Two-Path.", "", *shipped, ""])
    print(text)
    if report:
        from cgpredict.fileio import atomic_write

        atomic_write(report, text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the held-out families asked for (or merge); returns an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", nargs="+", default=None, help="held-out families to run (default: all)")
    parser.add_argument("--n-train", type=int, default=150, help="sampled nets per family the encoder trains on")
    parser.add_argument("--n-test", type=int, default=50, help="further sampled nets per family, scored as *in*")
    parser.add_argument("--epochs", type=int, default=5, help="encoder epochs (the shipped GENNAPE checkpoint: 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="encoder_ood_results", help="folder of the per-family JSON results")
    parser.add_argument("--merge", action="store_true", help="write the report from the results under --out")
    parser.add_argument("--report", default=None, help="--merge: markdown report path")
    parser.add_argument("--command", default=None, help="--merge: the command line(s) to print as 'reproduce with'")
    parser.add_argument("--pools-only", action="store_true", help="only convert (and disk-cache) the sampled CGs")
    parser.add_argument("--executor", default=None, help="convert the CGs there (e.g. local:2)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    data = pools(args.n_train, args.n_test, args.seed, not args.no_progress, args.executor)
    if args.merge:
        return merge(out_dir, args.report, args.command or "python benchmarks/encoder_ood.py " + " ".join(sys.argv[1:]),
                     data)
    from cgpredict.fileio import atomic_write

    if args.pools_only:
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for held in args.held or list(data):
        if held not in data:
            parser.error(f"unknown family {held!r}; choose from {sorted(data)}")
        path = out_dir / f"{held}.json"
        if path.exists():
            print(f"{held}: done already ({path})")
            continue
        atomic_write(path, json.dumps(run_one(held, data, args.epochs, args.seed), indent=1))
    return 0


if __name__ == "__main__":
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    sys.exit(main())

"""Leave-one-family-out: a k-GNN on the CG with per-node proxy statistics as node features (issue 23).

Pipeline position: labelled tables → CGs + proxy bank node statistics (cached) → **k-GNN regressor**
(:class:`cgpredict.models.gnn.GNNPredictor`) trained on every *other* family → ranking of the
held-out family, scored against its labels; beside the shipped generalist's recipe on the same nets.

The question it answers: do per-node proxy statistics help a graph network that reads the whole
CG, when trained across families? Arms (one model seed each; the nets of ``benchmarks/generalist.py``):

* ``k-GNN`` — node features of the CG only;
* ``k-GNN + node stats`` — plus, per node, the bank's statistics of :data:`STATS` (SynFlow saliency,
  NASWOT kernel, ZiCo term, MeCo eigenvalue, activation-gradient std), each replaced by its rank
  position among all nodes of the ranked set where it is defined (so scales drop out), NaN → 0.5
  plus a mask column;
* ``generalist`` — the shipped recipe (ridge on set-relative columns) trained on the same tables;
* ``mean rank (generalist, k-GNN + node stats)`` — the two combined without any fitting.

Targets are standardised within each table (normal scores of ranks), every table is one group;
groups are balanced by sampling the same number of nets per training table into each epoch's pool
(``--per-table``). Each held-out family is one fit, so a run is about ``5 × fit time``.

Example::

    CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=2 python benchmarks/generalist_kgnn.py \\
        --epochs 30 --report benchmarks/results/generalist_kgnn.md
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

STATS = ("synflow", "naswot", "zico", "meco", "grad_std")


def load(data_dir: str, sizes: str) -> list:
    """Every table of ``benchmarks/generalist.py`` with its CGs and bank node statistics."""
    from generalist import FAMILY_OF, _size
    from proxy_bank_report import _load, _transnas_cgs, all_tables

    from cgpredict.generalist import FEATURE_PROXIES, GeneralistPredictor
    from cgpredict.proxies.bank import BankConfig, bank_scores_many

    out = []
    for table in all_tables():
        try:
            fam = _load(table, data_dir)
        except (LookupError, FileNotFoundError, ImportError, ValueError) as exc:
            print(f"{table.name}: skipped ({exc})", flush=True)
            continue
        idx = np.sort(np.random.default_rng(0).choice(len(fam), min(_size(table.name, sizes), len(fam)), replace=False))
        fam = fam.subset(idx)
        cgs = _transnas_cgs(fam, 64) if table.family == "transbench101_micro" else fam.cgs(progress=False)
        bank = bank_scores_many(cgs, FEATURE_PROXIES, BankConfig(), progress=False)
        raw = GeneralistPredictor(progress=False).columns(cgs, bank=bank)
        family = next(f for p, f in FAMILY_OF.items() if table.name.startswith(p))
        out.append({"name": table.name, "family": family, "cgs": cgs, "bank": bank, "raw": raw,
                    "labels": np.asarray(fam.labels, dtype=float)})
        print(f"{table.name}: {len(cgs)} nets", flush=True)
    return out


def node_columns(bank: list, cgs: list, stats: tuple[str, ...] = STATS) -> list[np.ndarray]:
    """Per CG ``[num_nodes, 2·len(stats)]``: each statistic's rank position among all defined nodes of
    the set (``[0, 1]``; 0.5 where undefined) and a 0/1 "undefined" mask."""
    from scipy.stats import rankdata

    sizes = [cg.num_nodes for cg in cgs]
    cols = []
    for s in stats:
        values = np.concatenate([np.asarray(r.node.get(s, np.full(n, np.nan)), dtype=float)
                                 for r, n in zip(bank, sizes)])
        ok = np.isfinite(values)
        pos = np.full(values.shape, 0.5)
        if ok.sum() >= 2:
            pos[ok] = (rankdata(values[ok]) - 1) / (ok.sum() - 1)
        cols += [pos, (~ok).astype(float)]
    stacked = np.stack(cols, axis=1).astype(np.float32)
    return np.split(stacked, np.cumsum(sizes)[:-1])


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; returns an exit code."""
    from generalist import CELL_FAMILIES, DEFAULT_SIZES, TableData, fit_generalist, metrics

    from cgpredict.generalist import GeneralistPredictor, within_group_targets
    from cgpredict.models.gnn import GNNPredictor
    from cgpredict.provenance import code_line

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("CGPREDICT_DATA", ""))
    parser.add_argument("--sizes", default=DEFAULT_SIZES)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--per-table", type=int, default=60, help="nets per training table in the epoch pool")
    parser.add_argument("--families", default="", help="held-out families (default: all)")
    parser.add_argument("--report", default=None)
    args = parser.parse_args(argv)
    if not args.data_dir:
        print("set CGPREDICT_DATA or pass --data-dir", file=sys.stderr)
        return 2
    start = time.perf_counter()
    tables = load(args.data_dir, args.sizes)
    for t in tables:
        t["nodes"] = node_columns(t["bank"], t["cgs"])
    families = list(dict.fromkeys(t["family"] for t in tables))
    held_out = args.families.split(",") if args.families else families
    rows, fit_seconds = [], []
    for held in held_out:
        train = [t for t in tables if t["family"] != held]
        rng = np.random.default_rng(0)
        picks = [np.sort(rng.choice(len(t["labels"]), min(args.per_table, len(t["labels"])), replace=False))
                 for t in train]
        cgs = [t["cgs"][i] for t, p in zip(train, picks) for i in p]
        nodes = [t["nodes"][i] for t, p in zip(train, picks) for i in p]
        y = np.concatenate([within_group_targets(t["labels"][p]) for t, p in zip(train, picks)])
        gen = fit_generalist([TableData(t["name"], t["family"], t["raw"], {}, t["labels"], 0) for t in train],
                             [f for f in families if f != held])  # the shipped recipe
        models = {}
        for arm, extra in (("k-GNN", None), ("k-GNN + node stats", nodes)):
            t0 = time.perf_counter()
            model = GNNPredictor("kgnn", epochs=args.epochs, flops_transform=False, seed=0, progress=False,
                                 extra_node_dim=0 if extra is None else 2 * len(STATS))
            models[arm] = model.fit(cgs, y, node_extra=extra)
            fit_seconds.append(time.perf_counter() - t0)
            print(f"held out {held}: {arm} fitted in {fit_seconds[-1]:.0f} s", flush=True)
        for t in tables:
            if t["family"] != held:
                continue
            scores = {"generalist": gen.predict([None] * len(t["labels"]), raw=t["raw"]),
                      "k-GNN": models["k-GNN"].decision_function(t["cgs"]),
                      "k-GNN + node stats": models["k-GNN + node stats"].decision_function(t["cgs"], node_extra=t["nodes"])}
            from scipy.stats import rankdata

            scores["mean rank (generalist, k-GNN + node stats)"] = (rankdata(scores["generalist"])
                                                                    + rankdata(scores["k-GNN + node stats"]))
            flops = metrics(t["labels"], t["raw"][:, GeneralistPredictor().column_names.index("log_flops")])[0]
            row = {"table": t["name"], "family": t["family"], "n": len(t["labels"]), "FLOPs": flops}
            row.update({k: metrics(t["labels"], v)[0] for k, v in scores.items()})
            rows.append(row)
            print(row, flush=True)
    arms = ["k-GNN", "k-GNN + node stats", "generalist", "mean rank (generalist, k-GNN + node stats)"]
    lines = ["# k-GNN with per-node proxy statistics, leave-one-family-out zero-shot (issue 23)", "",
             "Reproduce with:", "", "```",
             "CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=2 python benchmarks/generalist_kgnn.py "
             + " ".join(sys.argv[1:]), "```", "", code_line(), "",
             f"k-GNN: 6 layers × 32, MSE on within-table normal-score targets, {args.epochs} epochs, "
             f"{args.per_table} nets per training table, seed 0 (one seed: a fit takes "
             f"{np.mean(fit_seconds):.0f} s on this CPU). Node statistics: {', '.join(STATS)} (rank position "
             "among the set's nodes + mask). `generalist`: the shipped recipe on every net of the training "
             f"tables. NB-201-cell families: {', '.join(CELL_FAMILIES)}. Wall time {time.perf_counter() - start:.0f} s.",
             "", "Spearman ρ on the held-out table:", "",
             "| table | n | " + " | ".join(arms) + " | FLOPs |", "|---|---|" + "---|" * (len(arms) + 1)]
    for r in rows:
        lines.append(f"| {r['table']} | {r['n']} | " + " | ".join(f"{r[a]:+.3f}" for a in arms) + f" | {r['FLOPs']:+.3f} |")
    means = {a: np.mean([np.mean([r[a] for r in rows if r["family"] == f]) for f in dict.fromkeys(r["family"] for r in rows)])
             for a in [*arms, "FLOPs"]}
    lines += ["", "Mean over held-out families (tables averaged within their family first): "
              + "; ".join(f"`{a}` {v:+.3f}" for a, v in means.items()) + "."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.report:
        from cgpredict.fileio import atomic_write

        atomic_write(args.report, text)
    return 0 if all(math.isfinite(v) for v in means.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

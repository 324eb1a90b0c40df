"""Which nodes MeCo sums over: the bank's per-node MeCo values re-summed over node subsets (issue 22).

Pipeline position: labelled table → CGs → proxy bank (disk cache; per-node λ_min of MeCo) → **sums
over node subsets** → Spearman with the labels. The bank sums λ_min over every CG node with a
feature map; the paper sums over layers. This reads the cached per-node values (no network is run
when the table's bank entries are cached, e.g. after ``benchmarks/proxies.py --bank --tables nb301
--n 725``) and prints ρ of the sum over: every node, conv outputs, ReLU outputs, norm outputs,
merges (add/concat).

    CGPREDICT_DATA=/work/shared/data python benchmarks/meco_layers.py --table nb301
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SUBSETS = {
    "every node (the bank)": lambda op: True,
    "conv outputs": lambda op: op in ("conv", "depthwise_conv", "grouped_conv"),
    "relu outputs": lambda op: op == "relu",
    "norm outputs": lambda op: "norm" in op,
    "merges (add/concat)": lambda op: op in ("add", "concat"),
}


def main(argv: list[str] | None = None) -> int:
    """Print ρ per node subset; returns an exit code."""
    from proxy_bank_report import _load, all_tables

    from cgpredict.metrics import spearman
    from cgpredict.proxies.bank import BankConfig, bank_scores_many

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="nb301", help="a table name of benchmarks/proxy_bank_report.py")
    parser.add_argument("--data-dir", default=os.environ.get("CGPREDICT_DATA", ""))
    args = parser.parse_args(argv)
    table = next((t for t in all_tables() if t.name == args.table), None)
    if table is None:
        parser.error(f"unknown table {args.table!r}")
    fam = _load(table, args.data_dir)
    cgs = fam.cgs(progress=False)
    results = bank_scores_many(cgs, ["meco"], BankConfig(), progress=True)
    y = np.asarray(fam.labels, dtype=float)
    print(f"{args.table}: MeCo summed over node subsets, {len(cgs)} nets")
    for name, keep in SUBSETS.items():
        sums = []
        for cg, res in zip(cgs, results):
            values = [v for n, v in zip(cg.nodes, res.node["meco"]) if keep(n.op) and np.isfinite(v)]
            sums.append(float(np.sum(values)) if values else np.nan)
        s = np.asarray(sums)
        ok = np.isfinite(s)
        print(f"  {name:<24} rho {spearman(y[ok], s[ok]):+.3f}  ({int(ok.sum())} nets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

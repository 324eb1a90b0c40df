"""MeCo diagnostics (issue 22): which nodes it sums over, and how much its one input sample matters.

Pipeline position: labelled table → CGs → proxy bank (disk cache; per-node λ_min of MeCo) → **sums
over node subsets** / **MeCo of other samples of the batch** → Spearman with the labels.

* Node subsets: the bank sums λ_min over every CG node with a feature map; the paper sums over
  layers. This re-sums the cached per-node values (no network is run when the table's bank entries
  are cached, e.g. after ``benchmarks/proxies.py --bank --tables nb301 --n 725``) over: every node,
  conv outputs, ReLU outputs, norm outputs, merges (add/concat).
* ``--samples K``: MeCo reads the feature maps of *one* sample (the first of the bank's batch). This
  reruns each network's forward pass on the bank's first half-batch (same weights, inputs and batch
  statistics as the bank) and computes MeCo from each of its first ``K`` samples: the ρ of each
  sample's MeCo, of the mean over the first 1, 2, 4, … samples, and the agreement between samples 0
  and 1. It checks that sample 0 reproduces the bank's MeCo exactly.

    CGPREDICT_DATA=/work/shared/data python benchmarks/meco_layers.py --table nb301
    CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=1 python benchmarks/meco_layers.py --table nb301 \\
        --inputs noise --samples 8 --report benchmarks/results/meco_samples_nb301.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
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


def meco_per_sample(cg, config, samples: int) -> np.ndarray:  # noqa: ANN001
    """MeCo of ``cg`` from each of the first ``samples`` samples of the bank's first half-batch
    (the bank's own value is sample 0's)."""
    import torch

    from cgpredict.proxies import bank
    from cgpredict.proxies.zc_activation import _min_eig_corr
    from cgpredict.proxies.zc_pass import build_net, feature_map_rank

    net = build_net(cg, config.seed, init=config.init)
    images = bank._images(cg, config)
    with torch.no_grad():
        values = net.forward_nodes(images[: config.batch_size // 2])
    rank = feature_map_rank(cg)
    total = torch.zeros(samples, dtype=torch.float64)
    for node in cg.nodes:
        v = values.get(node.id)
        if node.op in ("input", "output") or v is None or v.dim() != rank:
            continue
        c, positions = int(v.shape[1]), int(np.prod(v.shape[2:]))
        if c >= 2 and positions >= 2:
            total += _min_eig_corr(v[:samples].reshape(samples, c, positions))
    return total.numpy()


def main(argv: list[str] | None = None) -> int:
    """Print (and with ``--report`` write) the diagnostics; returns an exit code."""
    from proxy_bank_report import _load, all_tables, sample_indices
    from report_io import emit_report

    from cgpredict.metrics import spearman
    from cgpredict.provenance import code_line
    from cgpredict.proxies.bank import BankConfig, bank_scores_many
    from cgpredict.quiet import hide_known_warnings, progress_bar

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="nb301", help="a table name of benchmarks/proxy_bank_report.py")
    parser.add_argument("--data-dir", default=os.environ.get("CGPREDICT_DATA", ""))
    parser.add_argument("--n", type=int, default=None, help="seeded subsample of the table (default: all of it)")
    parser.add_argument("--inputs", default="natural", choices=("natural", "noise"))
    parser.add_argument("--samples", type=int, default=0, help="also MeCo of the first K samples of the batch")
    parser.add_argument("--report", default=None)
    args = parser.parse_args(argv)
    hide_known_warnings()
    table = next((t for t in all_tables() if t.name == args.table), None)
    if table is None:
        parser.error(f"unknown table {args.table!r}")
    config = BankConfig(inputs=args.inputs)
    if not 0 <= args.samples <= config.batch_size // 2:
        parser.error(f"--samples must be between 0 and {config.batch_size // 2} (the half-batch)")
    fam = _load(table, args.data_dir)
    if args.n is not None:
        fam = fam.subset(sample_indices(len(fam), args.n, 0))
    cgs = fam.cgs(progress=False)
    results = bank_scores_many(cgs, ["meco"], config)
    y = np.asarray(fam.labels, dtype=float)
    lines = [f"# MeCo diagnostics on {args.table} ({len(cgs)} nets, {args.inputs} inputs)", "", "Reproduce with:", "",
             "```", "CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=1 python benchmarks/meco_layers.py "
             + " ".join(sys.argv[1:] if argv is None else argv), "```", "", code_line(), "",
             "MeCo summed over node subsets (the bank's per-node λ_min):", "", "| nodes | Spearman ρ | nets |",
             "|---|---|---|"]
    for name, keep in SUBSETS.items():
        sums = []
        for cg, res in zip(cgs, results):
            values = [v for n, v in zip(cg.nodes, res.node["meco"]) if keep(n.op) and np.isfinite(v)]
            sums.append(float(np.sum(values)) if values else np.nan)
        s = np.asarray(sums)
        ok = np.isfinite(s)
        lines.append(f"| {name} | {spearman(y[ok], s[ok]):+.3f} | {int(ok.sum())} |")
    if args.samples:
        start = time.perf_counter()
        per = np.array([meco_per_sample(cg, config, args.samples)
                        for cg in progress_bar(cgs, desc="MeCo per sample", unit="net")])
        bank_meco = np.array([r.scores["meco"] for r in results])
        same = bool(np.allclose(per[:, 0], bank_meco, rtol=1e-6, atol=1e-9, equal_nan=True))
        means = [k for k in (1, 2, 4, 8, 16) if k <= args.samples]
        lines += ["", f"MeCo from each of the first {args.samples} samples of the bank's first half-batch "
                  f"({time.perf_counter() - start:.0f} s; sample 0 reproduces the bank's MeCo exactly: "
                  f"{'yes' if same else 'NO'}):", "",
                  "| sample | " + " | ".join(str(k) for k in range(args.samples)) + " |",
                  "|---|" + "---|" * args.samples,
                  "| ρ with labels | " + " | ".join(f"{spearman(y, per[:, k]):+.3f}" for k in range(args.samples)) + " |",
                  "", "| mean over the first | " + " | ".join(f"{k}" for k in means) + " |",
                  "|---|" + "---|" * len(means),
                  "| ρ with labels | " + " | ".join(f"{spearman(y, per[:, :k].mean(1)):+.3f}" for k in means) + " |"]
        if args.samples >= 2:
            lines += ["", f"Agreement (Spearman) of samples 0 and 1 over the nets: {spearman(per[:, 0], per[:, 1]):+.3f}."]
    emit_report("\n".join(lines) + "\n", args.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

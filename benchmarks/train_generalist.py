"""Train the shipped generalist checkpoints from the labelled tables (issue 23).

Pipeline position: labelled tables → CGs → proxy bank (disk-cached, resumable) + CG descriptors →
:class:`cgpredict.generalist.GeneralistPredictor` fitted on every table as a group → checkpoint folders
with a model card:

* ``cgpredict/checkpoints/generalist`` — every labelled family (the default of ``cgpredict rank``,
  ``predict`` and ``search``);
* ``cgpredict/checkpoints/generalist_demo`` — the same without the NB-201-cell families (NB-201,
  NATS-Bench size space, TransNAS-Bench-101 micro), so ``make demo`` ranks labelled NB-201 nets
  zero-shot, honestly.

Tables and samples are those of ``benchmarks/generalist.py`` (``--sizes``, same sample seed), so the
bank cache that benchmark filled answers; a net missing from the cache is scored and added (the
build is resumable: rerun after an interruption and only the missing nets are computed). Each cell
vocabulary carries total weight 1, split over its tables (``benchmarks/generalist.py --balance
vocabulary``, the setting its leave-one-family-out runs chose).

Example::

    CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=1 python benchmarks/train_generalist.py --force --inputs noise
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = {"generalist": None, "generalist_demo": ("NB-201", "TransNAS micro", "NATS sss")}


def _card(name: str, tables: list, excluded: tuple[str, ...] | None, model, seconds: float,  # noqa: ANN001
          load_seconds: float, args: argparse.Namespace) -> str:
    from cgpredict.provenance import code_line

    used = [t for t in tables if not excluded or t.family not in excluded]
    fams = list(dict.fromkeys(t.family for t in used))
    coef = model.ranker_.coef_
    names = list(model.ranker_features)
    top = sorted(zip(names, coef), key=lambda kv: -abs(kv[1]))[:12]
    cmd = "CGPREDICT_DATA=/work/shared/data OMP_NUM_THREADS=1 python benchmarks/train_generalist.py " + " ".join(
        sys.argv[1:])
    lines = [f"# Model card: `{name}`", "",
             f"`cgpredict.generalist.GeneralistPredictor` (kind `{model.kind}`, alpha {model.alpha}, "
             f"structure_penalty {model.structure_penalty:g}): a linear ranking model on "
             "set-relative columns (each column replaced by its rank position within the set being ranked): "
             "the proxy bank's training-free scores (SynFlow, NASWOT, SNIP, grad-norm, Fisher, Jacobian "
             "covariance, ZiCo, MeCo, the four AZ-NAS scores), log FLOPs, log params, ten CG descriptors "
             "(depth, shortest weighted path, number of paths, merges, pools, kernel area, width, …) and the "
             "min/median over nodes of five per-node proxy statistics; plus a graph-only ranker "
             "(FLOPs, params, descriptors) used with `--no-proxies`. The structure columns (descriptors and "
             f"node statistics) carry {model.structure_penalty:g}× the ridge penalty of the others: across "
             "families they transfer worse than the proxy scores (leave-one-family-out picked the multiplier), "
             "so zero-shot this model ranks almost entirely from proxy scores, FLOPs and params, while "
             "`finetune` on a family's own labels can give the structure columns weight.", "",
             "Reproduce with:", "", "```", cmd, "```", "", code_line(), "",
             "## Training data", "",
             f"Families: {', '.join(fams)}"
             + (f" (excluded: {', '.join(excluded)}, which share the NB-201 cell — so NB-201 rankings by this "
                "checkpoint are zero-shot)" if excluded else "") + ". Each table is one group: labels are "
             "compared only within a group; each cell vocabulary carries total weight 1, split evenly over its "
             "tables (NB-201, NATS size space and TransNAS micro share the NB-201 cell, so together they weigh as "
             "much as NB-101 or NB-301; the leave-one-family-out protocol chose this over one unit per family). Sample "
             f"seed {args.sample_seed}; model seed 0 (ridge is deterministic).", "",
             "| table | family | nets | weight |", "|---|---|---|---|"]
    for g, info in model.groups_.items():
        fam = next(t.family for t in used if t.name == g)
        lines.append(f"| {g} | {fam} | {info['n']} | {info['weight']:.3f} |")
    lines += ["", "Label sources: `../shared/data` (see its README): NAS-Bench-Suite-Zero tables (naslib) for "
              "NB-101, NB-201 ×3, NB-301 and TransNAS-Bench-101 micro ×7; the 200-epoch NB-201 CIFAR-10 table; "
              "NATS-Bench size space ×3. TransNAS nets are scored as their class_scene network at 64×64.", "",
              "## Quality", "",
              "Leave-one-family-out zero-shot Spearman (this model's recipe, each family held out in turn, "
              "3 seeds), ablations and baselines: "
              f"`benchmarks/results/{'generalist_lofo.md' if args.inputs == 'natural' else 'generalist_lofo_noise.md'}` "
              f"(`benchmarks/generalist.py --inputs {args.inputs}`). Proxy bank inputs: {args.inputs} "
              f"(`BankConfig(inputs={args.inputs!r})`, batch 32, seed 0). A checkpoint trained on a family cannot be evaluated zero-shot on it: "
              "use the LOFO table for that."
              + (" Zero-shot on all 15,625 NB-201 networks (200-epoch labels, CIFAR-10 / CIFAR-100 / "
                 "ImageNet16-120), beside FLOPs and every proxy: `benchmarks/results/generalist_nb201_full.md` "
                 "(`benchmarks/generalist_nb201_full.py`)." if name == "generalist_demo" else ""), "",
              "## Largest weights (rank-position columns; masks are 0/1)", "", "| column | weight |", "|---|---|"]
    lines += [f"| {n} | {c:+.3f} |" for n, c in top]
    lines += ["", "## Cost (2-core CPU)", "",
              f"- Reading tables, converting CGs and proxy scores (cache first): {load_seconds:.0f} s this run "
              "(cold, the proxy bank: about 0.4 s per NB-201 net, 1.8 s per NB-101 net, 2.4 s per NB-301 net on "
              "one core, `benchmarks/results/proxy_bank_speed.md`).",
              f"- Fitting both rankers: {seconds:.2f} s.",
              "- Inference: the proxy bank dominates; `cgpredict rank` on 1,000 NB-201 nets with proxies and the "
              "graph-only rate are in `benchmarks/results/generalist_cost.md`.",
              "", "## Limits", "",
              "- Scores rank networks *within the set passed together*; their scale means nothing and they are "
              "not accuracies. A single network is placed against the stored training group nearest in FLOPs.",
              "- Families far from every training family (transformers, detection heads) have not been measured.",
              "- Linear in rank features: it learns which signals to trust on average across families, not "
              "family-specific interactions; `finetune` adapts it with a few labels.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Train and save the checkpoints; returns an exit code."""
    from generalist import DEFAULT_SIZES, fit_generalist, load_tables

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("CGPREDICT_DATA", ""))
    parser.add_argument("--sizes", default=DEFAULT_SIZES)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "cgpredict" / "checkpoints"), help="folder of the checkpoints")
    parser.add_argument("--only", default="", help="train only this checkpoint (generalist or generalist_demo)")
    parser.add_argument("--force", action="store_true", help="replace existing checkpoint folders")
    parser.add_argument("--inputs", default="noise", choices=("natural", "noise"),
                        help="the proxy bank's input images, stored in the checkpoint (its `bank` parameter; "
                             "default: noise, as the shipped checkpoints)")
    args = parser.parse_args(argv)
    if not args.data_dir:
        print("set CGPREDICT_DATA or pass --data-dir", file=sys.stderr)
        return 2
    names = [args.only] if args.only else list(CHECKPOINTS)
    for name in names:
        target = Path(args.out) / name
        if target.exists() and not args.force:
            print(f"{target} exists; pass --force to replace it", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    tables = load_tables(args.data_dir, args.sizes, args.sample_seed, 64, inputs=args.inputs)
    load_seconds = time.perf_counter() - t0
    for name in names:
        excluded = CHECKPOINTS[name]
        used = [t for t in tables if not excluded or t.family not in excluded]
        families = sorted({t.family for t in used})
        t1 = time.perf_counter()
        opts = {"bank": {"inputs": args.inputs}} if args.inputs != "natural" else None
        model = fit_generalist(tables, families, opts)  # the shipped recipe: every net, one unit per cell vocabulary
        seconds = time.perf_counter() - t1
        card = _card(name, tables, excluded, model, seconds, load_seconds, args)
        path = model.save(Path(args.out) / name, card={"families": families, "excluded": list(excluded or ()),
                                                      "tables": {t.name: len(t.labels) for t in used}},
                          model_card=card)
        size = sum(f.stat().st_size for f in path.iterdir())
        print(f"wrote {path} ({size / 1e3:.0f} kB; fit {seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

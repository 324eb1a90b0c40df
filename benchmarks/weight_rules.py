"""Benchmark: rules for the fine-tuned ensemble weights, compared offline on dumped scores.

Pipeline position: model → CG → features → predictor members → **ensemble weights** → ranking.

Reads the ``.npz`` files that ``benchmarks/transfer.py --settings few-shot --scores-dir DIR``
writes per (target, seed): the members' scores on the evaluated nets, and for the 50 fine-tuning
nets their labels, the members' cross-fitted held-out scores, their folds and τ. Every rule turns
those into member weights without touching the evaluated nets' labels; the table gives the
weighted rank ensemble's Spearman on the evaluated nets (mean ± std over seeds, then per seed).
The dump's own member weights must reproduce the run's ensemble, which the script checks.

Example::

    python benchmarks/weight_rules.py --scores-dir runs/scores --dev nasbench201/cifar100 \\
        --out benchmarks/results/weight_rules.md
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from cgpredict.metrics import spearman
from cgpredict.models.ensemble import (TEMPERATURE_GRID, combine, crossfit_temperature, equal_weights, softmax_weights,
                                       stacked_weights)
from cgpredict.evaluation import ENSEMBLE

FILE = re.compile(r"(?P<shots>\d+)-shot__(?P<family>[^_]+(?:_[^_]+)*?)__(?P<task>.+)__seed(?P<seed>\d+)\.npz$")


def load(path: Path) -> dict:
    """One dump: labels, every method's scores, and the fine-tuning nets' cross-fitted scores."""
    z = np.load(path, allow_pickle=False)
    names = [str(n) for n in z["names"]]
    shot_names = [str(n) for n in z["shot_names"]]
    return {"labels": z["labels"], "scores": {n: z[f"score_{i}"] for i, n in enumerate(names)},
            "members": shot_names, "shot_labels": z["shot_labels"], "folds": z["shot_folds"],
            "taus": dict(zip(shot_names, z["member_taus"].tolist())),
            "run_weights": dict(zip(shot_names, z["member_weights"].tolist())),
            "shot_scores": {n: z[f"shot_score_{i}"] for i, n in enumerate(shot_names)}}


def rule_weights(d: dict) -> tuple[dict[str, dict[str, float]], float]:
    """``(weights, auto_t)``: each rule's weights for one dump (rule name → member → weight) and
    the temperature the ``auto T`` rule chose."""
    out = {f"T={t:g}": softmax_weights(d["taus"], t) for t in TEMPERATURE_GRID}
    best = max(d["members"], key=lambda n: d["taus"][n])
    out["best member by τ"] = {n: float(n == best) for n in d["members"]}
    out["equal"] = equal_weights(d["members"])
    t, _ = crossfit_temperature(d["shot_scores"], d["folds"], d["shot_labels"])
    out["auto T"] = softmax_weights(d["taus"], t)
    out["stacked"] = stacked_weights(d["shot_scores"], d["folds"], d["shot_labels"])
    return out, t


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores-dir", required=True, nargs="+", help="folder(s) of the protocol's few-shot .npz dumps")
    ap.add_argument("--dev", nargs="*", default=["nasbench201/cifar100"],
                    help="targets on which a rule may be chosen (the others are reported, not chosen on)")
    ap.add_argument("--note", action="append", default=[], help="a bullet under the header (repeatable)")
    ap.add_argument("--out", default=None, help="write the markdown here (default: print)")
    args = ap.parse_args(argv)

    results: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    chosen: dict[str, dict[int, float]] = defaultdict(dict)
    members: dict[str, list[str]] = {}
    paths = sorted(p for d in args.scores_dir for p in Path(d).glob("*-shot__*.npz"))
    for path in paths:
        m = FILE.search(path.name)
        if m is None:
            continue
        target, seed = f"{m['family']}/{m['task']}", int(m["seed"])
        d = load(path)
        if members.setdefault(target, d["members"]) != d["members"]:
            raise SystemExit(f"{path.name}: members {d['members']} differ from another seed's {members[target]}")
        rules, chosen[target][seed] = rule_weights(d)
        member_scores = {n: d["scores"][n] for n in d["members"]}
        for name, w in rules.items():
            results[target][name][seed] = spearman(d["labels"], combine(member_scores, w))
        for n in d["members"]:
            results[target][f"member {n}"][seed] = spearman(d["labels"], d["scores"][n])
        run = spearman(d["labels"], d["scores"][ENSEMBLE])
        again = spearman(d["labels"], combine(member_scores, d["run_weights"]))
        if abs(run - again) > 1e-9:
            raise SystemExit(f"{path.name}: the run's own weights give {again:.6f} but its ensemble {run:.6f}; "
                             "the dump does not match its run")
    if not results:
        raise SystemExit(f"no few-shot dumps with cross-fitted scores in {' '.join(args.scores_dir)}")

    lines = ["# Fine-tuned ensemble weights: rules compared on the same fine-tuned members", "",
             f"Reproduce with: `python benchmarks/weight_rules.py --scores-dir {' '.join(args.scores_dir)} "
             f"--dev {' '.join(args.dev)}`", "", *[f"- {n}" for n in args.note], *([""] if args.note else []),
             "Spearman of the weighted rank ensemble on the evaluated (non-fine-tuning) nets; mean ± std over "
             "seeds, then per seed. `T=t`: softmax(τ / t) of the members' cross-fitted Kendall τ on the 50 "
             "fine-tuning nets (`T=0.1` = `weighting='kendall'`); `auto T`: the temperature "
             "`crossfit_temperature` picks from the fine-tuning nets alone; `best member by τ`: all weight "
             "on the member with the highest cross-fitted τ; `stacked` (`weighting='stacked'`): "
             "`stacked_weights`, the non-negative least-squares fit of the fine-tuning nets' label ranks on the "
             "members' cross-fitted ranks.", ""]
    for target in sorted(results, key=lambda t: (t not in args.dev, t)):
        rows = results[target]
        seeds = sorted(next(iter(rows.values())))
        role = "dev (rules may be chosen here)" if target in args.dev else "test (reported only)"
        lines += [f"## {target} — {role}, {len(seeds)} seed(s)", "",
                  f"Members: {', '.join(members[target])}.", "",
                  "| rule | spearman | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                  "|---|---|" + "---|" * len(seeds)]
        for name, per in rows.items():
            v = np.array([per[s] for s in seeds])
            lines.append(f"| {name} | {v.mean():.3f} ± {v.std():.3f} | " + " | ".join(f"{x:.3f}" for x in v) + " |")
        lines += ["", "`auto T` chose: " + ", ".join(f"seed {s}: {chosen[target][s]:g}" for s in seeds), ""]
    text = "\n".join(lines)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

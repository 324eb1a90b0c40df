"""The protocol's markdown report and its per-seed rows on disk (``--out``, ``--json``, ``--merge``).

Pipeline position: benchmark around model → CG → features → predictor → evaluation across
families → **report**. Rows are averaged over seeds by :func:`cgpredict.evaluation.summarize`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from cgpredict.evaluation import AGREEMENT_ENSEMBLE, ENSEMBLE, METRIC_COLUMNS, PAPER_ENSEMBLE, summarize
from cgpredict.fileio import atomic_write
from cgpredict.provenance import code_line

from .config import TransferConfig


def headline(rows: Sequence[dict[str, Any]], metric: str = "spearman") -> list[str]:
    """A markdown summary table: per (setting, target) the ``metric`` of the ensemble (and, with the
    ``Proxy`` member, of the paper's six members and of the proxy-agreement weights), the best
    member, FLOPs and the best zero-cost proxy column (mean ± std over seeds)."""
    extra = [(name, label) for name, label in ((PAPER_ENSEMBLE, "paper's 6 members"),
                                               (AGREEMENT_ENSEMBLE, "proxy-agreement weights"))
             if any(r["method"] == name for r in rows)]
    lines = [f"## Summary ({metric}, mean ± std over seeds)", "",
             "| setting | target | GENNAPE ensemble | " + "".join(f"{label} | " for _, label in extra)
             + "best member | FLOPs | best zero-cost proxy |", "|---|---|---|---|---|---|" + "---|" * len(extra)]
    for (setting, target), table in summarize(rows).items():
        by = {e["method"]: e for e in table}

        def best(kind: str, prefix: str = "") -> str:
            cands = [e for e in table if e["kind"] == kind and e["method"].startswith(prefix)
                     and np.isfinite(e[metric][0]) and e["method"] != "FLOPs"]
            if not cands:
                return "—"
            e = max(cands, key=lambda e: e[metric][0])
            return f"{e['method']} {_fmt(*e[metric], 3)}"

        def cell(name: str) -> str:
            return _fmt(*by[name][metric], 3) if name in by else "—"

        more = "".join(f"{cell(name)} | " for name, _ in extra)
        lines.append(f"| {setting} | {target} | {cell(ENSEMBLE)} | {more}{best('member')} | {cell('FLOPs')} | "
                     f"{best('baseline', 'zc:')} |")
    return lines


def _fmt(mean: float, std: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_markdown(rows: Sequence[dict[str, Any]], config: TransferConfig | None = None, command: str | None = None,
                notes: Sequence[str] = ()) -> str:
    """Markdown report: command, configuration, the code that ran it (:func:`~cgpredict.provenance.code_line`),
    then one table per (setting, target)."""
    lines = ["# GENNAPE transfer protocol", ""]
    if command:
        lines += ["Reproduce with:", "", "```", command, "```", ""]
    if config is not None:
        cfg = asdict(config)
        for key in ("progress", "cache_dir", "scores_dir"):
            cfg.pop(key, None)
        lines += ["Configuration: " + ", ".join(f"`{k}={v}`" for k, v in cfg.items()), ""]
    lines += [code_line(), ""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += ["Mean ± std over seeds. spearman/kendall_tau/ndcg/precision: higher is better; "
              "mae (accuracy units, only for methods that predict accuracy) and best_rank (percentile of "
              "the best true rank among the predicted top-K%): lower is better.", ""]
    lines += headline(rows) + [""]
    head = ["method", "kind", *METRIC_COLUMNS]
    for (setting, target), table in summarize(rows).items():
        n_eval = table[0]["n_eval"] if table else 0
        lines += [f"## {setting} — {target} ({n_eval} nets evaluated, {table[0]['seeds']} seed(s))", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in table:
            cells = [e["method"], e["kind"]]
            for col in METRIC_COLUMNS:
                digits = 2 if col in ("mae",) or col.startswith("best_rank") else 3
                cells.append(_fmt(*e[col], digits))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_outputs(out: str | None, json_path: str | None, text: str, rows: list[dict[str, Any]]) -> None:
    """Write the report to ``out`` and the per-seed rows to ``json_path``, where given (atomically)."""
    if out:
        atomic_write(out, text)
    if json_path:
        atomic_write(json_path, json.dumps(rows, indent=1, default=float))


def merged_rows(paths: Sequence[str], seeds: range) -> list[dict[str, Any]]:
    """The per-seed rows of earlier ``--json`` files, checked to cover exactly ``seeds`` once each.

    Raises ``ValueError`` naming the file when one is not a list of protocol rows, when two files
    hold the same seed, or when the seeds found differ from the ones the options describe.
    """
    rows: list[dict[str, Any]] = []
    owner: dict[int, str] = {}
    for path in paths:
        try:
            part = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"--merge: cannot read rows from {path}: {exc}") from exc
        if not isinstance(part, list) or not all(isinstance(r, dict) and {"setting", "target", "seed", "method"} <= r.keys()
                                                 for r in part):
            raise ValueError(f"--merge: {path} is not a list of protocol rows (write it with --json)")
        for seed in sorted({int(r["seed"]) for r in part}):
            if seed in owner:
                raise ValueError(f"--merge: seed {seed} is in both {owner[seed]} and {path}")
            owner[seed] = path
        rows += part
    if sorted(owner) != list(seeds):
        raise ValueError(f"--merge: the files hold seeds {sorted(owner)}, the options describe seeds {list(seeds)} "
                         "(set --first-seed/--seeds to match)")
    return rows

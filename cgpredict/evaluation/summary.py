"""Average evaluation rows over seeds: one table per (setting, target), one entry per method.

Pipeline position: model → CG → features → predictor → **evaluation** (aggregated over seeds) →
ranking/search.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cgpredict.evaluation.scoring import METRIC_COLUMNS

__all__ = ["summarize"]

#: Table order of the row kinds.
_KIND_ORDER = {"baseline": 0, "member": 1, "ensemble": 2}


def summarize(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Group rows (of :func:`~cgpredict.evaluation.evaluate_transfer`) by ``(setting, target)``.

    Each group is a list of entries, baselines then members then ensembles (by name within a
    kind): ``method``, ``kind``, ``seeds``, ``n_eval`` and per metric column ``(mean, std)`` over
    the seeds whose value is finite (``(nan, nan)`` when none is).
    """
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        groups.setdefault((row["setting"], row["target"]), {}).setdefault(row["method"], []).append(row)
    out = {}
    for key, methods in groups.items():
        table = []
        for method, rs in methods.items():
            entry: dict[str, Any] = {"method": method, "kind": rs[0]["kind"], "seeds": len(rs),
                                     "n_eval": rs[0]["n_eval"]}
            for col in METRIC_COLUMNS:
                vals = np.array([r[col] for r in rs], dtype=np.float64)
                good = vals[np.isfinite(vals)]
                entry[col] = (float(good.mean()) if good.size else float("nan"),
                              float(good.std()) if good.size else float("nan"))
            table.append(entry)
        table.sort(key=lambda e: (_KIND_ORDER.get(e["kind"], 3), e["method"]))
        out[key] = table
    return out

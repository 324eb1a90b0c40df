"""``cgpredict families``: list the architecture families, their builders and available labels.

Pipeline position: **model** (families of networks) → CG → features → predictor → ranking/search.

For each family it reports whether the builder module imports, and per labelled task whether the
label table exists in the data folder (``--data-dir`` or ``$CGPREDICT_DATA``) and how many rows it has.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any


def _count_rows(path: Path) -> int:
    """Data rows of a CSV table (header and blank lines excluded); no validation."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        return sum(1 for row in reader if any(cell.strip() for cell in row))


def family_status(data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One dict per family: ``name``, ``builder`` (``"ok"`` or the import error), ``tasks`` (task → rows or None)."""
    from cgpredict.datasets import registry

    root = registry.resolve_data_dir(data_dir)
    out = []
    for name in registry.list_families():
        entry: dict[str, Any] = {"name": name, "builder": "ok", "tasks": {}}
        try:
            spec = registry.family_spec(name)
        except registry.FamilyUnavailableError as exc:
            entry["builder"] = str(exc)
            if root is not None:  # tasks unknown without the module: list the tables that are there
                for path in sorted((root / "naslib").glob(f"{name}__*.csv")):
                    entry["tasks"][path.stem.split("__", 1)[1]] = _count_rows(path)
            out.append(entry)
            continue
        for task in spec.tasks:
            rows = None
            if root is not None:
                try:
                    path = root / spec.label_file(task)
                except ValueError:
                    path = None
                if path is not None and path.is_file():
                    rows = _count_rows(path)
            entry["tasks"][task] = rows
        out.append(entry)
    return out


def _run(args: argparse.Namespace) -> int:
    from cgpredict.datasets import registry

    status = family_status(args.data_dir)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    root = registry.resolve_data_dir(args.data_dir)
    print(f"data folder: {root if root is not None else f'(none: set ${registry.DATA_ENV} or pass --data-dir)'}")
    width = max(len(entry["name"]) for entry in status)
    for entry in status:
        builder = "builder ok" if entry["builder"] == "ok" else "builder UNAVAILABLE"
        if not entry["tasks"]:
            labels = "no labels here (sample with n=...)" if entry["builder"] == "ok" else ""
        else:
            labels = ", ".join(
                f"{task}: {rows} rows" if rows is not None else f"{task}: missing" for task, rows in entry["tasks"].items()
            )
        print(f"{entry['name']:<{width}}  {builder:<19}  {labels}")
        if entry["builder"] != "ok" and args.verbose:
            print(f"{'':<{width}}    {entry['builder']}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``families`` sub-command to the CLI."""
    parser = subparsers.add_parser(
        "families",
        help="list architecture families, builders and available labels",
        description="List the architecture families, whether each builder imports, and the labelled rows per task.",
    )
    parser.add_argument("--data-dir", default=None, help="labelled-data folder (default: $CGPREDICT_DATA)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show why an unavailable builder fails")
    parser.set_defaults(func=_run)
    return parser

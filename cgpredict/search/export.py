"""Search outputs: readable diffs against the start CG and runnable exports (PyTorch + ONNX).

Pipeline position: model → CG → features → predictor → ranking/**search** (results to disk).

For each returned CG, :func:`export_cg` writes ``model.cg.json`` (the CG), ``model.py`` (a
runnable script whose ``build()`` returns the rebuilt ``torch.nn.Module``), ``model.onnx``
(``torch.onnx.export`` of ``CG.to_module()``, checked with ``onnx.checker``) and ``diff.txt``
(:func:`diff_cgs`). A CG that does not run or export is recorded with ``skipped`` saying why.

Nothing a CG carries is pasted into generated code as text: ``model.py`` holds the CG's name and
input shapes only as Python literals written with ``repr`` (never inside its docstring), and CG
files are schema-checked when read (:meth:`cgpredict.cg.CG.from_json`). Every file is written
atomically (:mod:`cgpredict.fileio`); :func:`search_output_folder` writes a whole search output
folder at once and replaces only a folder that an earlier search wrote (its manifest
:data:`SEARCH_MANIFEST` lists what it owns), never a folder holding anything else.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cgpredict.cg import CG
from cgpredict.fileio import OutputExistsError, atomic_directory, atomic_write, atomic_write_json
from cgpredict.ops import OP_INDEX

#: Name of the manifest a search output folder carries (what it owns, who wrote it).
SEARCH_MANIFEST = ".cgpredict-search.json"
#: Entries of a search output folder (also recognised in folders written before the manifest existed).
SEARCH_ENTRY = re.compile(r"^(rank\d{2,}|results\.csv|pareto\.csv|search\.json|search\.png)$")

#: ``model.py`` template: every substituted value is a Python literal made by ``repr`` (see
#: :func:`model_py`); nothing is placed inside the docstring or a comment.
MODEL_PY = '''"""Network found by `cgpredict search`: rebuilt from model.cg.json (its name is NAME below).

Run `python model.py` for a forward pass on a dummy input; import it and call build() for the module.
"""
from pathlib import Path

import torch

from cgpredict.cg import CG

NAME = {name}
CG_FILE = Path(__file__).with_name("model.cg.json")
INPUT_SHAPES = {shapes}


def build() -> torch.nn.Module:
    """The network as a torch.nn.Module (fresh initialisation)."""
    return CG.from_json(CG_FILE).to_module()


if __name__ == "__main__":
    model = build().eval()
    with torch.no_grad():
        out = model(*[torch.randn(*s) for s in INPUT_SHAPES])
    print(type(model).__name__, "output", tuple(out.shape) if hasattr(out, "shape") else [tuple(o.shape) for o in out])
'''


def model_py(cg: CG) -> str:
    """The text of ``model.py`` for ``cg``: its name and input shapes enter only as ``repr`` literals.

    Raises:
        ValueError: an input shape that is not a tuple of non-negative integers.
    """
    shapes = [[int(v) for v in n.out_shape] for n in cg.input_nodes]
    if any(v < 0 for s in shapes for v in s):
        raise ValueError(f"CG {cg.name!r}: negative input shape {shapes}")
    return MODEL_PY.format(name=repr(str(cg.name or "CG")), shapes=repr(shapes))


def _sig(cg: CG, i: int) -> str:
    n = cg.nodes[i]
    w = "" if n.weight_shape is None else f" w{tuple(n.weight_shape)}"
    return f"{n.op:<15} {tuple(n.out_shape)}{w} {n.name}"


def diff_cgs(start: CG, result: CG, max_lines: int = 80) -> str:
    """A readable diff of ``result`` against ``start``: moves applied, op-count changes, MACs and
    parameters, then a unified diff of the node lists (op, shape, weight, name)."""
    lines = [f"start : {start.summary()}", f"result: {result.summary()}"]
    df = result.flops - start.flops
    dp = result.params - start.params
    lines.append(f"MACs {start.flops:,} -> {result.flops:,} ({df / max(1, start.flops):+.1%}); "
                 f"params {start.params:,} -> {result.params:,} ({dp / max(1, start.params):+.1%})")
    moves = result.meta.get("mutations", [])[len(start.meta.get("mutations", [])):]
    lines.append(f"moves ({len(moves)}):")
    lines += [f"  {i + 1}. {m}" for i, m in enumerate(moves)]
    a, b = start.op_histogram(), result.op_histogram()
    changed = {op: b.get(op, 0) - a.get(op, 0) for op in set(a) | set(b) if a.get(op, 0) != b.get(op, 0)}
    if changed:
        lines.append("op counts: " + ", ".join(f"{op} {a.get(op, 0)}->{b.get(op, 0)}"
                                                for op in sorted(changed, key=OP_INDEX.__getitem__)))
    udiff = list(difflib.unified_diff([_sig(start, i) for i in range(start.num_nodes)],
                                      [_sig(result, i) for i in range(result.num_nodes)],
                                      "start", "result", lineterm="", n=0))
    if udiff:
        lines.append("node diff:")
        lines += udiff[:max_lines]
        if len(udiff) > max_lines:
            lines.append(f"... {len(udiff) - max_lines} more lines")
    return "\n".join(lines)


def export_onnx(cg: CG, path: str | Path) -> Path:
    """Export ``cg.to_module()`` to ONNX at ``path`` and run ``onnx.checker`` on it."""
    import onnx
    import torch

    path = Path(path)
    module = cg.to_module().eval()
    inputs = tuple(torch.randn(*n.out_shape) for n in cg.input_nodes)
    # the dynamo exporter without optimisation keeps batch norms as nodes (the legacy exporter
    # folds them into the convolutions in eval mode, so the file would no longer match the CG)
    program = torch.onnx.export(module, inputs, dynamo=True, optimize=False, verbose=False)
    proto = program.model_proto
    onnx.checker.check_model(proto)
    atomic_write(path, proto.SerializeToString())
    return path


def same_network(a: CG, b: CG) -> bool:
    """Same MACs, parameters and op counts, ignoring explicit identity/zero nodes (which ONNX drops)."""
    def hist(cg: CG) -> dict[str, int]:
        return {k: v for k, v in cg.op_histogram().items() if k not in ("identity", "zero")}
    return a.flops == b.flops and a.params == b.params and hist(a) == hist(b)


def export_cg(cg: CG, outdir: str | Path, start: CG | None = None, onnx: bool = True,
              info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write one result to ``outdir`` (see module docstring); returns what was written and checked.

    Keys: ``dir``, ``cg_json``, ``diff``, ``module_py``,
    ``runs`` (forward pass ok), ``onnx`` (path), ``onnx_same_cg`` (re-conversion matches);
    ``skipped`` explains anything not done.
    """
    from cgpredict.search.spaces import run_check

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rec: dict[str, Any] = {"dir": str(out), **(info or {})}
    cg.to_json(out / "model.cg.json")
    rec["cg_json"] = str(out / "model.cg.json")
    if start is not None:
        atomic_write(out / "diff.txt", diff_cgs(start, cg) + "\n")
        rec["diff"] = str(out / "diff.txt")
    atomic_write(out / "model.py", model_py(cg))
    rec["module_py"] = str(out / "model.py")
    try:
        run_check(cg)
        rec["runs"] = True
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        rec["runs"] = False
        rec["skipped"] = f"forward pass failed: {exc}"
        return rec
    if onnx:
        try:
            path = export_onnx(cg, out / "model.onnx")
            rec["onnx"] = str(path)
            from cgpredict.converters import from_onnx

            rec["onnx_same_cg"] = same_network(cg, from_onnx(path))
        except Exception as exc:  # noqa: BLE001 - recorded, not fatal
            rec["onnx"] = None
            rec["skipped"] = f"ONNX export failed: {type(exc).__name__}: {exc}"
    return rec


def foreign_entries(folder: str | os.PathLike[str]) -> list[str]:
    """Entries of ``folder`` that no earlier search output owns (``[]`` for an absent or empty
    folder, or one holding only a search's outputs: those listed in its :data:`SEARCH_MANIFEST`,
    or, without a manifest, only names matching :data:`SEARCH_ENTRY`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir())
    owned: set[str] = set()
    manifest = folder / SEARCH_MANIFEST
    if manifest.is_file():
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("written_by") == "cgpredict search":
                owned = {str(e) for e in doc.get("entries", []) if isinstance(e, str)} | {SEARCH_MANIFEST}
        except (OSError, ValueError, RecursionError):
            owned = set()
    return [n for n in names if n not in owned and not SEARCH_ENTRY.match(n)]


def check_search_folder(folder: str | os.PathLike[str]) -> Path:
    """Raise :class:`~cgpredict.fileio.OutputExistsError` unless ``folder`` may be (re)written by a
    search: it is absent, empty, or holds only an earlier search's outputs; never the current
    folder or one above it. ``--force`` is the caller's business (:func:`cgpredict.fileio.check_output`)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"search output {folder} is a file; the search writes a folder")
    if folder.exists() and Path.cwd().resolve().is_relative_to(folder.resolve()):
        raise OutputExistsError(f"search output {folder} is the current folder (or holds it); give a new folder")
    foreign = foreign_entries(folder)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputExistsError(f"search output {folder} holds files a search did not write ({shown}); "
                                "give a new or empty folder (nothing there is replaced)")
    return folder


@contextlib.contextmanager
def search_output_folder(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``folder`` as a whole on a clean exit.

    ``folder`` is checked first (:func:`check_search_folder`): only an absent folder, an empty one
    or an earlier search's output is replaced, so stale ``rankNN/`` of a previous run never sit
    beside new results and no user file is removed. The manifest :data:`SEARCH_MANIFEST` listing
    the entries is written last; a crash leaves the previous folder intact.
    """
    folder = check_search_folder(folder)
    with atomic_directory(folder) as tmp:
        yield tmp
        entries = sorted(p.name for p in tmp.iterdir() if p.name != SEARCH_MANIFEST)
        atomic_write_json(tmp / SEARCH_MANIFEST, {"written_by": "cgpredict search", "entries": entries})


def relocate(record: dict[str, Any], tmp: str | os.PathLike[str], final: str | os.PathLike[str]) -> dict[str, Any]:
    """``record`` with paths under ``tmp`` rewritten to the same paths under ``final``."""
    prefix, target = str(tmp), str(final)
    return {k: (target + v[len(prefix):] if isinstance(v, str) and (v == prefix or v.startswith(prefix + os.sep))
                else v) for k, v in record.items()}

"""Search outputs: readable diffs against the start CG and runnable exports (PyTorch + ONNX).

Pipeline position: model → CG → features → predictor → ranking/**search** (results to disk).

For each returned CG, :func:`export_cg` writes ``model.cg.json`` (the CG), ``model.py`` (a
runnable script whose ``build()`` returns the rebuilt ``torch.nn.Module``), ``model.onnx``
(``torch.onnx.export`` of ``CG.to_module()``, checked with ``onnx.checker``) and ``diff.txt``
(:func:`diff_cgs`). A CG that does not run or export is recorded with ``skipped`` saying why.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from cgpredict.cg import CG
from cgpredict.ops import OP_INDEX

MODEL_PY = '''"""Network found by `cgpredict search` ({name}): rebuilt from model.cg.json.

Run `python model.py` for a forward pass on a dummy input; import it and call build() for the module.
"""
from pathlib import Path

import torch

from cgpredict.cg import CG

CG_FILE = Path(__file__).with_name("model.cg.json")
INPUT_SHAPES = {shapes!r}


def build() -> torch.nn.Module:
    """The network as a torch.nn.Module (fresh initialisation)."""
    return CG.from_json(CG_FILE).to_module()


if __name__ == "__main__":
    model = build().eval()
    with torch.no_grad():
        out = model(*[torch.randn(*s) for s in INPUT_SHAPES])
    print(type(model).__name__, "output", tuple(out.shape) if hasattr(out, "shape") else [tuple(o.shape) for o in out])
'''


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
    program.save(str(path))
    onnx.checker.check_model(onnx.load(str(path)))
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
        (out / "diff.txt").write_text(diff_cgs(start, cg) + "\n")
        rec["diff"] = str(out / "diff.txt")
    shapes = [list(n.out_shape) for n in cg.input_nodes]
    (out / "model.py").write_text(MODEL_PY.format(name=cg.name or "CG", shapes=shapes))
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

"""`make demo`: convert a few torchvision models (and an ONNX export of one) into CGs and print a table.

Pipeline position: model → **CG** (this demo) → features → predictor → ranking/search. Later stages
extend the demo with zero-shot ranking once a trained predictor ships.

Run: ``python -m cgpredict.demo [--models resnet18,mobilenet_v2] [--out demo_output]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

DEFAULT_MODELS = ("resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16")
ONNX_MODEL = "resnet18"


def _row(label: str, cg, seconds: float) -> str:
    hist = cg.op_histogram()
    top = ", ".join(f"{op}:{n}" for op, n in sorted(hist.items(), key=lambda kv: -kv[1])[:6])
    return (
        f"{label:<24} {cg.num_nodes:>6} {cg.num_edges:>6} {cg.flops / 1e9:>8.3f} "
        f"{cg.params / 1e6:>9.3f} {seconds:>6.2f}  {top}"
    )


def main(argv: list[str] | None = None) -> int:
    """Convert the demo models and print nodes, edges, GMACs, params and the op histogram."""
    import torch
    import torchvision

    from cgpredict.converters import from_onnx, from_torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--out", default="demo_output", help="folder for the drawn graph")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    header = f"{'model':<24} {'nodes':>6} {'edges':>6} {'GMACs':>8} {'params(M)':>9} {'sec':>6}  top ops"
    print(header)
    print("-" * len(header))
    for name in args.models.split(","):
        model = torchvision.models.get_model(name, weights=None).eval()
        start = time.perf_counter()
        cg = from_torch(model, name=name)
        print(_row(f"torch:{name}", cg, time.perf_counter() - start))

    model = torchvision.models.get_model(ONNX_MODEL, weights=None).eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / f"{ONNX_MODEL}.onnx"
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), dynamo=True, optimize=False)
        start = time.perf_counter()
        cg_onnx = from_onnx(path, name=ONNX_MODEL)
        print(_row(f"onnx:{ONNX_MODEL}", cg_onnx, time.perf_counter() - start))
    cg_torch = from_torch(model, name=ONNX_MODEL)
    same = cg_torch.op_histogram() == cg_onnx.op_histogram()
    print(f"\n{ONNX_MODEL}: torch and ONNX CGs have the same op multiset: {same}; "
          f"MACs {cg_torch.flops / 1e9:.3f} G vs {cg_onnx.flops / 1e9:.3f} G")

    json_path = out / f"{ONNX_MODEL}.cg.json"
    cg_torch.to_json(json_path, indent=1)
    try:
        from cgpredict.drawing import draw_cg

        png = out / f"{ONNX_MODEL}.cg.png"
        draw_cg(cg_torch, png)
        print(f"wrote {json_path} and {png}")
    except ImportError:
        print(f"wrote {json_path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

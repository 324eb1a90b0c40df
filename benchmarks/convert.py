"""Benchmark: PyTorch → CG conversion time on torchvision models (model → **CG** stage).

For each model: the time of ``cgpredict.converters.from_torch`` (default ``method="auto"``, i.e.
the meta-tensor fast path when it succeeds) beside a plain ``torch.export.export(strict=False)`` of
the same model on a meta input, timed in the same run; prints both medians and their ratio.

Usage::

    python benchmarks/convert.py                       # all 80 torchvision classification models
    python benchmarks/convert.py --limit 10            # the first 10
    python benchmarks/convert.py --models resnet50,vit_b_16 --repeat 3
    python benchmarks/convert.py --no-export           # from_torch only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import torch
import torchvision

from cgpredict.converters import from_torch
from cgpredict.quiet import progress_bar


def build(name: str) -> tuple[torch.nn.Module, str]:
    """A torchvision model with random weights, on meta where possible, else on CPU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                return torchvision.models.get_model(name), "meta"
        except Exception:  # noqa: BLE001 - e.g. RegNet cannot be built on meta
            torch.manual_seed(0)
            return torchvision.models.get_model(name), "cpu"


def _best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="", help="comma-separated torchvision model names (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N models")
    parser.add_argument("--repeat", type=int, default=1, help="time each conversion N times, keep the best")
    parser.add_argument("--no-export", action="store_true", help="skip the torch.export baseline")
    args = parser.parse_args(argv)

    names = [n for n in args.models.split(",") if n] or torchvision.models.list_models(module=torchvision.models)
    unknown = sorted(set(names) - set(torchvision.models.list_models()))
    if unknown:
        parser.error(f"unknown torchvision model(s): {', '.join(unknown)}")
    if args.limit:
        names = names[: args.limit]

    rows = []
    for name in progress_bar(names, desc="converting", file=sys.stderr):
        model, device = build(name)
        shape = (1, 3, 299, 299) if name == "inception_v3" else (1, 3, 224, 224)
        from_torch(model, input_shape=shape)  # warm-up (imports, caches)
        cg = from_torch(model, input_shape=shape)
        t_cg = _best_of(lambda: from_torch(model, input_shape=shape), args.repeat)
        t_ex = float("nan")
        if not args.no_export:
            example = torch.empty(shape, device="meta" if device == "meta" else "cpu")
            model.eval()

            def export() -> None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.export.export(model, (example,), strict=False)

            try:
                t_ex = _best_of(export, args.repeat)
            except Exception as exc:  # noqa: BLE001 - report, keep going
                print(f"  torch.export failed on {name}: {type(exc).__name__}", file=sys.stderr)
        rows.append((name, device, cg.meta["method"], cg.num_nodes, cg.flops / 1e9, t_cg, t_ex))

    print(f"{'model':24s} {'built':5s} {'method':7s} {'nodes':>6s} {'GMACs':>8s} {'from_torch s':>12s} "
          f"{'export s':>9s} {'ratio':>6s}")
    for name, device, method, nodes, gmacs, t_cg, t_ex in rows:
        ratio = t_ex / t_cg if t_ex == t_ex else float("nan")
        print(f"{name:24s} {device:5s} {method:7s} {nodes:6d} {gmacs:8.3f} {t_cg:12.3f} {t_ex:9.3f} {ratio:6.1f}")
    med_cg = statistics.median(r[5] for r in rows)
    line = f"median from_torch: {med_cg:.3f} s over {len(rows)} models"
    exported = [r[6] for r in rows if r[6] == r[6]]
    if exported:
        med_ex = statistics.median(exported)
        line += f"; median torch.export(strict=False): {med_ex:.3f} s; ratio {med_ex / med_cg:.1f}x"
    print(line)
    return 0


if __name__ == "__main__":
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    raise SystemExit(main())

"""``cgpredict convert``: turn a model into a computation graph and save it as JSON.

Pipeline position: **model → CG** → features → predictor → ranking/search.

Example::

    cgpredict convert torchvision:resnet18 -o resnet18.json
    cgpredict convert torchvision:inception_v3            # 299×299 by default
    cgpredict convert my_net.py:Net --input-shape 1,3,32,32 -o net.json
    cgpredict convert model.onnx -o model.json

Prints a one-line summary (nodes, edges, GMACs, parameters) and the op histogram. ``-o`` is
checked before the conversion: an existing file is replaced only with ``--force``, and never one
of the inputs (``convert net.py:Net -o net.py`` is refused); the JSON is written atomically.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register", "histogram_text"]


def histogram_text(histogram: dict[str, int]) -> str:
    """The op histogram as aligned ``op  count`` lines."""
    width = max((len(op) for op in histogram), default=0)
    return "\n".join(f"  {op:<{width}}  {count}" for op, count in histogram.items())


def _run(args: argparse.Namespace) -> int:
    import warnings

    from cgpredict.commands.checks import check_file_output, check_model_arg
    from cgpredict.model_spec import parse_input_shape, spec_to_cg

    spec = check_model_arg(args.model)
    if args.output:
        check_file_output(args.output, inputs=[spec], force=args.force)
    shape = parse_input_shape(args.input_shape)
    with warnings.catch_warnings():
        if not args.verbose:
            warnings.simplefilter("ignore", FutureWarning)
        cg = spec_to_cg(spec, input_shape=shape)
    if args.name:
        from cgpredict.cg_schema import check_text

        cg.name = check_text(args.name, "--name")
    print(cg.summary())
    print(histogram_text(cg.op_histogram()))
    if args.output:
        cg.to_json(args.output, indent=1 if args.indent else None)
        print(f"wrote {args.output}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``convert`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "convert",
        help="convert a model (torchvision:NAME, timm:NAME, file.py:Class, model.onnx) to a CG JSON",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="torchvision:NAME, timm:NAME, path/file.py:ClassName or model.onnx")
    parser.add_argument("--input-shape", default=None, metavar="N,C,H,W",
                        help="input shape, batch first (default: the model's natural size, e.g. 1,3,224,224)")
    parser.add_argument("-o", "--output", default=None, metavar="CG.json", help="write the CG as JSON here")
    parser.add_argument("-f", "--force", action="store_true", help="replace an existing -o file")
    parser.add_argument("--name", default=None, help="name stored in the CG (default: the model name)")
    parser.add_argument("--indent", action="store_true", help="pretty-print the JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library warnings")
    parser.set_defaults(func=_run)
    return parser

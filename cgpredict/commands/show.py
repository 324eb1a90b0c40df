"""``cgpredict show``: draw a computation graph, or list its nodes as text.

Pipeline position: model → **CG** (inspection) → features → predictor → ranking/search.

Example::

    cgpredict show resnet18.json -o resnet18.png   # layered drawing (PNG, SVG or PDF)
    cgpredict show resnet18.json                   # text listing of the nodes
    cgpredict show torchvision:mobilenet_v2 -o mbv2.svg   # any MODEL spec works too

Nodes are labelled with their op type and output shape (batch left out), top to bottom.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register", "load_cg"]


def load_cg(source: str, input_shape: str | None = None) -> Any:
    """A CG from a ``.json`` file written by ``cgpredict convert``, else from a MODEL spec."""
    from cgpredict.cg import CG

    from cgpredict.commands.checks import check_model_arg

    source = check_model_arg(source, "CG")
    if source.lower().endswith(".json"):
        return CG.from_json(Path(source))
    from cgpredict.model_spec import spec_to_cg

    return spec_to_cg(source, input_shape=input_shape)


def _run(args: argparse.Namespace) -> int:
    from cgpredict.commands.checks import check_file_output
    from cgpredict.drawing import cg_listing, draw_cg

    if args.output:
        check_file_output(args.output, inputs=[args.cg], force=args.force,
                          suffixes=(".png", ".svg", ".pdf", ".jpg", ".jpeg"))
    cg = load_cg(args.cg, args.input_shape)
    if args.output:
        path = draw_cg(cg, args.output, dpi=args.dpi)
        print(cg.summary())
        print(f"wrote {path}")
    else:
        print(cg_listing(cg))
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``show`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "show",
        help="draw a CG (cg.json or MODEL) to an image, or print its nodes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("cg", metavar="CG", help="a CG .json file (from cgpredict convert) or a MODEL spec")
    parser.add_argument("-o", "--output", default=None, metavar="IMAGE", help="draw to this .png/.svg/.pdf file")
    parser.add_argument("-f", "--force", action="store_true", help="replace an existing -o file")
    parser.add_argument("--input-shape", default=None, metavar="N,C,H,W", help="input shape when CG is a MODEL spec")
    parser.add_argument("--dpi", type=int, default=100, help="resolution of raster images (lowered for huge graphs)")
    parser.set_defaults(func=_run)
    return parser

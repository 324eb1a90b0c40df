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

    if source.lower().endswith(".json"):
        if not Path(source).is_file():
            raise FileNotFoundError(f"CG file {source} does not exist")
        return CG.from_json(Path(source))
    from cgpredict.model_spec import spec_to_cg

    return spec_to_cg(source, input_shape=input_shape)


def _run(args: argparse.Namespace) -> int:
    from cgpredict.drawing import cg_listing, draw_cg

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
    parser.add_argument("--input-shape", default=None, metavar="N,C,H,W", help="input shape when CG is a MODEL spec")
    parser.add_argument("--dpi", type=int, default=100, help="resolution of raster images (lowered for huge graphs)")
    parser.set_defaults(func=_run)
    return parser

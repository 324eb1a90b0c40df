"""Converters from frameworks to computation graphs (installed as ``cgpredict.converters``).

Pipeline position: model → **CG** → features → predictor → ranking/search.

Public API (names fixed):

* :func:`from_torch` — any ``torch.nn.Module`` → :class:`cgpredict.CG`.
* :func:`from_onnx` — an ONNX file path or ``onnx.ModelProto`` → :class:`cgpredict.CG`.
* :class:`UncountedOpWarning` — emitted once per op type that became an ``unknown`` node whose
  MACs are not counted.

Different sources of one network may still differ in details (batch norm folded by the legacy
ONNX exporter, pads fused by optimisers); :func:`cgpredict.canonical.canonicalize` maps them to one
canonical CG.

Both converters follow the same op-mapping conventions (documented in :mod:`cgpredict.ops` and
:mod:`cgpredict.cg`) so that the same network reached through either gives the same op-type
multiset and MACs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["from_torch", "from_onnx", "UncountedOpWarning"]


def __getattr__(name: str) -> Any:  # lazy: importing torch/onnx only when a converter is used
    if name == "from_torch":
        from cgpredict.converters.torch_converter import from_torch

        return from_torch
    if name == "from_onnx":
        from cgpredict.converters.onnx_converter import from_onnx

        return from_onnx
    if name == "UncountedOpWarning":
        from cgpredict.converters._conventions import UncountedOpWarning

        return UncountedOpWarning
    raise AttributeError(f"module 'cgpredict.converters' has no attribute {name!r}")

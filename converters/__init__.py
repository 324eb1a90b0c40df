"""Converters from frameworks to computation graphs (installed as ``cgpredict.converters``).

Pipeline position: model → **CG** → features → predictor → ranking/search.

Public API (names fixed):

* :func:`from_torch` — any ``torch.nn.Module`` → :class:`cgpredict.CG`.
* :func:`from_onnx` — an ONNX file path or ``onnx.ModelProto`` → :class:`cgpredict.CG`.

Both converters follow the same op-mapping conventions (documented in :mod:`cgpredict.ops` and
:mod:`cgpredict.cg`) so that the same network reached through either gives the same op-type
multiset and MACs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["from_torch", "from_onnx"]


def __getattr__(name: str) -> Any:  # lazy: importing torch/onnx only when a converter is used
    if name == "from_torch":
        from cgpredict.converters.torch_converter import from_torch

        return from_torch
    if name == "from_onnx":
        from cgpredict.converters.onnx_converter import from_onnx

        return from_onnx
    raise AttributeError(f"module 'cgpredict.converters' has no attribute {name!r}")

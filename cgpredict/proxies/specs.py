"""Resolve model spec strings to trainable ``nn.Module`` objects for the proxies.

Pipeline position: **model** (spec string from the command line) → proxy score.

Everything :func:`cgpredict.model_spec.load_model` accepts works here (``torchvision:NAME``,
``timm:NAME``, ``path/to/file.py:Class``, ``model.onnx``); on top of it the proxies need:

* ``FAMILY:ARCH`` for a family of :mod:`cgpredict.datasets` (e.g. ``nasbench201:(0, 2, 3, 2, 3, 1)``)
  — ``family.build(family.parse_arch(ARCH))``;
* real CPU tensors: a model built on the ``meta`` device is materialised with ``to_empty`` (the
  proxies re-initialise every weight anyway);
* an ONNX file is converted to a CG and rebuilt as a trainable module with ``CG.to_module()``.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

__all__ = ["load_model"]


def _family(kind: str) -> Any | None:
    try:
        registry = importlib.import_module("cgpredict.datasets.registry")
        if kind not in registry.list_families():
            return None
        return registry.family_module(kind)
    except Exception:  # noqa: BLE001 - unavailable family: fall through to the generic resolver
        return None


def load_model(spec: str) -> nn.Module:
    """The trainable ``nn.Module`` named by ``spec`` (see the module docstring).

    Raises:
        ValueError: malformed spec, unknown name/class/family.
        FileNotFoundError: a named file does not exist.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a model spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    if sep and rest and not kind.endswith(".py"):
        family = _family(kind)
        if family is not None:
            model = family.build(family.parse_arch(rest))
            if not isinstance(model, nn.Module):
                raise ValueError(f"model spec {spec!r} gives a {type(model).__name__}, not a torch.nn.Module")
            return model
    from cgpredict.model_spec import load_model as shared_load

    model = shared_load(spec)
    if not isinstance(model, nn.Module):  # an ONNX ModelProto: rebuild it from its CG
        from cgpredict.model_spec import spec_to_cg

        return spec_to_cg(spec).to_module()
    if any(p.is_meta for p in model.parameters()) or any(b.is_meta for b in model.buffers()):
        model = model.to_empty(device="cpu")  # weights are re-initialised before training
    return model

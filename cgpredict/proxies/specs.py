"""Resolve model spec strings to trainable ``nn.Module`` objects for the proxies.

Pipeline position: **model** (spec string from the command line) → proxy score.

The proxies train the network, so it must be a real PyTorch module with real (CPU) tensors:

* ``torchvision:NAME`` — ``torchvision.models.get_model(NAME, weights=None)`` built on the CPU
  (the project-wide :func:`cgpredict.model_spec.load_model` may build on the ``meta`` device,
  which is fine for graph conversion but not for training);
* ``path/to/file.py:Class`` — the file's ``Class()``;
* ``FAMILY:ARCH`` for a family of :mod:`cgpredict.datasets` (e.g. ``nasbench201:(0, 2, 3, 2, 3, 1)``)
  — ``family.build(family.parse_arch(ARCH))``;
* anything else (``timm:NAME``…) goes to :func:`cgpredict.model_spec.load_model` when that module
  exists; an ONNX file is refused (it cannot be trained here).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["load_model"]


def _from_file(spec: str, path_text: str, class_name: str) -> nn.Module:
    path = Path(path_text)
    if not path.is_file():
        raise FileNotFoundError(f"model spec {spec!r}: file {path} not found")
    module_spec = importlib.util.spec_from_file_location(f"_cgpredict_user_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"model spec {spec!r}: cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"model spec {spec!r}: {path} defines no {class_name!r}")
    return _check(spec, cls())


def _check(spec: str, model: Any) -> nn.Module:
    if isinstance(model, tuple):  # (module, input_shape) style return values
        model = model[0]
    if not isinstance(model, nn.Module):
        raise ValueError(f"model spec {spec!r} gives a {type(model).__name__}, not a torch.nn.Module; the proxies must train it")
    return model


def _family(kind: str) -> Any | None:
    try:
        registry = importlib.import_module("cgpredict.datasets.registry")
    except ImportError:
        return None
    try:
        if kind not in registry.list_families():
            return None
        return registry.family_module(kind)
    except Exception:  # noqa: BLE001 - unavailable family: fall through to the generic error
        return None


def load_model(spec: str) -> nn.Module:
    """The ``nn.Module`` named by ``spec`` (see the module docstring for the accepted forms).

    Raises:
        ValueError: malformed spec, unknown name/class/family, or a spec that is not a module.
        FileNotFoundError: a named file does not exist.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a model spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    if kind == "torchvision" and rest:
        import torchvision

        try:
            return torchvision.models.get_model(rest, weights=None)
        except ValueError as exc:
            raise ValueError(f"model spec {spec!r}: {exc}") from None
    if sep and kind.endswith(".py"):
        return _from_file(spec, kind, rest)
    if sep and rest:
        family = _family(kind)
        if family is not None:
            return _check(spec, family.build(family.parse_arch(rest)))
    if spec.endswith(".onnx"):
        raise ValueError(f"model spec {spec!r}: an ONNX file cannot be trained by the proxies; give the PyTorch module")
    try:
        shared = importlib.import_module("cgpredict.model_spec")
    except ImportError:
        shared = None
    if shared is not None and hasattr(shared, "load_model"):
        model = _check(spec, shared.load_model(spec))
        if any(p.is_meta for p in model.parameters()):
            model = model.to_empty(device="cpu")  # weights are re-initialised before training
        return model
    raise ValueError(f"model spec {spec!r} must look like 'torchvision:NAME', 'path.py:Class' or 'FAMILY:ARCH'")

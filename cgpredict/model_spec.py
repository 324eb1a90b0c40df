"""Resolving a MODEL argument (as the CLI takes it) into a model object and into a CG.

Pipeline position: **model** → CG → features → predictor → ranking/search. A spec names a model in
one of these forms:

``torchvision:NAME`` (or a bare ``NAME``)
    a torchvision classification model built without weights — on the ``meta`` device when the
    model allows it (no memory, no initialisation time), else on the CPU (e.g. RegNets).
``timm:NAME``
    a ``timm`` model without pretrained weights (needs the optional ``timm`` package).
``path/to/file.py:ClassName``
    the ``torch.nn.Module`` subclass ``ClassName`` of a Python file, instantiated without arguments.
``path/to/model.onnx``
    an ONNX file (converted by :func:`cgpredict.converters.from_onnx`).

Example:
    >>> from cgpredict.model_spec import spec_to_cg
    >>> cg = spec_to_cg("torchvision:resnet18")
    >>> cg.params
    11689512
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from cgpredict.cg import CG
from cgpredict.errors import CGConversionError

DEFAULT_INPUT_SHAPE: tuple[int, int, int, int] = (1, 3, 224, 224)
#: torchvision models whose natural input is not 224×224
TORCHVISION_INPUT_SIZES: dict[str, int] = {"inception_v3": 299}


def parse_input_shape(text: str | tuple[int, ...] | list[int] | None) -> tuple[int, ...] | None:
    """``"1,3,224,224"`` (or ``1x3x224x224``) → ``(1, 3, 224, 224)``; ``None`` stays ``None``."""
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        values = list(text)
    else:
        parts = re.split(r"[,x×]", str(text).replace(" ", ""))
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"input shape {text!r} is not a comma-separated list of integers") from None
    if not values or any(int(v) <= 0 for v in values):
        raise ValueError(f"input shape {text!r} must list positive sizes, batch first (e.g. 1,3,224,224)")
    return tuple(int(v) for v in values)


def _kind(spec: str) -> tuple[str, str]:
    """Split a spec into ``(kind, rest)`` with kind in torchvision, timm, file, onnx."""
    if spec.lower().endswith(".onnx"):
        return "onnx", spec
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in ("torchvision", "tv"):
        return "torchvision", rest
    if sep and prefix == "timm":
        return "timm", rest
    path, sep, cls = spec.rpartition(":")
    if sep and path.endswith(".py"):
        return "file", spec
    if spec.endswith(".py"):
        raise ValueError(f"model spec {spec!r} names a Python file but no class: use {spec}:ClassName")
    if sep:
        raise ValueError(
            f"model spec {spec!r}: unknown prefix {prefix!r}; use torchvision:NAME, timm:NAME, "
            "path/to/file.py:ClassName or path/to/model.onnx"
        )
    return "torchvision", spec


def _torchvision(name: str) -> Any:
    import torch
    import torchvision

    available = sorted(torchvision.models.list_models(module=torchvision.models))
    if name not in available:
        close = difflib.get_close_matches(name, available, n=4)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; available: {', '.join(available)}"
        raise ValueError(f"unknown torchvision model {name!r}{hint}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. inception/googlenet init_weights notices
        try:
            with torch.device("meta"):
                model = torchvision.models.get_model(name, weights=None)
        except Exception:  # some constructors copy data (e.g. RegNet): build on the CPU instead
            model = torchvision.models.get_model(name, weights=None)
    return model.eval()


def _timm(name: str) -> Any:
    try:
        import timm
    except ImportError:
        raise ValueError(f"model spec 'timm:{name}' needs the optional package timm (pip install timm)") from None
    if not timm.list_models(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown timm model {name!r}{hint}")
    return timm.create_model(name, pretrained=False).eval()


def import_user_file(path: Path, kind: str = "model") -> Any:
    """Import a user's ``.py`` file as a fresh module (``ValueError`` naming the file on failure)."""
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file {path} does not exist")
    module_name = f"_cgpredict_user_{kind}_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:  # pragma: no cover - .py files always load
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ValueError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _from_file(spec: str) -> Any:
    import torch

    path_text, _, cls_name = spec.rpartition(":")
    path = Path(path_text)
    module = import_user_file(path, "model")
    module_name = module.__name__
    cls = getattr(module, cls_name, None)
    if cls is None:
        modules = sorted(
            n for n, obj in vars(module).items()
            if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) and obj.__module__ == module_name
        )
        raise ValueError(f"{path} has no class {cls_name!r}; its nn.Module classes: {', '.join(modules) or 'none'}")
    if not (inspect.isclass(cls) and issubclass(cls, torch.nn.Module)):
        raise ValueError(f"{path}:{cls_name} is not a torch.nn.Module subclass")
    try:
        model = cls()
    except Exception as exc:
        raise ValueError(f"{path}:{cls_name}() failed (it must be constructible without arguments): {exc}") from exc
    return model.eval()


def load_model(spec: str, input_shape: tuple[int, ...] | None = None) -> Any:
    """Build the model named by ``spec`` (see the module docstring).

    Returns a ``torch.nn.Module`` in eval mode (``torchvision:``, ``timm:``, ``file.py:Class``) or
    an ``onnx.ModelProto`` (``.onnx``). ``input_shape`` is accepted for symmetry with
    :func:`spec_to_cg` and not needed to build any of them.

    Raises:
        ValueError: unknown model name, prefix, class, or a model that cannot be built.
        FileNotFoundError: a named file does not exist.
    """
    del input_shape  # building never depends on it
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a model spec must be a non-empty string, got {spec!r}")
    kind, rest = _kind(spec.strip())
    if kind == "onnx":
        path = Path(rest)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {path} does not exist")
        import onnx

        try:
            return onnx.load(str(path))
        except Exception as exc:
            raise CGConversionError(f"ONNX file {str(path)!r} is not a readable ONNX model ({exc})") from None
    if kind == "torchvision":
        return _torchvision(rest)
    if kind == "timm":
        return _timm(rest)
    return _from_file(rest)


def default_input_shape(spec: str, model: Any = None) -> tuple[int, ...]:
    """The input shape a spec is converted with when none is given (batch 1)."""
    kind, rest = _kind(spec.strip())
    if kind == "torchvision":
        size = TORCHVISION_INPUT_SIZES.get(rest, 224)
        return (1, 3, size, size)
    if kind == "timm" and model is not None:
        cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
        if "input_size" in cfg:
            return (1, *(int(v) for v in cfg["input_size"]))
    return DEFAULT_INPUT_SHAPE


def spec_to_cg(spec: str, input_shape: tuple[int, ...] | str | None = None) -> CG:
    """Resolve ``spec`` and convert it to a :class:`~cgpredict.cg.CG`.

    ``input_shape`` (batch first) defaults to the model's natural input (299×299 for
    ``inception_v3``, a timm model's configured size, else 1×3×224×224); ONNX files carry their own
    shapes, so it must be left out (or equal the file's input shape) for them.
    """
    shape = parse_input_shape(input_shape) if isinstance(input_shape, str) else input_shape
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a model spec must be a non-empty string, got {spec!r}")
    kind, rest = _kind(spec.strip())
    if kind == "onnx":
        from cgpredict.converters import from_onnx

        if not Path(rest).is_file():
            raise FileNotFoundError(f"ONNX file {rest} does not exist")
        cg = from_onnx(Path(rest))
        if shape is not None and tuple(cg.input_nodes[0].out_shape) != tuple(shape):
            raise ValueError(
                f"{rest} has the fixed input shape {tuple(cg.input_nodes[0].out_shape)}; "
                f"--input-shape {tuple(shape)} cannot change it"
            )
        return cg
    from cgpredict.converters import from_torch

    model = load_model(spec)
    shape = tuple(shape) if shape is not None else default_input_shape(spec, model)
    name = rest.rpartition(":")[2] if kind == "file" else rest
    return from_torch(model, input_shape=shape, name=name)

"""The estimator contract of the predictors: parameters, ``clone`` and the "is it fitted?" check.

Pipeline position: model → CG → features → **predictor (estimator contract)** → ranking/search.

The idea is scikit-learn's (``BaseEstimator.get_params/set_params``, ``clone``,
``check_is_fitted``), written for cgpredict's needs:

* a constructor only stores its arguments; the parameter names are read from ``__init__``'s
  signature, so :meth:`Estimator.get_params`, :meth:`Estimator.set_params` and :func:`clone` need
  no per-class code;
* fitted state ends in ``_`` and is created by ``fit`` (or by loading a checkpoint);
  :func:`check_is_fitted` raises :class:`NotFittedError` before it exists;
* nested options are parameters too: ``set_params(encoder__epochs=5)`` updates one key of the
  ``encoder`` option dict (or one attribute of an estimator stored there).

A class may keep a parameter under another attribute name by listing it in ``_param_attrs``
(the predictor keeps its option dicts as ``encoder_kwargs`` …, because ``encoder`` is the fitted
contrastive encoder there, an attribute older code reads).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, ClassVar, TypeVar

E = TypeVar("E", bound="Estimator")


class NotFittedError(RuntimeError):
    """A method that needs fitted state was called before ``fit`` (or loading a checkpoint)."""


class Estimator:
    """Base class: ``get_params`` / ``set_params`` from the ``__init__`` signature."""

    #: parameter name → attribute that stores it (when they differ).
    _param_attrs: ClassVar[dict[str, str]] = {}

    @classmethod
    def _param_names(cls) -> list[str]:
        """Names of the constructor's parameters (no ``*args``/``**kwargs`` allowed)."""
        names = []
        for name, par in inspect.signature(cls.__init__).parameters.items():
            if name == "self":
                continue
            if par.kind in (par.VAR_POSITIONAL, par.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ takes *{name}; estimator parameters must be named")
            names.append(name)
        return names

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters as stored; ``deep`` adds ``name__key`` for every key of a
        dict-valued parameter (and ``name__param`` of a nested estimator)."""
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, self._param_attrs.get(name, name))
            out[name] = value
            if deep and isinstance(value, dict):
                out.update({f"{name}__{k}": v for k, v in value.items()})
            elif deep and isinstance(value, Estimator):
                out.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
        return out

    def set_params(self: E, **params: Any) -> E:
        """Set parameters; ``name__key=value`` sets one key of a dict parameter (or a nested
        estimator's parameter). Unknown names raise ``ValueError`` naming the valid ones."""
        valid = self._param_names()
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; valid: {', '.join(valid)}")
            attr = self._param_attrs.get(name, name)
            if not sub:
                setattr(self, attr, value)
                continue
            current = getattr(self, attr)
            if isinstance(current, Estimator):
                current.set_params(**{sub: value})
            elif isinstance(current, dict) or current is None:
                setattr(self, attr, {**(current or {}), sub: value})
            else:
                raise ValueError(f"parameter {name!r} of {type(self).__name__} is not a dict or an estimator; "
                                 f"cannot set {key!r}")
        return self

    def __repr__(self) -> str:
        """``Class(param=value, ...)`` with the parameters that differ from a default instance."""
        defaults = type(self)().get_params(deep=False)
        shown = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items() if _differs(v, defaults.get(k))]
        return f"{type(self).__name__}({', '.join(shown)})"


def _differs(value: Any, default: Any) -> bool:
    try:
        return bool(value != default)
    except Exception:  # arrays and the like: show them
        return True


def clone(estimator: E) -> E:
    """A new, unfitted estimator with deep copies of ``estimator``'s parameters."""
    if not isinstance(estimator, Estimator):
        raise TypeError(f"clone() takes a cgpredict estimator, not {type(estimator).__name__}")
    params = {k: copy.deepcopy(v) for k, v in estimator.get_params(deep=False).items()}
    return type(estimator)(**params)


def check_is_fitted(estimator: Any, attribute: str = "weights_", what: str = "") -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has the fitted ``attribute``."""
    if getattr(estimator, attribute, None) is None:
        name = what or type(estimator).__name__
        raise NotFittedError(f"this {name} is not fitted; call fit() or load a checkpoint first")

"""Exceptions raised across the pipeline (model → CG → features → predictor → ranking/search)."""

from __future__ import annotations


class CGError(Exception):
    """Base class of cgpredict's own errors."""


class CGConversionError(CGError):
    """A model could not be turned into a computation graph.

    The message names the model and, where known, the module path and operator that failed, plus
    what each attempted tracing method reported.
    """


class CGSchemaError(CGError, ValueError):
    """A serialized CG has an unknown schema version or malformed content."""

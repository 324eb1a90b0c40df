"""Exceptions raised across the pipeline (model → CG → features → predictor → ranking/search).

One error type per domain, each naming its culprit (file and line, field, option, op) in the
message, so the command line can print one line (``error: ...``) instead of a traceback:

* :class:`InputError` — something the user gave is malformed (an option's value, a file that is
  not what it should be, a folder where a file belongs). Sub-types: :class:`UsageError` (options),
  :class:`CGSchemaError` (CG JSON), :class:`LabelFileError` (label CSVs).
* :class:`CGConversionError` — a model could not be turned into a CG.
* :class:`CacheEntryError` — an on-disk cache entry is unreadable, tampered with or written for
  another key; callers drop and recompute it (never shown to the user as an error).
* ``cgpredict.predictor.CheckpointError`` and ``cgpredict.fileio.OutputExistsError`` live beside
  the code that raises them; both derive from :class:`CGError`.

Every input error is also a ``ValueError`` (older callers catch that).
"""

from __future__ import annotations


class CGError(Exception):
    """Base class of cgpredict's own errors."""


class InputError(CGError, ValueError):
    """Malformed user input; the message names the file, line, field or option at fault."""


class UsageError(InputError):
    """A command-line option has a value the command cannot use (the message names the option)."""


class CGConversionError(CGError):
    """A model could not be turned into a computation graph.

    The message names the model and, where known, the module path and operator that failed, plus
    what each attempted tracing method reported.
    """


class CGSchemaError(InputError):
    """A serialized CG has an unknown schema version or content outside the schema (field named)."""


class LabelFileError(InputError):
    """A label table (CSV) is malformed: the message names the file, the line and the column."""


class CacheEntryError(CGError):
    """A cache entry is unreadable, fails its checksum or was written for another key."""

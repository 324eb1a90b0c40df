"""cgpredict: predict how accurate a neural network will be before anyone trains it.

Pipeline: model (PyTorch module or ONNX file) → computation graph (:class:`CG`, via
:mod:`cgpredict.converters`) → features (:mod:`cgpredict.features`) → predictor
(:mod:`cgpredict.models`) → ranking / search.

The default predictor is the generalist (:class:`GeneralistPredictor`, ``load_predictor()``):
ranking scores of a set of networks, trained across labelled families. The GENNAPE ensemble
(:class:`Predictor`, ``Predictor.pretrained("nb101")``) predicts accuracies on its training
family's scale.

Sub-packages ``cgpredict.converters``, ``cgpredict.datasets`` and ``cgpredict.models`` live in the
repository's top-level ``converters/``, ``datasets/`` and ``models/`` folders.
"""

from cgpredict.cg import CG, CGBuilder, Node
from cgpredict.errors import CGConversionError, CGError, CGSchemaError
from cgpredict.ops import OP_TYPES

__version__ = "0.1.0"

__all__ = ["CG", "CGBuilder", "Node", "OP_TYPES", "CGConversionError", "CGError", "CGSchemaError", "Predictor",
           "PredictorBag", "GeneralistPredictor", "load_predictor", "__version__"]


def __getattr__(name: str) -> object:
    """``cgpredict.Predictor`` (and ``PredictorBag``, ``load_predictor``, ``GeneralistPredictor``) are
    imported on first use (they pull in torch and torch-geometric)."""
    if name == "Predictor":
        from cgpredict.predictor import Predictor

        return Predictor
    if name in ("PredictorBag", "load_predictor"):
        from cgpredict import predictor

        return getattr(predictor, name)
    if name == "GeneralistPredictor":
        from cgpredict.generalist import GeneralistPredictor

        return GeneralistPredictor
    raise AttributeError(f"module 'cgpredict' has no attribute {name!r}")

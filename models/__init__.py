"""Accuracy predictors over computation graphs (installed as ``cgpredict.models``)."""

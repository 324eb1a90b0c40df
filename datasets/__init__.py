"""Architecture families, their builders and labels (installed as ``cgpredict.datasets``)."""

"""Predictor-guided search over computation graphs (model → CG → predictor → **search**)."""

"""Metrics, evaluation of fitted models, cross-validation and search."""

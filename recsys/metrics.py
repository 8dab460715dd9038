"""Accuracy metrics. Rating metrics here; all take plain arrays."""

from __future__ import annotations

import numpy as np


def _pair(truth, predicted):
    truth = np.asarray(truth, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if truth.shape != predicted.shape:
        raise ValueError(f"truth and predictions differ in shape: {truth.shape} vs "
                         f"{predicted.shape}")
    if truth.size == 0:
        raise ValueError("no ratings to score")
    return truth, predicted


def rmse(truth, predicted) -> float:
    """Root mean squared error."""
    truth, predicted = _pair(truth, predicted)
    return float(np.sqrt(np.mean((truth - predicted) ** 2)))


def mae(truth, predicted) -> float:
    """Mean absolute error."""
    truth, predicted = _pair(truth, predicted)
    return float(np.mean(np.abs(truth - predicted)))

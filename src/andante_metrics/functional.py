"""Functional forms of every KPI: stateless functions of a batch, same math as the classes."""

from andante_metrics.accuracy import (
    auroc,
    brier_score,
    expected_calibration_error,
    max_calibration_error,
    negative_log_likelihood,
    topk_accuracy,
)
from andante_metrics.efficiency import measure_throughput, parameter_footprint

__all__ = [
    "auroc",
    "brier_score",
    "expected_calibration_error",
    "max_calibration_error",
    "measure_throughput",
    "negative_log_likelihood",
    "parameter_footprint",
    "topk_accuracy",
]

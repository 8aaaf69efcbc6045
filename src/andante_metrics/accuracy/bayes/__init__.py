"""Bayes-error estimators (k-NN, minimum spanning tree, soft labels) and the gap to Bayes."""

from andante_metrics.accuracy.bayes.estimator import (
    BayesErrorEstimator,
    BayesErrorResult,
    bayes_error,
    cover_hart_lower_bound,
)
from andante_metrics.accuracy.bayes.gap import GapToBayes, gap_to_bayes

__all__ = [
    "BayesErrorEstimator",
    "BayesErrorResult",
    "GapToBayes",
    "bayes_error",
    "cover_hart_lower_bound",
    "gap_to_bayes",
]

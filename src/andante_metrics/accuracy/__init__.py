"""Accuracy KPIs: how often a model is right, how sure it is, and how well calibrated."""

from andante_metrics.accuracy.auroc import AUROC, auroc
from andante_metrics.accuracy.bayes import (
    BayesErrorEstimator,
    BayesErrorResult,
    GapToBayes,
    bayes_error,
    gap_to_bayes,
)
from andante_metrics.accuracy.calibration import (
    BrierScore,
    ExpectedCalibrationError,
    MaxCalibrationError,
    NegativeLogLikelihood,
    ReliabilityDiagram,
    brier_score,
    expected_calibration_error,
    max_calibration_error,
    negative_log_likelihood,
)
from andante_metrics.accuracy.segmentation import Dice, IoU, dice, iou
from andante_metrics.accuracy.topk import TopKAccuracy, topk_accuracy

__all__ = [
    "AUROC",
    "BayesErrorEstimator",
    "BayesErrorResult",
    "BrierScore",
    "Dice",
    "ExpectedCalibrationError",
    "GapToBayes",
    "IoU",
    "MaxCalibrationError",
    "NegativeLogLikelihood",
    "ReliabilityDiagram",
    "TopKAccuracy",
]


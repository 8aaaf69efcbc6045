"""Robustness KPIs: error under common corruptions (mCE) and robust accuracy under attack."""

from andante_metrics.robustness.adversarial import (
    AdversarialRobustness,
    NormalizedModel,
    fgsm,
    pgd,
    robust_accuracy,
)
from andante_metrics.robustness.corruption_robustness import (
    CorruptionRobustness,
    corruption_error_summary,
    corruption_robustness,
)
from andante_metrics.robustness.corruptions import CORRUPTIONS, SEVERITIES, corrupt

__all__ = [
    "CORRUPTIONS",
    "SEVERITIES",
    "AdversarialRobustness",
    "CorruptionRobustness",
    "NormalizedModel",
    "corrupt",
    "corruption_error_summary",
    "corruption_robustness",
    "fgsm",
    "pgd",
    "robust_accuracy",
]

"""Generalization KPIs: does the model learn or memorize, and how far does it carry."""

from andante_metrics.generalization.canary import (
    CanaryMemorization,
    CanarySet,
    canary_fitted_fraction,
    make_canaries,
)
from andante_metrics.generalization.cross_domain import CrossDomainGap, cross_domain_table
from andante_metrics.generalization.gap import GeneralizationGap, generalization_gap
from andante_metrics.generalization.memorization import (
    ConditionResult,
    MemorizationProbe,
    MemorizationResult,
    chance_normalized_accuracy,
    corrupt_labels,
    gaussian_pixels,
    memorization_probe,
    random_pixels,
    shuffle_pixels,
)

__all__ = [
    "CanaryMemorization",
    "CanarySet",
    "ConditionResult",
    "CrossDomainGap",
    "GeneralizationGap",
    "MemorizationProbe",
    "MemorizationResult",
    "canary_fitted_fraction",
    "chance_normalized_accuracy",
    "corrupt_labels",
    "cross_domain_table",
    "gaussian_pixels",
    "generalization_gap",
    "make_canaries",
    "memorization_probe",
    "random_pixels",
    "shuffle_pixels",
]

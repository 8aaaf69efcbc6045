"""Characterization KPIs: where a model fails. Metrics on named sub-sets and stereo errors."""

from andante_metrics.characterization.stereo import (
    D1OutlierRate,
    EndPointError,
    d1_outlier_rate,
    end_point_error,
)
from andante_metrics.characterization.subsets import SubsetMetric

__all__ = [
    "D1OutlierRate",
    "EndPointError",
    "SubsetMetric",
    "d1_outlier_rate",
    "end_point_error",
]

"""andante_metrics: PyTorch-native key performance indicators and the KPI card.

Every KPI is a ``torchmetrics.Metric`` with ``update``, ``compute``, ``reset`` and ``forward``;
:class:`KPICollection` updates many from one call and reports them by area. Functional forms
live in :mod:`andante_metrics.functional`.
"""

from andante_metrics import accuracy, efficiency
from andante_metrics.accuracy import *  # noqa: F403
from andante_metrics.base import KPI_AREAS, KPIMetric
from andante_metrics.collection import KPICollection
from andante_metrics.efficiency import *  # noqa: F403
from andante_metrics.report import KPICard, write_card

__version__ = "0.1.0"

_AREAS = [accuracy, efficiency]

__all__ = [
    "KPI_AREAS",
    "KPICard",
    "KPICollection",
    "KPIMetric",
    "write_card",
    *(name for area in _AREAS for name in area.__all__),
]

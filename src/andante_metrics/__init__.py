"""andante_metrics: PyTorch-native key performance indicators and the KPI card.

Every KPI is a ``torchmetrics.Metric`` with ``update``, ``compute``, ``reset`` and ``forward``;
:class:`KPICollection` updates many from one call and reports them by area. Functional forms
live in :mod:`andante_metrics.functional`.
"""

from andante_metrics import (
    accuracy,
    characterization,
    convergence,
    efficiency,
    fidelity,
    generalization,
    generative,
    interpretability,
    reproducibility,
    robustness,
)
from andante_metrics.accuracy import *  # noqa: F403
from andante_metrics.base import KPI_AREAS, KPIMetric
from andante_metrics.characterization import *  # noqa: F403
from andante_metrics.collection import KPICollection
from andante_metrics.convergence import *  # noqa: F403
from andante_metrics.efficiency import *  # noqa: F403
from andante_metrics.fidelity import *  # noqa: F403
from andante_metrics.generalization import *  # noqa: F403
from andante_metrics.generative import *  # noqa: F403
from andante_metrics.interpretability import *  # noqa: F403
from andante_metrics.report import KPICard, write_card
from andante_metrics.reproducibility import *  # noqa: F403
from andante_metrics.robustness import *  # noqa: F403

__version__ = "0.1.0"

# One entry per KPI area package; keep it in the order of the imports above.
_AREAS = [
    accuracy,
    characterization,
    convergence,
    efficiency,
    fidelity,
    generalization,
    generative,
    interpretability,
    reproducibility,
    robustness,
]

__all__ = [
    "KPI_AREAS",
    "KPICard",
    "KPICollection",
    "KPIMetric",
    "write_card",
    *(name for area in _AREAS for name in area.__all__),
]

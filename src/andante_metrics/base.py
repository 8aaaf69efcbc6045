"""The metric base: ``torchmetrics.Metric`` plus the class-level metadata of a KPI.

torchmetrics already provides state registration, ``forward``, device moves and synchronisation
over ``torch.distributed``. This base only adds what the KPI card and the collections read:

* ``kpi_area``: the package folder the metric belongs to (``"accuracy"``, ``"fidelity"``, ...);
* ``unit``: the unit of the value (``"fraction"``, ``"dB"``, ``"MACs"``, ``"ms"``, ...);
* ``higher_is_better``: the direction that is better, ``None`` where there is none;
* ``input_names``: the keyword names ``update`` takes, which a ``KPICollection`` routes by.

States are registered persistent by default, so they survive ``state_dict`` round trips and
checkpoints and a resumed run gives the same final value as an uninterrupted one.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from torchmetrics import Metric

KPI_AREAS = (
    "accuracy",
    "fidelity",
    "generative",
    "generalization",
    "robustness",
    "characterization",
    "efficiency",
    "convergence",
    "interpretability",
    "reproducibility",
)


class KPIMetric(Metric):
    """Base class of every stateful KPI in andante_metrics.

    Subclasses set the class attributes below and implement ``update`` and ``compute`` like any
    ``torchmetrics.Metric``. ``input_names`` defaults to the parameter names of ``update``.
    """

    kpi_area: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool | None] = None
    is_differentiable: ClassVar[bool] = False
    full_state_update: ClassVar[bool] = False
    input_names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kpi_area and cls.kpi_area not in KPI_AREAS:
            raise TypeError(
                f"{cls.__name__}.kpi_area must be one of {', '.join(KPI_AREAS)}, "
                f"got {cls.kpi_area!r}."
            )
        if "input_names" not in cls.__dict__ and "update" in cls.__dict__:
            params = inspect.signature(cls.__dict__["update"]).parameters.values()
            cls.input_names = tuple(
                p.name
                for p in params
                if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            )

    def add_state(
        self,
        name: str,
        default: list | torch.Tensor,
        dist_reduce_fx: Any = None,
        persistent: bool = True,
    ) -> None:
        """Register a state like ``torchmetrics.Metric.add_state``, persistent by default."""
        super().add_state(name, default, dist_reduce_fx=dist_reduce_fx, persistent=persistent)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        loaded = any(prefix + key in state_dict for key in self._defaults)
        super()._load_from_state_dict(state_dict, prefix, *args)
        if loaded:
            # Loaded state counts as updated, so compute() on a resumed metric does not warn
            # that update() was never called.
            self._update_count = max(self._update_count, 1)
            self._computed = None

    @classmethod
    def kpi_metadata(cls) -> dict[str, Any]:
        """Return the metadata the KPI card records for this metric."""
        return {"area": cls.kpi_area, "unit": cls.unit, "higher_is_better": cls.higher_is_better}

    def _check_not_empty(self, count: torch.Tensor | int) -> None:
        """Raise ``ValueError`` when the (synchronised) state holds no samples.

        Metrics call this at the start of ``compute`` with their sample-count state. It reads the
        state after synchronisation, so every process of a group raises together.
        """
        if int(count) == 0:
            raise ValueError(
                f"{type(self).__name__}.compute() found no samples: call update() with at least "
                f"one non-empty batch before compute()."
            )

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

    def __init__(self, **kwargs: Any) -> None:
        if not self.kpi_area or not isinstance(self.unit, str):
            raise TypeError(
                f"{type(self).__name__} must set the class attributes `kpi_area` (one of "
                f"{', '.join(KPI_AREAS)}) and `unit` before it can be instantiated."
            )
        super().__init__(**kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Update with a batch and return the batch's own value, like ``torchmetrics.Metric``.

        If the update or the batch value raises, the accumulated state is restored before the
        error propagates, so a rejected batch never wipes what was seen before.
        """
        saved = self._copy_state_dict()
        count, computed, on_cpu = self._update_count, self._computed, self.compute_on_cpu
        try:
            return super().forward(*args, **kwargs)
        except Exception:
            for name, value in saved.items():
                setattr(self, name, value)
            self._update_count, self._computed, self.compute_on_cpu = count, computed, on_cpu
            self._is_synced = False
            self._should_unsync = True
            self._to_sync = self.sync_on_compute
            self._enable_grad = False
            raise

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        loaded = False
        for key, default in self._defaults.items():
            name = prefix + key
            if name not in state_dict:
                if self._persistent.get(key, False):
                    missing_keys.append(name)
                continue
            loaded = True
            value = state_dict[name]
            if isinstance(default, torch.Tensor) and isinstance(value, torch.Tensor):
                # States sized at construction (per-class counts, histograms) must keep their
                # shape; empty or scalar defaults may be sized by the first update.
                if default.numel() > 1 and value.shape != default.shape:
                    raise ValueError(
                        f"State `{key}` of {type(self).__name__} has shape "
                        f"{tuple(default.shape)}, but the state_dict holds shape "
                        f"{tuple(value.shape)}; build the metric with the options it was saved "
                        f"with (for example the same num_classes)."
                    )
                if default.numel() > 0:
                    state_dict[name] = value.to(dtype=default.dtype)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
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

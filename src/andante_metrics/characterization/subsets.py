r"""Any metric computed overall and on named sub-sets of the data, with optional bootstrap CIs.

:class:`SubsetMetric` keeps one copy of a metric for all the data and one per named sub-set,
in the manner of Fairlearn's ``MetricFrame`` but for tensors inside a training loop. Each
``update`` states which data belong to which sub-set:

* ``by="sample"``: a ``(N,)`` integer tensor of sub-set indices (one sub-set per sample, in the
  order of ``subsets``), or a mapping of sub-set name to a ``(N,)`` boolean mask (sub-sets may
  overlap or leave samples out). Every tensor argument is indexed along dimension 0.
* ``by="element"``: a mapping of sub-set name to a boolean mask over elements, such as the
  pixels of a disparity map. An argument of the mask's shape ``(N, *)`` becomes the flat
  ``(M,)`` vector of selected elements, and one of shape ``(N, C, *)`` becomes ``(M, C)``, so the
  wrapped metric must accept a flat batch of elements (pixel-wise metrics such as
  :class:`D1OutlierRate`, :class:`EndPointError` or a dataset-level IoU do).

So each sub-set's value equals the wrapped metric run on that sub-set's data alone, and the
overall value equals the metric run on all data. ``compute()`` returns, for ``"overall"`` and
for every sub-set name, a dict with ``value``, ``size`` (samples or elements routed to it) and,
for sub-sets whose value is a tensor of the overall's shape, ``difference`` (value minus the
overall value). A sub-set that received no data has value NaN.

With ``num_bootstraps > 0``, every update also feeds ``num_bootstraps`` replicate copies with a
Poisson(1) resampling of the samples (dimension 0), drawn from a generator seeded by ``seed``,
the process rank and the update count. The percentile interval at level ``confidence`` of the
replicate values is reported as ``ci_low`` and ``ci_high``, and for sub-sets the interval of
the paired difference as ``difference_ci_low`` and ``difference_ci_high``. Source: the Poisson
bootstrap of Hanley and MacGibbon (2006) for streams, and the percentile interval of Efron and
Tibshirani, *An Introduction to the Bootstrap* (1993), ch. 13. torchmetrics' ``BootStrapper``
draws from the global generator and resamples whatever it is given, so it is not used: this
class needs a seeded draw and, for element sub-sets, resampling of whole samples before the
masks apply.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn
from torchmetrics import Metric

from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import (
    check_in_choices,
    check_int_range,
    check_tensor,
)
from andante_metrics.utilities.distributed import rank

By = Literal["sample", "element"]
OVERALL = "overall"
# torchmetrics warns when compute() runs on a process whose copy saw no update. The wrapper
# computes a copy only when its synchronised size is positive, so there the warning is noise.
_EMPTY_COMPUTE_WARNING = r".*was called before the ``update`` method.*"


def _check_subset_names(subsets: Sequence[str]) -> tuple[str, ...]:
    if isinstance(subsets, str) or not isinstance(subsets, Sequence) or not subsets:
        raise TypeError(
            f"`subsets` must be a non-empty sequence of names, got {subsets!r}; pass e.g. "
            f"['background', 'foreground']."
        )
    names = tuple(subsets)
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"`subsets` must hold non-empty strings, got {name!r}.")
    if len(set(names)) != len(names) or OVERALL in names:
        raise ValueError(
            f"`subsets` names must be unique and must not be {OVERALL!r}, got {list(names)}."
        )
    return names


def _batch_size(args: tuple, kwargs: dict[str, Any]) -> int:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            return value.shape[0]
    raise TypeError(
        "SubsetMetric.update needs at least one tensor argument with a first dimension."
    )


def _fits_channels_second(value: torch.Tensor, mask: torch.Tensor) -> bool:
    return (
        value.ndim == mask.ndim + 1
        and value.shape[0] == mask.shape[0]
        and value.shape[2:] == mask.shape[1:]
    )


def _check_element_fit(value: Any, mask: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` when an element mask cannot select from ``value``."""
    if not isinstance(value, torch.Tensor):
        return
    if value.shape != mask.shape and not _fits_channels_second(value, mask):
        raise ValueError(
            f"`groups[{name!r}]` of shape {tuple(mask.shape)} does not fit an argument of shape "
            f"{tuple(value.shape)}; element masks must have the argument's shape (N, *) or, for "
            f"(N, C, *) arguments, the shape (N, *)."
        )


def _select_elements(value: Any, mask: torch.Tensor) -> Any:
    """Return the elements of ``value`` selected by ``mask`` as ``(M,)`` or ``(M, C)``."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.shape == mask.shape:
        return value[mask]
    return value.movedim(1, -1)[mask]


def _select(value: Any, mask: torch.Tensor, by: str) -> Any:
    if by == "element":
        return _select_elements(value, mask)
    if isinstance(value, torch.Tensor) and value.ndim > 0:
        return value[mask]
    return value


def _percentile_interval(values: torch.Tensor, confidence: float) -> tuple[torch.Tensor, ...]:
    """Return the percentile interval over dimension 0, ignoring NaN replicates."""
    levels = torch.tensor(
        [(1 - confidence) / 2, (1 + confidence) / 2], dtype=torch.float64, device=values.device
    )
    bounds = torch.nanquantile(values.double(), levels, dim=0)
    return bounds[0], bounds[1]


class SubsetMetric(KPIMetric):
    """Compute a metric overall and on named sub-sets; see the module docstring.

    Args:
        metric: the metric to wrap (any ``torchmetrics.Metric``; it is copied, never updated).
        subsets: names of the sub-sets, unique and not ``"overall"``.
        by: ``"sample"`` or ``"element"``.
        num_bootstraps: number of Poisson bootstrap replicates, 0 for none.
        confidence: level of the percentile interval, in (0, 1).
        seed: seed of the bootstrap draws.

    ``update(*args, groups, **kwargs)`` passes ``args`` and ``kwargs`` to the wrapped metric.
    State: one copy of the metric per sub-set plus one for all data, their sizes (int64,
    summed across processes) and, with bootstrap, the replicate copies. Bootstrap values depend
    on batching and on the number of processes, because the draws follow the update count and
    the rank. ``compute()`` before any update raises ``ValueError``.

    Example:
        >>> import torch
        >>> from andante_metrics import TopKAccuracy
        >>> sliced = SubsetMetric(TopKAccuracy(num_classes=2), subsets=["a", "b"])
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
        >>> sliced.update(logits, torch.tensor([0, 0, 0]), groups=torch.tensor([0, 0, 1]))
        >>> result = sliced.compute()
        >>> result["a"]["value"], result["a"]["size"], result["b"]["difference"]
        (tensor(0.5000, dtype=torch.float64), tensor(2), tensor(0.3333, dtype=torch.float64))
    """

    kpi_area = "characterization"

    def __init__(
        self,
        metric: Metric,
        *,
        subsets: Sequence[str],
        by: By = "sample",
        num_bootstraps: int = 0,
        confidence: float = 0.95,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(metric, Metric):
            received = (
                f"the class {metric.__name__}" if isinstance(metric, type)
                else f"a {type(metric).__name__}"
            )
            raise TypeError(
                f"`metric` must be a torchmetrics.Metric instance, got {received}; pass a "
                f"metric object such as TopKAccuracy(num_classes=10)."
            )
        self.subsets = _check_subset_names(subsets)
        check_in_choices(by, "by", ("sample", "element"))
        check_int_range(num_bootstraps, "num_bootstraps", low=0)
        if isinstance(confidence, bool) or not isinstance(confidence, float) or not (
            0.0 < confidence < 1.0
        ):
            raise ValueError(f"`confidence` must be a float in (0, 1), got {confidence!r}.")
        check_int_range(seed, "seed", low=0)

        self.by = by
        self.num_bootstraps = num_bootstraps
        self.confidence = confidence
        self.seed = seed
        self.input_names = (*getattr(metric, "input_names", ("preds", "target")), "groups")

        template = copy.deepcopy(metric)
        template.reset()
        # Kept out of the module tree so its (empty) state never enters the state_dict.
        self._template = [template]
        slots = len(self.subsets) + 1
        self.copies = nn.ModuleList([self._fresh_copy() for _ in range(slots)])
        self.replicates = nn.ModuleList(
            nn.ModuleList(self._fresh_copy() for _ in range(slots)) for _ in range(num_bootstraps)
        )
        self.add_state("sizes", torch.zeros(slots, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state(
            "replicate_sizes", torch.zeros(num_bootstraps, slots, dtype=torch.long),
            dist_reduce_fx="sum",
        )
        self.add_state("draws", torch.zeros((), dtype=torch.long), dist_reduce_fx="max")

    def _fresh_copy(self) -> Metric:
        clone = copy.deepcopy(self._template[0])
        clone.persistent(True)
        return clone

    def _masks(self, groups: Any, args: tuple, kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Check ``groups`` and return one boolean mask per sub-set name."""
        size = _batch_size(args, kwargs)
        if isinstance(groups, torch.Tensor) and not groups.dtype == torch.bool:
            if self.by != "sample":
                raise TypeError(
                    "`groups` must be a mapping of sub-set name to boolean mask with by='element', "
                    "got a tensor of sub-set indices."
                )
            check_tensor(groups, "groups", ndim=1, dtype="int")
            if groups.shape[0] != size:
                raise ValueError(
                    f"`groups` must hold one sub-set index per sample ({size}), got shape "
                    f"{tuple(groups.shape)}."
                )
            if groups.numel() and (int(groups.min()) < 0 or int(groups.max()) >= len(self.subsets)):
                bad = int(groups.min()) if int(groups.min()) < 0 else int(groups.max())
                raise ValueError(
                    f"`groups` must hold sub-set indices in [0, {len(self.subsets) - 1}] for the "
                    f"sub-sets {list(self.subsets)}, got {bad}."
                )
            return {name: groups == index for index, name in enumerate(self.subsets)}
        if not isinstance(groups, Mapping):
            raise TypeError(
                f"`groups` must be a (N,) tensor of sub-set indices or a mapping of sub-set name "
                f"to boolean mask, got {type(groups).__name__}."
            )
        if set(groups) != set(self.subsets):
            raise ValueError(
                f"`groups` must have exactly the keys {list(self.subsets)}, got {list(groups)}."
            )
        masks = {}
        for name in self.subsets:
            mask = groups[name]
            check_tensor(mask, f"groups[{name!r}]")
            if mask.dtype != torch.bool:
                raise TypeError(
                    f"`groups[{name!r}]` must be a boolean mask, got dtype {mask.dtype}."
                )
            if self.by == "sample" and mask.shape != (size,):
                raise ValueError(
                    f"`groups[{name!r}]` must have shape ({size},) with by='sample', got "
                    f"{tuple(mask.shape)}."
                )
            if self.by == "element" and (mask.ndim == 0 or mask.shape[0] != size):
                raise ValueError(
                    f"`groups[{name!r}]` must have shape (N, *) with N={size} with by='element', "
                    f"got {tuple(mask.shape)}."
                )
            masks[name] = mask
        return masks

    def _route(
        self, copies: Sequence[Metric], args: tuple, kwargs: dict[str, Any],
        masks: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Update the overall copy and every sub-set copy; return the sizes routed to each."""
        sizes = torch.zeros(len(copies), dtype=torch.long)
        first_mask = next(iter(masks.values()))
        sizes[0] = first_mask.numel()
        copies[0].update(*args, **kwargs)
        for slot, name in enumerate(self.subsets, start=1):
            mask = masks[name]
            selected = int(mask.sum())
            if selected == 0:
                continue
            sub_args = tuple(_select(value, mask, self.by) for value in args)
            sub_kwargs = {key: _select(value, mask, self.by) for key, value in kwargs.items()}
            copies[slot].update(*sub_args, **sub_kwargs)
            sizes[slot] = selected
        return sizes

    def update(self, *args: Any, groups: Any, **kwargs: Any) -> None:
        """Update the overall copy with all data and each sub-set copy with its part."""
        masks = self._masks(groups, args, kwargs)
        if self.by == "element":
            for name, mask in masks.items():
                for value in (*args, *kwargs.values()):
                    _check_element_fit(value, mask, name)
        self.sizes += self._route(self.copies, args, kwargs, masks).to(self.sizes.device)
        if self.num_bootstraps:
            self._update_replicates(args, kwargs, masks)

    def _update_replicates(
        self, args: tuple, kwargs: dict[str, Any], masks: dict[str, torch.Tensor]
    ) -> None:
        size = _batch_size(args, kwargs)
        seed = hash((self.seed, rank(), int(self.draws))) & 0x7FFF_FFFF_FFFF_FFFF
        generator = torch.Generator().manual_seed(seed)
        self.draws += 1
        for replicate, copies in enumerate(self.replicates):
            counts = torch.poisson(torch.ones(size, dtype=torch.float64), generator=generator)
            index = torch.repeat_interleave(torch.arange(size), counts.long())
            if index.numel() == 0:
                continue

            def resample(value: Any, index: torch.Tensor = index) -> Any:
                if isinstance(value, torch.Tensor) and value.ndim > 0:
                    return value[index.to(value.device)]
                return value

            sizes = self._route(
                copies,
                tuple(resample(value) for value in args),
                {key: resample(value) for key, value in kwargs.items()},
                {name: resample(mask) for name, mask in masks.items()},
            )
            self.replicate_sizes[replicate] += sizes.to(self.replicate_sizes.device)

    @staticmethod
    def _compute_copies(copies: Sequence[Metric], sizes: torch.Tensor, like: Any) -> list[Any]:
        values = []
        for metric, size in zip(copies, sizes.tolist(), strict=True):
            if size == 0:
                values.append(_nan_like(like))
                continue
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_EMPTY_COMPUTE_WARNING)
                values.append(metric.compute())
        return values

    def compute(self) -> dict[str, dict[str, Any]]:
        """Return value, size and difference to overall for ``"overall"`` and every sub-set."""
        self._check_not_empty(self.sizes[0])
        overall = self.copies[0].compute()
        values = self._compute_copies(self.copies, self.sizes, overall)
        result: dict[str, dict[str, Any]] = {}
        for slot, name in enumerate((OVERALL, *self.subsets)):
            entry: dict[str, Any] = {"value": values[slot], "size": self.sizes[slot].clone()}
            if slot and _same_shape_tensors(values[slot], overall):
                entry["difference"] = values[slot] - overall
            result[name] = entry
        if self.num_bootstraps:
            self._add_intervals(result, overall)
        return result

    def _add_intervals(self, result: dict[str, dict[str, Any]], overall: Any) -> None:
        if not isinstance(overall, torch.Tensor):
            raise TypeError(
                f"Bootstrap intervals need a metric whose compute() returns a tensor, got "
                f"{type(overall).__name__}; set num_bootstraps=0."
            )
        replicate_values = torch.stack(
            [
                torch.stack([torch.as_tensor(v, dtype=torch.float64).to(overall.device)
                             for v in self._compute_copies(copies, sizes, overall)])
                for copies, sizes in zip(self.replicates, self.replicate_sizes, strict=True)
            ]
        )
        for slot, name in enumerate((OVERALL, *self.subsets)):
            low, high = _percentile_interval(replicate_values[:, slot], self.confidence)
            result[name]["ci_low"], result[name]["ci_high"] = low, high
            if slot:
                difference = replicate_values[:, slot] - replicate_values[:, 0]
                low, high = _percentile_interval(difference, self.confidence)
                result[name]["difference_ci_low"] = low
                result[name]["difference_ci_high"] = high

    def reset(self) -> None:
        """Reset the sizes and every copy of the wrapped metric."""
        super().reset()
        for module in self.modules():
            if module is not self and isinstance(module, Metric):
                module.reset()

    def forward(self, *args: Any, groups: Any, **kwargs: Any) -> dict[str, dict[str, Any]]:
        """Accumulate the batch and return the result of this batch alone (not synchronised)."""
        self.update(*args, groups=groups, **kwargs)
        batch = SubsetMetric(
            self._template[0], subsets=self.subsets, by=self.by,
            num_bootstraps=self.num_bootstraps, confidence=self.confidence, seed=self.seed,
        ).to(self.device)
        for module in batch.modules():
            if isinstance(module, Metric):
                module.sync_on_compute = False
                module._to_sync = False
        batch.update(*args, groups=groups, **kwargs)
        return batch.compute()


def _same_shape_tensors(value: Any, other: Any) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and isinstance(other, torch.Tensor)
        and value.shape == other.shape
    )


def _nan_like(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return torch.full_like(value, math.nan, dtype=torch.float64)
    return math.nan

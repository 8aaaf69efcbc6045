r"""Stereo disparity and optical flow errors: end-point error and the KITTI D1 outlier rate.

For each position with valid ground truth, the error is :math:`e = |d - d^*|` for disparity
and :math:`e = \lVert f - f^* \rVert_2` (over the two flow components) for optical flow. Then

.. math::
    \text{EPE} = \frac{1}{|V|} \sum_{p \in V} e_p, \qquad
    \text{D1} = \frac{1}{|V|} \sum_{p \in V} [\, e_p > \tau_a \,\wedge\, e_p > \tau_r |d^*_p| \,]

with :math:`V` the positions whose ground truth is valid, :math:`\tau_a = 3` px and
:math:`\tau_r = 0.05` by default. D1 is the outlier rate of the KITTI 2015 stereo benchmark
(Menze and Geiger, CVPR 2015; the rule of its development kit), and applied to flow it is the
benchmark's Fl outlier rate.

Ground truth is invalid where it is NaN or infinite (scikit-image's Middlebury disparity marks
unknown pixels with infinity) or, for disparity, equal to ``invalid_value`` (KITTI's PNG files
store 0 where no ground truth exists). Invalid positions are removed before counting, and
predictions must be finite everywhere.

Shapes: disparity ``preds`` and ``target`` of any equal shape ``(N, *)``; flow ``(N, 2, *)``
with the horizontal and vertical components in dimension 1.
"""

from __future__ import annotations

from typing import Literal

import torch

from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import (
    check_finite,
    check_in_choices,
    check_positive,
    check_same_shape,
    check_tensor,
)

FieldKind = Literal["disparity", "flow"]
FIELD_KINDS = ("disparity", "flow")


def _check_field_options(field: str, invalid_value: float | None) -> None:
    check_in_choices(field, "field", FIELD_KINDS)
    if invalid_value is not None:
        if field == "flow":
            raise ValueError(
                "`invalid_value` applies to disparity only; mark invalid flow ground truth with "
                "NaN or infinity instead."
            )
        if isinstance(invalid_value, bool) or not isinstance(invalid_value, (int, float)):
            raise TypeError(
                f"`invalid_value` must be a number or None, got {invalid_value!r} "
                f"({type(invalid_value).__name__})."
            )


def _valid_errors(
    preds: torch.Tensor, target: torch.Tensor, field: str, invalid_value: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the error and the ground-truth magnitude at every valid position, both float64."""
    check_tensor(preds, "preds", dtype="float")
    check_tensor(target, "target", dtype="float")
    check_same_shape(preds, target, "preds", "target")
    if field == "flow" and (preds.ndim < 2 or preds.shape[1] != 2):
        raise ValueError(
            f"`preds` and `target` must have shape (N, 2, *) for field='flow', got "
            f"{tuple(preds.shape)}."
        )
    check_finite(preds, "preds")
    preds, target = preds.double(), target.double()
    if field == "flow":
        valid = torch.isfinite(target).all(dim=1)
        difference = (preds - target).movedim(1, -1)[valid]
        return difference.norm(dim=-1), target.movedim(1, -1)[valid].norm(dim=-1)
    valid = torch.isfinite(target)
    if invalid_value is not None:
        valid &= target != invalid_value
    return (preds[valid] - target[valid]).abs(), target[valid].abs()


def _d1_update(
    preds: torch.Tensor,
    target: torch.Tensor,
    field: str,
    invalid_value: float | None,
    abs_threshold: float,
    rel_threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the number of outliers and of valid positions (int64 scalars)."""
    error, magnitude = _valid_errors(preds, target, field, invalid_value)
    outlier = (error > abs_threshold) & (error > rel_threshold * magnitude)
    return outlier.sum(), torch.tensor(error.numel(), device=error.device)


def _epe_update(
    preds: torch.Tensor, target: torch.Tensor, field: str, invalid_value: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the float64 sum of errors and the number of valid positions."""
    error, _ = _valid_errors(preds, target, field, invalid_value)
    return error.sum(), torch.tensor(error.numel(), device=error.device)


def _raise_if_no_valid(count: torch.Tensor) -> None:
    if int(count) == 0:
        raise ValueError(
            "`target` contains no valid ground truth (every position is NaN, infinite or equal to "
            "`invalid_value`, or the input is empty); pass at least one valid position."
        )


def end_point_error(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    field: FieldKind = "disparity",
    invalid_value: float | None = None,
) -> torch.Tensor:
    r"""Compute the mean end-point error over the positions with valid ground truth.

    See the module docstring for the formula, the shapes and which positions are invalid.

    Args:
        preds: predicted disparity ``(N, *)`` or flow ``(N, 2, *)``, finite floats.
        target: ground truth of the same shape; NaN or infinity marks an invalid position.
        field: ``"disparity"`` (absolute difference) or ``"flow"`` (Euclidean norm).
        invalid_value: disparity value that also marks an invalid position (KITTI uses 0).

    Returns:
        A float64 scalar in pixels. No valid position raises ``ValueError``.

    Example:
        >>> import torch
        >>> target = torch.tensor([[10.0, 20.0, float("inf")]])
        >>> end_point_error(torch.tensor([[11.0, 24.0, 0.0]]), target)
        tensor(2.5000, dtype=torch.float64)
    """
    _check_field_options(field, invalid_value)
    total, count = _epe_update(preds, target, field, invalid_value)
    _raise_if_no_valid(count)
    return total / count


def d1_outlier_rate(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    field: FieldKind = "disparity",
    invalid_value: float | None = None,
    abs_threshold: float = 3.0,
    rel_threshold: float = 0.05,
) -> torch.Tensor:
    r"""Compute the KITTI 2015 outlier rate (D1 for disparity, Fl for flow).

    A valid position is an outlier when its error exceeds ``abs_threshold`` pixels and
    ``rel_threshold`` times the ground-truth magnitude (module docstring).

    Args:
        preds: predicted disparity ``(N, *)`` or flow ``(N, 2, *)``, finite floats.
        target: ground truth of the same shape; NaN or infinity marks an invalid position.
        field: ``"disparity"`` or ``"flow"``.
        invalid_value: disparity value that also marks an invalid position (KITTI uses 0).
        abs_threshold: absolute error threshold in pixels, 3 in KITTI 2015.
        rel_threshold: relative error threshold, 0.05 in KITTI 2015.

    Returns:
        A float64 scalar fraction in [0, 1] (KITTI prints it as a percentage). No valid
        position raises ``ValueError``.

    Example:
        >>> import torch
        >>> target = torch.tensor([[10.0, 100.0, 50.0, 0.0]])
        >>> preds = torch.tensor([[14.0, 104.0, 51.0, 9.0]])
        >>> d1_outlier_rate(preds, target, invalid_value=0.0)
        tensor(0.3333, dtype=torch.float64)
    """
    _check_field_options(field, invalid_value)
    check_positive(abs_threshold, "abs_threshold", allow_zero=True)
    check_positive(rel_threshold, "rel_threshold", allow_zero=True)
    outliers, count = _d1_update(preds, target, field, invalid_value, abs_threshold, rel_threshold)
    _raise_if_no_valid(count)
    return outliers.double() / count


class EndPointError(KPIMetric):
    """Stateful mean end-point error; see :func:`end_point_error`.

    State: the float64 sum of errors and the int64 count of valid positions, summed across
    processes. ``compute()`` before any valid position raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = EndPointError(field="flow")
        >>> metric.update(torch.zeros(1, 2, 1, 1), torch.tensor([[[[3.0]], [[4.0]]]]))
        >>> metric.compute()
        tensor(5., dtype=torch.float64)
    """

    kpi_area = "characterization"
    unit = "px"
    higher_is_better = False

    def __init__(
        self, *, field: FieldKind = "disparity", invalid_value: float | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        _check_field_options(field, invalid_value)
        self.field = field
        self.invalid_value = invalid_value
        self.add_state("error_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predicted and ground-truth disparity or flow."""
        total, count = _epe_update(preds, target, self.field, self.invalid_value)
        self.error_sum += total
        self.count += count

    def compute(self) -> torch.Tensor:
        """Return the mean end-point error in pixels over every valid position seen so far."""
        self._check_not_empty(self.count)
        return self.error_sum / self.count


class D1OutlierRate(KPIMetric):
    """Stateful KITTI 2015 outlier rate; see :func:`d1_outlier_rate`.

    State: int64 counts of outliers and of valid positions, summed across processes.
    ``compute()`` before any valid position raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = D1OutlierRate()
        >>> metric.update(torch.tensor([[14.0, 11.0]]), torch.tensor([[10.0, 10.0]]))
        >>> metric.compute()
        tensor(0.5000, dtype=torch.float64)
    """

    kpi_area = "characterization"
    unit = "fraction"
    higher_is_better = False

    def __init__(
        self,
        *,
        field: FieldKind = "disparity",
        invalid_value: float | None = None,
        abs_threshold: float = 3.0,
        rel_threshold: float = 0.05,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check_field_options(field, invalid_value)
        self.field = field
        self.invalid_value = invalid_value
        self.abs_threshold = check_positive(abs_threshold, "abs_threshold", allow_zero=True)
        self.rel_threshold = check_positive(rel_threshold, "rel_threshold", allow_zero=True)
        self.add_state("outliers", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predicted and ground-truth disparity or flow."""
        outliers, count = _d1_update(
            preds, target, self.field, self.invalid_value, self.abs_threshold, self.rel_threshold
        )
        self.outliers += outliers
        self.count += count

    def compute(self) -> torch.Tensor:
        """Return the outlier fraction over every valid position seen so far."""
        self._check_not_empty(self.count)
        return self.outliers.double() / self.count

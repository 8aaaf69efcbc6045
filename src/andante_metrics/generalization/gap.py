r"""Generalization gap: a metric on the train and the test split over epochs, and its trend.

For each epoch (or any step index) :math:`t` with train value :math:`r_t` and test value
:math:`s_t` of the same metric, the gap is

.. math:: g_t = \sigma\,(r_t - s_t), \qquad \sigma = +1 \text{ if higher is better, else } -1,

so a positive gap always means the model does better on the data it trained on. The trend is
the least-squares slope of :math:`g_t` against :math:`t` over the last ``window`` steps: a
positive trend means the gap is still widening.
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics.utilities.data import dim_zero_cat

from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import check_finite, check_int_range, check_tensor


def _as_vector(value: Any, name: str, *, dtype: str) -> torch.Tensor:
    """Return a number or a 0-d/1-d tensor as a 1-d tensor, checking its dtype kind."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor([value], dtype=torch.float64 if isinstance(value, float) else None)
    check_tensor(value, name, ndim=(0, 1), dtype=dtype)
    check_finite(value, name)
    return value.reshape(-1)


def _gap_update(
    step: Any, train_value: Any, test_value: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    steps = _as_vector(step, "step", dtype="int").long()
    train = _as_vector(train_value, "train_value", dtype="number").double()
    test = _as_vector(test_value, "test_value", dtype="number").double()
    if not len(steps) == len(train) == len(test):
        raise ValueError(
            f"`step`, `train_value` and `test_value` must hold the same number of entries, got "
            f"{len(steps)}, {len(train)} and {len(test)}."
        )
    return steps, train.to(steps.device), test.to(steps.device)


def _slope(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the least-squares slope of ``y`` on ``x``; NaN with fewer than two points."""
    if len(x) < 2:
        return torch.tensor(float("nan"), dtype=torch.float64, device=y.device)
    x = x.double() - x.double().mean()
    return (x * (y - y.mean())).sum() / (x * x).sum()


def _gap_compute(
    steps: torch.Tensor,
    train: torch.Tensor,
    test: torch.Tensor,
    metric_higher_is_better: bool,
    window: int | None,
) -> dict[str, torch.Tensor]:
    # Entries with the same step are averaged: in a process group every rank may record the
    # same epoch's values, and the mean of equal values is that value.
    unique, inverse = torch.unique(steps, sorted=True, return_inverse=True)
    counts = torch.zeros(len(unique), dtype=torch.float64, device=steps.device)
    counts.index_add_(0, inverse, torch.ones_like(train))
    train_mean = torch.zeros_like(counts).index_add_(0, inverse, train) / counts
    test_mean = torch.zeros_like(counts).index_add_(0, inverse, test) / counts
    sign = 1.0 if metric_higher_is_better else -1.0
    gap = sign * (train_mean - test_mean)
    begin = 0 if window is None else max(0, len(unique) - window)
    return {
        "steps": unique,
        "train": train_mean,
        "test": test_mean,
        "gap": gap,
        "final_gap": gap[-1],
        "max_gap": gap.max(),
        "trend": _slope(unique[begin:], gap[begin:]),
    }


def generalization_gap(
    step: Any,
    train_value: Any,
    test_value: Any,
    *,
    metric_higher_is_better: bool = True,
    window: int | None = None,
) -> dict[str, torch.Tensor]:
    """Compute the train-minus-test gap per step and its least-squares trend.

    Args:
        step: ``(E,)`` integer step or epoch indices; entries may come in any order.
        train_value: ``(E,)`` the metric on the train split at each step.
        test_value: ``(E,)`` the same metric on the test split.
        metric_higher_is_better: direction of the metric. The gap is train minus test when
            ``True`` and test minus train otherwise, so a positive gap favours the train split.
        window: fit the trend on the last ``window`` steps only (all by default).

    Returns:
        ``{"steps", "train", "test", "gap"}`` as ``(S,)`` tensors sorted by step (duplicate steps
        averaged), and float64 scalars ``"final_gap"`` (at the last step), ``"max_gap"`` and
        ``"trend"`` (gap per step; NaN with a single step).

    Example:
        >>> out = generalization_gap(torch.tensor([1, 2, 3]), torch.tensor([0.8, 0.9, 1.0]),
        ...                          torch.tensor([0.8, 0.85, 0.9]))
        >>> round(float(out["final_gap"]), 4), round(float(out["trend"]), 4)
        (0.1, 0.05)
    """
    _check_window(window)
    steps, train, test = _gap_update(step, train_value, test_value)
    if len(steps) == 0:
        raise ValueError("`step` is empty; pass the values of at least one step.")
    return _gap_compute(steps, train, test, metric_higher_is_better, window)


def _check_window(window: int | None) -> None:
    if window is not None:
        check_int_range(window, "window", low=2)


class GeneralizationGap(KPIMetric):
    r"""Train-minus-test gap of any metric over epochs, with its trend.

    Call ``update(step, train_value, test_value)`` once per evaluation (or with vectors of
    several steps) with the values of any metric on the two splits. ``compute()`` returns the
    dict described in :func:`generalization_gap`. The state keeps one entry per update, in
    float64, and the result does not depend on the order of the updates. With no update,
    ``compute()`` raises ``ValueError``.

    Args:
        metric_higher_is_better: direction of the tracked metric (``False`` for a loss).
        window: number of last steps the trend is fitted on (all by default, at least 2).

    Example:
        >>> gap = GeneralizationGap(metric_higher_is_better=False)
        >>> for epoch, (train_loss, test_loss) in enumerate([(1.0, 1.1), (0.5, 0.8)]):
        ...     gap.update(epoch, train_loss, test_loss)
        >>> [round(v, 4) for v in gap.compute()["gap"].tolist()]
        [0.1, 0.3]
    """

    kpi_area = "generalization"
    unit = "metric units"
    higher_is_better = False

    def __init__(
        self, *, metric_higher_is_better: bool = True, window: int | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(metric_higher_is_better, bool):
            raise TypeError(f"`metric_higher_is_better` must be a bool, got "
                            f"{type(metric_higher_is_better).__name__}.")
        _check_window(window)
        self.metric_higher_is_better = metric_higher_is_better
        self.window = window
        self.add_state("steps", [], dist_reduce_fx="cat")
        self.add_state("train_values", [], dist_reduce_fx="cat")
        self.add_state("test_values", [], dist_reduce_fx="cat")

    def update(self, step: Any, train_value: Any, test_value: Any) -> None:
        """Record the metric's train and test values at ``step`` (numbers or 0-d/1-d tensors)."""
        steps, train, test = _gap_update(step, train_value, test_value)
        self.steps.append(steps.to(self.device))
        self.train_values.append(train.to(self.device))
        self.test_values.append(test.to(self.device))

    def compute(self) -> dict[str, torch.Tensor]:
        """Return the per-step gap, its final and maximum value and its trend."""
        steps = dim_zero_cat(self.steps) if len(self.steps) else torch.zeros(0, dtype=torch.long)
        self._check_not_empty(steps.numel())
        return _gap_compute(steps, dim_zero_cat(self.train_values),
                            dim_zero_cat(self.test_values), self.metric_higher_is_better,
                            self.window)

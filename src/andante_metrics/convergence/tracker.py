"""Convergence of a training curve: time to target, best value, stability and plateau."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

import torch
from torchmetrics.utilities.data import dim_zero_cat

from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import (
    check_finite,
    check_in_choices,
    check_int_range,
    check_positive,
    check_same_shape,
    check_tensor,
)

Mode = Literal["min", "max"]
Clock = Callable[[], float]


def _as_curve(value: torch.Tensor | float, name: str) -> torch.Tensor:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor([float(value)], dtype=torch.float64)
    check_tensor(value, name, ndim=(0, 1), dtype="number")
    value = value.detach().double().reshape(-1)
    check_finite(value, name)
    return value


def _first_index(mask: torch.Tensor) -> int | None:
    hits = torch.nonzero(mask)
    return int(hits[0]) if len(hits) else None


def convergence_summary(
    values: torch.Tensor,
    *,
    seconds: torch.Tensor | None = None,
    epochs: torch.Tensor | None = None,
    target: float | None = None,
    mode: Mode = "min",
    window: int = 10,
    patience: int = 10,
    min_delta: float = 1e-3,
) -> dict[str, torch.Tensor]:
    r"""Summarise a curve of a scalar (a loss, an accuracy, a GAN loss) in time order.

    Definitions, with :math:`v_1, \dots, v_T` the values and "better" meaning lower for
    ``mode="min"`` and higher for ``mode="max"``:

    * ``steps_to_target``: the smallest :math:`t` with :math:`v_t` at or beyond ``target``
      (``inf`` when never reached, and ``reached_target`` tells which); ``seconds_to_target`` and
      ``epochs_to_target`` give the elapsed seconds and the 1-based epoch at that point.
    * ``best_value`` and ``best_step``: the best value and the first step reaching it.
    * ``relative_spread``: :math:`(\max - \min) / |\text{mean}|` of the last ``window`` values
      (``inf`` when their mean is 0 and the values differ).
    * ``slope_sign_changes``: how often the sign of :math:`v_{t+1} - v_t` flips within the last
      ``window`` values; a smooth curve has 0, an oscillating one many.
    * ``plateau``: true when the best of the last ``patience`` values improves on the best value
      before them by less than ``min_delta`` times that earlier best's magnitude (relative
      improvement); ``plateau_since_step`` is the step after the last relative improvement of
      ``min_delta`` or more. Both need more than ``patience`` values, else ``plateau`` is false.

    Steps are 1-based. ``seconds`` are elapsed times since the first value (NaN where unknown:
    ``seconds_to_target`` is then left out rather than guessed); ``epochs`` are 0-based epoch
    indices of each value.

    Returns:
        A dict of float64 scalar tensors (``reached_target`` and ``plateau`` as bool tensors).

    Example:
        >>> import torch
        >>> curve = torch.tensor([1.0, 0.5, 0.2, 0.1], dtype=torch.float64)
        >>> s = convergence_summary(curve, target=0.25)
        >>> int(s["steps_to_target"]), float(s["best_value"])
        (3, 0.1)
    """
    check_in_choices(mode, "mode", ("min", "max"))
    check_int_range(window, "window", low=2)
    check_int_range(patience, "patience", low=1)
    check_positive(min_delta, "min_delta", allow_zero=True)
    values = _as_curve(values, "values")
    if values.numel() == 0:
        raise ValueError("`values` is empty; record at least one value.")
    sign = 1.0 if mode == "min" else -1.0
    oriented = sign * values  # lower is better from here on
    inf = torch.tensor(math.inf, dtype=torch.float64)
    out: dict[str, torch.Tensor] = {}

    reached = None if target is None else _first_index(oriented <= sign * target)
    out["reached_target"] = torch.tensor(reached is not None)
    out["steps_to_target"] = (
        inf if reached is None else torch.tensor(reached + 1.0, dtype=torch.float64)
    )
    if seconds is not None:
        if reached is None:
            out["seconds_to_target"] = inf
        elif bool(torch.isfinite(seconds[reached])):
            out["seconds_to_target"] = seconds[reached].double()
    if epochs is not None:
        out["epochs_to_target"] = inf if reached is None else epochs[reached].double() + 1

    best = int(torch.argmin(oriented))
    out["best_value"] = values[best]
    out["best_step"] = torch.tensor(float(best + 1), dtype=torch.float64)

    tail = values[-window:]
    spread = tail.max() - tail.min()
    mean = tail.mean().abs()
    if spread == 0:
        out["relative_spread"] = torch.tensor(0.0, dtype=torch.float64)
    else:
        out["relative_spread"] = spread / mean if mean > 0 else inf
    steps = torch.sign(torch.diff(tail))
    steps = steps[steps != 0]
    out["slope_sign_changes"] = (steps[1:] != steps[:-1]).sum().double()

    plateau = False
    since = float(len(values) + 1)
    if len(values) > patience:
        before = oriented[:-patience].min()
        recent = oriented[-patience:].min()
        plateau = bool(before - recent < min_delta * before.abs())
        running = torch.cummin(oriented, dim=0).values
        improved = (running[:-1] - running[1:]) >= min_delta * running[:-1].abs()
        last = torch.nonzero(improved)
        since = float(int(last[-1]) + 2) if len(last) else 1.0
    out["plateau"] = torch.tensor(plateau)
    out["plateau_since_step"] = torch.tensor(since if plateau else math.inf, dtype=torch.float64)
    return out


class ConvergenceTracker(KPIMetric):
    """A training curve recorded step by step, summarised by :func:`convergence_summary`.

    ``update(value)`` appends one value (a Python number or 0-d tensor) or several consecutive
    ones (a 1-D tensor). Unless the caller passes ``seconds`` (elapsed times, one per value),
    the wall-clock time is read from ``clock`` at each call and given to the last value of the
    call, and the others get NaN (unknown). ``epoch`` tags the values with
    their 0-based epoch. ``compute()`` returns the summary plus the curve itself (``values``,
    ``seconds`` and ``epochs`` tensors) for plotting.

    The curve is the record of one process: in a process group, update every rank with the
    same (reduced) value, or track on rank zero only. For that reason the tracker does not
    synchronise its state across processes (``sync_on_compute=False``).

    ``compute()`` with no value raises ``ValueError``.

    Example:
        >>> import torch
        >>> tracker = ConvergenceTracker(target=0.5, mode="min")
        >>> for loss in [2.0, 1.0, 0.4, 0.3]:
        ...     tracker.update(loss)
        >>> int(tracker.compute()["steps_to_target"])
        3
    """

    kpi_area = "convergence"
    unit = "steps"
    higher_is_better = False
    input_names = ("value",)

    def __init__(
        self,
        *,
        target: float | None = None,
        mode: Mode = "min",
        window: int = 10,
        patience: int = 10,
        min_delta: float = 1e-3,
        clock: Clock = time.perf_counter,
        **kwargs,
    ) -> None:
        kwargs.setdefault("sync_on_compute", False)
        super().__init__(**kwargs)
        check_in_choices(mode, "mode", ("min", "max"))
        check_int_range(window, "window", low=2)
        check_int_range(patience, "patience", low=1)
        check_positive(min_delta, "min_delta", allow_zero=True)
        if target is not None and (not isinstance(target, (int, float)) or math.isnan(target)):
            raise TypeError(f"`target` must be a number or None, got {target!r}.")
        self.target = None if target is None else float(target)
        self.mode = mode
        self.window = window
        self.patience = patience
        self.min_delta = min_delta
        self.clock = clock
        self._start: float | None = None
        self.add_state("values", [], dist_reduce_fx="cat")
        self.add_state("seconds", [], dist_reduce_fx="cat")
        self.add_state("epochs", [], dist_reduce_fx="cat")

    def update(
        self,
        value: torch.Tensor | float,
        seconds: torch.Tensor | None = None,
        epoch: int | torch.Tensor | None = None,
    ) -> None:
        """Append one value or a 1-D tensor of consecutive values."""
        values = _as_curve(value, "value")
        if seconds is None:
            now = self.clock()
            if self._start is None:
                self._start = now
            times = torch.full_like(values, now - self._start)
            if values.numel() > 1:
                # Several values arrived in one call: the clock cannot tell when each was
                # reached, so their times are unknown and seconds_to_target is left out.
                times[:-1] = float("nan")
        else:
            times = _as_curve(seconds, "seconds")
            check_same_shape(times, values, "seconds", "value")
        if epoch is None:
            epochs = torch.full_like(values, -1.0)
        else:
            epochs = _as_curve(epoch, "epoch")
            if epochs.numel() == 1:
                epochs = epochs.expand_as(values).clone()
            check_same_shape(epochs, values, "epoch", "value")
        self.values.append(values.to(self.device))
        self.seconds.append(times.to(self.device))
        self.epochs.append(epochs.to(self.device))

    def compute(self) -> dict[str, torch.Tensor]:
        """Return the convergence summary and the recorded curve."""
        values = dim_zero_cat(self.values) if len(self.values) else torch.zeros(0)
        self._check_not_empty(values.numel())
        seconds = dim_zero_cat(self.seconds)
        epochs = dim_zero_cat(self.epochs)
        summary = convergence_summary(
            values,
            seconds=seconds,
            epochs=epochs if bool((epochs >= 0).all()) else None,
            target=self.target,
            mode=self.mode,
            window=self.window,
            patience=self.patience,
            min_delta=self.min_delta,
        )
        summary.update(values=values, seconds=seconds, epochs=epochs)
        return summary

"""Convergence rules on synthetic curves whose expected values follow from the definitions."""

from __future__ import annotations

import math

import pytest
import torch

from andante_metrics import ConvergenceTracker, KPICollection
from andante_metrics.functional import convergence_summary


def test_monotone_curve_reaches_target_at_known_step():
    # Loss 1/t reaches 0.1 first at t = 10.
    values = 1.0 / torch.arange(1, 31, dtype=torch.float64)
    summary = convergence_summary(values, target=0.1, window=5)
    assert bool(summary["reached_target"])
    assert float(summary["steps_to_target"]) == 10
    assert float(summary["best_value"]) == pytest.approx(1 / 30)
    assert float(summary["best_step"]) == 30
    assert float(summary["slope_sign_changes"]) == 0


def test_max_mode_accuracy_curve():
    values = torch.tensor([0.2, 0.5, 0.7, 0.96, 0.94, 0.97])
    summary = convergence_summary(values, target=0.95, mode="max", window=3)
    assert float(summary["steps_to_target"]) == 4
    assert float(summary["best_step"]) == 6


def test_never_reaching_target_gives_inf_and_flag():
    summary = convergence_summary(torch.linspace(1.0, 0.5, 20), target=0.1)
    assert not bool(summary["reached_target"])
    assert math.isinf(float(summary["steps_to_target"]))


def test_oscillating_curve_counts_every_slope_flip():
    # 1, 2, 1, 2, ... : the slope changes sign at every step, 8 flips over 10 values.
    values = torch.tensor([1.0, 2.0] * 5)
    summary = convergence_summary(values, window=10)
    assert float(summary["slope_sign_changes"]) == 8
    assert float(summary["relative_spread"]) == pytest.approx((2 - 1) / 1.5)


def test_plateau_detected_after_improvement_stops():
    # Improves until step 10, then flat for 15 steps: a plateau since step 10.
    values = torch.cat([torch.linspace(1.0, 0.1, 10), torch.full((15,), 0.1)])
    summary = convergence_summary(values, patience=10, min_delta=1e-3)
    assert bool(summary["plateau"])
    assert float(summary["plateau_since_step"]) == 10


def test_no_plateau_while_improving():
    values = torch.linspace(1.0, 0.1, 25)
    summary = convergence_summary(values, patience=10, min_delta=1e-3)
    assert not bool(summary["plateau"])
    assert math.isinf(float(summary["plateau_since_step"]))


def test_tracker_records_seconds_from_clock():
    ticks = iter([10.0, 10.5, 11.0, 12.0])
    tracker = ConvergenceTracker(target=0.5, clock=lambda: next(ticks))
    for value in (2.0, 1.0, 0.4, 0.3):
        tracker.update(value)
    result = tracker.compute()
    assert float(result["seconds_to_target"]) == pytest.approx(1.0)
    assert result["values"].tolist() == [2.0, 1.0, 0.4, 0.3]


def test_tracker_epochs_to_target():
    tracker = ConvergenceTracker(target=0.9, mode="max", window=2, patience=1)
    tracker.update(torch.tensor([0.5, 0.8, 0.92]), epoch=torch.tensor([0, 1, 2]))
    assert float(tracker.compute()["epochs_to_target"]) == 3


def test_tracker_tracks_gan_losses_in_a_collection():
    kpis = KPICollection({"generator_loss": ConvergenceTracker(window=4)})
    for value in (0.7, 0.9, 0.6, 0.95, 0.65):
        kpis.update(value=torch.tensor(value))
    summary = kpis.compute()["convergence"]["generator_loss"]
    assert float(summary["slope_sign_changes"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "lowest"}, ValueError, r"`mode` must be one of 'min', 'max', got 'lowest'"),
        ({"window": 1}, ValueError, r"`window` must be at least 2, got 1"),
        ({"target": "0.5"}, TypeError, r"`target` must be a number or None, got '0.5'"),
        ({"min_delta": -1.0}, ValueError, r"`min_delta` must be a finite number at least 0"),
    ],
)
def test_invalid_options_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        ConvergenceTracker(**kwargs)


def test_nan_value_raises():
    with pytest.raises(ValueError, match=r"`value` contains 1 NaN"):
        ConvergenceTracker().update(float("nan"))


def test_whole_curve_without_times_leaves_seconds_out():
    # One call with four values: the clock gives no time for the step reaching the target.
    tracker = ConvergenceTracker(target=0.1, mode="min")
    tracker.update(torch.tensor([1.0, 0.5, 0.2, 0.05]))
    result = tracker.compute()
    assert float(result["steps_to_target"]) == 4
    assert "seconds_to_target" in result  # the last value of the call has a clock reading
    tracker = ConvergenceTracker(target=0.3, mode="min")
    tracker.update(torch.tensor([1.0, 0.5, 0.2, 0.05]))
    assert "seconds_to_target" not in tracker.compute()

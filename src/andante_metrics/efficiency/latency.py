"""Latency percentiles at batch size 1 and offline throughput."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torchmetrics.utilities.data import dim_zero_cat

from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import (
    call_model_on,
    check_int_range,
    check_module,
    check_tensor,
)

Timer = Callable[[], float]
PERCENTILES = (50, 90, 99)


def _synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that a wall-clock reading covers them (CUDA is asynchronous)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model_device(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def _timed_forward(model: nn.Module, inputs: torch.Tensor, timer: Timer) -> float:
    """Return the seconds one forward pass takes, synchronising the device around it."""
    device = inputs.device
    _synchronize(device)
    start = timer()
    call_model_on(model, inputs)
    _synchronize(device)
    return timer() - start


def _latency_summary(seconds: torch.Tensor) -> dict[str, torch.Tensor]:
    millis = seconds.double() * 1000.0
    summary = {f"p{q}_ms": torch.quantile(millis, q / 100.0) for q in PERCENTILES}
    summary["mean_ms"] = millis.mean()
    return summary


class Latency(KPIMetric):
    r"""Single-stream latency of a model at batch size 1: p50, p90 and p99 in milliseconds.

    Each ``update(inputs)`` runs the model once per sample of ``inputs`` (batch size 1, under
    ``torch.no_grad`` and ``eval()``, the previous mode restored) and records the wall-clock time
    of each forward pass. On CUDA the device is synchronised before and after each pass. The first
    ``warmup`` passes of the metric's life are run and discarded. Percentiles use linear
    interpolation (``torch.quantile``), as MLPerf's single-stream scenario reports p90.

    The value depends on the machine, its load and its thread count, so record those with it:
    ``num_threads`` stores ``torch.get_num_threads()`` at the last update (the KPI card also
    stores the thread count in its environment block).

    Args:
        model: the model to time.
        warmup: forward passes run and discarded before the first timed one.
        timer: a clock in seconds, ``time.perf_counter`` by default; tests inject a fake one.

    ``compute()`` returns a dict ``{"p50_ms", "p90_ms", "p99_ms", "mean_ms"}`` of float64
    scalars; with no timed pass it raises ``ValueError``.
    """

    kpi_area = "efficiency"
    unit = "ms"
    higher_is_better = False

    def __init__(
        self, model: nn.Module, *, warmup: int = 5, timer: Timer = time.perf_counter, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        check_module(model)
        check_int_range(warmup, "warmup", low=0)
        # Kept in a list so the model is not registered as a submodule: its weights are not
        # metric state and must not enter the metric's state_dict.
        self._model = [model]
        self.warmup = warmup
        self.timer = timer
        self._warmed_up = False
        self.num_threads = torch.get_num_threads()
        self.add_state("seconds", [], dist_reduce_fx="cat")

    def update(self, inputs: torch.Tensor) -> None:
        """Time one forward pass per sample of ``inputs`` (first dimension is the batch)."""
        check_tensor(inputs, "inputs")
        if inputs.ndim == 0 or inputs.shape[0] == 0:
            raise ValueError(
                f"`inputs` must hold at least one sample along dimension 0, got shape "
                f"{tuple(inputs.shape)}."
            )
        model = self._model[0]
        self.num_threads = torch.get_num_threads()
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                if not self._warmed_up:
                    for _ in range(self.warmup):
                        call_model_on(model, inputs[:1])
                    self._warmed_up = True
                times = [
                    _timed_forward(model, inputs[i : i + 1], self.timer) for i in range(len(inputs))
                ]
        finally:
            model.train(was_training)
        self.seconds.append(torch.tensor(times, dtype=torch.float64, device=self.device))

    def compute(self) -> dict[str, torch.Tensor]:
        """Return the latency percentiles of every timed pass so far, in milliseconds."""
        seconds = dim_zero_cat(self.seconds) if len(self.seconds) else torch.zeros(0)
        self._check_not_empty(seconds.numel())
        return _latency_summary(seconds)


def measure_throughput(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    batch_size: int,
    repeats: int = 5,
    warmup: int = 1,
    timer: Timer = time.perf_counter,
) -> dict[str, float]:
    """Measure offline throughput: samples per second at a stated batch size.

    The model runs on consecutive ``batch_size`` slices of ``inputs`` (the last slice may be
    shorter) ``repeats`` times after ``warmup`` passes, under ``no_grad`` and ``eval()``.

    Returns:
        ``{"samples_per_second", "batch_size", "samples", "seconds", "num_threads"}`` where
        ``seconds`` is the median time of one pass over ``inputs`` and ``num_threads`` is
        ``torch.get_num_threads()`` during the runs.

    Example:
        >>> from torch import nn
        >>> result = measure_throughput(nn.Linear(4, 2), torch.zeros(10, 4), batch_size=5)
        >>> result["batch_size"], result["samples"]
        (5, 10)
    """
    check_module(model)
    check_tensor(inputs, "inputs")
    check_int_range(batch_size, "batch_size", low=1)
    check_int_range(repeats, "repeats", low=1)
    check_int_range(warmup, "warmup", low=0)
    if inputs.ndim == 0 or inputs.shape[0] == 0:
        raise ValueError(
            f"`inputs` must hold at least one sample, got shape {tuple(inputs.shape)}."
        )
    was_training = model.training
    model.eval()
    device = inputs.device
    try:
        with torch.no_grad():
            for _ in range(warmup):
                call_model_on(model, inputs[:batch_size])
            totals = []
            for _ in range(repeats):
                _synchronize(device)
                start = timer()
                for begin in range(0, len(inputs), batch_size):
                    call_model_on(model, inputs[begin : begin + batch_size])
                _synchronize(device)
                totals.append(timer() - start)
    finally:
        model.train(was_training)
    median = statistics.median(totals)
    return {
        "samples_per_second": len(inputs) / median if median > 0 else float("inf"),
        "batch_size": batch_size,
        "samples": len(inputs),
        "seconds": median,
        "num_threads": torch.get_num_threads(),
    }

"""Conformance cases of the convergence area."""

from __future__ import annotations

import torch

from andante_metrics import ConvergenceTracker

from conformance.harness import BadInput, MetricCase, factory, register


def _curve_batches(gen: torch.Generator):
    values = torch.linspace(2.0, 0.1, 30, dtype=torch.float64)
    values = values + 0.05 * torch.randn(30, generator=gen, dtype=torch.float64)
    seconds = torch.arange(30, dtype=torch.float64) * 0.25
    epochs = torch.arange(30) // 10
    return [(values[i : i + 6], seconds[i : i + 6], epochs[i : i + 6]) for i in range(0, 30, 6)]


register(
    MetricCase(
        "convergence_tracker",
        factory(ConvergenceTracker, target=0.5, window=5, patience=5),
        _curve_batches,
        bad_inputs=[
            BadInput(
                "matrix_value",
                (torch.ones(2, 2),),
                ValueError,
                r"`value` must have 0 or 1 dimensions, got shape \(2, 2\)",
            ),
            BadInput(
                "inf_value",
                (torch.tensor([1.0, float("inf")]),),
                ValueError,
                r"`value` contains 1 NaN or infinite",
            ),
            BadInput(
                "seconds_mismatch",
                (torch.ones(3), torch.ones(2)),
                ValueError,
                r"`seconds` and `value` must have the same shape, got \(2,\) and \(3,\)",
            ),
            BadInput(
                "bad_mode",
                construct={"mode": "best"},
                error=ValueError,
                match=r"`mode` must be one of 'min', 'max', got 'best'",
            ),
        ],
        order_invariant=False,
        distributed=False,
        forward_is_batch_value=True,
        reason="a curve is ordered in time and is the record of one process",
    ),
)

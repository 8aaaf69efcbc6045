"""Conformance cases of the efficiency area."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from andante_metrics import Latency

from conformance.harness import BadInput, MetricCase, register


class _FakeClock:
    """A clock that advances 2 ms per reading, so every forward pass takes exactly 2 ms."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> float:
        return next(self._ticks) * 0.002


def _make_latency(model=None, **overrides):
    torch.manual_seed(0)
    options = {"warmup": 2, "timer": _FakeClock(), **overrides}
    return Latency(nn.Linear(3, 2) if model is None else model, **options)


def _latency_batches(gen: torch.Generator):
    return [(torch.randn(size, 3, generator=gen),) for size in (3, 1, 4)]


register(
    MetricCase(
        "latency_fake_clock",
        _make_latency,
        _latency_batches,
        bad_inputs=[
            BadInput(
                "scalar_inputs",
                (torch.tensor(1.0),),
                ValueError,
                r"`inputs` must hold at least one sample.*shape \(\)",
            ),
            BadInput(
                "not_a_tensor",
                ([1.0, 2.0, 3.0],),
                TypeError,
                r"`inputs` must be a torch.Tensor, got \[1.0, 2.0, 3.0\]",
            ),
            BadInput(
                "negative_warmup",
                construct={"warmup": -1},
                error=ValueError,
                match=r"`warmup` must be at least 0, got -1",
            ),
            BadInput(
                "model_not_module",
                construct={"model": "resnet18"},
                error=TypeError,
                match=r"`model` must be a torch.nn.Module, got str",
            ),
        ],
    ),
)

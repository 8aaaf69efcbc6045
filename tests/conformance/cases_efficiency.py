"""Conformance cases of the efficiency area."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from andante_metrics import ExpectedExitMACs, Latency, MACsPerSample, SynapticOperations

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


class _LIF(nn.Module):
    """Leaky integrate-and-fire neurons over time steps on dimension 1, reset by subtraction."""

    def forward(self, x):
        v = torch.zeros_like(x[:, 0])
        spikes = []
        for t in range(x.shape[1]):
            v = 0.5 * v + x[:, t]
            spike = (v >= 1.0).to(x.dtype)
            v = v - spike
            spikes.append(spike)
        return torch.stack(spikes, dim=1)


def _make_macs_per_sample(model=None):
    torch.manual_seed(0)
    default = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    return MACsPerSample(default if model is None else model)


def _image_batches(gen: torch.Generator):
    return [(torch.randn(size, 1, 6, 6, generator=gen),) for size in (3, 1, 5, 2)]


def _make_expected_exit(**overrides):
    options = {"exit_costs": [110.0, 220.0, 340.0], **overrides}
    return ExpectedExitMACs(**options)


def _exit_batches(gen: torch.Generator):
    return [(torch.randint(0, 3, (size,), generator=gen),) for size in (4, 7, 1, 6)]


def _make_synops(model=None, **overrides):
    torch.manual_seed(0)
    default = nn.Sequential(nn.Linear(6, 10), _LIF(), nn.Linear(10, 4), _LIF())
    options = {"neuron_types": (_LIF,), **overrides}
    return SynapticOperations(default if model is None else model, **options)


def _spike_batches(gen: torch.Generator):
    return [(torch.rand(size, 4, 6, generator=gen) * 2,) for size in (2, 5, 1, 3)]


register(
    MetricCase(
        "macs_per_sample_cnn", _make_macs_per_sample, _image_batches,
        bad_inputs=[
            BadInput("empty_batch", (torch.zeros(0, 1, 6, 6),), ValueError,
                     r"`inputs` must hold at least one sample.*\(0, 1, 6, 6\)"),
            BadInput("not_a_tensor", ([1.0],), TypeError,
                     r"`inputs` must be a torch.Tensor, got list"),
            BadInput("model_not_module", construct={"model": "resnet18"},
                     error=TypeError, match=r"`model` must be a torch.nn.Module, got str"),
        ],
    ),
    MetricCase(
        "expected_exit_macs", _make_expected_exit, _exit_batches,
        bad_inputs=[
            BadInput("index_out_of_range", (torch.tensor([0, 3]),), ValueError,
                     r"`exit_index` must be in \[0, 2\].*from 0 to 3"),
            BadInput("negative_index", (torch.tensor([-1]),), ValueError,
                     r"`exit_index` must be in \[0, 2\].*from -1 to -1"),
            BadInput("float_index", (torch.tensor([0.0, 1.0]),), TypeError,
                     r"`exit_index` must be an integer tensor.*torch.float32"),
            BadInput("two_dims", (torch.zeros(2, 2, dtype=torch.long),), ValueError,
                     r"`exit_index` must have 1 dimensions, got shape \(2, 2\)"),
            BadInput("nan_cost", construct={"exit_costs": [1.0, float("nan")]},
                     error=ValueError, match=r"`exit_costs` must be finite and non-negative"),
        ],
    ),
    MetricCase(
        "synaptic_operations_lif", _make_synops, _spike_batches,
        bad_inputs=[
            BadInput("empty_batch", (torch.zeros(0, 4, 6),), ValueError,
                     r"`inputs` must hold at least one sample.*\(0, 4, 6\)"),
            BadInput("not_a_tensor", ("spikes",), TypeError,
                     r"`inputs` must be a torch.Tensor, got str"),
            BadInput("neuron_types_not_tuple", construct={"neuron_types": _LIF},
                     error=TypeError, match=r"`neuron_types` must be a non-empty tuple"),
        ],
    ),
)

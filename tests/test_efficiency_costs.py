"""Footprint, peak activation memory, latency, early-exit expected MACs and spiking costs.

Expected values are closed forms worked out in each test from the layer sizes. The energy
constants are those of Horowitz, ISSCC 2014 (45 nm, 32-bit float), as the module states.
"""

from __future__ import annotations

import io
import itertools

import pytest
import torch
from torch import nn

from andante_metrics import (
    ExpectedExitMACs,
    Latency,
    SynapticOperations,
    build_on_meta,
    count_macs,
    count_synaptic_operations,
    cumulative_exit_costs,
    expected_exit_macs,
    measure_throughput,
    parameter_footprint,
    peak_activation_memory,
    state_dict_bytes,
)
from andante_metrics.efficiency.spiking import ENERGY_PER_AC_PJ, ENERGY_PER_MAC_PJ

# Footprint ---------------------------------------------------------------------------------


def test_footprint_by_dtype_and_buffers():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2).half())
    model[0].weight.requires_grad_(False)
    result = parameter_footprint(model)
    assert result["parameters"] == 16 + 8 + 10
    assert result["trainable_parameters"] == 34 - 12
    assert result["parameter_bytes_by_dtype"] == {"float32": 24 * 4, "float16": 10 * 2}
    assert result["parameter_bytes"] == 116
    assert result["parameter_mib"] == 116 / 2**20
    # BatchNorm buffers: running mean and var (float32) and num_batches_tracked (int64).
    assert result["buffer_count"] == 9
    assert result["buffer_bytes_by_dtype"] == {"float32": 32, "int64": 8}


def test_footprint_tied_weights_counted_once():
    first = nn.Linear(5, 5, bias=False)
    second = nn.Linear(5, 5, bias=False)
    second.weight = first.weight
    assert parameter_footprint(nn.Sequential(first, second))["parameters"] == 25


def test_footprint_on_meta():
    model = build_on_meta(nn.Linear, 10_000, 10_000)
    assert parameter_footprint(model)["parameter_bytes"] == (10_000 * 10_000 + 10_000) * 4


def test_state_dict_bytes_equal_saved_file():
    model = nn.Sequential(nn.Linear(30, 20), nn.BatchNorm1d(20))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert state_dict_bytes(model) == len(buffer.getvalue())
    assert state_dict_bytes(model) > (30 * 20 + 20 + 4 * 20) * 4


def test_footprint_errors():
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got int"):
        parameter_footprint(3)
    with pytest.raises(ValueError, match=r"meta device, which have no data"):
        state_dict_bytes(build_on_meta(nn.Linear, 2, 2))


def test_peak_activation_memory_chain():
    """Sequential of two Linear layers: the first output is alive while the second is made."""
    model = nn.Sequential(nn.Linear(4, 256), nn.Linear(256, 128))
    x = torch.zeros(8, 4)
    expected = 8 * 256 * 4 + 8 * 128 * 4
    result = peak_activation_memory(model, x)
    assert result["peak_bytes"] == expected
    assert result["method"] == "dispatch"
    assert peak_activation_memory(model.to("meta"), x.to("meta"))["peak_bytes"] == expected


def test_peak_activation_memory_frees_dead_tensors():
    """Each stage's output dies when the next is made, so the peak is two stages, not five."""

    class Chain(nn.Module):
        def forward(self, x):
            for _ in range(5):
                x = x * 2
            return x

    x = torch.zeros(1000)
    assert peak_activation_memory(Chain(), x)["peak_bytes"] == 2 * 4000


def test_peak_activation_memory_skips_views_and_in_place():
    class ViewsOnly(nn.Module):
        def forward(self, x):
            y = x.view(10, 100).t()
            y.add_(1)
            return y

    assert peak_activation_memory(ViewsOnly(), torch.zeros(1000))["peak_bytes"] == 0


# Latency -----------------------------------------------------------------------------------


class _StepClock:
    """Fake clock: reading ``i`` returns the sum of the first ``i`` durations, in seconds."""

    def __init__(self, durations):
        self._times = itertools.accumulate(itertools.chain([0.0], itertools.cycle(durations)))

    def __call__(self):
        return next(self._times)


def test_latency_percentiles_from_fake_clock():
    """Each timed pass reads the clock twice; every pass lasts 1, 2, ..., 10 ms."""
    durations = []
    for ms in range(1, 11):
        durations += [ms / 1000, 0.0]
    metric = Latency(nn.Linear(2, 2), warmup=3, timer=_StepClock(durations))
    metric.update(torch.zeros(10, 2))
    values = metric.compute()
    # torch.quantile with linear interpolation over 1..10 ms: p50 = 5.5, p90 = 9.1, p99 = 9.91.
    assert values["p50_ms"].item() == pytest.approx(5.5)
    assert values["p90_ms"].item() == pytest.approx(9.1)
    assert values["p99_ms"].item() == pytest.approx(9.91)
    assert values["mean_ms"].item() == pytest.approx(5.5)
    assert metric.num_threads == torch.get_num_threads()


def test_latency_restores_training_mode():
    model = nn.Dropout(0.5).train()
    Latency(model, warmup=0).update(torch.zeros(2, 3))
    assert model.training


def test_throughput_from_fake_clock():
    """Two repeats of 10 samples, each repeat 0.5 s: 20 samples per second."""
    result = measure_throughput(nn.Linear(2, 2), torch.zeros(10, 2), batch_size=4, repeats=2,
                                timer=_StepClock([0.5, 0.0]))
    assert result["samples_per_second"] == pytest.approx(20.0)
    assert result["batch_size"] == 4
    assert result["num_threads"] == torch.get_num_threads()


def test_throughput_errors():
    with pytest.raises(ValueError, match=r"`batch_size` must be at least 1, got 0"):
        measure_throughput(nn.Linear(2, 2), torch.zeros(3, 2), batch_size=0)
    with pytest.raises(ValueError, match=r"`inputs` must hold at least one sample"):
        measure_throughput(nn.Linear(2, 2), torch.zeros(0, 2), batch_size=1)
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got str"):
        measure_throughput("net", torch.zeros(3, 2), batch_size=1)
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got function; pass"):
        measure_throughput(lambda a: a, torch.zeros(4, 3), batch_size=2)


def test_throughput_median_of_two_repeats():
    """Repeats of 0.4 s and 0.6 s: the median is their mean, 0.5 s, so 10 / 0.5 = 20 per second."""
    result = measure_throughput(nn.Linear(2, 2), torch.zeros(10, 2), batch_size=5, repeats=2,
                                timer=_StepClock([0.4, 0.0, 0.6, 0.0]))
    assert result["seconds"] == pytest.approx(0.5)
    assert result["samples_per_second"] == pytest.approx(20.0)


def test_wrong_input_shape_names_inputs():
    """A (4, 3) batch fed to nn.Linear(2, 2) fails inside the model; the error names `inputs`."""
    match = r"`inputs` of shape \(1, 3\).*batch dimension first"
    with pytest.raises(ValueError, match=match) as raised:
        Latency(nn.Linear(2, 2), warmup=0).update(torch.zeros(4, 3))
    assert isinstance(raised.value.__cause__, RuntimeError)
    with pytest.raises(ValueError, match=r"`inputs` of shape \(2, 3\).*batch dimension first"):
        measure_throughput(nn.Linear(2, 2), torch.zeros(4, 3), batch_size=2)
    with pytest.raises(ValueError, match=r"`inputs` of shape \(4, 3\).*batch dimension first"):
        count_macs(nn.Linear(2, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"`inputs` of shapes \(\(4, 3\)\)"):
        peak_activation_memory(nn.Linear(2, 2), (torch.zeros(4, 3),))


def test_latency_rejects_function():
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got function"):
        Latency(lambda a: a)


# Early exit --------------------------------------------------------------------------------


class _TwoExitNet(nn.Module):
    """Stage 0 and head 0; a sample whose head-0 max logit exceeds 0 leaves there."""

    def __init__(self):
        super().__init__()
        self.stage0 = nn.Linear(6, 8, bias=False)
        self.head0 = nn.Linear(8, 3, bias=False)
        self.stage1 = nn.Linear(8, 8, bias=False)
        self.head1 = nn.Linear(8, 3, bias=False)

    def forward(self, x):
        h = self.stage0(x)
        logits = self.head0(h)
        if logits.max() > 0:
            return logits, 0
        return self.head1(self.stage1(h)), 1


def test_expected_exit_macs_matches_per_sample_count():
    """E[C] from exit indices equals the mean of count_macs over the same samples."""
    torch.manual_seed(1)
    model = _TwoExitNet()
    samples = torch.randn(20, 6)
    stage = [count_macs(model.stage0, torch.zeros(1, 6)).macs,
             count_macs(model.stage1, torch.zeros(1, 8)).macs]
    head = [count_macs(model.head0, torch.zeros(1, 8)).macs,
            count_macs(model.head1, torch.zeros(1, 8)).macs]
    costs = cumulative_exit_costs(stage, head)
    exits = torch.tensor([model(s[None])[1] for s in samples])
    measured = sum(count_macs(model, s[None]).macs for s in samples) / len(samples)

    assert costs.tolist() == [48 + 24, 48 + 24 + 64 + 24]
    assert 0 < int(exits.sum()) < 20
    assert expected_exit_macs(exits, costs).item() == pytest.approx(measured)
    metric = ExpectedExitMACs(costs)
    metric.update(exits[:7])
    metric.update(exits[7:])
    assert metric.compute().item() == pytest.approx(measured)
    assert metric.exit_fractions().sum().item() == pytest.approx(1.0)


def test_expected_exit_macs_errors():
    with pytest.raises(ValueError, match=r"`exit_index` must be in \[0, 1\].*from 0 to 2"):
        expected_exit_macs(torch.tensor([0, 2]), [1.0, 2.0])
    with pytest.raises(TypeError, match=r"`exit_index` must be an integer tensor"):
        expected_exit_macs(torch.tensor([0.0]), [1.0])
    with pytest.raises(ValueError, match=r"`exit_index` must contain at least one sample"):
        expected_exit_macs(torch.zeros(0, dtype=torch.long), [1.0])
    with pytest.raises(ValueError, match=r"`exit_costs` must be finite and non-negative"):
        ExpectedExitMACs([1.0, -2.0])
    with pytest.raises(ValueError, match=r"`exit_costs` must be a non-empty 1-D sequence"):
        ExpectedExitMACs([])
    with pytest.raises(ValueError, match=r"same length, got lengths 2 and 1"):
        cumulative_exit_costs([1, 2], [1])
    with pytest.raises(ValueError, match=r"must not contain negative costs"):
        cumulative_exit_costs([1, -2], [1, 1])


# Spiking -----------------------------------------------------------------------------------


class LIF(nn.Module):
    """Leaky integrate-and-fire neurons over time steps on dimension 1, reset by subtraction.

    ``v_t = beta * v_{t-1} + x_t``; a spike is emitted when ``v_t >= threshold`` and the
    threshold is then subtracted from ``v_t``.
    """

    def __init__(self, beta: float = 0.5, threshold: float = 1.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x):
        v = torch.zeros_like(x[:, 0])
        spikes = []
        for t in range(x.shape[1]):
            v = self.beta * v + x[:, t]
            spike = (v >= self.threshold).to(x.dtype)
            v = v - spike * self.threshold
            spikes.append(spike)
        return torch.stack(spikes, dim=1)


def _spiking_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 10), LIF(), nn.Linear(10, 4), LIF())


def test_lif_synops_closed_form():
    """SynOps of the second Linear = spikes of the first LIF x 4 fan-out (out features)."""
    model = _spiking_mlp()
    x = torch.rand(3, 5, 6) * 2  # (batch, time steps, features)
    cost = count_synaptic_operations(model, x, neuron_types=(LIF,))
    hidden = model[1](model[0](x))

    assert cost.spikes["1"] == int(hidden.sum())
    assert cost.neurons["1"] == 3 * 5 * 10
    assert cost.synops["2"] == int(hidden.sum()) * 4
    assert cost.dense_macs["0"] == 3 * 5 * 6 * 10  # pixel-valued input: dense MACs
    assert "0" not in cost.synops
    expected_energy = cost.synops["2"] * ENERGY_PER_AC_PJ + cost.dense_macs["0"] * ENERGY_PER_MAC_PJ
    assert cost.energy_pj == pytest.approx(expected_energy)
    assert 0 < cost.firing_rates["1"] < 1


def test_conv_synops_match_brute_force():
    """Each spike at (c, i, j) reaches every output whose 3x3 window (padding 1) covers it."""
    conv = nn.Conv2d(2, 5, 3, padding=1, stride=1)
    spikes = (torch.rand(1, 2, 6, 6, generator=torch.Generator().manual_seed(3)) > 0.6).float()
    brute = 0
    for _, i, j in spikes[0].nonzero().tolist():
        rows = sum(1 for r in range(6) if abs(r - i) <= 1)
        cols = sum(1 for c in range(6) if abs(c - j) <= 1)
        brute += rows * cols * 5
    cost = count_synaptic_operations(nn.Sequential(conv), spikes, neuron_types=(LIF,))
    assert cost.synops["0"] == brute
    assert cost.synops["0"] < count_macs(conv, spikes).macs


def test_synaptic_operations_metric_per_sample():
    model = _spiking_mlp()
    x = torch.rand(4, 5, 6) * 2
    metric = SynapticOperations(model, neuron_types=(LIF,))
    metric.update(x[:1])
    metric.update(x[1:])
    whole = count_synaptic_operations(model, x, neuron_types=(LIF,))
    values = metric.compute()
    assert values["synops"].item() == pytest.approx(whole.total_synops / 4)
    assert values["spikes"].item() == pytest.approx(whole.total_spikes / 4)
    assert values["energy_pj"].item() == pytest.approx(whole.energy_pj / 4)


def test_spiking_errors():
    with pytest.raises(TypeError, match=r"`neuron_types` must be a non-empty tuple"):
        count_synaptic_operations(_spiking_mlp(), torch.zeros(1, 2, 6), neuron_types=LIF)
    with pytest.raises(TypeError, match=r"`neuron_types` must be a non-empty tuple"):
        SynapticOperations(_spiking_mlp(), neuron_types=())
    with pytest.raises(ValueError, match=r"must be on a real device, got the meta device"):
        count_synaptic_operations(_spiking_mlp().to("meta"), torch.zeros(1, 2, 6, device="meta"),
                                  neuron_types=(LIF,))


# CUDA paths (skipped on machines without a GPU) ---------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_peak_activation_memory_cuda_allocator():
    model = nn.Sequential(nn.Linear(4, 1024), nn.Linear(1024, 1024)).cuda()
    result = peak_activation_memory(model, torch.zeros(256, 4, device="cuda"))
    assert result["method"] == "cuda_allocator"
    # The two outputs (256 x 1024 float32 each) are alive together; the allocator may add
    # rounding and kernel workspace on top.
    assert result["peak_bytes"] >= 2 * 256 * 1024 * 4


@cuda
def test_attention_kernels_counted_on_cuda():
    """The fused CUDA attention kernels (flash, efficient) count Q K^T and A V."""
    q, k, v = (torch.randn(2, 3, 64, 32, device="cuda", dtype=torch.float16) for _ in range(3))

    class Attention(nn.Module):
        def forward(self, q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    assert count_macs(Attention(), (q, k, v)).macs == 2 * 3 * 64 * 64 * (32 + 32)

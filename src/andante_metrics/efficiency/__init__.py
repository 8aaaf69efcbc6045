"""Efficiency KPIs: what a model costs in MACs, parameters, bytes, memory, energy and time."""

from andante_metrics.efficiency.early_exit import (
    ExpectedExitMACs,
    cumulative_exit_costs,
    expected_exit_macs,
)
from andante_metrics.efficiency.footprint import (
    parameter_footprint,
    peak_activation_memory,
    state_dict_bytes,
)
from andante_metrics.efficiency.latency import Latency, measure_throughput
from andante_metrics.efficiency.macs import MACCount, MACsPerSample, count_macs
from andante_metrics.efficiency.meta import build_on_meta
from andante_metrics.efficiency.spiking import (
    SpikingCost,
    SynapticOperations,
    count_synaptic_operations,
)

__all__ = [
    "ExpectedExitMACs",
    "Latency",
    "MACCount",
    "MACsPerSample",
    "SpikingCost",
    "SynapticOperations",
    "build_on_meta",
    "count_macs",
    "count_synaptic_operations",
    "cumulative_exit_costs",
    "expected_exit_macs",
    "measure_throughput",
    "parameter_footprint",
    "peak_activation_memory",
    "state_dict_bytes",
]

"""Efficiency KPIs: what a model costs in parameters, bytes and time."""

from andante_metrics.efficiency.footprint import parameter_footprint
from andante_metrics.efficiency.latency import Latency, measure_throughput

__all__ = ["Latency", "measure_throughput", "parameter_footprint"]


"""Reproducibility KPIs: spread over seeds, determinism, ONNX round trip, environment record."""

from andante_metrics.reproducibility.determinism import (
    DeterminismReport,
    check_determinism,
    deterministic_algorithms,
)
from andante_metrics.reproducibility.onnx_check import OnnxRoundTrip, onnx_round_trip
from andante_metrics.reproducibility.seeds import (
    SeedSpread,
    seed_everything,
    seed_spread,
    summarize_over_seeds,
)

__all__ = [
    "DeterminismReport",
    "OnnxRoundTrip",
    "SeedSpread",
    "check_determinism",
    "deterministic_algorithms",
    "onnx_round_trip",
    "seed_everything",
    "seed_spread",
    "summarize_over_seeds",
]

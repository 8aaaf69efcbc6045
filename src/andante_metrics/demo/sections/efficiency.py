"""Efficiency section of the demo card: parameters, bytes, latency and throughput."""

from __future__ import annotations

from andante_metrics.demo.runner import DemoContext
from andante_metrics.efficiency import Latency, measure_throughput, parameter_footprint
from andante_metrics.report import KPICard


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Measure the trained CNN's footprint, batch-1 latency and offline throughput."""
    model = ctx.model
    footprint = parameter_footprint(model)
    card.add_kpi("efficiency", "parameters", footprint["parameters"], unit="count",
                 higher_is_better=False, description="number of parameters")
    card.add_kpi("efficiency", "parameter_bytes", footprint["parameter_bytes"], unit="bytes",
                 higher_is_better=False, description="parameter memory, numel x element size",
                 by_dtype=footprint["parameter_bytes_by_dtype"])

    samples = ctx.data.test_images[: 20 if ctx.config.quick else 200]
    latency = Latency(model, warmup=10)
    latency.update(samples)
    values = latency.compute()
    for key in ("p50_ms", "p90_ms"):
        card.add_kpi("efficiency", f"latency_{key}", values[key], unit="ms",
                     higher_is_better=False,
                     description=f"batch-1 forward latency, {key[:3]} over {len(samples)} runs")

    throughput = measure_throughput(model, ctx.data.test_images, batch_size=256,
                                    repeats=3 if ctx.config.quick else 10)
    card.add_kpi("efficiency", "throughput_batch_256", throughput["samples_per_second"],
                 unit="samples/s", higher_is_better=True,
                 description="offline throughput over the test split at batch size 256")

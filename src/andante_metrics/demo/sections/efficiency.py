"""Efficiency section of the demo card: MACs by module, footprint, memory, latency, throughput.

The trained digits CNN is counted and timed on real digits. torchvision's resnet18 and
mobilenet_v2 (random weights, nothing downloaded) are built on the meta device and counted at
224 x 224, which costs no memory or compute.
"""

from __future__ import annotations

import torch
from torchvision import models

from andante_metrics.demo.runner import DemoContext
from andante_metrics.efficiency import (
    Latency,
    MACCount,
    build_on_meta,
    count_macs,
    measure_throughput,
    parameter_footprint,
    peak_activation_memory,
    state_dict_bytes,
)
from andante_metrics.report import KPICard

_MODULE_COLUMNS = ["module", "type", "calls", "parameters", "MACs", "FLOPs", "share of MACs"]


def _module_rows(result: MACCount, max_depth: int) -> list[list]:
    rows = []
    for cost in result.by_module.values():
        if cost.depth > max_depth:
            continue
        name = cost.path or "(model)"
        share = cost.macs / result.macs if result.macs else 0.0
        rows.append([name, cost.type_name, cost.calls, cost.parameters, cost.macs, cost.flops,
                     round(share, 4)])
    return rows


def _add_cnn_costs(ctx: DemoContext, card: KPICard) -> dict:
    model = ctx.model
    one_image = ctx.data.test_images[:1]
    result = count_macs(model, one_image)
    card.add_kpi("efficiency", "macs_per_sample", result.macs, unit="MACs",
                 higher_is_better=False,
                 description="multiply-accumulates of one forward pass on one 8x8 digit")
    card.add_kpi("efficiency", "flops_per_sample", result.flops, unit="FLOPs",
                 higher_is_better=False, description="2 x MACs of the counted operators")
    card.add_table("efficiency", "Digits CNN: MACs by module (one 8x8 image)", _MODULE_COLUMNS,
                   _module_rows(result, max_depth=2),
                   note="Counted at the dispatch level; costs of a module include its children. "
                        f"Operators without a MAC formula: {result.other_operators}.")
    paths = list(result.by_module)
    top = [cost for cost in result.by_module.values()
           if cost.path and cost.macs and not any(p.startswith(cost.path + ".") for p in paths)]
    card.add_figure("efficiency", "Digits CNN: MACs per layer", "bar",
                    # The card draws bars horizontally: x is the value axis.
                    {"x_label": "MACs", "y_label": "layer",
                     "labels": [cost.path for cost in top], "values": [cost.macs for cost in top]})

    footprint = parameter_footprint(model)
    card.add_kpi("efficiency", "parameters", footprint["parameters"], unit="count",
                 higher_is_better=False, description="number of parameters")
    card.add_kpi("efficiency", "parameter_bytes", footprint["parameter_bytes"], unit="bytes",
                 higher_is_better=False, description="parameter memory, numel x element size",
                 by_dtype=footprint["parameter_bytes_by_dtype"])
    checkpoint = state_dict_bytes(model)
    card.add_kpi("efficiency", "state_dict_bytes", checkpoint, unit="bytes",
                 higher_is_better=False,
                 description=f"size of torch.save(state_dict), {checkpoint / 2**20:.3f} MiB")
    batch = ctx.data.test_images[:256]
    peak = peak_activation_memory(model, batch)
    card.add_kpi("efficiency", "peak_activation_bytes_batch_256", peak["peak_bytes"],
                 unit="bytes", higher_is_better=False,
                 description=f"peak bytes of tensors alive during one forward pass on "
                             f"{len(batch)} digits, tracked at the dispatch level")
    return {"macs": result.macs, "footprint": footprint, "peak": peak["peak_bytes"]}


def _add_latency(ctx: DemoContext, card: KPICard) -> None:
    model = ctx.model
    samples = ctx.data.test_images[: 20 if ctx.config.quick else 200]
    latency = Latency(model, warmup=10)
    latency.update(samples)
    values = latency.compute()
    for key in ("p50_ms", "p90_ms", "p99_ms"):
        card.add_kpi("efficiency", f"latency_{key}", values[key], unit="ms",
                     higher_is_better=False,
                     description=f"batch-1 forward latency (single stream), {key[:3]} over "
                                 f"{len(samples)} runs after 10 warm-up runs, "
                                 f"threads: {latency.num_threads}")

    throughput = measure_throughput(model, ctx.data.test_images, batch_size=256,
                                    repeats=3 if ctx.config.quick else 10)
    card.add_kpi("efficiency", "throughput_batch_256", throughput["samples_per_second"],
                 unit="samples/s", higher_is_better=True,
                 description=f"offline throughput over the test split at batch size 256, "
                             f"threads: {throughput['num_threads']}")


def _add_torchvision_models(card: KPICard, cnn: dict) -> None:
    rows = [["digits CNN (1x8x8)", cnn["footprint"]["parameters"],
             round(cnn["footprint"]["parameter_mib"], 4), cnn["macs"], 2 * cnn["macs"],
             round(cnn["peak"] / 2**20 / 256, 4)]]
    # mobilenet_v2 keeps its blocks one level down, in ``features``.
    for name, depth in (("resnet18", 1), ("mobilenet_v2", 2)):
        model = build_on_meta(getattr(models, name), weights=None).eval()
        image = torch.empty(1, 3, 224, 224, device="meta")
        result = count_macs(model, image)
        footprint = parameter_footprint(model)
        peak = peak_activation_memory(model, image)
        rows.append([f"{name} (3x224x224)", footprint["parameters"],
                     round(footprint["parameter_mib"], 2), result.macs, result.flops,
                     round(peak["peak_mib"], 2)])
        title = f"{name}: MACs by module to depth {depth} (3x224x224, meta device)"
        card.add_table("efficiency", title,
                       _MODULE_COLUMNS, _module_rows(result, max_depth=depth),
                       note="Random weights built on the meta device; torchvision publishes "
                            f"{models.get_model_weights(name).DEFAULT.meta['_ops']} GMACs.")
    card.add_table("efficiency", "Cost of one sample by model",
                   ["model", "parameters", "parameter MiB", "MACs", "FLOPs",
                    "peak activation MiB"], rows,
                   note="Peak activation memory per sample: the digits CNN's batch-256 peak "
                        "divided by 256; the torchvision models at batch 1 on the meta device.")


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Count, measure and time the trained CNN, and count resnet18 and mobilenet_v2 on meta."""
    cnn = _add_cnn_costs(ctx, card)
    _add_latency(ctx, card)
    _add_torchvision_models(card, cnn)

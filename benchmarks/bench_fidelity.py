"""Benchmark SSIM and MS-SSIM: andante_metrics vs pytorch-msssim vs torchmetrics, on CPU.

All three run in one process on the same 16x3x256x256 float32 batch, interleaved (one call of
each per round), and the best time of each is kept, because on a shared machine the absolute
times vary with load and only the ratio of best times is stable. The values are printed next
to each other. Peak memory is the largest live tensor memory during one call, from the torch
profiler's allocation records (the input images are allocated before and not counted).

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fidelity.py --repeats 7 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time

import pytorch_msssim
import torch
from torch.profiler import ProfilerActivity, profile
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    structural_similarity_index_measure,
)

from andante_metrics.functional import ms_ssim, ssim

SHAPE = (16, 3, 256, 256)

IMPLEMENTATIONS = {
    "ssim": {
        "andante_metrics": lambda x, y: ssim(x, y, data_range=1.0),
        "pytorch_msssim": lambda x, y: pytorch_msssim.ssim(x, y, data_range=1.0),
        "torchmetrics": lambda x, y: structural_similarity_index_measure(x, y, data_range=1.0),
    },
    "ms_ssim": {
        "andante_metrics": lambda x, y: ms_ssim(x, y, data_range=1.0),
        "pytorch_msssim": lambda x, y: pytorch_msssim.ms_ssim(x, y, data_range=1.0),
        "torchmetrics": lambda x, y: multiscale_structural_similarity_index_measure(
            x, y, data_range=1.0
        ),
    },
}


def make_images() -> tuple[torch.Tensor, torch.Tensor]:
    """Return a reproducible target batch and a noisy copy, both in [0, 1]."""
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(SHAPE, generator=gen)
    noise = 0.1 * torch.randn(SHAPE, generator=gen)
    # A smooth target keeps the SSIM values away from 0, as on natural images.
    target = torch.nn.functional.avg_pool2d(target, 5, stride=1, padding=2)
    return (target + noise).clamp(0, 1), target


def measure_peak_bytes(fn, x: torch.Tensor, y: torch.Tensor) -> int:
    """Return the peak of live tensor memory allocated during one call of ``fn(x, y)``.

    The torch profiler records every CPU tensor allocation and release; the running sum of
    those records, in time order, peaks at the call's largest working set.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(x, y)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds per metric")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = make_images()
    report = {"shape": SHAPE, "threads": args.threads, "repeats": args.repeats, "metrics": {}}
    for metric, impls in IMPLEMENTATIONS.items():
        values = {name: float(fn(x, y)) for name, fn in impls.items()}  # also a warm-up call
        best = dict.fromkeys(impls, float("inf"))
        for _ in range(args.repeats):
            for name, fn in impls.items():
                start = time.perf_counter()
                fn(x, y)
                best[name] = min(best[name], time.perf_counter() - start)
        # pytorch-msssim follows the same window convention, so the values must agree; the
        # float32 rounding of its window and of the sums leaves differences near 1e-6.
        gap = abs(values["andante_metrics"] - values["pytorch_msssim"])
        if gap > 1e-5:
            raise RuntimeError(f"{metric}: ours and pytorch-msssim differ by {gap:.2e}.")
        peers = [name for name in impls if name != "andante_metrics"]
        fastest_peer = min(peers, key=best.get)
        entry = {
            "best_seconds": best,
            "values": values,
            "speedup_vs_fastest_peer": best[fastest_peer] / best["andante_metrics"],
            "fastest_peer": fastest_peer,
        }
        if not args.no_memory:
            entry["peak_tensor_mib"] = {
                name: measure_peak_bytes(fn, x, y) / 2**20 for name, fn in impls.items()
            }
        report["metrics"][metric] = entry
        print(f"{metric}: " + ", ".join(f"{n} {t * 1e3:.1f} ms ({values[n]:.7f})"
                                         for n, t in best.items()))
        print(f"{metric}: {entry['speedup_vs_fastest_peer']:.2f}x the fastest peer "
              f"({fastest_peer})")
        if "peak_tensor_mib" in entry:
            print(f"{metric}: peak tensor memory MiB "
                  + ", ".join(f"{n} {m:.0f}" for n, m in entry["peak_tensor_mib"].items()))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

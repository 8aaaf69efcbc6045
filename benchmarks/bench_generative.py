"""Benchmark: Frechet distance at d = 2048, andante_metrics against pytorch-fid, one process.

Both sides get the same float64 covariances: two sample covariances of 4096 random feature
vectors each, shaped like Inception pool features (non-negative, correlated). The runs are
interleaved and the best time of each side is kept, so load from other processes affects both
alike. The script also reports the FID state size for 1,000 and 100,000 samples.

Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_generative.py [--repeats 3] [--dim 2048]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from andante_metrics.generative import FID, frechet_distance


def _gaussians(dim: int, samples: int, seed: int) -> list[np.ndarray]:
    """Return mu1, sigma1, mu2, sigma2 of two correlated non-negative feature sets."""
    gen = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=gen, dtype=torch.float64) / dim**0.5
    out = []
    for shift in (0.0, 0.1):
        features = torch.relu(torch.randn(samples, dim, generator=gen, dtype=torch.float64)
                              @ mixing + shift)
        out += [features.mean(0).numpy(), np.cov(features.numpy(), rowvar=False)]
    return out


def _best_time(fn, repeats: int) -> tuple[float, float]:
    best, value = float("inf"), float("nan")
    for _ in range(repeats):
        start = time.perf_counter()
        value = float(fn())
        best = min(best, time.perf_counter() - start)
    return best, value


def bench_frechet(dim: int, repeats: int) -> None:
    mu1, sigma1, mu2, sigma2 = _gaussians(dim, 2 * dim, seed=0)
    tensors = [torch.from_numpy(a) for a in (mu1, sigma1, mu2, sigma2)]
    ours_best = theirs_best = float("inf")
    ours = theirs = float("nan")
    for _ in range(repeats):  # interleaved: one run of each side per round
        t, ours = _best_time(lambda: frechet_distance(*tensors), 1)
        ours_best = min(ours_best, t)
        t, theirs = _best_time(lambda: calculate_frechet_distance(mu1, sigma1, mu2, sigma2), 1)
        theirs_best = min(theirs_best, t)
    relative = abs(ours - theirs) / abs(theirs)
    print(f"Frechet distance, d={dim}, best of {repeats}, {torch.get_num_threads()} threads")
    print(f"  andante_metrics frechet_distance       {ours_best:8.3f} s  value {ours:.10g}")
    print(f"  pytorch-fid calculate_frechet_distance {theirs_best:8.3f} s  value {theirs:.10g}")
    print(f"  speed-up {theirs_best / ours_best:.1f}x, relative difference {relative:.2e}")
    if relative > 1e-6:
        raise SystemExit(f"values differ by {relative:.2e} relative (more than 1e-6)")


def state_bytes(metric: FID) -> int:
    return sum(t.numel() * t.element_size() for t in metric.metric_state.values())


def bench_state_memory(dim: int) -> None:
    gen = torch.Generator().manual_seed(0)
    print(f"FID state size, d={dim} (features of both sides streamed in batches of 1000)")
    for total in (1_000, 100_000):
        metric = FID(None, num_features=dim)
        for _ in range(total // 1000):
            batch = torch.rand(1000, dim, generator=gen)
            metric.update(batch, batch)
        print(f"  N = {total:>7,}: {state_bytes(metric):,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension d")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds per side")
    parser.add_argument("--skip-memory", action="store_true", help="skip the state-size part")
    args = parser.parse_args()
    bench_frechet(args.dim, args.repeats)
    if not args.skip_memory:
        bench_state_memory(args.dim)


if __name__ == "__main__":
    main()

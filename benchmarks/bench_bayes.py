"""Benchmark: leave-one-out k-NN search of the Bayes-error estimator against scikit-learn.

Both sides search the exact leave-one-out neighbours of every row of the same float32 matrix
in one process, with the same number of threads: ours with
``andante_metrics.accuracy.bayes._distances.leave_one_out_neighbors`` (matrix products on
square tiles and ``topk`` in torch), scikit-learn with
``NearestNeighbors(algorithm="brute").kneighbors()``.
Runs alternate between the two sides and the best time of each is kept. The script prints the
ratio, the fraction of rows with the same neighbour list, and the tile memory of our search.

Run: ``OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_bayes.py --n 60000``
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from andante_metrics.accuracy.bayes._distances import DEFAULT_CHUNK_SIZE, leave_one_out_neighbors


def _synthetic(n: int, dim: int, classes: int, seed: int) -> torch.Tensor:
    """Return ``(n, dim)`` float32 features drawn around ``classes`` random centres."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=gen) * 2.0
    labels = torch.randint(0, classes, (n,), generator=gen)
    features = torch.randn(n, dim, generator=gen)
    # Row blocks, so that no temporary of the full size raises the peak memory before the search.
    for start in range(0, n, 4096):
        features[start : start + 4096] += centres[labels[start : start + 4096]]
    return features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60_000, help="number of samples")
    parser.add_argument("--dim", type=int, default=784, help="feature dimension")
    parser.add_argument("--k", type=int, default=1, help="neighbours per sample")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per side")
    parser.add_argument("--threads", type=int, default=2, help="threads of both sides")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="side of the square tiles of distances (default 4096)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    features = _synthetic(args.n, args.dim, 10, seed=0)
    array = features.numpy()
    chunk = args.chunk_size or DEFAULT_CHUNK_SIZE
    times: dict[str, list[float]] = {"ours": [], "sklearn": []}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ours = theirs = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = leave_one_out_neighbors(features, args.k, chunk_size=chunk).numpy()
        times["ours"].append(time.perf_counter() - start)
        if rss_before is not None:
            growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
            print(f"peak RSS growth during our first run: {growth / 1024:.0f} MiB "
                  f"(data: {array.nbytes / 2**20:.0f} MiB)")
            rss_before = None
        with threadpool_limits(limits=args.threads):
            start = time.perf_counter()
            model = NearestNeighbors(n_neighbors=args.k, algorithm="brute").fit(array)
            theirs = model.kneighbors(return_distance=False)
            times["sklearn"].append(time.perf_counter() - start)
        print(f"ours {times['ours'][-1]:.2f} s, sklearn {times['sklearn'][-1]:.2f} s")

    same_rows = float(np.mean(np.all(ours == theirs, axis=1)))
    best_ours, best_theirs = min(times["ours"]), min(times["sklearn"])
    tile = min(chunk, args.n)
    print(f"N={args.n} D={args.dim} k={args.k} threads={args.threads} tile side {chunk} "
          f"({tile * tile * 4 / 2**20:.0f} MiB of float32 distances per tile)")
    print(f"best ours {best_ours:.2f} s, best sklearn {best_theirs:.2f} s, "
          f"ratio sklearn/ours {best_theirs / best_ours:.2f}x")
    print(f"rows with identical neighbour lists: {same_rows:.6f}")


if __name__ == "__main__":
    main()

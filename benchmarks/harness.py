"""A small timing harness: ours against peers in one process, interleaved, best-of ratios.

Each round runs every contender once in turn (A, B, C, A, B, C, ...), so a change in machine
load during the run hits all of them alike. The ratio reported is ``best peer time / best time
of ours`` (above 1 means ours is faster); best times are the least disturbed by other processes.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Timing:
    """Times of one contender, in seconds."""

    name: str
    times: list[float]

    @property
    def best(self) -> float:
        """Return the fastest run."""
        return min(self.times)

    @property
    def median(self) -> float:
        """Return the median run."""
        ordered = sorted(self.times)
        return ordered[len(ordered) // 2]


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def interleaved(
    contenders: dict[str, Callable[[], object]], *, rounds: int = 7, warmup: int = 1
) -> dict[str, Timing]:
    """Time each callable ``rounds`` times, interleaved, after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    timings = {name: Timing(name, []) for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            _sync()
            start = time.perf_counter()
            fn()
            _sync()
            timings[name].times.append(time.perf_counter() - start)
    return timings


def machine_line() -> str:
    """Return a one-line description of the machine and the torch set-up."""
    device = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU"
    threads = torch.get_num_threads()
    return f"{platform.machine()}, {threads} torch threads, torch {torch.__version__}, {device}"


def report(title: str, timings: dict[str, Timing], ours: str) -> dict[str, float]:
    """Print best and median times and the ratio of each peer's best time to ours.

    Returns the ratios by peer name.
    """
    print(f"\n{title}\n  machine: {machine_line()}")
    base = timings[ours].best
    ratios = {}
    for name, timing in timings.items():
        best, median = timing.best * 1e3, timing.median * 1e3
        line = f"  {name:<32} best {best:10.3f} ms   median {median:10.3f} ms"
        if name != ours:
            ratios[name] = timing.best / base
            line += f"   {name}/ours = {ratios[name]:.2f}x"
        print(line)
    return ratios

"""Spread of KPIs over random seeds, and seeding of every generator a run uses."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from tqdm.auto import tqdm

from andante_metrics.utilities.checks import check_positive


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int, got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class SeedSpread:
    """Summary of one KPI over seeds: mean, sample standard deviation and a t interval."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float
    values: list[float]

    @property
    def n(self) -> int:
        """Return the number of seeds."""
        return len(self.values)


def summarize_over_seeds(values: Sequence[float], *, confidence: float = 0.95) -> SeedSpread:
    r"""Summarise values of one KPI measured with different seeds.

    The interval is Student's t interval for the mean,
    :math:`\bar x \pm t_{(1+c)/2,\, n-1}\, s / \sqrt{n}` with :math:`s` the sample standard
    deviation (``ddof=1``). It assumes the runs are independent and roughly normal; with few
    seeds it is wide, as it should be. The sample standard deviation is undefined for one value,
    so fewer than two values raise ``ValueError``.

    Example:
        >>> s = summarize_over_seeds([0.9, 0.92, 0.94])
        >>> round(s.mean, 4), round(s.std, 4)
        (0.92, 0.02)
    """
    check_positive(confidence, "confidence")
    if confidence >= 1:
        raise ValueError(f"`confidence` must lie in (0, 1), got {confidence!r}.")
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"`values` must be a non-empty list of numbers, got {values!r}.")
    if array.size < 2:
        raise ValueError(
            f"`values` must contain at least two values (one per seed) because the sample "
            f"standard deviation (ddof=1) is undefined for one, got {values!r}; run at least two "
            f"seeds."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"`values` must be finite, got {values!r}.")
    mean = float(array.mean())
    std = float(array.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, df=array.size - 1)) * std / math.sqrt(array.size)
    return SeedSpread(mean, std, mean - half, mean + half, confidence, array.tolist())


def seed_spread(
    run: Callable[[int], Mapping[str, float]],
    seeds: Sequence[int],
    *,
    confidence: float = 0.95,
    progress: bool = True,
) -> dict[str, SeedSpread]:
    """Run ``run(seed)`` for every seed and summarise each KPI it returns over the seeds.

    ``run`` trains and evaluates (or only evaluates) and returns ``{kpi name: value}``; every
    generator is seeded with :func:`seed_everything` before each call. Every run must return
    the same KPI names, each with a scalar value (a number or a one-element tensor or array).

    Raises:
        ValueError: fewer than two seeds, a seed listed twice, or KPI names that change between
            seeds.
        TypeError: a KPI value that is not a scalar.

    Returns:
        ``{kpi name: SeedSpread}``.
    """
    if len(seeds) < 2:
        raise ValueError(
            f"`seeds` must contain at least two seeds because the sample standard deviation "
            f"(ddof=1) is undefined for one, got {list(seeds)!r}."
        )
    duplicates = sorted({seed for seed in seeds if list(seeds).count(seed) > 1})
    if duplicates:
        raise ValueError(
            f"`seeds` lists {duplicates!r} more than once; a repeated seed repeats the same run "
            f"and shrinks the spread, so pass distinct seeds."
        )
    results: list[Mapping[str, float]] = []
    for seed in tqdm(list(seeds), desc="seeds", unit="run", disable=not progress):
        seed_everything(seed)
        result = run(seed)
        if not isinstance(result, Mapping):
            raise TypeError(
                f"`run` must return a dict of KPI name to value, got {type(result).__name__} "
                f"({result!r}) for seed {seed}; return for example {{'accuracy': value}}."
            )
        results.append(dict(result))
    names = list(results[0])
    for seed, result in zip(seeds, results, strict=True):
        if list(result) != names:
            raise ValueError(
                f"`run` returned KPIs {sorted(result)} for seed {seed} but {sorted(names)} for "
                f"seed {seeds[0]}; return the same names for every seed."
            )
    return {
        name: summarize_over_seeds(
            [_scalar_kpi(name, r[name]) for r in results], confidence=confidence
        )
        for name in names
    }


def _scalar_kpi(name: str, value: object) -> float:
    """Convert one KPI value returned by ``run`` to a float, or raise ``TypeError``."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if math.prod(value.shape) == 1:
            return float(value.item())
        raise TypeError(
            f"`run` returned KPI {name!r} as a {type(value).__name__} of shape "
            f"{tuple(value.shape)}; return one number per KPI, for example by reducing it with "
            f"`.mean()` or by returning each element under its own name."
        )
    if not isinstance(value, (int, float, np.number)):
        raise TypeError(
            f"`run` returned KPI {name!r} as {type(value).__name__} ({value!r}); return one "
            f"number per KPI."
        )
    return float(value)

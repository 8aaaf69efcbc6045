"""Determinism check: the same seed twice must give identical outputs and weights."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from andante_metrics.reproducibility.seeds import seed_everything


@dataclass
class DeterminismReport:
    """Outcome of :func:`check_determinism`.

    ``first_difference`` names the first tensor (in the order the run returned them) whose
    values differ between the two runs, ``None`` when all are identical.
    """

    identical: bool
    compared: int
    first_difference: str | None
    max_abs_difference: float


def _flatten(result: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(result, nn.Module):
        result = result.state_dict()
    if isinstance(result, torch.Tensor):
        yield prefix or "output", result.detach()
    elif isinstance(result, Mapping):
        for key, value in result.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(result, (list, tuple)):
        for index, value in enumerate(result):
            yield from _flatten(value, f"{prefix}[{index}]")
    else:
        raise TypeError(
            f"`run` must return tensors, modules, or dicts and lists of them; got "
            f"{type(result).__name__} at {prefix or 'the top level'!r}."
        )


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Switch ``torch.use_deterministic_algorithms`` for a block and restore the previous state.

    On CUDA, deterministic cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG``; it is set to ``:4096:8``
    for the block when unset.
    """
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    if enabled and workspace is None:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    torch.use_deterministic_algorithms(enabled)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
        if workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


def check_determinism(
    run: Callable[[int], Any], *, seed: int = 0, deterministic_algorithms_on: bool = True
) -> DeterminismReport:
    """Run ``run(seed)`` twice from the same seed and compare every tensor it returns.

    ``run`` returns what should be reproducible: output tensors, a trained module (its
    ``state_dict`` is compared) or dicts and lists of these. Both runs execute with
    ``torch.use_deterministic_algorithms(True)`` unless ``deterministic_algorithms_on`` is
    false, the previous setting restored afterwards, and every generator reseeded with
    :func:`~andante_metrics.reproducibility.seed_everything`. Tensors are compared bit for bit
    (NaNs in the same places count as equal).

    Example:
        >>> import torch
        >>> check_determinism(lambda seed: torch.randn(3)).identical
        True
    """
    outputs = []
    with deterministic_algorithms(deterministic_algorithms_on):
        for _ in range(2):
            seed_everything(seed)
            outputs.append(list(_flatten(run(seed))))
    first, second = outputs
    names_first = [name for name, _ in first]
    names_second = [name for name, _ in second]
    if names_first != names_second:
        raise ValueError(
            f"The two runs returned different tensors: {names_first} and {names_second}; "
            f"`run` must return the same structure each time."
        )
    difference: str | None = None
    largest = 0.0
    for (name, a), (_, b) in zip(first, second, strict=True):
        same = (
            a.shape == b.shape
            and a.dtype == b.dtype
            and torch.equal(
                torch.nan_to_num(a) if a.is_floating_point() else a,
                torch.nan_to_num(b) if b.is_floating_point() else b,
            )
        )
        if not same:
            if difference is None:
                difference = name
            if a.shape == b.shape and a.numel():
                largest = max(largest, float((a.double() - b.double()).abs().max()))
            else:
                largest = float("inf")
    return DeterminismReport(difference is None, len(first), difference, largest)

"""Model footprint: parameter and buffer counts and their bytes by dtype."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn


def parameter_footprint(model: nn.Module) -> dict[str, Any]:
    """Count a model's parameters and buffers and the bytes they take in memory.

    Parameters shared between modules (tied weights) are counted once. Bytes are
    ``numel * element_size`` of each tensor, so they exclude allocator padding and the
    serialisation overhead of a checkpoint file.

    Returns:
        A dict with ``parameters`` (count), ``trainable_parameters``, ``parameter_bytes``,
        ``buffer_count``, ``buffer_bytes`` and ``parameter_bytes_by_dtype`` (dtype name to bytes).

    Example:
        >>> from torch import nn
        >>> parameter_footprint(nn.Linear(3, 2))["parameters"]
        8
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    by_dtype: dict[str, int] = defaultdict(int)
    count = trainable = 0
    for param in model.parameters():
        count += param.numel()
        trainable += param.numel() if param.requires_grad else 0
        by_dtype[str(param.dtype).removeprefix("torch.")] += param.numel() * param.element_size()
    buffers = list(model.buffers())
    return {
        "parameters": count,
        "trainable_parameters": trainable,
        "parameter_bytes": sum(by_dtype.values()),
        "buffer_count": sum(b.numel() for b in buffers),
        "buffer_bytes": sum(b.numel() * b.element_size() for b in buffers),
        "parameter_bytes_by_dtype": dict(by_dtype),
    }

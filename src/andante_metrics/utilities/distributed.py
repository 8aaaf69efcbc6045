"""Helpers around ``torch.distributed`` for code outside the metric states."""

from __future__ import annotations

import torch.distributed as dist


def is_distributed() -> bool:
    """Return ``True`` inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """Return this process's rank, 0 outside a process group."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Return the number of processes, 1 outside a process group."""
    return dist.get_world_size() if is_distributed() else 1


def is_rank_zero() -> bool:
    """Return ``True`` on the process that writes reports and logs."""
    return rank() == 0

"""Model footprint: parameters and buffers by dtype, checkpoint size, peak activation memory."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

import torch
from torch import nn

from andante_metrics.efficiency._dispatch import Recorder, buffers_restored
from andante_metrics.efficiency.macs import _call_model
from andante_metrics.utilities.checks import check_module

MIB = 2**20
"""Bytes in one mebibyte (MiB); footprint sizes are reported in bytes and MiB, never MB."""


def _check_model(model: Any) -> None:
    check_module(model)


def _bytes_by_dtype(tensors: list[torch.Tensor]) -> dict[str, int]:
    by_dtype: dict[str, int] = defaultdict(int)
    for tensor in tensors:
        by_dtype[str(tensor.dtype).removeprefix("torch.")] += tensor.numel() * tensor.element_size()
    return dict(by_dtype)


def state_dict_bytes(model: nn.Module) -> int:
    """Return the size in bytes of ``torch.save(model.state_dict())``, the checkpoint size.

    It includes the serialisation overhead (zip container, pickled keys) and the persistent
    buffers. Tensors on the ``meta`` device have no data to save, so such a model raises
    ``ValueError``.

    Example:
        >>> from torch import nn
        >>> state_dict_bytes(nn.Linear(1000, 1000)) > 4_004_000
        True
    """
    _check_model(model)
    if any(t.device.type == "meta" for t in model.state_dict().values()):
        raise ValueError("`model` has tensors on the meta device, which have no data to save.")
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def parameter_footprint(model: nn.Module) -> dict[str, Any]:
    """Count a model's parameters and buffers and the bytes they take in memory.

    Parameters shared between modules (tied weights) are counted once. Bytes are
    ``numel * element_size`` of each tensor, so they exclude allocator padding and the
    serialisation overhead of a checkpoint file (see :func:`state_dict_bytes`). Works on the
    ``meta`` device.

    Returns:
        A dict with ``parameters`` (count), ``trainable_parameters``, ``parameter_bytes``,
        ``parameter_mib``, ``parameter_bytes_by_dtype`` (dtype name to bytes), ``buffer_count``
        (elements), ``buffer_bytes`` and ``buffer_bytes_by_dtype``. A model without parameters
        gives zeros and empty dicts.

    Example:
        >>> from torch import nn
        >>> parameter_footprint(nn.Linear(3, 2))["parameters"]
        8
    """
    _check_model(model)
    params = list(model.parameters())
    buffers = list(model.buffers())
    by_dtype = _bytes_by_dtype(params)
    return {
        "parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "parameter_bytes": sum(by_dtype.values()),
        "parameter_mib": sum(by_dtype.values()) / MIB,
        "parameter_bytes_by_dtype": by_dtype,
        "buffer_count": sum(b.numel() for b in buffers),
        "buffer_bytes": sum(b.numel() * b.element_size() for b in buffers),
        "buffer_bytes_by_dtype": _bytes_by_dtype(buffers),
    }


def peak_activation_memory(model: nn.Module, inputs: Any) -> dict[str, Any]:
    """Measure the peak memory of the tensors one forward pass creates, in bytes.

    CPU and meta: every tensor that an ATen operator creates (not views or in-place results)
    is tracked at the dispatch level from its creation until Python frees it, and the peak of
    their sum is reported. It counts ``numel * element_size`` (no allocator rounding) and
    excludes the parameters and the inputs. CUDA: the allocator's ``max_memory_allocated``
    during the pass minus the memory allocated before it, after resetting the peak statistics;
    it includes allocator rounding and workspace memory of the kernels. The pass runs under
    ``torch.no_grad``.

    Returns:
        ``{"peak_bytes", "peak_mib", "method"}`` with method ``"dispatch"`` or
        ``"cuda_allocator"``.

    Example:
        >>> from torch import nn
        >>> peak = peak_activation_memory(nn.Linear(4, 256), torch.zeros(8, 4))
        >>> peak["peak_bytes"]  # the (8, 256) float32 output
        8192
    """
    _check_model(model)
    first = inputs if isinstance(inputs, torch.Tensor) else next(
        (t for t in (inputs.values() if isinstance(inputs, dict) else inputs)
         if isinstance(t, torch.Tensor)), None)
    device = first.device if first is not None else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        with buffers_restored(model), torch.no_grad():
            _call_model(model, inputs)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
        method = "cuda_allocator"
    else:
        recorder = Recorder(model, track_memory=True)
        with buffers_restored(model), torch.no_grad(), recorder:
            _call_model(model, inputs)
        peak = recorder.recording.peak_bytes
        method = "dispatch"
    return {"peak_bytes": int(peak), "peak_mib": peak / MIB, "method": method}

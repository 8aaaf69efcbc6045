"""Input checks, dtype conversion and Gaussian filtering shared by the fidelity metrics."""

from __future__ import annotations

import math

import torch

from andante_metrics.utilities.checks import (
    check_finite,
    check_int_range,
    check_same_shape,
    check_tensor,
)

DataRange = float | tuple[float, float]


def parse_data_range(data_range: DataRange) -> tuple[float, float]:
    """Return ``(low, high)`` from a positive number ``high`` or an explicit ``(low, high)`` pair.

    A number means the images lie in ``[0, data_range]``. A pair states the range of signed or
    offset data, for example ``(-1.0, 1.0)``.
    """
    if isinstance(data_range, (tuple, list)):
        if len(data_range) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in data_range
        ):
            raise TypeError(
                f"`data_range` must be a positive number or a (low, high) pair of numbers, "
                f"got {data_range!r}."
            )
        low, high = float(data_range[0]), float(data_range[1])
    elif isinstance(data_range, (int, float)) and not isinstance(data_range, bool):
        low, high = 0.0, float(data_range)
    else:
        raise TypeError(
            f"`data_range` must be a positive number (images in [0, data_range]) or a "
            f"(low, high) pair, got {data_range!r} ({type(data_range).__name__})."
        )
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise ValueError(
            f"`data_range` must span a finite range with high > low, got {data_range!r}; pass "
            f"the range of the data, such as 1.0 for [0, 1] images or 255 for 8-bit images."
        )
    return low, high


def _float_dtype(dtype: torch.dtype) -> torch.dtype:
    """Return the floating dtype a tensor of ``dtype`` is computed in."""
    if dtype == torch.float64:
        return torch.float64
    if dtype.is_floating_point:
        return torch.float32
    # Integers of up to 16 bits are exact in float32; wider ones need float64.
    if dtype in (torch.bool, torch.uint8, torch.int8, torch.int16, torch.uint16):
        return torch.float32
    return torch.float64


def prepare_images(
    preds: torch.Tensor, target: torch.Tensor, data_range: DataRange
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Check an image pair and return both as floats shifted to ``[0, span]``, and ``span``.

    Integer images are converted to float before any arithmetic, so uint8 differences cannot
    wrap around. Both tensors get the wider of their two float dtypes (float16 and bfloat16 are
    computed in float32). Values outside the stated range raise ``ValueError``.
    """
    low, high = parse_data_range(data_range)
    check_tensor(preds, "preds", ndim=4, dtype="number")
    check_tensor(target, "target", ndim=4, dtype="number")
    check_same_shape(preds, target, "preds", "target")
    dtype = torch.promote_types(_float_dtype(preds.dtype), _float_dtype(target.dtype))
    preds = preds.to(dtype)
    target = target.to(dtype)
    for value, name in ((preds, "preds"), (target, "target")):
        check_finite(value, name)
        if value.numel() == 0:
            continue
        lowest, highest = float(value.detach().min()), float(value.detach().max())
        if lowest < low or highest > high:
            raise ValueError(
                f"`{name}` has values in [{lowest:g}, {highest:g}], outside the data range "
                f"[{low:g}, {high:g}]; rescale the images, or pass data_range=(low, high) with "
                f"the true range of the data (for example (-1.0, 1.0) for signed images)."
            )
    if low != 0.0:
        preds = preds - low
        target = target - low
    return preds, target, high - low


def check_kernel(kernel_size: int, sigma: float) -> None:
    """Check a Gaussian window: an odd ``kernel_size`` of at least 1 and a positive ``sigma``."""
    check_int_range(kernel_size, "kernel_size", low=1)
    if kernel_size % 2 == 0:
        raise ValueError(
            f"`kernel_size` must be odd so the window has a centre pixel, got {kernel_size}; "
            f"use {kernel_size + 1} or {kernel_size - 1}."
        )
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
        raise TypeError(f"`sigma` must be a number, got {sigma!r} ({type(sigma).__name__}).")
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"`sigma` must be a finite number greater than 0, got {sigma!r}.")


def gaussian_taps(kernel_size: int, sigma: float) -> list[float]:
    """Return the ``kernel_size`` normalised 1-D Gaussian weights, centred on the middle tap."""
    radius = kernel_size // 2
    weights = [math.exp(-((i - radius) ** 2) / (2.0 * sigma**2)) for i in range(kernel_size)]
    total = math.fsum(weights)
    return [w / total for w in weights]


def _filter_last_two(values: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """Correlate ``values`` with symmetric ``taps`` along ``dim`` (-1 or -2), valid part only."""
    radius = len(taps) // 2
    out_len = values.shape[dim] - 2 * radius
    out = values.narrow(dim, radius, out_len) * taps[radius]
    # The Gaussian is symmetric, so tap k and tap 2r-k share one weight: one multiply-add per
    # pair of shifted views instead of one per tap.
    for k in range(radius):
        pair = values.narrow(dim, k, out_len) + values.narrow(dim, 2 * radius - k, out_len)
        out.add_(pair, alpha=taps[k])
    return out


def gaussian_filter_valid(values: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Filter the last two dimensions with the separable window ``taps`` x ``taps``, no padding.

    Each output pixel is a weighted mean over a full window inside the image, so the output
    is ``len(taps) - 1`` pixels smaller in each dimension (the "valid" convolution).
    Filtering along rows first keeps every shifted view contiguous in memory.
    """
    return _filter_last_two(_filter_last_two(values, taps, -2), taps, -1)


def check_batch_not_empty(preds: object) -> None:
    """Raise ``ValueError`` when a functional form gets a batch of zero images.

    The value of an empty batch is undefined (0 / 0), so the functions raise instead of
    returning NaN. The metric classes accept empty batches in ``update`` and raise in
    ``compute`` only when no image was seen at all.
    """
    if isinstance(preds, torch.Tensor) and preds.ndim >= 1 and preds.shape[0] == 0:
        raise ValueError(
            f"`preds` holds no image (shape {tuple(preds.shape)}); pass at least one image."
        )

r"""Pixel-wise errors: MSE, L1 (mean absolute error) and PSNR, functions and metric classes."""

from __future__ import annotations

from typing import Literal

import torch

from andante_metrics.base import KPIMetric
from andante_metrics.fidelity._inputs import (
    DataRange,
    check_batch_not_empty,
    parse_data_range,
    prepare_images,
)
from andante_metrics.utilities.checks import check_in_choices

PSNRAverage = Literal["per_image", "pooled"]


def _error_update(
    preds: torch.Tensor, target: torch.Tensor, data_range: DataRange, power: int
) -> tuple[torch.Tensor, int]:
    """Return per-image sums of ``|preds - target| ** power``, ``(N,)``, and pixels per image."""
    x, y, _ = prepare_images(preds, target, data_range)
    diff = (x - y).abs() if power == 1 else (x - y).square()
    per_image = diff.flatten(1).sum(dim=1) if diff.numel() else diff.new_zeros(x.shape[0])
    return per_image, x[0].numel() if x.shape[0] else 0


def mse(preds: torch.Tensor, target: torch.Tensor, *, data_range: DataRange) -> torch.Tensor:
    r"""Compute the mean squared error over every pixel and channel of a batch of images.

    .. math:: \mathrm{MSE} = \frac{1}{N C H W} \sum (\hat{x} - x)^2

    ``data_range`` is required for the same input check as the other fidelity metrics: values
    outside ``[0, data_range]`` (or the ``(low, high)`` pair given) raise ``ValueError``. The
    value itself does not depend on it. Integer images are converted to float before the
    subtraction, so uint8 differences cannot wrap around.

    Args:
        preds: ``(N, C, H, W)`` images, float or integer.
        target: ``(N, C, H, W)`` reference images.
        data_range: the images' range, a number ``L`` for ``[0, L]`` or a ``(low, high)`` pair.

    Returns:
        A scalar in the squared unit of the images; 0 for identical images. An empty batch
        raises ``ValueError``.

    Example:
        >>> import torch
        >>> mse(torch.tensor([[[[0, 255]]]], dtype=torch.uint8),
        ...     torch.tensor([[[[255, 0]]]], dtype=torch.uint8), data_range=255)
        tensor(65025.)
    """
    check_batch_not_empty(preds)
    per_image, pixels = _error_update(preds, target, data_range, 2)
    return per_image.sum() / (per_image.numel() * pixels)


def l1(preds: torch.Tensor, target: torch.Tensor, *, data_range: DataRange) -> torch.Tensor:
    r"""Compute the mean absolute error (L1) over every pixel and channel of a batch of images.

    .. math:: \mathrm{L1} = \frac{1}{N C H W} \sum |\hat{x} - x|

    Input conventions as in :func:`mse`.

    Args:
        preds: ``(N, C, H, W)`` images, float or integer.
        target: ``(N, C, H, W)`` reference images.
        data_range: the images' range, a number ``L`` for ``[0, L]`` or a ``(low, high)`` pair.

    Returns:
        A scalar in the unit of the images; 0 for identical images, NaN for an empty batch.

    Example:
        >>> import torch
        >>> l1(torch.tensor([[[[0.0, 0.5]]]]), torch.tensor([[[[1.0, 0.5]]]]), data_range=1.0)
        tensor(0.5000)
    """
    check_batch_not_empty(preds)
    per_image, pixels = _error_update(preds, target, data_range, 1)
    return per_image.sum() / (per_image.numel() * pixels)


def _psnr_from_mse(mean_sq: torch.Tensor, span: float) -> torch.Tensor:
    # MSE = 0 gives +inf: log10(0) is -inf in torch, with no warning.
    return 10.0 * torch.log10(span**2 / mean_sq)


def _span(data_range: DataRange) -> float:
    low, high = parse_data_range(data_range)
    return high - low


def psnr(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: DataRange,
    average: PSNRAverage = "per_image",
) -> torch.Tensor:
    r"""Compute the peak signal-to-noise ratio of a batch of images, in dB.

    .. math:: \mathrm{PSNR} = 10 \log_{10} \frac{L^2}{\mathrm{MSE}}

    with :math:`L` the width of ``data_range``. Two averages are common in published tables,
    and they differ whenever the images' errors differ:

    * ``"per_image"`` (default): the mean over images of each image's PSNR;
    * ``"pooled"``: the PSNR of the MSE over all pixels of all images.

    Identical images have MSE 0 and PSNR ``+inf``; with ``"per_image"`` a single identical pair
    makes the mean ``+inf``. No cap is applied. Input conventions as in :func:`mse`; the
    range check uses ``data_range``, and ``data_range`` also sets :math:`L`.

    Args:
        preds: ``(N, C, H, W)`` images, float or integer.
        target: ``(N, C, H, W)`` reference images.
        data_range: ``L`` as a number (images in ``[0, L]``) or a ``(low, high)`` pair.
        average: ``"per_image"`` or ``"pooled"``.

    Returns:
        A scalar in dB, higher is better; an empty batch raises ``ValueError``.

    Source: the definition used by scikit-image's ``peak_signal_noise_ratio`` for one image.

    Example:
        >>> import torch
        >>> preds = torch.full((1, 1, 2, 2), 0.1)
        >>> psnr(preds, torch.zeros(1, 1, 2, 2), data_range=1.0)
        tensor(20.)
    """
    check_batch_not_empty(preds)
    check_in_choices(average, "average", ("per_image", "pooled"))
    per_image, pixels = _error_update(preds, target, data_range, 2)
    span = _span(data_range)
    if average == "pooled":
        return _psnr_from_mse(per_image.sum() / (per_image.numel() * pixels), span)
    return _psnr_from_mse(per_image / pixels, span).mean()


class _PooledError(KPIMetric):
    """Shell of MSE and L1: the error summed over pixels, divided by the pixel count."""

    kpi_area = "fidelity"
    higher_is_better = False
    is_differentiable = True
    _power = 2

    def __init__(self, *, data_range: DataRange, **kwargs) -> None:
        super().__init__(**kwargs)
        parse_data_range(data_range)
        self.data_range = data_range
        self.add_state("error_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("pixels", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(N, C, H, W)`` predicted and reference images."""
        per_image, pixels = _error_update(preds, target, self.data_range, self._power)
        self.error_sum += per_image.detach().double().sum()
        self.pixels += per_image.numel() * pixels

    def compute(self) -> torch.Tensor:
        """Return the error over every pixel seen so far (float64)."""
        self._check_not_empty(self.pixels)
        return self.error_sum / self.pixels


class MSE(_PooledError):
    """Stateful mean squared error over every pixel seen; see :func:`mse`.

    State: the float64 sum of squared errors and the pixel count, summed across processes.
    ``compute()`` before any image raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = MSE(data_range=1.0)
        >>> metric.update(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5))
        >>> metric.compute()
        tensor(0.2500, dtype=torch.float64)
    """

    unit = "squared intensity"
    _power = 2


class L1(_PooledError):
    """Stateful mean absolute error over every pixel seen; see :func:`l1`.

    State: the float64 sum of absolute errors and the pixel count, summed across processes.
    ``compute()`` before any image raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = L1(data_range=1.0)
        >>> metric.update(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5))
        >>> metric.compute()
        tensor(0.5000, dtype=torch.float64)
    """

    unit = "intensity"
    _power = 1


class PSNR(KPIMetric):
    """Stateful PSNR in dB; see :func:`psnr` for the definition and both averages.

    ``average="per_image"`` (default) reports the mean of each image's PSNR; its state is the
    float64 sum of per-image PSNR and the image count. ``average="pooled"`` reports the PSNR of
    the MSE over all pixels seen; its state is the float64 sum of squared errors and the pixel
    count. Both states are summed across processes. An identical pair makes the per-image mean
    ``+inf``. ``compute()`` before any image raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = PSNR(data_range=1.0, average="pooled")
        >>> metric.update(torch.full((1, 1, 2, 2), 0.1), torch.zeros(1, 1, 2, 2))
        >>> metric.compute()
        tensor(20.0000, dtype=torch.float64)
    """

    kpi_area = "fidelity"
    unit = "dB"
    higher_is_better = True
    is_differentiable = True

    def __init__(
        self, *, data_range: DataRange, average: PSNRAverage = "per_image", **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.span = _span(data_range)
        check_in_choices(average, "average", ("per_image", "pooled"))
        self.data_range = data_range
        self.average = average
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(N, C, H, W)`` predicted and reference images."""
        per_image, pixels = _error_update(preds, target, self.data_range, 2)
        per_image = per_image.detach().double()
        if self.average == "pooled":
            self.total += per_image.sum()
            self.count += per_image.numel() * pixels
        else:
            self.total += _psnr_from_mse(per_image / max(pixels, 1), self.span).sum()
            self.count += per_image.numel()

    def compute(self) -> torch.Tensor:
        """Return the PSNR of every image seen so far, in dB (float64)."""
        self._check_not_empty(self.count)
        if self.average == "pooled":
            return _psnr_from_mse(self.total / self.count, self.span)
        return self.total / self.count


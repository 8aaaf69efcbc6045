r"""Structural similarity: SSIM and multi-scale SSIM (MS-SSIM), functions and metric classes.

Both follow the conventions of Wang et al.'s reference MATLAB code, which pytorch-msssim 1.0 and
scikit-image 0.26 (``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``) also
follow, so values can be compared with published tables:

* local statistics are Gaussian-weighted means over a ``kernel_size`` x ``kernel_size`` window
  (11 taps, :math:`\sigma = 1.5` by default), and only windows that lie fully inside the image
  count (the "valid" part of the filtered maps);
* :math:`C_1 = (K_1 L)^2` and :math:`C_2 = (K_2 L)^2` with :math:`K_1 = 0.01`,
  :math:`K_2 = 0.03` and :math:`L` the width of ``data_range``;
* the SSIM of an image is the mean of the SSIM map of each channel, averaged over channels.

The filtering is separable (two 1-D passes over shifted views, with the symmetric taps paired)
and runs on groups of image planes small enough to stay in the CPU cache. Only four local
statistics are filtered, because SSIM needs the variances only through their sum:
:math:`\mu_x, \mu_y, E[x^2 + y^2], E[xy]`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from andante_metrics.base import KPIMetric
from andante_metrics.fidelity._inputs import (
    DataRange,
    check_batch_not_empty,
    check_kernel,
    gaussian_filter_valid,
    gaussian_taps,
    parse_data_range,
    prepare_images,
)
from andante_metrics.utilities.checks import check_in_choices

Reduction = Literal["mean", "none"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Scale weights of Wang, Simoncelli and Bovik (2003), finest scale first."""

# Planes (one channel of one image) are processed in groups of about this many pixels, so the
# four filtered statistics of a group stay in the CPU cache.
_PIXELS_PER_GROUP = 1 << 16


def _check_constants(k1: float, k2: float) -> None:
    for value, name in ((k1, "k1"), (k2, "k2")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"`{name}` must be a number greater than 0, got {value!r}.")


def _check_size(
    height: int, width: int, kernel_size: int, scales: int, fix: str | None = None
) -> None:
    """Raise when the coarsest scale is smaller than the window; ``fix`` overrides the hint."""
    minimum = (kernel_size - 1) * 2 ** (scales - 1) + 1
    if min(height, width) < minimum:
        if fix is None and scales == 1:
            fix = "pass a smaller odd `kernel_size` or larger images"
        elif fix is None:
            fix = "lower `kernel_size` or pass fewer `weights` (one per scale)"
        raise ValueError(
            f"Images of {height}x{width} pixels are too small for {scales} scale(s) with "
            f"kernel_size={kernel_size}: the smaller side must be at least {minimum} pixels "
            f"((kernel_size - 1) * 2**(scales - 1) + 1); {fix}."
        )


def _downsample(values: torch.Tensor) -> torch.Tensor:
    """Halve the last two dimensions by 2x2 averaging, as pytorch-msssim 1.0 does.

    An odd side is zero-padded by one pixel first and the padding counts in the average.
    """
    padding = (values.shape[-2] % 2, values.shape[-1] % 2)
    return F.avg_pool2d(values, kernel_size=2, padding=padding)


def _structure_terms(
    x: torch.Tensor, y: torch.Tensor, taps: list[float], c1: float, c2: float, luminance: bool
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Return the per-plane means of the SSIM map (if ``luminance``) and of the cs map.

    ``x`` and ``y`` are ``(P, H, W)``; the outputs are ``(P,)``.
    """
    stats = torch.stack((x, y, x * x + y * y, x * y))
    mu_x, mu_y, mean_sq, mean_xy = gaussian_filter_valid(stats, taps).unbind(0)
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x + mu_y * mu_y
    cs_map = (2.0 * (mean_xy - mu_xy) + c2) / (mean_sq - mu_sq + c2)
    cs = cs_map.mean(dim=(-2, -1))
    if not luminance:
        return None, cs
    ssim_map = (2.0 * mu_xy + c1) / (mu_sq + c1) * cs_map
    return ssim_map.mean(dim=(-2, -1)), cs


def _plane_groups(x: torch.Tensor, y: torch.Tensor):
    """Yield ``(x, y)`` slices of ``(P, H, W)`` planes sized to stay in the cache."""
    per_group = max(1, _PIXELS_PER_GROUP // (x.shape[-2] * x.shape[-1]))
    for begin in range(0, x.shape[0], per_group):
        yield x[begin : begin + per_group], y[begin : begin + per_group]


def _ssim_update(
    preds: torch.Tensor,
    target: torch.Tensor,
    data_range: DataRange,
    kernel_size: int,
    sigma: float,
    k1: float,
    k2: float,
) -> torch.Tensor:
    """Return the SSIM of each image, ``(N,)``, in the dtype the images are computed in."""
    x, y, span = prepare_images(preds, target, data_range)
    n, c, h, w = x.shape
    _check_size(h, w, kernel_size, 1)
    taps = gaussian_taps(kernel_size, sigma)
    c1, c2 = (k1 * span) ** 2, (k2 * span) ** 2
    planes = [
        _structure_terms(px, py, taps, c1, c2, luminance=True)[0]
        for px, py in _plane_groups(x.reshape(n * c, h, w), y.reshape(n * c, h, w))
    ]
    if not planes:
        return x.new_zeros(n)
    return torch.cat(planes).reshape(n, c).mean(dim=1)


def _ms_ssim_update(
    preds: torch.Tensor,
    target: torch.Tensor,
    data_range: DataRange,
    kernel_size: int,
    sigma: float,
    k1: float,
    k2: float,
    weights: tuple[float, ...],
) -> torch.Tensor:
    """Return the MS-SSIM of each image, ``(N,)``."""
    x, y, span = prepare_images(preds, target, data_range)
    n, c, h, w = x.shape
    _check_size(h, w, kernel_size, len(weights))
    taps = gaussian_taps(kernel_size, sigma)
    c1, c2 = (k1 * span) ** 2, (k2 * span) ** 2
    exponents = torch.tensor(weights, dtype=x.dtype, device=x.device)
    per_plane = []
    for px, py in _plane_groups(x.reshape(n * c, h, w), y.reshape(n * c, h, w)):
        terms = []
        for scale in range(len(weights)):
            last = scale == len(weights) - 1
            ssim_value, cs = _structure_terms(px, py, taps, c1, c2, luminance=last)
            terms.append(ssim_value if last else cs)
            if not last:
                px, py = _downsample(px), _downsample(py)
        # Negative contrast-structure terms (anti-correlated planes) are clipped at zero, so
        # the fractional powers stay real and the product never becomes NaN.
        stacked = torch.relu(torch.stack(terms, dim=-1))
        per_plane.append(torch.prod(stacked**exponents, dim=-1))
    if not per_plane:
        return x.new_zeros(n)
    return torch.cat(per_plane).reshape(n, c).mean(dim=1)


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    return values.mean() if reduction == "mean" else values


def _check_ms_weights(weights: tuple[float, ...]) -> tuple[float, ...]:
    weights = tuple(weights)
    if len(weights) == 0 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in weights
    ):
        raise ValueError(
            f"`weights` must be a non-empty sequence of non-negative numbers, one per scale, "
            f"got {weights!r}."
        )
    return weights


def ssim(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: DataRange,
    kernel_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""Compute the structural similarity index (SSIM) of image pairs.

    .. math::
        \mathrm{SSIM}(x, y) = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
        {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}

    with Gaussian-weighted local means :math:`\mu`, variances :math:`\sigma^2` and covariance
    :math:`\sigma_{xy}` (population form, no sample correction), averaged over the valid part of
    the map (windows fully inside the image) and then over channels. :math:`C_1 = (K_1 L)^2`
    and :math:`C_2 = (K_2 L)^2`, :math:`L` the width of ``data_range``.

    Conventions:

    * ``data_range`` is required and never estimated from the batch. Values outside
      ``[0, data_range]`` (or outside ``(low, high)`` when a pair is given) raise
      ``ValueError``. With a pair, images are shifted by ``low`` first, so a signed image and
      its negation score low, not near 1.
    * Integer images are converted to float before any subtraction (uint8 would wrap).
    * ``kernel_size`` is used as given (odd); an image smaller than the window raises.
    * Differentiable with respect to both inputs, so ``1 - ssim(...)`` works as a loss.

    Args:
        preds: ``(N, C, H, W)`` images, float or integer.
        target: ``(N, C, H, W)`` reference images, same shape.
        data_range: ``L`` as a number (images in ``[0, L]``) or a ``(low, high)`` pair.
        kernel_size: odd side of the Gaussian window (11 in the reference code).
        sigma: standard deviation of the Gaussian window in pixels (1.5).
        k1: luminance constant :math:`K_1` (0.01).
        k2: contrast constant :math:`K_2` (0.03).
        reduction: ``"mean"`` over images, or ``"none"`` for the ``(N,)`` per-image values.

    Returns:
        A scalar (or ``(N,)``) in :math:`[-1, 1]`, float64 for float64 or wide-integer inputs
        and float32 otherwise. Identical images give exactly 1. An empty batch raises
        ``ValueError``.

    Source: Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment:
    from error visibility to structural similarity", IEEE TIP 13(4), 2004.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> ssim(x, x, data_range=1.0)
        tensor(1.)
    """
    check_batch_not_empty(preds)
    check_kernel(kernel_size, sigma)
    _check_constants(k1, k2)
    check_in_choices(reduction, "reduction", ("mean", "none"))
    values = _ssim_update(preds, target, data_range, kernel_size, sigma, k1, k2)
    return _reduce(values, reduction)


def ms_ssim(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: DataRange,
    kernel_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""Compute the multi-scale structural similarity index (MS-SSIM) of image pairs.

    .. math::
        \mathrm{MS\text{-}SSIM}(x, y) = \mathrm{SSIM}_M(x, y)^{w_M}
        \prod_{j=1}^{M-1} \max(\mathrm{cs}_j(x, y), 0)^{w_j}

    per channel, averaged over channels. :math:`\mathrm{cs}_j` is the mean contrast-structure
    term (SSIM without the luminance factor) at scale :math:`j`; each next scale halves the
    image by 2x2 averaging (an odd side is zero-padded first, as in pytorch-msssim 1.0).
    With the default ``weights`` there are :math:`M = 5` scales weighted
    (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), finest first.

    Negative contrast-structure terms are clipped at 0 (the TensorFlow and pytorch-msssim
    convention), so anti-correlated images give a finite value, never NaN. The data range,
    integer, window and gradient conventions are those of :func:`ssim`.

    Images must be at least ``(kernel_size - 1) * 2**(M - 1) + 1`` pixels on the smaller side
    (161 for the defaults) so the window fits at the coarsest scale; smaller images raise
    ``ValueError`` naming that size. Pass fewer ``weights`` (scales) or a smaller
    ``kernel_size`` for small images.

    Args:
        preds: ``(N, C, H, W)`` images, float or integer.
        target: ``(N, C, H, W)`` reference images, same shape.
        data_range: ``L`` as a number (images in ``[0, L]``) or a ``(low, high)`` pair.
        kernel_size: odd side of the Gaussian window (11).
        sigma: standard deviation of the Gaussian window in pixels (1.5).
        k1: luminance constant :math:`K_1` (0.01).
        k2: contrast constant :math:`K_2` (0.03).
        weights: one non-negative exponent per scale, finest first.
        reduction: ``"mean"`` over images, or ``"none"`` for the ``(N,)`` per-image values.

    Returns:
        A scalar (or ``(N,)``) in :math:`[0, 1]`; identical images give exactly 1.

    Source: Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for
    image quality assessment", Asilomar Conference on Signals, Systems and Computers, 2003.

    Example:
        >>> import torch
        >>> x = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))
        >>> ms_ssim(x, x, data_range=1.0, kernel_size=3, weights=(0.5, 0.5))
        tensor(1.)
    """
    check_batch_not_empty(preds)
    check_kernel(kernel_size, sigma)
    _check_constants(k1, k2)
    weights = _check_ms_weights(weights)
    check_in_choices(reduction, "reduction", ("mean", "none"))
    values = _ms_ssim_update(preds, target, data_range, kernel_size, sigma, k1, k2, weights)
    return _reduce(values, reduction)


class _MeanOverImages(KPIMetric):
    """Shell of a metric whose value is the mean of a per-image score."""

    kpi_area = "fidelity"
    unit = "index"
    higher_is_better = True
    is_differentiable = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _per_image(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(N, C, H, W)`` predicted and reference images."""
        values = self._per_image(preds, target)
        self.total += values.detach().double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        """Return the mean per-image value over every image seen so far (float64)."""
        self._check_not_empty(self.count)
        return self.total / self.count


class SSIM(_MeanOverImages):
    """Stateful SSIM, the mean over images; see :func:`ssim` for the definition and conventions.

    State: the sum of per-image SSIM (float64) and the image count, both summed across
    processes. ``compute()`` before any image raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = SSIM(data_range=1.0, kernel_size=7)
        >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> metric.update(x, x)
        >>> metric.compute()
        tensor(1., dtype=torch.float64)
    """

    def __init__(
        self,
        *,
        data_range: DataRange,
        kernel_size: int = 11,
        sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        parse_data_range(data_range)
        check_kernel(kernel_size, sigma)
        _check_constants(k1, k2)
        self.data_range = data_range
        self.kernel_size = kernel_size
        self.sigma = sigma
        self.k1 = k1
        self.k2 = k2

    def _per_image(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _ssim_update(
            preds, target, self.data_range, self.kernel_size, self.sigma, self.k1, self.k2
        )


class MultiScaleSSIM(_MeanOverImages):
    """Stateful MS-SSIM, the mean over images; see :func:`ms_ssim` for the conventions.

    State: the sum of per-image MS-SSIM (float64) and the image count, both summed across
    processes. ``compute()`` before any image raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = MultiScaleSSIM(data_range=1.0, kernel_size=3, weights=(0.5, 0.5))
        >>> x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> metric.update(x, x)
        >>> metric.compute()
        tensor(1., dtype=torch.float64)
    """

    def __init__(
        self,
        *,
        data_range: DataRange,
        kernel_size: int = 11,
        sigma: float = 1.5,
        k1: float = 0.01,
        k2: float = 0.03,
        weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        parse_data_range(data_range)
        check_kernel(kernel_size, sigma)
        _check_constants(k1, k2)
        self.data_range = data_range
        self.kernel_size = kernel_size
        self.sigma = sigma
        self.k1 = k1
        self.k2 = k2
        self.weights = _check_ms_weights(weights)

    def _per_image(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _ms_ssim_update(
            preds,
            target,
            self.data_range,
            self.kernel_size,
            self.sigma,
            self.k1,
            self.k2,
            self.weights,
        )



r"""Information-weighted SSIM (IW-SSIM), function and metric class.

IW-SSIM splits both images into a Laplacian pyramid (5-tap binomial filter, reflected borders)
and, at each of 5 scales, pools the contrast-structure map with weights equal to the local
information content of the reference, estimated with a Gaussian scale mixture model of 3x3
neighbourhoods plus the parent coefficient of the next coarser scale. The coarsest scale uses
the plain SSIM map. The steps and constants follow Wang and Li's MATLAB code as ported by
piq 0.8, so the values agree with piq.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from andante_metrics.base import KPIMetric
from andante_metrics.fidelity._inputs import (
    DataRange,
    check_batch_not_empty,
    gaussian_filter_valid,
    gaussian_taps,
    parse_data_range,
    prepare_images,
)
from andante_metrics.fidelity.ssim import MS_SSIM_WEIGHTS, _check_ms_weights, _check_size
from andante_metrics.utilities.checks import check_in_choices

_LUMA = (0.299, 0.587, 0.114)
_BLOCK = 3  # side of the neighbourhood of the information-content model
_NOISE_VAR = 0.4  # variance of the visual noise in the model, for images in [0, 255]


def _pyramid_step(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the low-pass half-size image and the band-pass residual of ``(N, 1, H, W)``."""
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=images.dtype, device=images.device)
    taps = taps / 16.0 * math.sqrt(2.0)
    along_w, along_h = taps.view(1, 1, 1, 5), taps.view(1, 1, 5, 1)
    low = images
    if images.shape[-1] > 1:
        low = F.conv2d(F.pad(low, (2, 2, 0, 0), mode="reflect"), along_w)[..., ::2]
    if images.shape[-2] > 1:
        low = F.conv2d(F.pad(low, (0, 0, 2, 2), mode="reflect"), along_h)[..., ::2, :]

    # Expand back: insert zeros between samples, filter, and crop to the input size.
    up = low
    if images.shape[-1] > 1:
        spread = torch.zeros(*up.shape[:-1], 2 * up.shape[-1], dtype=up.dtype, device=up.device)
        spread[..., ::2] = up
        up = F.conv2d(F.pad(spread, (2, 2, 0, 0), mode="reflect"), along_w)
        up = up[..., : images.shape[-1]]
    if images.shape[-2] > 1:
        spread = torch.zeros(*up.shape[:-2], 2 * up.shape[-2], up.shape[-1], dtype=up.dtype,
                             device=up.device)
        spread[..., ::2, :] = up
        up = F.conv2d(F.pad(spread, (0, 0, 2, 2), mode="reflect"), along_h)
        up = up[..., : images.shape[-2], :]
    return low, images - up


def _enlarge(parent: torch.Tensor) -> torch.Tensor:
    """Return ``parent`` upsampled to twice its size, as the reference code's ``imenlarge2``.

    Bilinear interpolation to ``4h - 3`` by ``4w - 3``, one border row and column extrapolated
    linearly on each side, then every second sample.
    """
    h, w = parent.shape[-2:]
    inner = F.interpolate(parent, size=(4 * h - 3, 4 * w - 3), mode="bilinear",
                          align_corners=False)
    full = parent.new_zeros(*parent.shape[:-2], 4 * h - 1, 4 * w - 1)
    full[..., 1:-1, 1:-1] = inner
    full[..., 0, :] = 2 * full[..., 1, :] - full[..., 2, :]
    full[..., -1, :] = 2 * full[..., -2, :] - full[..., -3, :]
    full[..., :, 0] = 2 * full[..., :, 1] - full[..., :, 2]
    full[..., :, -1] = 2 * full[..., :, -2] - full[..., :, -3]
    return full[..., ::2, ::2]


def _information_content(
    x: torch.Tensor, y: torch.Tensor, parent: torch.Tensor | None
) -> torch.Tensor:
    """Return the information-content weight map of band ``x`` against reference band ``y``.

    The output is ``(N, 1, H - 2, W - 2)``, one weight per full 3x3 neighbourhood.
    """
    eps = torch.finfo(x.dtype).eps
    height, width = y.shape[-2:]
    # Local 3x3 means with zero padding of one pixel before and two after, as piq 0.8 does.
    # Only the centred entries [1, H - 1) are used below.
    box = torch.full((1, 1, _BLOCK, _BLOCK), 1.0 / _BLOCK**2, dtype=x.dtype, device=x.device)

    def local_mean(values: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(values, (1, 2, 1, 2)), box)

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = torch.relu(local_mean(x * x) - mu_x**2)
    var_y = torch.relu(local_mean(y * y) - mu_y**2)
    cov = local_mean(x * y) - mu_x * mu_y

    # Gain g and residual variance v of the distortion model x = g y + noise.
    gain = cov / (var_y + eps)
    residual = var_x - gain * cov
    flat_y = var_y < eps
    gain = gain.masked_fill(flat_y, 0.0)
    residual = torch.where(flat_y, var_x, residual)
    flat_x = var_x < eps
    gain = gain.masked_fill(flat_x, 0.0)
    residual = residual.masked_fill(flat_x, 0.0)

    rows, cols = height - _BLOCK + 1, width - _BLOCK + 1
    columns = [
        y[..., 1 - dy : 1 - dy + rows, 1 - dx : 1 - dx + cols].flatten(-2)
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    ]
    if parent is not None:
        columns.append(_enlarge(parent)[..., 1 : 1 + rows, 1 : 1 + cols].flatten(-2))
    neighbours = torch.stack(columns, dim=-1)  # (N, 1, positions, dims)
    dims = neighbours.shape[-1]

    # Covariance of the neighbourhood vectors, with negative eigenvalues zeroed and the rest
    # rescaled to keep the trace.
    covariance = neighbours.transpose(-2, -1) @ neighbours / (rows * cols)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    positive = eigenvalues * (eigenvalues > 0)
    total = eigenvalues.sum(dim=-1, keepdim=True)
    kept = positive.sum(dim=-1, keepdim=True)
    scaled = positive * total / (kept + (kept == 0))
    covariance = eigenvectors @ torch.diag_embed(scaled) @ eigenvectors.transpose(-2, -1)
    # Multiplier s of each neighbourhood: its Mahalanobis norm divided by the dimension.
    multiplier = ((neighbours @ torch.inverse(covariance)) * neighbours).sum(dim=-1) / dims
    multiplier = multiplier.view(*y.shape[:-2], rows, cols, 1)

    gain = gain[..., 1 : 1 + rows, 1 : 1 + cols].unsqueeze(-1)
    residual = residual[..., 1 : 1 + rows, 1 : 1 + cols].unsqueeze(-1)
    eig = scaled.view(*y.shape[:-2], 1, 1, dims)
    signal = (residual + (1 + gain * gain) * _NOISE_VAR) * multiplier * eig
    weights = torch.log2(1 + (signal + _NOISE_VAR * residual) / _NOISE_VAR**2).sum(dim=-1)
    return weights.masked_fill(weights < eps, 0.0)


def _band_terms(
    x: torch.Tensor, y: torch.Tensor, taps: list[float], c1: float, c2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the SSIM and cs maps of two bands, valid part, variances clipped at 0."""
    stats = torch.stack((x, y, x * x, y * y, x * y))
    mu_x, mu_y, mean_xx, mean_yy, mean_xy = gaussian_filter_valid(stats, taps).unbind(0)
    var_x = torch.relu(mean_xx - mu_x * mu_x)
    var_y = torch.relu(mean_yy - mu_y * mu_y)
    cs_map = (2.0 * (mean_xy - mu_x * mu_y) + c2) / (var_x + var_y + c2)
    ssim_map = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1) * cs_map
    return ssim_map, cs_map


def _iw_ssim_update(
    preds: torch.Tensor,
    target: torch.Tensor,
    data_range: DataRange,
    weights: tuple[float, ...],
    parent: bool,
) -> torch.Tensor:
    """Return the IW-SSIM of each image, ``(N,)``."""
    x, y, span = prepare_images(preds, target, data_range)
    if x.shape[1] not in (1, 3):
        raise ValueError(
            f"`preds` must have 1 (grey) or 3 (RGB) channels for IW-SSIM, got shape "
            f"{tuple(x.shape)}; convert the images to grey or RGB first."
        )
    levels = len(weights)
    _check_size(x.shape[-2], x.shape[-1], 11, levels,
                fix="pass fewer `weights` (one per scale) or larger images")
    x, y = x * (255.0 / span), y * (255.0 / span)
    if x.shape[1] == 3:
        luma = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x, y = (x * luma).sum(dim=1, keepdim=True), (y * luma).sum(dim=1, keepdim=True)
    taps = gaussian_taps(11, 1.5)
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    crop = 5 - (_BLOCK - 1) // 2  # aligns the weight map with the valid 11x11 SSIM map

    x, band_x = _pyramid_step(x)
    y, band_y = _pyramid_step(y)
    pooled = []
    for level in range(levels):
        if level < levels - 2:
            x, next_x = _pyramid_step(x)
            y, next_y = _pyramid_step(y)
        else:
            next_x, next_y = x, y
        ssim_map, cs_map = _band_terms(band_x, band_y, taps, c1, c2)
        if level == levels - 1:
            pooled.append(ssim_map.mean(dim=(-2, -1)))
        else:
            use_parent = parent and level < levels - 2
            info = _information_content(band_x, band_y, next_y if use_parent else None)
            info = info[..., crop:-crop, crop:-crop]
            pooled.append((cs_map * info).sum(dim=(-2, -1)) / info.sum(dim=(-2, -1)))
        band_x, band_y = next_x, next_y
    # The reference code normalises the weights to sum to 1 and takes absolute values.
    exponents = torch.tensor(weights, dtype=x.dtype, device=x.device)
    exponents = exponents / exponents.sum()
    terms = torch.stack(pooled, dim=-1).abs()
    return torch.prod(terms**exponents, dim=-1)[:, 0]


def iw_ssim(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: DataRange,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
    parent: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Compute the information-weighted SSIM (IW-SSIM) of image pairs.

    .. math::
        \mathrm{IW\text{-}SSIM} = \prod_{j=1}^{M} \left|
        \frac{\sum_p w_j(p)\, \mathrm{cs}_j(p)}{\sum_p w_j(p)} \right|^{\beta_j}

    over the :math:`M` Laplacian pyramid bands, with :math:`w_j` the information content of
    the reference band (1 at the coarsest scale, where the SSIM map replaces cs) and
    :math:`\beta_j` the ``weights`` normalised to sum to 1. SSIM maps use the 11-tap Gaussian
    window with :math:`\sigma = 1.5`, :math:`K_1 = 0.01` and :math:`K_2 = 0.03` on images
    scaled to [0, 255]; RGB images use the luma :math:`0.299 R + 0.587 G + 0.114 B`.

    Images must be at least ``10 * 2**(M - 1) + 1`` pixels on the smaller side (161 for 5
    scales); smaller ones raise ``ValueError`` with that size. Range and integer conventions
    as in :func:`~andante_metrics.fidelity.ssim`. Identical images give 1.

    Args:
        preds: ``(N, 1 or 3, H, W)`` images, float or integer.
        target: reference images of the same shape.
        data_range: the images' range, a number ``L`` for ``[0, L]`` or a ``(low, high)`` pair.
        weights: one non-negative exponent per scale, finest first (the MS-SSIM weights).
        parent: include the parent coefficient (next coarser band) in the neighbourhood model.
        reduction: ``"mean"`` over images, or ``"none"`` for ``(N,)`` per-image values.

    Returns:
        A scalar (or ``(N,)``) in [0, 1]; an empty batch raises ``ValueError``.

    Source: Z. Wang, Q. Li, "Information content weighting for perceptual image quality
    assessment", IEEE TIP 20(5), 2011.

    Example:
        >>> import torch
        >>> x = torch.rand(1, 1, 161, 161, generator=torch.Generator().manual_seed(0))
        >>> round(float(iw_ssim(x, x, data_range=1.0)), 6)
        1.0
    """
    check_batch_not_empty(preds)
    weights = _check_ms_weights(weights)
    check_in_choices(parent, "parent", (True, False))
    check_in_choices(reduction, "reduction", ("mean", "none"))
    values = _iw_ssim_update(preds, target, data_range, weights, parent)
    return values.mean() if reduction == "mean" else values


class IWSSIM(KPIMetric):
    """Stateful IW-SSIM, the mean over images; see :func:`iw_ssim` for the definition.

    State: the float64 sum of per-image values and the image count, summed across processes.
    ``compute()`` before any image raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = IWSSIM(data_range=1.0, weights=(0.5, 0.5))
        >>> x = torch.rand(2, 1, 24, 24, generator=torch.Generator().manual_seed(0))
        >>> metric.update(x, x)
        >>> round(float(metric.compute()), 6)
        1.0
    """

    kpi_area = "fidelity"
    unit = "index"
    higher_is_better = True

    def __init__(
        self,
        *,
        data_range: DataRange,
        weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
        parent: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        parse_data_range(data_range)
        check_in_choices(parent, "parent", (True, False))
        self.data_range = data_range
        self.weights = _check_ms_weights(weights)
        self.parent = parent
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(N, 1 or 3, H, W)`` predicted and reference images."""
        values = _iw_ssim_update(preds, target, self.data_range, self.weights, self.parent)
        self.total += values.detach().double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        """Return the mean IW-SSIM over every image seen so far (float64)."""
        self._check_not_empty(self.count)
        return self.total / self.count

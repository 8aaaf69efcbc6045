r"""Gradient magnitude similarity deviation (GMSD), function and metric class."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from andante_metrics.base import KPIMetric
from andante_metrics.fidelity._inputs import (
    DataRange,
    check_batch_not_empty,
    parse_data_range,
    prepare_images,
)
from andante_metrics.utilities.checks import check_in_choices, check_positive

Reduction = ("mean", "none")

# ITU-R BT.601 luma weights, the Y row of the YIQ transform the GMSD reference code uses.
_LUMA = (0.299, 0.587, 0.114)
_DEFAULT_T = 170.0 / 255.0**2


def _luminance(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    if images.shape[1] != 3:
        raise ValueError(
            f"`preds` must have 1 (grey) or 3 (RGB) channels for GMSD, got shape "
            f"{tuple(images.shape)}; convert the images to grey or RGB first."
        )
    weights = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def _gradient_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Return the Prewitt gradient magnitude of ``(N, 1, H, W)`` images, zero-padded borders."""
    row = torch.tensor([1.0, 0.0, -1.0], dtype=images.dtype, device=images.device) / 3.0
    horizontal = row.view(1, 3).expand(3, 3)
    kernels = torch.stack((horizontal, horizontal.t())).unsqueeze(1)
    gradients = F.conv2d(images, kernels, padding=1)
    return gradients.square().sum(dim=1).sqrt()


def _gmsd_update(
    preds: torch.Tensor, target: torch.Tensor, data_range: DataRange, t: float
) -> torch.Tensor:
    """Return the GMSD of each image, ``(N,)``."""
    x, y, span = prepare_images(preds, target, data_range)
    x, y = _luminance(x / span), _luminance(y / span)
    if x.shape[0] == 0:
        return x.new_zeros(0)
    # The reference code halves the image by 2x2 averaging first; an odd side gets one row or
    # column of zeros so the last pixels still count.
    padding = (0, x.shape[-1] % 2, 0, x.shape[-2] % 2)
    x = F.avg_pool2d(F.pad(x, padding), kernel_size=2)
    y = F.avg_pool2d(F.pad(y, padding), kernel_size=2)
    grad_x, grad_y = _gradient_magnitude(x), _gradient_magnitude(y)
    similarity = (2.0 * grad_x * grad_y + t) / (grad_x.square() + grad_y.square() + t)
    return similarity.flatten(1).std(dim=1, correction=0)


def gmsd(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: DataRange,
    t: float = _DEFAULT_T,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Compute the gradient magnitude similarity deviation (GMSD) of image pairs.

    .. math::
        \mathrm{GMS} = \frac{2 m_x m_y + T}{m_x^2 + m_y^2 + T}, \qquad
        \mathrm{GMSD} = \operatorname{std}(\mathrm{GMS})

    with :math:`m` the Prewitt gradient magnitude (kernels divided by 3, zero-padded borders)
    of the luminance, after scaling the images to [0, 1] by ``data_range`` and halving them by
    2x2 averaging, and the standard deviation taken over pixels without sample correction.
    RGB images use the luma :math:`Y = 0.299 R + 0.587 G + 0.114 B`; grey images are used as
    they are; other channel counts raise ``ValueError``. Lower is better: identical images
    give exactly 0. Range and integer conventions as in :func:`~andante_metrics.fidelity.ssim`.

    Args:
        preds: ``(N, 1 or 3, H, W)`` images, float or integer.
        target: reference images of the same shape.
        data_range: the images' range, a number ``L`` for ``[0, L]`` or a ``(low, high)`` pair.
        t: stability constant :math:`T` for images in [0, 1] (170 / 255**2).
        reduction: ``"mean"`` over images, or ``"none"`` for ``(N,)`` per-image values.

    Returns:
        A scalar (or ``(N,)``), at least 0; an empty batch raises ``ValueError``.

    Source: W. Xue, L. Zhang, X. Mou, A. C. Bovik, "Gradient magnitude similarity deviation:
    a highly efficient perceptual image quality index", IEEE TIP 23(2), 2014; piq 0.8 follows
    the same steps.

    Example:
        >>> import torch
        >>> x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> gmsd(x, x, data_range=1.0)
        tensor(0.)
    """
    check_batch_not_empty(preds)
    check_positive(t, "t")
    check_in_choices(reduction, "reduction", Reduction)
    values = _gmsd_update(preds, target, data_range, t)
    return values.mean() if reduction == "mean" else values


class GMSD(KPIMetric):
    """Stateful GMSD, the mean over images; see :func:`gmsd` for the definition.

    State: the float64 sum of per-image GMSD and the image count, summed across processes.
    ``compute()`` before any image raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = GMSD(data_range=1.0)
        >>> x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> metric.update(x, x)
        >>> metric.compute()
        tensor(0., dtype=torch.float64)
    """

    kpi_area = "fidelity"
    unit = "index"
    higher_is_better = False

    def __init__(self, *, data_range: DataRange, t: float = _DEFAULT_T, **kwargs) -> None:
        super().__init__(**kwargs)
        parse_data_range(data_range)
        self.t = check_positive(t, "t")
        self.data_range = data_range
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(N, 1 or 3, H, W)`` predicted and reference images."""
        values = _gmsd_update(preds, target, self.data_range, self.t)
        self.total += values.detach().double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        """Return the mean GMSD over every image seen so far (float64)."""
        self._check_not_empty(self.count)
        return self.total / self.count

r"""Feature similarity (FSIM and its colour variant FSIMc), function and metric class.

FSIM compares two low-level features: phase congruency (PC), a contrast-invariant measure of
how strongly the Fourier components of a neighbourhood agree in phase (Kovesi's model with
log-Gabor filters), and the Scharr gradient magnitude (GM). The steps and constants follow
Zhang et al.'s MATLAB code as ported by piq 0.8, so the values agree with piq.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from andante_metrics.base import KPIMetric
from andante_metrics.fidelity._inputs import (
    DataRange,
    check_batch_not_empty,
    parse_data_range,
    prepare_images,
)
from andante_metrics.utilities.checks import check_in_choices

# Similarity constants of the reference code, for images scaled to [0, 255].
_T_PC, _T_GM, _T_CHROMA, _LAMBDA = 0.85, 160.0, 200.0, 0.03
# Phase congruency parameters of the reference code.
_SCALES, _ORIENTATIONS, _MIN_WAVELENGTH, _MULT = 4, 4, 6, 2
_SIGMA_ONF, _D_THETA_ON_SIGMA, _NOISE_K = 0.55, 1.2, 2.0
_LOWPASS_CUTOFF, _LOWPASS_ORDER = 0.45, 15

# RGB to YIQ (NTSC) matrix, one row per output channel.
_YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))


def _frequency_axis(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Return normalised frequencies of ``n`` samples centred on 0, as in the reference code."""
    if n % 2:
        return torch.arange(-(n - 1) / 2, n / 2, dtype=dtype, device=device) / (n - 1)
    return torch.arange(-n / 2, n / 2, dtype=dtype, device=device) / n


def _log_gabor_bank(height: int, width: int, dtype: torch.dtype, device: torch.device):
    """Return the ``(orientations, scales, H, W)`` log-Gabor transfer functions, DC at [0, 0]."""
    u = _frequency_axis(height, dtype, device).view(-1, 1).expand(height, width)
    v = _frequency_axis(width, dtype, device).view(1, -1).expand(height, width)
    radius = torch.fft.ifftshift(torch.sqrt(u * u + v * v))
    angle = torch.fft.ifftshift(torch.atan2(-v, u))
    lowpass = 1.0 / (1.0 + (radius / _LOWPASS_CUTOFF) ** (2 * _LOWPASS_ORDER))
    radius = radius.clone()
    radius[0, 0] = 1.0  # avoids log(0); the DC term is zeroed below

    radial = []
    for scale in range(_SCALES):
        centre = 1.0 / (_MIN_WAVELENGTH * _MULT**scale)
        log_gabor = torch.exp(-torch.log(radius / centre) ** 2 / (2 * math.log(_SIGMA_ONF) ** 2))
        log_gabor = log_gabor * lowpass
        log_gabor[0, 0] = 0.0
        radial.append(log_gabor)

    angle_sigma = math.pi / _ORIENTATIONS / _D_THETA_ON_SIGMA
    angular = []
    for orientation in range(_ORIENTATIONS):
        centre = orientation * math.pi / _ORIENTATIONS
        # Angular distance to the filter's orientation, wrapped to [0, pi].
        distance = torch.atan2(
            torch.sin(angle) * math.cos(centre) - torch.cos(angle) * math.sin(centre),
            torch.cos(angle) * math.cos(centre) + torch.sin(angle) * math.sin(centre),
        ).abs()
        angular.append(torch.exp(-(distance**2) / (2 * angle_sigma**2)))
    return torch.stack(angular).unsqueeze(1) * torch.stack(radial).unsqueeze(0)


@functools.lru_cache(maxsize=4)
def _filter_bank(
    height: int, width: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the log-Gabor bank and the per-orientation energies the noise model needs.

    The outputs depend only on the image size, so they are cached (read-only tensors):
    the bank ``(O, S, H, W)``, the squared bank summed at the smallest scale ``(O,)``, and
    the spatial filters' summed squares and summed cross products between scales ``(O,)``.
    """
    bank = _log_gabor_bank(height, width, dtype, device)
    filter_energy = (bank[:, 0] ** 2).sum(dim=(-2, -1))
    spatial = torch.fft.ifft2(bank).real * math.sqrt(height * width)
    sum_sq = (spatial**2).sum(dim=(1, 2, 3))
    cross = sum(
        (spatial[:, s] * spatial[:, t]).sum(dim=(-2, -1))
        for s in range(_SCALES)
        for t in range(s + 1, _SCALES)
    )
    return bank, filter_energy, sum_sq, cross


def _phase_congruency(luma: torch.Tensor) -> torch.Tensor:
    """Return the phase congruency map of ``(N, H, W)`` images, ``(N, H, W)``."""
    eps = torch.finfo(luma.dtype).eps
    n, height, width = luma.shape
    bank, filter_energy, sum_sq, cross = _filter_bank(height, width, luma.dtype, luma.device)
    responses = torch.fft.ifft2(torch.fft.fft2(luma).view(n, 1, 1, height, width) * bank)
    even, odd = responses.real, responses.imag
    amplitude = torch.sqrt(even * even + odd * odd)  # faster than complex abs() on CPU

    # Weighted mean phase direction per orientation, and the energy along it.
    sum_even = even.sum(dim=2, keepdim=True)
    sum_odd = odd.sum(dim=2, keepdim=True)
    norm = torch.sqrt(sum_even**2 + sum_odd**2) + eps
    mean_even, mean_odd = sum_even / norm, sum_odd / norm
    energy = (even * mean_even + odd * mean_odd - (even * mean_odd - odd * mean_even).abs()).sum(
        dim=2
    )

    # Noise threshold per orientation: the noise power is estimated from the median squared
    # response at the smallest scale (a Rayleigh distribution's median), then propagated
    # through all scales with the filters' spatial energies. torch.median takes the lower of
    # the two middle values, as piq does; MATLAB averages them.
    smallest = amplitude[:, :, 0].flatten(2) ** 2
    mean_noise_sq = -smallest.median(dim=-1).values / math.log(0.5)
    noise_power = mean_noise_sq / filter_energy
    noise_energy_sq = 2 * noise_power * sum_sq + 4 * noise_power * cross
    tau = torch.sqrt(noise_energy_sq / 2)
    threshold = (tau * math.sqrt(math.pi / 2) + _NOISE_K * tau * math.sqrt(2 - math.pi / 2)) / 1.7
    energy = torch.clamp(energy - threshold.unsqueeze(-1).unsqueeze(-1), min=0.0)
    return (energy.sum(dim=1) + eps) / (amplitude.sum(dim=(1, 2)) + eps)


def _gradient_magnitude(luma: torch.Tensor) -> torch.Tensor:
    """Return the Scharr gradient magnitude of ``(N, H, W)`` images, zero-padded borders."""
    row = torch.tensor([3.0, 10.0, 3.0], dtype=luma.dtype, device=luma.device) / 16.0
    derivative = torch.tensor([-1.0, 0.0, 1.0], dtype=luma.dtype, device=luma.device)
    horizontal = row.view(3, 1) * derivative.view(1, 3)
    kernels = torch.stack((horizontal, horizontal.t())).unsqueeze(1)
    gradients = F.conv2d(luma.unsqueeze(1), kernels, padding=1)
    return gradients.square().sum(dim=1).sqrt()


def _similarity(a: torch.Tensor, b: torch.Tensor, constant: float) -> torch.Tensor:
    return (2.0 * a * b + constant) / (a * a + b * b + constant)


def _fsim_update(
    preds: torch.Tensor, target: torch.Tensor, data_range: DataRange, chromatic: bool
) -> torch.Tensor:
    """Return the FSIM (or FSIMc) of each image, ``(N,)``."""
    x, y, span = prepare_images(preds, target, data_range)
    channels = x.shape[1]
    if channels not in (1, 3) or (chromatic and channels != 3):
        needed = "3 (RGB) channels for FSIMc" if chromatic else "1 (grey) or 3 (RGB) channels"
        raise ValueError(
            f"`preds` must have {needed}, got shape {tuple(x.shape)}; convert the images, or "
            f"pass chromatic=False for grey images."
        )
    if x.shape[0] == 0:
        return x.new_zeros(0)
    x, y = x * (255.0 / span), y * (255.0 / span)
    # The reference code first averages blocks of about min(H, W) / 256 pixels.
    block = max(1, round(min(x.shape[-2:]) / 256))
    if block > 1:
        x, y = F.avg_pool2d(x, block), F.avg_pool2d(y, block)
    if channels == 3:
        yiq = torch.tensor(_YIQ, dtype=x.dtype, device=x.device)
        x = torch.einsum("kc,nchw->nkhw", yiq, x)
        y = torch.einsum("kc,nchw->nkhw", yiq, y)

    pc_x, pc_y = _phase_congruency(x[:, 0]), _phase_congruency(y[:, 0])
    similarity = _similarity(pc_x, pc_y, _T_PC) * _similarity(
        _gradient_magnitude(x[:, 0]), _gradient_magnitude(y[:, 0]), _T_GM
    )
    if chromatic:
        chroma = _similarity(x[:, 1], y[:, 1], _T_CHROMA) * _similarity(x[:, 2], y[:, 2], _T_CHROMA)
        similarity = similarity * chroma.abs() ** _LAMBDA
    weight = torch.maximum(pc_x, pc_y)
    return (similarity * weight).sum(dim=(-2, -1)) / weight.sum(dim=(-2, -1))


def fsim(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: DataRange,
    chromatic: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Compute the feature similarity index (FSIM, or FSIMc with ``chromatic=True``).

    .. math::
        \mathrm{FSIM} = \frac{\sum_p S_{PC}(p)\, S_G(p)\, PC_m(p)}{\sum_p PC_m(p)}, \qquad
        S_{PC} = \frac{2 PC_x PC_y + T_1}{PC_x^2 + PC_y^2 + T_1}, \quad
        S_G = \frac{2 G_x G_y + T_2}{G_x^2 + G_y^2 + T_2}

    with :math:`PC` the phase congruency of the luminance (4 scales, 4 orientations of
    log-Gabor filters), :math:`G` its Scharr gradient magnitude, :math:`PC_m = \max(PC_x,
    PC_y)`, :math:`T_1 = 0.85` and :math:`T_2 = 160` for images scaled to [0, 255]. FSIMc
    multiplies each pixel's similarity by :math:`|S_I S_Q|^{0.03}`, the similarities of the
    YIQ chroma channels with :math:`T_3 = T_4 = 200`. Images are first averaged over blocks
    of ``round(min(H, W) / 256)`` pixels, as in the reference code.

    RGB images use the Y channel of YIQ as luminance; grey images need ``chromatic=False``;
    other channel counts raise ``ValueError``. Range and integer conventions as in
    :func:`~andante_metrics.fidelity.ssim`. Identical images give 1.

    Args:
        preds: ``(N, 1 or 3, H, W)`` images, float or integer.
        target: reference images of the same shape.
        data_range: the images' range, a number ``L`` for ``[0, L]`` or a ``(low, high)`` pair.
        chromatic: ``True`` for FSIMc (RGB only), ``False`` for FSIM on the luminance.
        reduction: ``"mean"`` over images, or ``"none"`` for ``(N,)`` per-image values.

    Returns:
        A scalar (or ``(N,)``), usually in [0, 1] (it can exceed 1 slightly when ``preds`` has
        more contrast than ``target``); an empty batch raises ``ValueError``.

    Source: L. Zhang, L. Zhang, X. Mou, D. Zhang, "FSIM: a feature similarity index for image
    quality assessment", IEEE TIP 20(8), 2011; the constants of the authors' MATLAB code.

    Example:
        >>> import torch
        >>> x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> fsim(x, x, data_range=1.0)
        tensor(1.)
    """
    check_batch_not_empty(preds)
    check_in_choices(chromatic, "chromatic", (True, False))
    check_in_choices(reduction, "reduction", ("mean", "none"))
    values = _fsim_update(preds, target, data_range, chromatic)
    return values.mean() if reduction == "mean" else values


class FSIM(KPIMetric):
    """Stateful FSIM or FSIMc, the mean over images; see :func:`fsim` for the definition.

    State: the float64 sum of per-image values and the image count, summed across processes.
    ``compute()`` before any image raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = FSIM(data_range=1.0, chromatic=False)
        >>> x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> metric.update(x, x)
        >>> metric.compute()
        tensor(1., dtype=torch.float64)
    """

    kpi_area = "fidelity"
    unit = "index"
    higher_is_better = True

    def __init__(self, *, data_range: DataRange, chromatic: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        parse_data_range(data_range)
        check_in_choices(chromatic, "chromatic", (True, False))
        self.data_range = data_range
        self.chromatic = chromatic
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(N, 1 or 3, H, W)`` predicted and reference images."""
        values = _fsim_update(preds, target, self.data_range, self.chromatic)
        self.total += values.detach().double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        """Return the mean FSIM over every image seen so far (float64)."""
        self._check_not_empty(self.count)
        return self.total / self.count

r"""Common image corruptions with five severities, generated on the fly in torch.

Each corruption follows the definition and the severity parameters of ImageNet-C (Hendrycks and
Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
ICLR 2019), re-implemented in torch so that it runs on any image size, any channel count and
any device, batch by batch.

Every function takes ``images`` of shape ``(N, C, H, W)`` or ``(C, H, W)``, either floating
point in [0, 1] or ``uint8`` in [0, 255], and returns a tensor of the same shape, dtype and
device, clipped to the valid range. ``severity`` is an int from 0 to 5, and severity 0 returns an
unchanged copy of the input. Random corruptions take a ``generator``: one ``torch.Generator``,
or a sequence with one generator per sample, so the same seed gives the same output.

Blur radii are in pixels, as ImageNet-C defines them for 224x224 images. On much smaller images
the same radius removes far more detail. ``pixel_scale``
multiplies the blur radii (for example ``pixel_scale=H / 224``) when a caller wants the
ImageNet-C blur relative to the image size instead.

NOTE: the tests run on CPU only. On CUDA the noise is drawn on the CPU and moved, and JPEG is
coded on the CPU, but that path has not been run.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from andante_metrics.robustness._noise_seeds import GeneratorArg, draw
from andante_metrics.utilities.checks import check_in_choices, check_int_range, check_positive

SEVERITIES = (1, 2, 3, 4, 5)

# Severity parameters of ImageNet-C, severities 1 to 5.
GAUSSIAN_NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
SHOT_NOISE_PHOTONS = (60.0, 25.0, 12.0, 5.0, 3.0)
IMPULSE_NOISE_AMOUNT = (0.03, 0.06, 0.09, 0.17, 0.27)
GAUSSIAN_BLUR_SIGMA = (1.0, 2.0, 3.0, 4.0, 6.0)
DEFOCUS_BLUR_RADIUS_ALIAS = ((3.0, 0.1), (4.0, 0.5), (6.0, 0.5), (8.0, 0.5), (10.0, 0.5))
CONTRAST_FACTOR = (0.4, 0.3, 0.2, 0.1, 0.05)
BRIGHTNESS_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)
PIXELATE_FACTOR = (0.6, 0.5, 0.4, 0.3, 0.25)
JPEG_QUALITY = (25, 18, 15, 10, 7)


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"`images` must be a torch.Tensor, got {type(images).__name__}.")
    if images.ndim not in (3, 4):
        raise ValueError(
            f"`images` must have shape (N, C, H, W) or (C, H, W), got {tuple(images.shape)}."
        )
    if not (images.is_floating_point() or images.dtype == torch.uint8):
        raise TypeError(
            f"`images` must be floating point in [0, 1] or uint8 in [0, 255], got dtype "
            f"{images.dtype}."
        )
    if images.is_floating_point() and images.numel():
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0 or low != low or high != high:
            raise ValueError(
                f"`images` must hold floating-point pixels in [0, 1], got values in "
                f"[{low:g}, {high:g}]; corrupt images before normalizing them (put the "
                f"normalization inside the model with NormalizedModel) or pass uint8 images."
            )


def _apply(
    images: torch.Tensor, severity: int, transform: Callable[[torch.Tensor, int], torch.Tensor]
) -> torch.Tensor:
    """Run ``transform(x, severity)`` on a float (N, C, H, W) copy in [0, 1]; restore the format.

    ``uint8`` images are scaled to [0, 1] in float32 and rounded back. Floating-point images are
    transformed in their own dtype, except float16 and bfloat16, which go through float32.
    """
    _check_images(images)
    check_int_range(severity, "severity", low=0, high=5)
    if severity == 0:
        return images.clone()
    batch = images if images.ndim == 4 else images.unsqueeze(0)
    if batch.dtype == torch.uint8:
        work = batch.float() / 255.0
    elif batch.dtype in (torch.float16, torch.bfloat16):
        work = batch.float()
    else:
        work = batch
    out = transform(work, severity).clamp(0.0, 1.0)
    if images.dtype == torch.uint8:
        out = (out * 255.0).round().to(torch.uint8)
    else:
        out = out.to(images.dtype)
    return out if images.ndim == 4 else out.squeeze(0)


def gaussian_noise(
    images: torch.Tensor, severity: int, *, generator: GeneratorArg = None
) -> torch.Tensor:
    r"""Add zero-mean Gaussian noise: :math:`x + \mathcal{N}(0, \sigma^2)`, clipped to [0, 1].

    :math:`\sigma` = 0.08, 0.12, 0.18, 0.26, 0.38 for severities 1 to 5 (ImageNet-C), drawn
    independently for every pixel and channel.

    Example:
        >>> import torch
        >>> x = torch.full((1, 1, 2, 2), 0.5)
        >>> gen = torch.Generator().manual_seed(0)
        >>> torch.equal(gaussian_noise(x, 3, generator=gen),
        ...             gaussian_noise(x, 3, generator=torch.Generator().manual_seed(0)))
        True
    """

    def transform(x: torch.Tensor, level: int) -> torch.Tensor:
        noise = draw(lambda rows, gen: torch.randn(x[rows].shape, generator=gen), x, generator)
        return x + noise * GAUSSIAN_NOISE_STD[level - 1]

    return _apply(images, severity, transform)


def shot_noise(
    images: torch.Tensor, severity: int, *, generator: GeneratorArg = None
) -> torch.Tensor:
    r"""Replace each value by Poisson photon counts: :math:`\mathrm{Poisson}(\lambda x) / \lambda`.

    :math:`\lambda` = 60, 25, 12, 5, 3 photons at full intensity for severities 1 to 5
    (ImageNet-C); fewer photons mean stronger noise.
    """

    def transform(x: torch.Tensor, level: int) -> torch.Tensor:
        photons = SHOT_NOISE_PHOTONS[level - 1]
        rates = (x * photons).float().cpu()
        counts = draw(lambda rows, gen: torch.poisson(rates[rows], generator=gen), x, generator)
        return counts / photons

    return _apply(images, severity, transform)


def impulse_noise(
    images: torch.Tensor, severity: int, *, generator: GeneratorArg = None
) -> torch.Tensor:
    r"""Set a fraction of the values to 0 or 1 (salt-and-pepper noise, both equally likely).

    The fraction is 0.03, 0.06, 0.09, 0.17, 0.27 for severities 1 to 5 (ImageNet-C). Each value
    of each channel is hit independently, as scikit-image's ``random_noise(mode="s&p")`` does.
    """

    def transform(x: torch.Tensor, level: int) -> torch.Tensor:
        amount = IMPULSE_NOISE_AMOUNT[level - 1]
        uniform = draw(lambda rows, gen: torch.rand(x[rows].shape, generator=gen), x, generator)
        out = torch.where(uniform < amount / 2, torch.zeros_like(x), x)
        return torch.where((uniform >= amount / 2) & (uniform < amount), torch.ones_like(x), out)

    return _apply(images, severity, transform)


def _filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve every channel with a 2-D ``kernel``, repeating the edge pixels as padding."""
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    flat = x.reshape(n * c, 1, h, w)
    padded = F.pad(flat, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    out = F.conv2d(padded, kernel.to(x)[None, None])
    return out.reshape(n, c, h, w)


def _filter_matrix(size: int, kernel: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return the ``(size, size)`` matrix that convolves an axis with a 1-D ``kernel``.

    Taps that fall outside the axis are moved to the nearest edge pixel, which is the same as
    padding by repeating the edge pixels. Applying the blur as a matrix product is much faster
    on CPU than a one-channel ``conv2d``.
    """
    radius = len(kernel) // 2
    rows = torch.arange(size).repeat_interleave(len(kernel))
    offsets = torch.arange(-radius, radius + 1).repeat(size)
    columns = (rows + offsets).clamp(0, size - 1)
    matrix = torch.zeros(size, size, dtype=torch.float64)
    matrix.index_put_((rows, columns), kernel.repeat(size), accumulate=True)
    return matrix.to(device=x.device, dtype=x.dtype)


def _gaussian_kernel_1d(sigma: float, radius: int) -> torch.Tensor:
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def gaussian_blur(images: torch.Tensor, severity: int, *, pixel_scale: float = 1.0) -> torch.Tensor:
    r"""Blur with an isotropic Gaussian of standard deviation :math:`\sigma` pixels.

    :math:`\sigma` = 1, 2, 3, 4, 6 pixels for severities 1 to 5 (ImageNet-C's extra
    corruption), times ``pixel_scale``. The kernel is truncated at :math:`4\sigma` and edge
    pixels are repeated as padding (scipy's ``truncate=4`` and ``mode="nearest"``).
    """
    check_positive(pixel_scale, "pixel_scale")

    def transform(x: torch.Tensor, level: int) -> torch.Tensor:
        sigma = GAUSSIAN_BLUR_SIGMA[level - 1] * pixel_scale
        kernel = _gaussian_kernel_1d(sigma, max(1, math.ceil(4 * sigma)))
        rows = _filter_matrix(x.shape[-2], kernel, x)
        columns = _filter_matrix(x.shape[-1], kernel, x)
        return rows @ x @ columns.T

    return _apply(images, severity, transform)


def _disk_kernel(radius: float, alias_sigma: float) -> torch.Tensor:
    """Return a normalized disk of ``radius`` pixels, its edge smoothed by a small Gaussian."""
    support = math.ceil(radius) + 1
    offsets = torch.arange(-support, support + 1, dtype=torch.float64)
    disk = ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2).double()
    # ImageNet-C anti-aliases the disk with a 3x3 Gaussian (5x5 above radius 8).
    smooth = _gaussian_kernel_1d(alias_sigma, 1 if radius <= 8 else 2)
    disk = F.conv2d(disk[None, None], (smooth[:, None] * smooth[None, :])[None, None],
                    padding=len(smooth) // 2)[0, 0]
    return disk / disk.sum()


def defocus_blur(images: torch.Tensor, severity: int, *, pixel_scale: float = 1.0) -> torch.Tensor:
    r"""Blur with a disk kernel, the out-of-focus blur of a lens with a circular aperture.

    Disk radius and anti-aliasing Gaussian :math:`\sigma` in pixels: (3, 0.1), (4, 0.5),
    (6, 0.5), (8, 0.5), (10, 0.5) for severities 1 to 5 (ImageNet-C); the radius is multiplied
    by ``pixel_scale``. Edge pixels are repeated as padding.
    """
    check_positive(pixel_scale, "pixel_scale")

    def transform(x: torch.Tensor, level: int) -> torch.Tensor:
        radius, alias_sigma = DEFOCUS_BLUR_RADIUS_ALIAS[level - 1]
        return _filter(x, _disk_kernel(radius * pixel_scale, alias_sigma))

    return _apply(images, severity, transform)


def contrast(images: torch.Tensor, severity: int) -> torch.Tensor:
    r"""Pull every value towards its channel mean: :math:`(x - \mu_c) a + \mu_c`.

    :math:`\mu_c` is the spatial mean of each channel of each image and :math:`a` = 0.4, 0.3,
    0.2, 0.1, 0.05 for severities 1 to 5 (ImageNet-C).
    """

    def transform(x: torch.Tensor, level: int) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        return (x - mean) * CONTRAST_FACTOR[level - 1] + mean

    return _apply(images, severity, transform)


def brightness(images: torch.Tensor, severity: int) -> torch.Tensor:
    r"""Raise the HSV value channel by :math:`b`, keeping hue and saturation.

    :math:`b` = 0.1, 0.2, 0.3, 0.4, 0.5 for severities 1 to 5 (ImageNet-C). The value is the
    maximum over channels, :math:`V = \max_c x_c`, and every channel is scaled by
    :math:`\min(V + b, 1) / V`, which is what the HSV round trip does for RGB. On one channel it
    reduces to :math:`\min(x + b, 1)`, and a black pixel (:math:`V = 0`) becomes gray
    :math:`b` in every channel.
    """

    def transform(x: torch.Tensor, level: int) -> torch.Tensor:
        value = x.amax(dim=1, keepdim=True)
        raised = (value + BRIGHTNESS_SHIFT[level - 1]).clamp(max=1.0)
        scale = raised / value.clamp(min=torch.finfo(x.dtype).tiny)
        return torch.where(value > 0, x * scale, raised.expand_as(x))

    return _apply(images, severity, transform)


def _box_resize_matrix(
    source: int, target: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Return the ``(target, source)`` matrix of box-filter resampling along one axis.

    Output pixel ``o`` averages the input pixels whose centers lie within its box, a window of
    ``max(s, 1)`` input pixels centered on ``(o + 0.5) s`` with ``s = source / target``. This is
    PIL's ``BOX`` resampling: a partition into blocks when shrinking, nearest neighbor when
    enlarging.
    """
    scale = source / target
    centers = (torch.arange(target, dtype=torch.float64) + 0.5) * scale
    offsets = (torch.arange(source, dtype=torch.float64)[None, :] + 0.5 - centers[:, None])
    offsets = offsets / max(scale, 1.0)
    inside = ((offsets > -0.5) & (offsets <= 0.5)).double()
    return (inside / inside.sum(dim=1, keepdim=True)).to(device=device, dtype=dtype)


def _box_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    rows = _box_resize_matrix(x.shape[-2], size[0], x.dtype, x.device)
    columns = _box_resize_matrix(x.shape[-1], size[1], x.dtype, x.device)
    return rows @ x @ columns.T


def pixelate(images: torch.Tensor, severity: int) -> torch.Tensor:
    r"""Resize down to a fraction :math:`f` of the size and back up, both with a box filter.

    :math:`f` = 0.6, 0.5, 0.4, 0.3, 0.25 for severities 1 to 5 (ImageNet-C); the reduced size
    is :math:`\max(1, \lfloor f H \rfloor) \times \max(1, \lfloor f W \rfloor)`. The box filter
    averages the input pixels whose centers fall inside each output pixel (PIL's ``BOX``
    resampling, which ImageNet-C uses). On an 8x8 image severities 1 and 2 both give 4x4 and
    severities 4 and 5 both 2x2.
    """

    def transform(x: torch.Tensor, level: int) -> torch.Tensor:
        factor = PIXELATE_FACTOR[level - 1]
        h, w = x.shape[-2:]
        small = _box_resize(x, (max(1, int(factor * h)), max(1, int(factor * w))))
        return _box_resize(small, (h, w))

    return _apply(images, severity, transform)


def _jpeg_round_trip(plane: np.ndarray, quality: int) -> np.ndarray:
    """Encode one ``(H, W)`` or ``(H, W, 3)`` uint8 array as JPEG at ``quality`` and decode it."""
    buffer = io.BytesIO()
    Image.fromarray(plane).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded)


def jpeg_compression(images: torch.Tensor, severity: int) -> torch.Tensor:
    r"""Encode as JPEG and decode again with Pillow (libjpeg, default 4:2:0 chroma subsampling).

    JPEG quality 25, 18, 15, 10, 7 for severities 1 to 5 (ImageNet-C, which also uses Pillow).
    Images are quantised to uint8 and coded on the CPU, one image at a time. One- and
    three-channel images are coded as grayscale and RGB JPEGs; any other channel count is coded
    one channel at a time as grayscale. JPEG works on 8x8 pixel blocks, so an image of 8x8
    pixels or less is a single block whose detail the quantisation removes; upsample small
    images first to see the block artifacts of ImageNet-C.
    """

    def transform(x: torch.Tensor, level: int) -> torch.Tensor:
        quality = JPEG_QUALITY[level - 1]
        n, c, h, w = x.shape
        as_bytes = (x.detach() * 255.0).round().clamp(0, 255).to(torch.uint8).cpu()
        if c == 3:
            planes = as_bytes.permute(0, 2, 3, 1).numpy()
        else:
            planes = as_bytes.reshape(n * c, h, w).numpy()
        coded = np.stack([_jpeg_round_trip(plane, quality) for plane in planes])
        out = torch.from_numpy(coded)
        out = out.permute(0, 3, 1, 2) if c == 3 else out.reshape(n, c, h, w)
        return out.to(device=x.device, dtype=x.dtype) / 255.0

    return _apply(images, severity, transform)


RANDOM_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise")
PIXEL_SCALED_CORRUPTIONS = ("gaussian_blur", "defocus_blur")
CORRUPTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "gaussian_blur": gaussian_blur,
    "defocus_blur": defocus_blur,
    "contrast": contrast,
    "brightness": brightness,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}


def corrupt(
    images: torch.Tensor,
    corruption: str,
    severity: int,
    *,
    generator: GeneratorArg = None,
    pixel_scale: float = 1.0,
) -> torch.Tensor:
    """Apply the corruption named ``corruption`` (a key of ``CORRUPTIONS``) at ``severity``.

    ``generator`` reaches the noise corruptions and ``pixel_scale`` the two blurs; the other
    corruptions have neither.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> corrupt(x, "contrast", 5).shape
        torch.Size([2, 3, 16, 16])
        >>> torch.equal(corrupt(x, "pixelate", 0), x)
        True
    """
    check_in_choices(corruption, "corruption", CORRUPTIONS)
    function = CORRUPTIONS[corruption]
    if corruption in RANDOM_CORRUPTIONS:
        return function(images, severity, generator=generator)
    if corruption in PIXEL_SCALED_CORRUPTIONS:
        return function(images, severity, pixel_scale=pixel_scale)
    return function(images, severity)

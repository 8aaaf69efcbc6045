"""scikit-image's bundled photographs as square RGB tensors, plus distorted copies of them.

The photographs ship inside the scikit-image package, so nothing is downloaded.
"""

from __future__ import annotations

import io

import numpy
import torch
import torch.nn.functional as F

PHOTO_NAMES = ("astronaut", "camera", "coffee", "chelsea", "rocket")


def load_photos(names: tuple[str, ...] = PHOTO_NAMES, *, size: int = 176) -> torch.Tensor:
    """Return ``(len(names), 3, size, size)`` uint8 photographs.

    Each photograph is centre-cropped to a square, resized to ``size`` pixels with
    antialiasing, and grey ones (camera) are repeated over three channels.
    """
    from skimage import data

    photos = []
    for name in names:
        pixels = torch.from_numpy(getattr(data, name)().copy())
        image = pixels.unsqueeze(0) if pixels.ndim == 2 else pixels.permute(2, 0, 1)
        image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
        side = min(image.shape[-2:])
        top, left = (image.shape[-2] - side) // 2, (image.shape[-1] - side) // 2
        square = image[:, top : top + side, left : left + side].float().unsqueeze(0)
        resized = F.interpolate(square, size=(size, size), mode="bilinear", antialias=True,
                                align_corners=False)
        photos.append(resized.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(photos)


def jpeg_compress(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Return uint8 ``(N, 3, H, W)`` images after a JPEG round trip at ``quality`` (1-95).

    Pillow encodes with its defaults (4:2:0 chroma subsampling, standard quantisation tables
    scaled by ``quality``).
    """
    from PIL import Image

    decoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="JPEG",
                                                              quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as jpeg:
            pixels = torch.from_numpy(numpy.asarray(jpeg.convert("RGB")).copy())
        decoded.append(pixels.permute(2, 0, 1))
    return torch.stack(decoded)


def add_gaussian_noise(
    images: torch.Tensor, sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """Return float images in [0, 1] with N(0, sigma^2) noise added, clipped to [0, 1]."""
    clean = images.float() / 255.0
    noise = torch.randn(clean.shape, generator=generator) * sigma
    return (clean + noise).clamp(0.0, 1.0)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Return float images in [0, 1] blurred with a Gaussian of ``sigma`` pixels."""
    from torchvision.transforms.functional import gaussian_blur as blur

    kernel = 2 * int(3.0 * sigma + 0.5) + 1
    return blur(images.float() / 255.0, kernel_size=[kernel, kernel], sigma=[sigma, sigma])

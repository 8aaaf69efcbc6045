"""Fidelity section of the demo card: photographs against JPEG, noisy and blurred copies."""

from __future__ import annotations

import torch

from andante_metrics.data.photos import (
    PHOTO_NAMES,
    add_gaussian_noise,
    gaussian_blur,
    jpeg_compress,
    load_photos,
)
from andante_metrics.demo.runner import DemoContext
from andante_metrics.fidelity import FSIM, GMSD, IWSSIM, L1, MSE, PSNR, SSIM, MultiScaleSSIM
from andante_metrics.report import KPICard

# Each distortion's levels, from mildest to strongest.
JPEG_QUALITIES = (75, 40, 20, 10)
NOISE_SIGMAS = (0.02, 0.05, 0.1)
BLUR_SIGMAS = (0.7, 1.5, 3.0)

METRICS = {
    "PSNR": lambda: PSNR(data_range=1.0),
    "MSE": lambda: MSE(data_range=1.0),
    "L1": lambda: L1(data_range=1.0),
    "SSIM": lambda: SSIM(data_range=1.0),
    "MS-SSIM": lambda: MultiScaleSSIM(data_range=1.0),
    "IW-SSIM": lambda: IWSSIM(data_range=1.0),
    "GMSD": lambda: GMSD(data_range=1.0),
    "FSIMc": lambda: FSIM(data_range=1.0),
}


def distorted_versions(photos: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Return float [0, 1] copies of uint8 ``photos`` by column name, mildest level first."""
    generator = torch.Generator().manual_seed(seed)
    versions = {}
    for quality in JPEG_QUALITIES:
        versions[f"JPEG q{quality}"] = jpeg_compress(photos, quality).float() / 255.0
    for sigma in NOISE_SIGMAS:
        versions[f"noise {sigma}"] = add_gaussian_noise(photos, sigma, generator)
    for sigma in BLUR_SIGMAS:
        versions[f"blur {sigma}"] = gaussian_blur(photos, sigma)
    return versions


def fidelity_table(photos: torch.Tensor, seed: int = 0) -> dict[str, dict[str, float]]:
    """Return ``{metric: {distortion column: value}}``, each value the mean over photographs."""
    reference = photos.float() / 255.0
    table: dict[str, dict[str, float]] = {name: {} for name in METRICS}
    for column, distorted in distorted_versions(photos, seed).items():
        for name, make in METRICS.items():
            metric = make()
            metric.update(distorted, reference)
            table[name][column] = float(metric.compute())
    return table


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Score distorted photographs with every fidelity metric and add the table to the card."""
    names = PHOTO_NAMES[:1] if ctx.config.quick else PHOTO_NAMES
    photos = load_photos(names, size=176)
    table = fidelity_table(photos, seed=ctx.config.seed)
    columns = list(next(iter(table.values())))
    rows = [[name, *(float(f"{value:.4g}") for value in values.values())]
            for name, values in table.items()]
    card.add_table(
        "fidelity",
        "Fidelity of distorted photographs",
        ["metric", *columns],
        rows,
        note=(
            f"Mean over scikit-image photographs ({', '.join(names)}), centre-cropped and "
            f"resized to 176x176 RGB, data_range 1. JPEG via Pillow's encoder at the "
            f"given quality; noise: additive Gaussian of the given standard deviation, clipped "
            f"to [0, 1]; blur: Gaussian of the given sigma in pixels. PSNR is the mean of "
            f"per-image PSNR in dB. Lower is better for MSE, L1 and GMSD."
        ),
    )
    card.add_figure("fidelity", "Similarity indices against JPEG quality", "line", {
        "x_label": "JPEG quality (lower = stronger compression)",
        "y_label": "mean index over photographs (1 = identical)",
        "series": [
            {"label": name, "x": list(JPEG_QUALITIES),
             "y": [table[name][f"JPEG q{quality}"] for quality in JPEG_QUALITIES]}
            for name in ("SSIM", "MS-SSIM", "IW-SSIM", "FSIMc")
        ],
    })
    for name in ("PSNR", "SSIM", "MS-SSIM"):
        metric = METRICS[name]()
        card.add_metric(f"{name.lower().replace('-', '_')}_jpeg_q{JPEG_QUALITIES[-1]}", metric,
                        table[name][f"JPEG q{JPEG_QUALITIES[-1]}"],
                        description=f"{name} of the photographs after JPEG at quality "
                                    f"{JPEG_QUALITIES[-1]}")

"""Image fidelity KPIs: how close an output image is to its target, pixel by pixel and in structure.

Every metric takes ``(N, C, H, W)`` float or integer images and a required ``data_range``.
"""

from andante_metrics.fidelity.fsim import FSIM, fsim
from andante_metrics.fidelity.gmsd import GMSD, gmsd
from andante_metrics.fidelity.iw_ssim import IWSSIM, iw_ssim
from andante_metrics.fidelity.pixel import L1, MSE, PSNR, l1, mse, psnr
from andante_metrics.fidelity.ssim import SSIM, MultiScaleSSIM, ms_ssim, ssim

__all__ = [
    "FSIM",
    "GMSD",
    "IWSSIM",
    "L1",
    "MSE",
    "PSNR",
    "SSIM",
    "MultiScaleSSIM",
    "fsim",
    "gmsd",
    "iw_ssim",
    "l1",
    "ms_ssim",
    "mse",
    "psnr",
    "ssim",
]

"""The Middlebury motorcycle stereo pair that scikit-image ships, as torch tensors.

scikit-image's ``skimage.data.stereo_motorcycle()`` returns the left and right images
(500 x 741, RGB) of the Middlebury 2014 "Motorcycle" scene, downscaled by 4 from the benchmark's
full resolution. It also returns the left image's ground-truth disparity in pixels of that
resolution, infinite where the benchmark has no ground truth. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from andante_metrics.utilities.checks import check_int_range, check_tensor


@dataclass
class StereoPair:
    """A rectified stereo pair: images ``(3, H, W)`` in [0, 1] and disparity ``(H, W)`` in px.

    ``disparity`` is the left image's ground truth, infinite where unknown. ``downscale`` is the
    factor the pair was reduced by from scikit-image's copy (disparity divided by it as well).
    """

    left: torch.Tensor
    right: torch.Tensor
    disparity: torch.Tensor
    downscale: int = 1

    def downscaled(self, factor: int) -> StereoPair:
        """Return the pair reduced by ``factor``: images block-averaged, disparity as below.

        The disparity goes through :func:`downscale_disparity`, so its values stay in pixels of
        the returned images.
        """
        check_int_range(factor, "factor", low=1)
        images = torch.stack([self.left, self.right])
        if factor > 1:
            images = F.avg_pool2d(images, factor)
        disparity = downscale_disparity(self.disparity, factor)
        return StereoPair(images[0], images[1], disparity, self.downscale * factor)


def downscale_disparity(disparity: torch.Tensor, factor: int) -> torch.Tensor:
    """Average disparity over ``factor x factor`` blocks and divide it by ``factor``.

    A block with any non-finite value is non-finite in the result, so unknown ground truth
    never leaks into a known value. ``(H, W)`` input is cropped to multiples of ``factor``.
    """
    check_tensor(disparity, "disparity", ndim=2, dtype="float")
    check_int_range(factor, "factor", low=1)
    if factor == 1:
        return disparity.clone()
    height = disparity.shape[0] // factor * factor
    width = disparity.shape[1] // factor * factor
    blocks = disparity[:height, :width].reshape(height // factor, factor, width // factor, factor)
    return blocks.mean(dim=(1, 3)) / factor


def load_stereo_motorcycle(*, downscale: int = 1) -> StereoPair:
    """Load scikit-image's Middlebury motorcycle pair, reduced by ``downscale`` (see
    :meth:`StereoPair.downscaled`)."""
    from skimage.data import stereo_motorcycle

    check_int_range(downscale, "downscale", low=1)
    left, right, disparity = stereo_motorcycle()
    images = torch.stack([torch.from_numpy(left), torch.from_numpy(right)]).permute(0, 3, 1, 2)
    images = images.float() / 255.0
    pair = StereoPair(images[0], images[1], torch.from_numpy(disparity).float())
    return pair.downscaled(downscale)


def occlusion_from_disparity(disparity: torch.Tensor, *, margin: float = 0.0) -> torch.Tensor:
    """Return the left-image pixels that the right image cannot see, from the left disparity.

    A left pixel at column ``x`` with disparity ``d`` appears at column ``u = x - d`` of the
    right image. It is hidden when ``u < 0`` (outside the right image) or when a pixel to its
    right on the same row lands at ``u - margin`` or further left: that pixel has a larger
    disparity, so it is the nearer surface. Pixels with unknown (non-finite) disparity are never
    marked and never hide others.

    Args:
        disparity: ``(H, W)`` float disparity in pixels.
        margin: tolerance in pixels; above 0 it spares surfaces so slanted that their
            disparity grows by about 1 px per column, where ground-truth noise alone can
            reverse the order of two neighbours.

    Returns:
        A ``(H, W)`` boolean mask, ``True`` for occluded pixels.
    """
    check_tensor(disparity, "disparity", ndim=2, dtype="float")
    width = disparity.shape[1]
    known = torch.isfinite(disparity)
    columns = torch.arange(width, dtype=disparity.dtype, device=disparity.device)
    landing = torch.where(known, columns - disparity, torch.full_like(disparity, float("inf")))
    # Minimum landing column of the pixels strictly to the right: a reversed running minimum,
    # shifted by one column.
    right_min = torch.flip(torch.cummin(torch.flip(landing, dims=[1]), dim=1).values, dims=[1])
    right_min = torch.cat([right_min[:, 1:], torch.full_like(right_min[:, :1], float("inf"))], 1)
    hidden = (landing < 0) | (right_min <= landing - margin)
    return hidden & known

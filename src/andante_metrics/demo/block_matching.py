"""A plain block-matching stereo baseline in torch: SAD cost over a window, winner takes all.

For every candidate disparity ``d`` in ``[0, max_disparity]`` the cost of a left pixel is the
sum of absolute differences (over the colour channels and a ``window x window`` neighbourhood)
between the left image and the right image shifted by ``d``. Each pixel takes the disparity of
least cost. There is no sub-pixel refinement, no left-right check and no smoothing, so it is the
weakest reasonable baseline, here to give the stereo KPIs a real prediction to score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from andante_metrics.utilities.checks import check_int_range, check_same_shape, check_tensor


@torch.no_grad()
def block_matching_disparity(
    left: torch.Tensor, right: torch.Tensor, *, max_disparity: int, window: int = 9
) -> torch.Tensor:
    """Return the winner-takes-all SAD disparity of the left image, ``(H, W)`` float32 in px.

    Args:
        left: ``(C, H, W)`` rectified left image.
        right: ``(C, H, W)`` rectified right image.
        max_disparity: largest disparity searched, in pixels of these images.
        window: odd side of the square matching window.

    Pixels closer than ``d`` to the left border cannot match at disparity ``d`` and never take it.
    Memory grows as ``(max_disparity + 1) * H * W`` floats.
    """
    check_tensor(left, "left", ndim=3, dtype="float")
    check_tensor(right, "right", ndim=3, dtype="float")
    check_same_shape(left, right, "left", "right")
    check_int_range(max_disparity, "max_disparity", low=0, high=left.shape[2] - 1)
    check_int_range(window, "window", low=1)
    if window % 2 == 0:
        raise ValueError(f"`window` must be odd, got {window}.")
    width = left.shape[2]
    costs = []
    for disparity in range(max_disparity + 1):
        difference = (left[:, :, disparity:] - right[:, :, : width - disparity]).abs().sum(dim=0)
        difference = F.pad(difference, (disparity, 0))
        costs.append(difference)
    volume = torch.stack(costs).unsqueeze(1)
    # The box sum over the window, as a mean times its area; zero padding at the image border.
    volume = F.avg_pool2d(volume, window, stride=1, padding=window // 2) * window * window
    volume = volume.squeeze(1)
    columns = torch.arange(width, device=left.device)
    candidates = torch.arange(max_disparity + 1, device=left.device)
    unreachable = columns.unsqueeze(0) < candidates.unsqueeze(1)
    volume = volume.masked_fill(unreachable.unsqueeze(1), float("inf"))
    return volume.argmin(dim=0).float()

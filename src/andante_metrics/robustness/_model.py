"""Model helpers shared by the robustness metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from andante_metrics.utilities.checks import check_finite, check_module, check_tensor


def check_model(model: object, name: str = "model") -> nn.Module:
    """Raise ``TypeError`` unless ``model`` is a ``torch.nn.Module``; return it."""
    return check_module(model, name)


def check_unit_images(images: torch.Tensor, name: str = "images") -> None:
    """Check a float ``(N, C, H, W)`` batch of finite values in [0, 1]."""
    check_tensor(images, name, ndim=4, dtype="float")
    check_finite(images, name)
    if images.numel() and (float(images.min()) < 0.0 or float(images.max()) > 1.0):
        raise ValueError(
            f"`{name}` must hold pixel values in [0, 1], got values in [{float(images.min()):.4g}, "
            f"{float(images.max()):.4g}]; scale the images to [0, 1] and move any "
            f"normalization into the model (see NormalizedModel)."
        )


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore every submodule's mode afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training

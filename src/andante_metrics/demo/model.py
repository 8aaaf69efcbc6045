"""The small CNN the demo trains on the 8x8 digits."""

from __future__ import annotations

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, a max-pool and two linear layers: 1x8x8 images to 10 logits.

    :meth:`features` returns the 64-d penultimate embedding, which the generative and
    Bayes-error KPIs use as the feature space of the digits.
    """

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * 4 * 4, 64),
            nn.ReLU(),
        )
        self.head = nn.Linear(64, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 64)`` penultimate features of ``(N, 1, 8, 8)`` images."""
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return ``(N, num_classes)`` logits."""
        return self.head(self.body(images))

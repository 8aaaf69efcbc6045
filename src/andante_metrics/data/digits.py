"""scikit-learn's handwritten digits as torch tensors, split stratified by class."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# Pixels of the digits are integers from 0 to 16 (4x4 blocks of a 32x32 bitmap, counted).
DIGITS_MAX_VALUE = 16.0


@dataclass
class DigitsSplit:
    """Train and test tensors of the digits: images ``(N, 1, 8, 8)`` in [0, 1], labels ``(N,)``."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int = 10

    @property
    def sizes(self) -> dict[str, int]:
        """Return the number of train and test samples."""
        return {"train": len(self.train_labels), "test": len(self.test_labels)}


def load_digits_split(*, test_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """Load the 1,797 digits (8x8, 10 classes) and split them stratified by class.

    The data come from scikit-learn's installed copy of the UCI optical digits test set, so
    nothing is downloaded. Pixels are scaled from [0, 16] to [0, 1].
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"`test_fraction` must lie in (0, 1), got {test_fraction!r}.")
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / DIGITS_MAX_VALUE
    labels = torch.tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        torch.arange(len(labels)).numpy(),
        test_size=test_fraction,
        stratify=labels.numpy(),
        random_state=seed,
    )
    train_idx, test_idx = torch.as_tensor(train_idx), torch.as_tensor(test_idx)
    return DigitsSplit(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])

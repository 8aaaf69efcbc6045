"""Run a whole data set through a feature extractor, batch by batch, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from tqdm.auto import tqdm


def extract_features(
    extractor: Callable[[torch.Tensor], torch.Tensor],
    loader: Iterable[Any],
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    description: str = "features",
) -> torch.Tensor:
    """Return the ``(N, d)`` float64 features of every batch a loader yields, on the CPU.

    Args:
        extractor: an ``nn.Module`` or callable mapping a batch of inputs to ``(B, d)``.
        loader: an iterable of batches (a ``DataLoader``, a list of tensors). A batch that is a
            tuple or list, such as ``(images, labels)``, contributes its first element.
        device: where the batches are moved before the extractor runs (``None`` leaves them).
        progress: show a tqdm progress bar.
        description: the progress bar's label.

    Returns:
        The features of all batches in loader order. An empty loader raises ``ValueError``.

    Example:
        >>> import torch
        >>> batches = [torch.ones(2, 3), torch.zeros(1, 3)]
        >>> extract_features(lambda x: x.sum(dim=1, keepdim=True), batches, progress=False)
        tensor([[3.],
                [3.],
                [0.]], dtype=torch.float64)
    """
    total = len(loader) if hasattr(loader, "__len__") else None
    chunks = []
    with torch.no_grad():
        for batch in tqdm(loader, total=total, desc=description, unit="batch",
                          disable=not progress):
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            if device is not None:
                inputs = inputs.to(device)
            features = extractor(inputs)
            if not isinstance(features, torch.Tensor) or features.ndim != 2:
                raise ValueError(
                    "the feature extractor must return an (N, d) tensor per batch, got "
                    f"{getattr(features, 'shape', type(features))}."
                )
            chunks.append(features.detach().to("cpu", torch.float64))
    if not chunks:
        raise ValueError("`loader` yielded no batches; pass a non-empty loader.")
    return torch.cat(chunks)

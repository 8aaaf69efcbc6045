"""Random draws that are reproducible per generator, or per sample from a list of generators.

The robustness metrics seed one generator per sample from the sample's own pixels, so the noise
an image receives does not depend on the batch it arrives in, the batch order or the number of
processes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

GeneratorArg = torch.Generator | Sequence[torch.Generator] | None

_KEY_WEIGHTS: dict[int, torch.Tensor] = {}


def _key_weights(numel: int) -> torch.Tensor:
    """Return fixed pseudo-random int64 weights for a content key of ``numel`` values."""
    if numel not in _KEY_WEIGHTS:
        gen = torch.Generator().manual_seed(20190328)
        _KEY_WEIGHTS[numel] = torch.randint(1, 2**31 - 1, (numel,), generator=gen)
    return _KEY_WEIGHTS[numel]


def content_keys(images: torch.Tensor) -> list[int]:
    """Return one integer key per sample of ``images``, computed from its pixels.

    Pixels are quantised to 256 levels of [0, 1] and combined with fixed integer weights in
    int64 arithmetic, so the key is exact and the same on every device.
    """
    levels = (images.detach().flatten(1).clamp(0, 1) * 255).round().long()
    weights = _key_weights(levels.shape[1]).to(levels.device)
    return [int(k) for k in (levels * weights).sum(dim=1).cpu()]


def per_sample_generators(keys: Sequence[int], *salt: int) -> list[torch.Generator]:
    """Return one CPU generator per content key, seeded from the key and the ``salt`` ints."""
    generators = []
    for key in keys:
        # Python hashes ints and tuples of ints the same way in every process (only str and
        # bytes hashing is randomised), so every rank derives the same seed for the same image.
        seed = hash((*salt, key)) & 0x7FFF_FFFF_FFFF_FFFF
        generators.append(torch.Generator().manual_seed(seed))
    return generators


def draw(
    sample: Callable[[slice, torch.Generator | None], torch.Tensor],
    like: torch.Tensor,
    generator: GeneratorArg,
) -> torch.Tensor:
    """Draw a tensor shaped like ``like`` by calling ``sample(rows, generator)``.

    ``sample`` returns the draw for the samples ``like[rows]``, on CPU. ``generator`` is one
    generator for the whole tensor, ``None`` for the global generator, or a sequence with one
    generator per sample along dimension 0. The result moves to ``like``'s device and dtype.
    """
    if generator is None or isinstance(generator, torch.Generator):
        values = sample(slice(None), generator)
    else:
        if len(generator) != like.shape[0]:
            raise ValueError(
                f"`generator` must hold one generator per sample, got {len(generator)} for "
                f"{like.shape[0]} samples."
            )
        values = torch.cat([sample(slice(i, i + 1), gen) for i, gen in enumerate(generator)])
    return values.to(device=like.device, dtype=like.dtype)

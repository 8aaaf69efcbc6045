"""Shared steps of the saliency-fidelity scores: units, baselines, scoring and generators.

Every score perturbs *units* of an input and reads one scalar output per perturbed copy:

* units: for images ``(N, C, H, W)`` a unit is a ``patch_size x patch_size`` square of pixels
  across all channels; for any other shape ``(N, *)`` a unit is one element (``patch_size`` 1);
* the relevance of a unit is the sum of the attributions over its elements;
* the score of a copy is the logit or the softmax probability of the target class.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from andante_metrics.utilities.checks import (
    call_model_on,
    check_finite,
    check_in_choices,
    check_int_range,
    check_labels_in_range,
    check_same_first_dim,
    check_same_shape,
    check_tensor,
)

Baseline = Literal["zeros", "channel_mean", "blur"]
Score = Literal["probability", "logit"]
BASELINES = ("zeros", "channel_mean", "blur")
SCORES = ("probability", "logit")

# Signature of an attribution function: (model, inputs, target) -> attributions of inputs' shape.
AttributeFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def check_grad_mode() -> None:
    """Raise ``RuntimeError`` under ``torch.inference_mode``, where no gradient can be taken."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "Saliency fidelity needs gradients, but it was called under torch.inference_mode(); "
            "call it outside that context (torch.no_grad() is fine: gradients are re-enabled "
            "locally)."
        )


@contextlib.contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Switch ``models`` to ``eval()`` and restore each one's previous mode on exit."""
    modes = [model.training for model in models]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for model, mode in zip(models, modes, strict=True):
            model.train(mode)


def check_inputs(inputs: Any) -> torch.Tensor:
    """Check the batch of inputs: a finite float tensor with at least one sample."""
    check_tensor(inputs, "inputs", dtype="float")
    if inputs.ndim < 2 or inputs.shape[0] == 0:
        raise ValueError(
            f"`inputs` must have shape (N, ...) with N >= 1 and at least one feature, got shape "
            f"{tuple(inputs.shape)}."
        )
    check_finite(inputs, "inputs")
    return inputs


def check_attributions(attributions: Any, inputs: torch.Tensor) -> torch.Tensor:
    """Check that attributions are a finite float tensor of the inputs' shape."""
    check_tensor(attributions, "attributions", dtype="float")
    check_same_shape(attributions, inputs, "attributions", "inputs")
    check_finite(attributions, "attributions")
    return attributions


def check_options(baseline: str, score: str, patch_size: int, inputs: torch.Tensor) -> None:
    check_in_choices(baseline, "baseline", BASELINES)
    check_in_choices(score, "score", SCORES)
    check_int_range(patch_size, "patch_size", low=1)
    if patch_size > 1 and inputs.ndim != 4:
        raise ValueError(
            f"`patch_size` > 1 needs images of shape (N, C, H, W), got `inputs` of shape "
            f"{tuple(inputs.shape)}; use patch_size=1."
        )
    if baseline in ("channel_mean", "blur") and inputs.ndim != 4:
        raise ValueError(
            f"`baseline`={baseline!r} needs images of shape (N, C, H, W), got `inputs` of shape "
            f"{tuple(inputs.shape)}; use baseline='zeros'."
        )


def unit_map(sample_shape: torch.Size, patch_size: int, device: torch.device) -> torch.Tensor:
    """Return the unit index of every element of one sample, flattened: ``(E,)`` int64."""
    if len(sample_shape) != 3:
        return torch.arange(math.prod(sample_shape), device=device)
    channels, height, width = sample_shape
    units_wide = math.ceil(width / patch_size)
    rows = torch.arange(height, device=device) // patch_size
    cols = torch.arange(width, device=device) // patch_size
    spatial = rows[:, None] * units_wide + cols[None, :]
    return spatial.expand(channels, height, width).reshape(-1)


def unit_relevance(attributions: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """Sum ``(N, *)`` attributions over the elements of each unit: ``(N, U)`` float64."""
    flat = attributions.detach().reshape(len(attributions), -1).double()
    count = int(units.max()) + 1
    out = torch.zeros(len(flat), count, dtype=torch.float64, device=flat.device)
    return out.scatter_add_(1, units.expand_as(flat), flat)


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    # Separable blur: one 1-D pass per axis, each channel on its own, edges replicated.
    padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def make_baseline(inputs: torch.Tensor, baseline: str, blur_sigma: float) -> torch.Tensor:
    """Return the values that replace removed units, one per element: the inputs' shape."""
    if baseline == "zeros":
        return torch.zeros_like(inputs)
    if baseline == "channel_mean":
        return inputs.mean(dim=(2, 3), keepdim=True).expand_as(inputs).clone()
    return _gaussian_blur(inputs, blur_sigma)


def predicted_or_checked_target(
    model: nn.Module, inputs: torch.Tensor, target: torch.Tensor | None
) -> tuple[torch.Tensor, int]:
    """Return the target class per sample (the predicted one when ``target`` is None)."""
    with torch.no_grad():
        outputs = call_model_on(model, inputs)
    outputs = outputs.reshape(len(inputs), -1)
    num_outputs = outputs.shape[1]
    if target is None:
        return outputs.argmax(dim=1), num_outputs
    check_tensor(target, "target", ndim=1, dtype="int")
    check_same_first_dim(target, inputs, "target", "inputs")
    check_labels_in_range(target, num_outputs, "target")
    return target.to(device=inputs.device, dtype=torch.long), num_outputs


def score_outputs(outputs: torch.Tensor, target: torch.Tensor, score: str) -> torch.Tensor:
    """Return the logit or softmax probability of ``target`` per row, as float64."""
    outputs = outputs.reshape(len(outputs), -1).double()
    if score == "probability":
        if outputs.shape[1] == 1:
            raise ValueError(
                "`score`='probability' needs a model with at least two outputs (a softmax over "
                "one output is always 1); use score='logit'."
            )
        outputs = outputs.softmax(dim=1)
    return outputs.gather(1, target[:, None].long()).squeeze(1)


# NOTE: guessed defaults. They bound the memory of the perturbed inputs, not of the model's
# activations, so lower `max_batch` for models with large activations per sample. On the
# digits CNN on one CPU thread, chunks of 128 to 512 copies ran about 25 % faster per image
# than chunks of 1024 or more (cache effects).
MAX_CHUNK_ELEMENTS = 2**22
MAX_CHUNK_COPIES = 512


def chunk_size(max_batch: int | None, inputs: torch.Tensor) -> int:
    """Return the number of copies per forward pass: ``max_batch``, or the default bound."""
    if max_batch is not None:
        return max_batch
    return max(1, min(MAX_CHUNK_COPIES, MAX_CHUNK_ELEMENTS // max(1, inputs[0].numel())))


def masked_scores(
    model: nn.Module,
    inputs: torch.Tensor,
    baseline: torch.Tensor,
    replaced: torch.Tensor,
    units: torch.Tensor,
    target: torch.Tensor,
    score: str,
    max_batch: int,
    evaluate: torch.Tensor | None = None,
) -> torch.Tensor:
    """Score ``R`` perturbed copies of each sample in batched forward passes.

    Copy ``(n, r)`` takes the baseline on the units where ``replaced[n, r]`` is True and the
    input elsewhere. ``replaced`` is ``(N, R, U)`` bool; the result is ``(N, R)`` float64. Only
    the copies where ``evaluate`` ``(N, R)`` is True run (the others are NaN). The copies are
    built and evaluated ``max_batch`` at a time, so memory stays bounded.
    """
    num, copies = replaced.shape[:2]
    flat_inputs = inputs.reshape(num, -1)
    flat_baseline = baseline.reshape(num, -1)
    scores = torch.full((num * copies,), torch.nan, dtype=torch.float64, device=inputs.device)
    if evaluate is None:
        selected = torch.arange(num * copies, device=inputs.device)
    else:
        selected = evaluate.reshape(-1).nonzero().squeeze(1)
    with torch.no_grad():
        for begin in range(0, len(selected), max_batch):
            rows = selected[begin : begin + max_batch]
            sample = rows // copies
            element_mask = replaced[sample, rows % copies][:, units]
            batch = torch.where(element_mask, flat_baseline[sample], flat_inputs[sample])
            outputs = model(batch.reshape(len(rows), *inputs.shape[1:]))
            scores[rows] = score_outputs(outputs, target[sample], score)
    return scores.reshape(num, copies)


def differing_units(
    inputs: torch.Tensor, baseline: torch.Tensor, units: torch.Tensor
) -> torch.Tensor:
    """Return ``(N, U)`` bool: True where some element of the unit differs from the baseline.

    Replacing a unit that equals its baseline (a zero pixel under the zero baseline) leaves the
    input unchanged, so the scores skip the forward pass of such a copy.
    """
    differs = (inputs.reshape(len(inputs), -1) != baseline.reshape(len(inputs), -1)).long()
    out = torch.zeros(len(inputs), int(units.max()) + 1, dtype=torch.long, device=inputs.device)
    return out.scatter_reduce_(1, units.expand_as(differs), differs, reduce="amax").bool()


def clean_scores(
    model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, score: str, max_batch: int
) -> torch.Tensor:
    """Score the unperturbed inputs: ``(N,)`` float64."""
    with torch.no_grad():
        parts = [
            score_outputs(model(inputs[i : i + max_batch]), target[i : i + max_batch], score)
            for i in range(0, len(inputs), max_batch)
        ]
    return torch.cat(parts)


def sample_generators(inputs: torch.Tensor, seed: int, salt: int) -> list[torch.Generator]:
    """Return one CPU generator per sample, seeded from ``seed``, ``salt`` and the sample bytes.

    Seeding from the sample's content (a CRC-32 of its bytes) makes every random draw a
    function of the sample alone. So the scores do not depend on how samples are batched, in
    which order, or on which process, and a fixed probe set gets the same draws every time.
    The global random state is never touched.
    """
    flat = inputs.detach().reshape(len(inputs), -1).cpu().contiguous()
    generators = []
    for row in flat:
        digest = zlib.crc32(row.view(torch.uint8).numpy().tobytes())
        mixed = ((seed * 1_000_003 + salt) * 2**32 + digest) % 2**63
        generators.append(torch.Generator().manual_seed(mixed))
    return generators


def random_like(inputs: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """Draw standard-normal values of ``inputs``' shape, row ``n`` from ``generators[n]``."""
    rows = [torch.randn(inputs.shape[1:], generator=g, dtype=torch.float64) for g in generators]
    return torch.stack(rows).to(device=inputs.device, dtype=inputs.dtype)


def pearson_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return the Pearson correlation of each row pair of ``(N, R)`` tensors, NaN when constant."""
    a = a.double() - a.double().mean(dim=1, keepdim=True)
    b = b.double() - b.double().mean(dim=1, keepdim=True)
    denominator = (a.square().sum(dim=1) * b.square().sum(dim=1)).sqrt()
    numerator = (a * b).sum(dim=1)
    return torch.where(denominator > 0, numerator / denominator, torch.nan)

"""Conformance cases of the interpretability area."""

from __future__ import annotations

import torch
from torch import nn

from andante_metrics import SaliencyFidelity
from andante_metrics.interpretability import gradient_attribution, input_x_gradient

from conformance.harness import BadInput, MetricCase, register


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 16, 4)
    ).double()


def _make_all_scores(**overrides):
    options = {
        "scores": ("deletion", "insertion", "faithfulness_correlation", "infidelity",
                   "max_sensitivity", "randomization"),
        "steps": 4, "subsets": 6, "infidelity_samples": 4, "sensitivity_samples": 3,
        **overrides,
    }
    model = options.pop("model", None)
    return SaliencyFidelity(_model() if model is None else model,
                            options.pop("attribution", gradient_attribution), **options)


def _make_patches(**overrides):
    options = {"scores": ("deletion", "insertion"), "baseline": "blur", "patch_size": 2,
               "score": "logit", "steps": 3, **overrides}
    return SaliencyFidelity(_model(), input_x_gradient, **options)


def _image_batches(gen: torch.Generator):
    return [(torch.rand(size, 1, 4, 4, generator=gen, dtype=torch.float64),)
            for size in (3, 1, 4, 2)]


def _targeted_batches(gen: torch.Generator):
    return [(images, torch.randint(0, 4, (len(images),), generator=gen))
            for (images,) in _image_batches(gen)]


_nan_images = torch.rand(2, 1, 4, 4, dtype=torch.float64)
_nan_images[1, 0, 2, 2] = float("nan")

register(
    MetricCase(
        "saliency_fidelity_all_scores", _make_all_scores, _image_batches,
        rtol=1e-6, atol=1e-9,
        bad_inputs=[
            BadInput("not_a_tensor", ([[0.0, 1.0]],), TypeError,
                     r"`inputs` must be a torch.Tensor, got \[\[0.0, 1.0\]\]"),
            BadInput("integer_inputs", (torch.ones(2, 1, 4, 4, dtype=torch.long),), TypeError,
                     r"`inputs` must be a floating-point tensor, got dtype torch.int64"),
            BadInput("nan_inputs", (_nan_images,), ValueError, r"`inputs` contains 1 NaN"),
            BadInput("empty_batch", (torch.zeros(0, 1, 4, 4, dtype=torch.float64),), ValueError,
                     r"`inputs` must have shape \(N, \.\.\.\) with N >= 1.*\(0, 1, 4, 4\)"),
            BadInput("target_out_of_range", (torch.rand(2, 1, 4, 4, dtype=torch.float64),
                                             torch.tensor([0, 4])), ValueError,
                     r"`target` must hold class indices in \[0, 3\].*got 4"),
            BadInput("attributions_wrong_shape", (torch.rand(2, 1, 4, 4, dtype=torch.float64),
                                                  None, torch.zeros(2, 16, dtype=torch.float64)),
                     ValueError, r"`attributions` and `inputs` must have the same shape"),
            BadInput("unknown_score", construct={"scores": ("deletion", "roar")},
                     match=r"`scores` must be one of .*got 'roar'"),
            BadInput("bad_baseline", construct={"baseline": "black"},
                     match=r"`baseline` must be one of .*got 'black'"),
            BadInput("zero_steps", construct={"steps": 0}, match=r"`steps` must be at least 1"),
            BadInput("precomputed_with_randomization", construct={"attribution": None},
                     match=r"\['max_sensitivity', 'randomization'\] call the attribution"),
        ],
    ),
    MetricCase(
        "saliency_fidelity_patches_blur_targets", _make_patches, _targeted_batches,
        rtol=1e-6, atol=1e-9,
        bad_inputs=[
            BadInput("flat_inputs_with_patches", (torch.rand(2, 16, dtype=torch.float64),),
                     ValueError, r"`patch_size` > 1 needs images of shape \(N, C, H, W\)"),
            BadInput("float_target", (torch.rand(2, 1, 4, 4, dtype=torch.float64),
                                      torch.tensor([0.0, 1.0])), TypeError,
                     r"`target` must be an integer tensor"),
            BadInput("zero_patch", construct={"patch_size": 0},
                     match=r"`patch_size` must be at least 1, got 0"),
        ],
    ),
)

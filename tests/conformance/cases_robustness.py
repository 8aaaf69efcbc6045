"""Conformance cases of the robustness area."""

from __future__ import annotations

import torch
from torch import nn

from andante_metrics import AdversarialRobustness, CorruptionRobustness, TopKAccuracy

from conformance.harness import BadInput, MetricCase, factory, register

C = 3


def _seeded_cnn(seed: int) -> nn.Module:
    """A tiny float64 CNN whose weights come from a local generator (same in every process)."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, C)
    ).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=gen, dtype=torch.float64) * 0.3)
    return model.eval()


_MODEL = _seeded_cnn(0)
_BASELINE = _seeded_cnn(1)


def _image_batches(gen: torch.Generator, sizes=(6, 9, 1, 8)):
    out = []
    for size in sizes:
        images = torch.rand(size, 1, 8, 8, generator=gen, dtype=torch.float64)
        labels = torch.randint(0, C, (size,), generator=gen)
        out.append((images, labels))
    return out


def _images_bad_inputs() -> list[BadInput]:
    images = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    labels = torch.zeros(4, dtype=torch.long)
    nan_images = images.clone()
    nan_images[0, 0, 0, 0] = float("nan")
    return [
        BadInput("images_out_of_range", (images * 3, labels), ValueError,
                 r"`images` must .*\[0(\.0)?, 1(\.0)?\].*got values in \[0"),
        BadInput("images_nan", (nan_images, labels), ValueError,
                 r"`images` contains 1 NaN or infinite"),
        BadInput("images_int", (torch.zeros(4, 1, 8, 8, dtype=torch.long), labels), TypeError,
                 r"`images` must be a floating-point tensor.*torch.int64"),
        BadInput("target_length", (images, torch.zeros(3, dtype=torch.long)), ValueError,
                 r"`images` and `target` must hold the same number of samples"),
        BadInput("label_out_of_range", (images, torch.tensor([0, 1, 2, 3])), ValueError,
                 r"`target` must hold class indices in \[0, 2\].*got 3"),
        BadInput("target_float", (images, torch.zeros(4)), TypeError,
                 r"`target` must be an integer tensor.*torch.float32"),
    ]


register(
    MetricCase(
        "corruption_robustness_topk_baseline",
        factory(CorruptionRobustness, _MODEL, metric=TopKAccuracy(num_classes=C),
                baseline_model=_BASELINE, severities=(1, 3, 5), progress=False),
        _image_batches,
        _images_bad_inputs() + [
            BadInput("images_three_dims", (torch.rand(4, 8, 8, dtype=torch.float64),
                                           torch.zeros(4, dtype=torch.long)), ValueError,
                     r"`images` must have 4 dimensions, got shape \(4, 8, 8\)"),
            BadInput("unknown_corruption", construct={"corruptions": ["fog"]}, error=ValueError,
                     match=r"`corruptions` must be one of .*got 'fog'"),
            BadInput("severity_six", construct={"severities": [6]}, error=ValueError,
                     match=r"`severities` must be at most 5, got 6"),
            BadInput("metric_not_metric", construct={"metric": "accuracy"}, error=TypeError,
                     match=r"`metric` must be a torchmetrics.Metric.*got str"),
            BadInput("bad_pixel_scale", construct={"pixel_scale": -1.0}, error=ValueError,
                     match=r"`pixel_scale` must be a finite number greater than 0, got -1.0"),
        ],
    ),
    MetricCase(
        "corruption_robustness_no_baseline",
        factory(CorruptionRobustness, _MODEL, metric=TopKAccuracy(num_classes=C, average="macro"),
                corruptions=("shot_noise", "jpeg_compression", "pixelate"), progress=False),
        _image_batches,
        _images_bad_inputs()[:2],
    ),
    MetricCase(
        "adversarial_pgd_linf",
        factory(AdversarialRobustness, _MODEL, budgets=(0.0, 0.02, 0.05, 0.2), steps=4,
                progress=False),
        _image_batches,
        _images_bad_inputs() + [
            BadInput("budgets_decreasing", construct={"budgets": [0.2, 0.1]}, error=ValueError,
                     match=r"`budgets` must be strictly increasing, got \[0.2, 0.1\]"),
            BadInput("unknown_attack", construct={"attack": "cw"}, error=ValueError,
                     match=r"`attack` must be one of 'fgsm', 'pgd', got 'cw'"),
            BadInput("unknown_norm", construct={"norm": "l1"}, error=ValueError,
                     match=r"`norm` must be one of 'linf', 'l2', got 'l1'"),
            BadInput("zero_steps", construct={"steps": 0}, error=ValueError,
                     match=r"`steps` must be at least 1, got 0"),
        ],
    ),
    MetricCase(
        "adversarial_fgsm_l2",
        factory(AdversarialRobustness, _MODEL, budgets=(0.1, 0.5, 1.0), attack="fgsm",
                norm="l2", progress=False),
        _image_batches,
        _images_bad_inputs()[:3],
    ),
    MetricCase(
        "adversarial_pgd_l2_no_box",
        factory(AdversarialRobustness, _MODEL, budgets=(0.0, 0.3), norm="l2", steps=3,
                clamp=None, progress=False),
        _image_batches,
        [BadInput("images_nan", (torch.full((2, 1, 8, 8), float("nan"), dtype=torch.float64),
                                 torch.zeros(2, dtype=torch.long)), ValueError,
                  r"`images` contains 128 NaN or infinite")],
    ),
)

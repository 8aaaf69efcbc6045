"""Conformance cases of the characterization area: stereo errors and the sub-set wrapper.

The harness calls ``update(*batch)`` with tensors only, so the wrapper cases use
:class:`PositionalGroups`, which takes the sub-set groups as the last positional tensor: a
``(N,)`` tensor of indices, or a ``(N, S, *)`` boolean tensor holding the S element masks.
"""

from __future__ import annotations

import math

import torch

from andante_metrics import D1OutlierRate, EndPointError, IoU, SubsetMetric, TopKAccuracy

from conformance.harness import BadInput, MetricCase, classification_batches, factory, register

try:
    from andante_metrics.fidelity import PSNR

    def _make_psnr():
        return PSNR(data_range=1.0)
except ImportError:  # the fidelity area is optional; torchmetrics' PSNR is an equal stand-in
    from torchmetrics.image import PeakSignalNoiseRatio

    def _make_psnr():
        return PeakSignalNoiseRatio(data_range=1.0)


class PositionalGroups(SubsetMetric):
    """A :class:`SubsetMetric` whose ``groups`` may come last among the positional arguments."""

    def update(self, *args, groups=None):
        if groups is None:
            *args, groups = args
        if isinstance(groups, torch.Tensor) and groups.dtype == torch.bool:
            groups = {name: groups[:, index] for index, name in enumerate(self.subsets)}
        super().update(*args, groups=groups)

    def forward(self, *args, groups=None):
        if groups is None:
            *args, groups = args
        if isinstance(groups, torch.Tensor) and groups.dtype == torch.bool:
            groups = {name: groups[:, index] for index, name in enumerate(self.subsets)}
        return super().forward(*args, groups=groups)


SIZES = (3, 5, 1, 4, 2)


def _disparity_batches(gen: torch.Generator):
    out = []
    for size in SIZES:
        target = torch.rand(size, 6, 8, generator=gen, dtype=torch.float64) * 40 + 1
        target[torch.rand(target.shape, generator=gen) < 0.1] = math.inf
        target[torch.rand(target.shape, generator=gen) < 0.05] = 0.0
        noise = torch.randn(target.shape, generator=gen, dtype=torch.float64) * 4
        preds = target.nan_to_num(posinf=20.0) + noise
        out.append((preds, target))
    return out


def _flow_batches(gen: torch.Generator):
    out = []
    for size in SIZES:
        target = torch.randn(size, 2, 5, 5, generator=gen) * 10
        target[:, 1][torch.rand(size, 5, 5, generator=gen) < 0.1] = math.nan
        preds = target.nan_to_num(0.0) + torch.randn(target.shape, generator=gen) * 3
        out.append((preds, target))
    return out


def _labelled_classification(gen: torch.Generator):
    out = []
    for logits, labels in classification_batches(4, sizes=(9, 16, 1, 12, 7))(gen):
        out.append((logits, labels, torch.randint(0, 3, (len(labels),), generator=gen)))
    return out


def _segmentation_with_masks(gen: torch.Generator):
    out = []
    for size in SIZES:
        target = torch.randint(0, 3, (size, 6, 6), generator=gen)
        preds = torch.where(torch.rand(target.shape, generator=gen) < 0.7, target, 2 - target)
        border = torch.zeros(size, 6, 6, dtype=torch.bool)
        border[:, :2] = True
        out.append((preds, target, torch.stack([border, ~border], dim=1)))
    return out


def _disparity_with_masks(gen: torch.Generator):
    out = []
    for preds, target in _disparity_batches(gen):
        near = target > 20
        random = torch.rand(target.shape, generator=gen) < 0.3
        out.append((preds, target, torch.stack([near, ~near, random], dim=1)))
    return out


def _images_with_labels(gen: torch.Generator):
    out = []
    for size in SIZES:
        target = torch.rand(size, 1, 8, 8, generator=gen)
        preds = (target + torch.randn(target.shape, generator=gen) * 0.1).clamp(0, 1)
        out.append((preds, target, torch.randint(0, 2, (size,), generator=gen)))
    return out


_STEREO_BAD = [
    BadInput(
        "shape_mismatch",
        (torch.zeros(2, 3), torch.zeros(2, 4)),
        ValueError,
        r"`preds` and `target` must have the same shape, got \(2, 3\) and \(2, 4\)",
    ),
    BadInput(
        "int_preds",
        (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)),
        TypeError,
        r"`preds` must be a floating-point tensor.*torch.int64",
    ),
    BadInput(
        "int_target",
        (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long)),
        TypeError,
        r"`target` must be a floating-point tensor.*torch.int64",
    ),
    BadInput(
        "inf_preds",
        (torch.full((2, 3), math.inf), torch.zeros(2, 3)),
        ValueError,
        r"`preds` contains 6 NaN or infinite",
    ),
    BadInput(
        "bad_field",
        construct={"field": "depth"},
        error=ValueError,
        match=r"`field` must be one of 'disparity', 'flow', got 'depth'",
    ),
]

_TOPK = TopKAccuracy(num_classes=4)
_GROUPS_BAD = [
    BadInput(
        "group_out_of_range",
        (torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), torch.tensor([0, 3])),
        ValueError,
        r"`groups` must hold sub-set indices in \[0, 2\].*got 3",
    ),
    BadInput(
        "group_length",
        (torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), torch.tensor([0, 1, 2])),
        ValueError,
        r"`groups` must hold one sub-set index per sample \(2\), got shape \(3,\)",
    ),
    BadInput(
        "float_groups",
        (torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), torch.tensor([0.0, 1.0])),
        TypeError,
        r"`groups` must be an integer tensor of class indices.*torch.float32",
    ),
    BadInput(
        "wrapped_metric_check",
        (torch.zeros(2, 5), torch.zeros(2, dtype=torch.long), torch.tensor([0, 1])),
        ValueError,
        r"`preds` must have num_classes=4 columns, got shape \(2, 5\)",
    ),
    BadInput(
        "overall_as_name",
        construct={"subsets": ["a", "overall"]},
        error=ValueError,
        match=r"`subsets` names must be unique and must not be 'overall'",
    ),
    BadInput(
        "bad_by",
        construct={"by": "pixel"},
        error=ValueError,
        match=r"`by` must be one of 'sample', 'element', got 'pixel'",
    ),
    BadInput(
        "bad_confidence",
        construct={"confidence": 95.0},
        error=ValueError,
        match=r"`confidence` must be a float in \(0, 1\), got 95.0",
    ),
]

register(
    MetricCase(
        "d1_disparity_invalid",
        factory(D1OutlierRate, invalid_value=0.0),
        _disparity_batches,
        _STEREO_BAD
        + [
            BadInput(
                "negative_threshold",
                construct={"rel_threshold": -0.1},
                error=ValueError,
                match=r"`rel_threshold` must be a finite number at least 0, got -0.1",
            ),
        ],
    ),
    MetricCase(
        "epe_flow",
        factory(EndPointError, field="flow"),
        _flow_batches,
        [
            BadInput(
                "flow_needs_two_components",
                (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)),
                ValueError,
                r"must have shape \(N, 2, \*\) for field='flow', got \(2, 3, 4\)",
            ),
            BadInput(
                "invalid_value_with_flow",
                construct={"invalid_value": 0.0},
                error=ValueError,
                match=r"`invalid_value` applies to disparity only",
            ),
        ],
        rtol=1e-7,
    ),
    MetricCase(
        "subset_topk_by_label",
        factory(PositionalGroups, metric=_TOPK, subsets=["a", "b", "c"]),
        _labelled_classification,
        _GROUPS_BAD,
    ),
    MetricCase(
        "subset_iou_by_element",
        factory(
            PositionalGroups, metric=IoU(num_classes=3), subsets=["border", "inner"], by="element"
        ),
        _segmentation_with_masks,
        [
            BadInput(
                "mask_shape",
                (
                    torch.zeros(1, 6, 6, dtype=torch.long),
                    torch.zeros(1, 6, 6, dtype=torch.long),
                    torch.ones(1, 2, 6, 5, dtype=torch.bool),
                ),
                ValueError,
                r"`groups\['border'\]` of shape \(1, 6, 5\) does not fit an argument",
            ),
            BadInput(
                "index_groups_by_element",
                (
                    torch.zeros(2, 3, dtype=torch.long),
                    torch.zeros(2, 3, dtype=torch.long),
                    torch.tensor([0, 1]),
                ),
                TypeError,
                r"`groups` must be a mapping of sub-set name to boolean mask",
            ),
        ],
    ),
    MetricCase(
        "subset_d1_by_element",
        factory(
            PositionalGroups,
            metric=D1OutlierRate(),
            subsets=["near", "far", "random"],
            by="element",
        ),
        _disparity_with_masks,
        [
            BadInput(
                "nan_preds",
                (
                    torch.full((1, 2, 2), math.nan),
                    torch.ones(1, 2, 2),
                    torch.ones(1, 3, 2, 2, dtype=torch.bool),
                ),
                ValueError,
                r"`preds` contains 4 NaN or infinite",
            ),
        ],
    ),
    MetricCase(
        "subset_psnr_by_label",
        factory(PositionalGroups, metric=_make_psnr(), subsets=["even", "odd"]),
        _images_with_labels,
        [
            BadInput(
                "missing_groups",
                (torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), [0, 1]),
                TypeError,
                r"`groups` must be a \(N,\) tensor of sub-set indices or a mapping",
            ),
        ],
        rtol=1e-6,
    ),
    MetricCase(
        "subset_topk_bootstrap",
        factory(PositionalGroups, metric=_TOPK, subsets=["a", "b", "c"], num_bootstraps=8, seed=3),
        _labelled_classification,
        [
            BadInput(
                "negative_bootstraps",
                construct={"num_bootstraps": -2},
                error=ValueError,
                match=r"`num_bootstraps` must be at least 0, got -2",
            ),
        ],
        splittable=False,
        order_invariant=False,
        distributed=False,
        reason="bootstrap draws follow the update count and the rank by design",
    ),
)

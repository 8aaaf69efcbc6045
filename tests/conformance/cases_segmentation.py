"""Conformance cases of the segmentation overlap scores IoU and Dice."""

from __future__ import annotations

import torch

from andante_metrics import Dice, IoU

from conformance.harness import BadInput, MetricCase, factory, register

C = 4
VOID = 255
SIZES = (3, 5, 1, 4)


def _index_maps(with_void: bool):
    """Return ``make_batches`` of ``(preds, target)`` index maps ``(N, 6, 6)``, some void."""

    def make(gen: torch.Generator):
        out = []
        for size in SIZES:
            target = torch.randint(0, C, (size, 6, 6), generator=gen)
            noise = torch.randint(0, C, target.shape, generator=gen)
            preds = torch.where(torch.rand(target.shape, generator=gen) < 0.6, target, noise)
            if with_void:
                target[torch.rand(target.shape, generator=gen) < 0.1] = VOID
            out.append((preds, target))
        return out

    return make


def _logit_maps(gen: torch.Generator):
    out = []
    for size in SIZES:
        target = torch.randint(0, C, (size, 5, 5), generator=gen)
        logits = torch.randn(size, C, 5, 5, generator=gen)
        logits += 2.0 * torch.nn.functional.one_hot(target, C).permute(0, 3, 1, 2)
        out.append((logits, target))
    return out


def _binary_logits(gen: torch.Generator):
    out = []
    for size in SIZES:
        target = torch.randint(0, 2, (size, 7, 7), generator=gen)
        out.append((torch.randn(size, 7, 7, generator=gen) + 2.0 * target - 1.0, target))
    return out


_long = torch.long
_BAD_INDEX = [
    BadInput(
        "shape_mismatch",
        (torch.zeros(2, 3, dtype=_long), torch.zeros(2, 4, dtype=_long)),
        ValueError,
        r"`preds` and `target` must have the same shape, got \(2, 3\) and \(2, 4\)",
    ),
    BadInput(
        "float_preds",
        (torch.zeros(2, 3), torch.zeros(2, 3, dtype=_long)),
        TypeError,
        r"`preds` must be an integer tensor.*torch.float32",
    ),
    BadInput(
        "float_target",
        (torch.zeros(2, 3, dtype=_long), torch.zeros(2, 3)),
        TypeError,
        r"`target` must be an integer tensor.*torch.float32",
    ),
    BadInput(
        "preds_out_of_range",
        (torch.full((1, 2), C), torch.zeros(1, 2, dtype=_long)),
        ValueError,
        r"`preds` must hold class indices in \[0, 3\].*got 4",
    ),
    BadInput(
        "target_out_of_range",
        (torch.zeros(1, 2, dtype=_long), torch.tensor([[0, 7]])),
        ValueError,
        r"`target` must hold class indices in \[0, 3\].*got 7",
    ),
    BadInput(
        "not_a_tensor",
        ([[0, 1]], torch.zeros(1, 2, dtype=_long)),
        TypeError,
        r"`preds` must be a torch.Tensor, got \[\[0, 1\]\]",
    ),
    BadInput(
        "bad_average",
        construct={"average": "weighted"},
        error=ValueError,
        match=r"`average` must be one of 'macro', 'none', 'binary', got 'weighted'",
    ),
    BadInput(
        "bad_aggregate",
        construct={"aggregate": "batch"},
        error=ValueError,
        match=r"`aggregate` must be one of 'dataset', 'per_image', got 'batch'",
    ),
    BadInput(
        "absent_score_above_one",
        construct={"absent_score": 1.5},
        error=ValueError,
        match=r"`absent_score` must lie in \[0, 1\].*got 1.5",
    ),
    BadInput(
        "bool_ignore_index",
        construct={"ignore_index": True},
        error=TypeError,
        match=r"`ignore_index` must be an int, got True",
    ),
]

_BAD_LOGITS = [
    BadInput(
        "wrong_channels",
        (torch.zeros(1, C + 1, 2, 2), torch.zeros(1, 2, 2, dtype=_long)),
        ValueError,
        r"`preds` logits must have shape \(N, C, \*\) = \(1, 4, 2, 2\)",
    ),
    BadInput(
        "nan_logits",
        (torch.full((1, C, 2, 2), float("nan")), torch.zeros(1, 2, 2, dtype=_long)),
        ValueError,
        r"`preds` contains 16 NaN or infinite",
    ),
    BadInput(
        "int_logits",
        (torch.zeros(1, C, 2, 2, dtype=_long), torch.zeros(1, 2, 2, dtype=_long)),
        TypeError,
        r"`preds` must be a floating-point tensor",
    ),
    BadInput(
        "flat_target_per_image",
        (torch.zeros(3, C), torch.zeros(3, dtype=_long)),
        ValueError,
        r"`target` must have at least 2 dimension\(s\).*aggregate='per_image'",
    ),
]

register(
    MetricCase(
        "iou_dataset_macro_void",
        factory(IoU, num_classes=C, ignore_index=VOID),
        _index_maps(with_void=True),
        _BAD_INDEX,
    ),
    MetricCase(
        "iou_per_image_none_logits",
        factory(IoU, num_classes=C, input="logits", aggregate="per_image", average="none"),
        _logit_maps,
        _BAD_LOGITS,
    ),
    MetricCase(
        "iou_absent_score_ignore_inside",
        factory(IoU, num_classes=C + 1, ignore_index=0, absent_score=1.0, average="none"),
        _index_maps(with_void=False),
        [
            BadInput(
                "void_without_ignore_index",
                (torch.zeros(1, 2, dtype=_long), torch.tensor([[1, VOID]])),
                ValueError,
                r"`target` must hold class indices in \[0, 4\].*got 255",
            ),
        ],
    ),
    MetricCase(
        "dice_dataset_macro_void",
        factory(Dice, num_classes=C, ignore_index=VOID),
        _index_maps(with_void=True),
        _BAD_INDEX,
    ),
    MetricCase(
        "dice_binary_single_logit",
        factory(Dice, num_classes=2, input="logits", average="binary"),
        _binary_logits,
        [
            BadInput(
                "binary_needs_two_classes",
                construct={"num_classes": 3},
                error=ValueError,
                match=r"`average='binary'` needs num_classes=2, got num_classes=3",
            ),
            BadInput(
                "inf_logit",
                (torch.tensor([[float("inf"), 0.0]]), torch.tensor([[1, 0]])),
                ValueError,
                r"`preds` contains 1 NaN or infinite",
            ),
        ],
    ),
    MetricCase(
        "dice_per_image_macro",
        factory(Dice, num_classes=C, aggregate="per_image", ignore_index=VOID),
        _index_maps(with_void=True),
        _BAD_INDEX,
    ),
)

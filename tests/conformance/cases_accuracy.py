"""Conformance cases of the accuracy area."""

from __future__ import annotations

import torch

from andante_metrics import (
    AUROC,
    BrierScore,
    ExpectedCalibrationError,
    MaxCalibrationError,
    NegativeLogLikelihood,
    ReliabilityDiagram,
    TopKAccuracy,
)

from conformance.harness import BadInput, MetricCase, classification_batches, factory, register

C = 4
_logits = torch.randn(5, C)


def _probs_case_batches(gen: torch.Generator):
    batches = classification_batches(C, sizes=(8, 16, 12, 9))(gen)
    return [(logits.softmax(dim=1), labels) for logits, labels in batches]


def _binary_batches(gen: torch.Generator):
    out = []
    for size in (5, 11, 2, 8):
        labels = torch.randint(0, 2, (size,), generator=gen)
        labels[0] = 1 - labels[-1] if size > 1 else labels[0]
        out.append((torch.randn(size, generator=gen) + labels, labels))
    return out


def _multiclass_bad_inputs(prefix: str = "") -> list[BadInput]:
    return [
        BadInput(
            "shape_mismatch",
            (_logits, torch.zeros(4, dtype=torch.long)),
            ValueError,
            r"`preds` and `target` must hold the same number of samples.*\(5, 4\)",
        ),
        BadInput(
            "wrong_num_classes",
            (torch.randn(5, C + 1), torch.zeros(5, dtype=torch.long)),
            ValueError,
            r"`preds` must have num_classes=4 columns, got shape \(5, 5\)",
        ),
        BadInput(
            "float_target",
            (_logits, torch.zeros(5)),
            TypeError,
            r"`target` must be an integer tensor.*torch.float32",
        ),
        BadInput(
            "int_preds",
            (torch.zeros(5, C, dtype=torch.long), torch.zeros(5, dtype=torch.long)),
            TypeError,
            r"`preds` must be a floating-point tensor.*torch.int64",
        ),
        BadInput(
            "nan_preds",
            (torch.full((5, C), float("nan")), torch.zeros(5, dtype=torch.long)),
            ValueError,
            r"`preds` contains 20 NaN or infinite",
        ),
        BadInput(
            "label_out_of_range",
            (_logits, torch.tensor([0, 1, 2, 3, 4])),
            ValueError,
            r"`target` must hold class indices in \[0, 3\].*got 4",
        ),
        BadInput(
            "negative_label",
            (_logits, torch.tensor([0, -1, 2, 3, 1])),
            ValueError,
            r"`target` must hold class indices in \[0, 3\].*got -1",
        ),
        BadInput(
            "not_a_tensor",
            ([[0.0] * C] * 5, torch.zeros(5, dtype=torch.long)),
            TypeError,
            r"`preds` must be a torch.Tensor, got \[\[",
        ),
        BadInput(
            "num_classes_too_small",
            construct={"num_classes": 1},
            error=ValueError,
            match=r"`num_classes` must be at least 2, got 1",
        ),
    ]


def _input_kind_bad() -> list[BadInput]:
    return [
        BadInput(
            "bad_input_kind",
            construct={"input": "softmax"},
            error=ValueError,
            match=r"`input` must be one of 'logits', 'probs', got 'softmax'",
        ),
    ]


register(
    MetricCase(
        "top1_micro",
        factory(TopKAccuracy, num_classes=C),
        classification_batches(C),
        _multiclass_bad_inputs()
        + [
            BadInput(
                "top_k_too_large",
                construct={"top_k": 5},
                error=ValueError,
                match=r"`top_k` must be at most num_classes=4, got 5",
            ),
            BadInput(
                "bad_average",
                construct={"average": "weighted"},
                error=ValueError,
                match=r"`average` must be one of 'micro', 'macro', got 'weighted'",
            ),
        ],
    ),
    MetricCase(
        "top2_macro",
        factory(TopKAccuracy, num_classes=C, top_k=2, average="macro"),
        classification_batches(C),
        _multiclass_bad_inputs(),
    ),
    # Every AUROC batch holds all classes, because forward() computes the batch's own AUROC,
    # which a batch of one class does not have.
    MetricCase(
        "auroc_multiclass_logits",
        factory(AUROC, num_classes=C, input="logits"),
        classification_batches(C, sizes=(8, 16, 12, 9)),
        _multiclass_bad_inputs() + _input_kind_bad(),
    ),
    MetricCase(
        "auroc_multiclass_probs_per_class",
        factory(AUROC, num_classes=C, input="probs", average="none"),
        _probs_case_batches,
        [
            BadInput(
                "logits_as_probs",
                (torch.randn(5, C) * 5, torch.zeros(5, dtype=torch.long)),
                ValueError,
                r"`preds` must hold probabilities in \[0, 1\]",
            ),
            BadInput(
                "rows_not_normalised",
                (torch.full((5, C), 0.5), torch.zeros(5, dtype=torch.long)),
                ValueError,
                r"`preds` rows must sum to 1.*off by 1",
            ),
        ],
    ),
    MetricCase(
        "auroc_binary",
        factory(AUROC, input="logits"),
        _binary_batches,
        [
            BadInput(
                "label_two",
                (torch.randn(3), torch.tensor([0, 1, 2])),
                ValueError,
                r"`target` must hold 0 or 1 for binary AUROC, got values in \[0, 2\]",
            ),
            BadInput(
                "two_dim_preds",
                (torch.randn(3, 2), torch.tensor([0, 1, 1])),
                ValueError,
                r"`preds` must have 1 dimensions, got shape \(3, 2\)",
            ),
        ],
    ),
    MetricCase(
        "ece_15_bins",
        factory(ExpectedCalibrationError, num_classes=C, input="logits"),
        classification_batches(C),
        _multiclass_bad_inputs()
        + _input_kind_bad()
        + [
            BadInput(
                "zero_bins",
                construct={"n_bins": 0},
                error=ValueError,
                match=r"`n_bins` must be at least 1, got 0",
            ),
        ],
    ),
    MetricCase(
        "mce_10_bins",
        factory(MaxCalibrationError, num_classes=C, input="probs", n_bins=10),
        _probs_case_batches,
        _multiclass_bad_inputs(),
    ),
    MetricCase(
        "reliability_diagram",
        factory(ReliabilityDiagram, num_classes=C, input="logits"),
        classification_batches(C),
        _multiclass_bad_inputs(),
    ),
    MetricCase(
        "brier_score",
        factory(BrierScore, num_classes=C, input="logits"),
        classification_batches(C),
        _multiclass_bad_inputs() + _input_kind_bad(),
    ),
    MetricCase(
        "nll_probs",
        factory(NegativeLogLikelihood, num_classes=C, input="probs"),
        _probs_case_batches,
        _multiclass_bad_inputs(),
    ),
)

"""Conformance cases of the generalization area."""

from __future__ import annotations

import torch

from andante_metrics import CanaryMemorization, CrossDomainGap, GeneralizationGap

from conformance.harness import BadInput, MetricCase, classification_batches, factory, register

C = 4
_DOMAINS = ["clean", "rotated", "inverted"]


def _gap_batches(gen: torch.Generator):
    # Nine epochs with distinct step indices, in shuffled order and uneven batches.
    steps = torch.randperm(9, generator=gen)
    train = 0.5 + 0.05 * steps.double() + 0.01 * torch.rand(9, generator=gen, dtype=torch.float64)
    test = 0.5 + 0.03 * steps.double()
    out, begin = [], 0
    for size in (3, 1, 4, 1):
        out.append((steps[begin : begin + size], train[begin : begin + size],
                    test[begin : begin + size]))
        begin += size
    return out


def _domain_batches(gen: torch.Generator):
    out = []
    for size in (7, 12, 3, 9):
        domain = torch.arange(size) % len(_DOMAINS)
        scores = (torch.rand(size, generator=gen) < 0.8 - 0.2 * domain).float()
        out.append((scores, domain))
    return out


_long = torch.zeros(3, dtype=torch.long)

register(
    MetricCase(
        "canary_memorization", factory(CanaryMemorization, num_classes=C),
        classification_batches(C),
        bad_inputs=[
            BadInput("shape_mismatch", (torch.randn(5, C), torch.zeros(4, dtype=torch.long)),
                     ValueError, r"`preds` and `target` must hold the same number of samples"),
            BadInput("wrong_num_classes", (torch.randn(3, C + 1), _long), ValueError,
                     r"`preds` must have num_classes=4 columns, got shape \(3, 5\)"),
            BadInput("float_target", (torch.randn(3, C), torch.zeros(3)), TypeError,
                     r"`target` must be an integer tensor.*torch.float32"),
            BadInput("nan_preds", (torch.full((3, C), float("nan")), _long), ValueError,
                     r"`preds` contains 12 NaN or infinite"),
            BadInput("label_out_of_range", (torch.randn(3, C), torch.tensor([0, 4, 1])),
                     ValueError, r"`target` must hold class indices in \[0, 3\].*got 4"),
            BadInput("num_classes_too_small", construct={"num_classes": 1}, error=ValueError,
                     match=r"`num_classes` must be at least 2, got 1"),
        ],
    ),
    MetricCase(
        "generalization_gap", factory(GeneralizationGap, window=5), _gap_batches,
        bad_inputs=[
            BadInput("length_mismatch", (torch.tensor([0, 1]), torch.ones(2), torch.ones(3)),
                     ValueError, r"same number of entries, got 2, 2 and 3"),
            BadInput("float_step", (torch.tensor([0.5]), torch.ones(1), torch.ones(1)),
                     TypeError, r"`step` must be an integer tensor.*torch.float32"),
            BadInput("inf_test", (torch.tensor([0]), torch.ones(1),
                                  torch.tensor([float("inf")])),
                     ValueError, r"`test_value` contains 1 NaN or infinite"),
            BadInput("matrix_values", (torch.tensor([0]), torch.ones(1, 1), torch.ones(1)),
                     ValueError, r"`train_value` must have 0 or 1 dimensions, got shape \(1, 1\)"),
            BadInput("string_value", (0, "0.9", 0.8), TypeError,
                     r"`train_value` must be a torch.Tensor, got '0.9'"),
            BadInput("window_too_small", construct={"window": 1}, error=ValueError,
                     match=r"`window` must be at least 2, got 1"),
            BadInput("direction_not_bool", construct={"metric_higher_is_better": "up"},
                     error=TypeError, match=r"`metric_higher_is_better` must be a bool, got str"),
        ],
    ),
    MetricCase(
        "cross_domain_gap", factory(CrossDomainGap, domains=_DOMAINS), _domain_batches,
        bad_inputs=[
            BadInput("length_mismatch", (torch.ones(3), torch.tensor([0, 1])), ValueError,
                     r"`scores` and `domain` must hold the same number of samples"),
            BadInput("domain_out_of_range", (torch.ones(2), torch.tensor([0, 3])), ValueError,
                     r"`domain` must hold domain indices in \[0, 2\] for 3 domains, got 3"),
            BadInput("float_domain", (torch.ones(2), torch.tensor([0.0, 1.0])), TypeError,
                     r"`domain` must be an integer tensor.*torch.float32"),
            BadInput("nan_scores", (torch.tensor([float("nan"), 1.0]), torch.tensor([0, 1])),
                     ValueError, r"`scores` contains 1 NaN or infinite"),
            BadInput("unknown_domain_name", (torch.ones(2), "blurred"), ValueError,
                     r"`domain` must be one of 'clean', 'rotated', 'inverted', got 'blurred'"),
            BadInput("one_domain", construct={"domains": ["clean"]}, error=ValueError,
                     match=r"`domains` must list at least two domain names"),
        ],
    ),
)

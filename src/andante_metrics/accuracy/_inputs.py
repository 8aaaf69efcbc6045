"""Checks and conversions for classification inputs shared by the accuracy metrics."""

from __future__ import annotations

from typing import Literal

import torch

from andante_metrics.utilities.checks import (
    check_finite,
    check_in_choices,
    check_labels_in_range,
    check_same_first_dim,
    check_tensor,
)

InputKind = Literal["logits", "probs"]
INPUT_KINDS = ("logits", "probs")
# Rows of class probabilities must sum to 1 within this tolerance, or within 8 machine epsilons of
# the input dtype when that is larger (bfloat16 rounds each probability to about 3 digits). The
# rounding error of a softmax is far below it, while logits passed as probabilities are far above.
_PROB_SUM_TOL = 1e-3


def check_multiclass_inputs(preds: torch.Tensor, target: torch.Tensor, num_classes: int) -> None:
    """Check ``(N, C)`` float scores against ``(N,)`` integer class indices."""
    check_tensor(preds, "preds", ndim=2, dtype="float")
    check_tensor(target, "target", ndim=1, dtype="int")
    check_same_first_dim(preds, target, "preds", "target")
    if preds.shape[1] != num_classes:
        raise ValueError(
            f"`preds` must have num_classes={num_classes} columns, got shape "
            f"{tuple(preds.shape)}; pass scores of shape (N, {num_classes})."
        )
    check_finite(preds, "preds")
    check_labels_in_range(target, num_classes, "target")


def to_probabilities(preds: torch.Tensor, input_kind: str) -> torch.Tensor:
    """Return class probabilities from ``(N, C)`` logits or probabilities, in float64.

    ``input_kind`` is stated by the caller, never guessed from the value range, because logits
    that happen to lie in [0, 1] would otherwise be read as probabilities.
    """
    check_in_choices(input_kind, "input", INPUT_KINDS)
    tolerance = max(_PROB_SUM_TOL, 8 * torch.finfo(preds.dtype).eps)
    preds = preds.double()
    if input_kind == "logits":
        return preds.softmax(dim=1)
    if preds.numel() and (float(preds.min()) < 0.0 or float(preds.max()) > 1.0):
        raise ValueError(
            f"`preds` must hold probabilities in [0, 1] with input='probs', got values in "
            f"[{float(preds.min()):.4g}, {float(preds.max()):.4g}]; pass input='logits' for "
            f"unnormalised scores."
        )
    if preds.numel():
        worst = float((preds.sum(dim=1) - 1.0).abs().max())
        if worst > tolerance:
            raise ValueError(
                f"`preds` rows must sum to 1 with input='probs', got a row that is off by "
                f"{worst:.4g}; pass input='logits' for unnormalised scores."
            )
    return preds

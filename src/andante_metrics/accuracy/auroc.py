"""Area under the ROC curve, binary and one-vs-rest multiclass, computed exactly."""

from __future__ import annotations

from typing import Literal

import torch
from torchmetrics.utilities.data import dim_zero_cat

from andante_metrics.accuracy._inputs import (
    INPUT_KINDS,
    InputKind,
    check_multiclass_inputs,
    to_probabilities,
)
from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import (
    check_finite,
    check_in_choices,
    check_int_range,
    check_same_shape,
    check_tensor,
)
from andante_metrics.utilities.logging import warn_once

Average = Literal["macro", "weighted", "none"]


def _binary_auroc(scores: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Return the AUROC of ``scores`` for the boolean ``positive`` labels, NaN if undefined.

    Uses the Mann-Whitney form AUROC = (R+ - n+(n+ + 1)/2) / (n+ n-), where R+ is the sum of
    the ranks of the positive scores and tied scores share their mean rank. This equals the
    trapezoidal area under the exact ROC curve, ties included.
    """
    n_pos = positive.sum().double()
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return torch.tensor(float("nan"), dtype=torch.float64, device=scores.device)
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    _, inverse, counts = torch.unique_consecutive(
        sorted_scores, return_inverse=True, return_counts=True
    )
    ends = torch.cumsum(counts, 0).double()
    mean_rank = ends - (counts.double() - 1.0) / 2.0
    ranks = mean_rank[inverse]
    rank_sum = ranks[positive[order]].sum()
    return (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)


def _auroc_compute(
    probs: torch.Tensor, target: torch.Tensor, num_classes: int | None, average: str
) -> torch.Tensor:
    if num_classes is None:
        value = _binary_auroc(probs, target.bool())
        if torch.isnan(value):
            raise ValueError(
                "AUROC is undefined because `target` contains only one class; evaluate on data "
                "with both positive and negative samples."
            )
        return value
    per_class = torch.stack([_binary_auroc(probs[:, c], target == c) for c in range(num_classes)])
    if average == "none":
        return per_class
    defined = ~torch.isnan(per_class)
    if not bool(defined.any()):
        raise ValueError(
            "AUROC is undefined for every class because `target` contains a single class; "
            "evaluate on data with at least two classes."
        )
    if not bool(defined.all()):
        missing = [c for c in range(num_classes) if not bool(defined[c])]
        warn_once(
            f"auroc-missing-{missing}",
            f"AUROC leaves out classes {missing}: they have no positive or no negative sample.",
        )
    if average == "macro":
        return per_class[defined].mean()
    support = torch.bincount(target.long(), minlength=num_classes).double()
    return (per_class[defined] * support[defined]).sum() / support[defined].sum()


def _check_binary_inputs(
    preds: torch.Tensor, target: torch.Tensor, input_kind: str
) -> torch.Tensor:
    check_tensor(preds, "preds", ndim=1, dtype="float")
    check_tensor(target, "target", ndim=1, dtype="int")
    check_same_shape(preds, target, "preds", "target")
    check_finite(preds, "preds")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) > 1):
        raise ValueError(
            f"`target` must hold 0 or 1 for binary AUROC, got values in "
            f"[{int(target.min())}, {int(target.max())}]; pass `num_classes` for multiclass."
        )
    preds = preds.double()
    if input_kind == "logits":
        return preds.sigmoid()
    if preds.numel() and (float(preds.min()) < 0.0 or float(preds.max()) > 1.0):
        raise ValueError(
            f"`preds` must hold probabilities in [0, 1] with input='probs', got values in "
            f"[{float(preds.min()):.4g}, {float(preds.max()):.4g}]; pass input='logits'."
        )
    return preds


def _auroc_update(
    preds: torch.Tensor, target: torch.Tensor, num_classes: int | None, input_kind: str
) -> tuple[torch.Tensor, torch.Tensor]:
    check_in_choices(input_kind, "input", INPUT_KINDS)
    if num_classes is None:
        return _check_binary_inputs(preds, target, input_kind), target.long()
    check_multiclass_inputs(preds, target, num_classes)
    return to_probabilities(preds, input_kind), target.long()


def _check_options(num_classes: int | None, average: str) -> None:
    if num_classes is not None:
        check_int_range(num_classes, "num_classes", low=2)
    check_in_choices(average, "average", ("macro", "weighted", "none"))


def auroc(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    input: InputKind,
    num_classes: int | None = None,
    average: Average = "macro",
) -> torch.Tensor:
    r"""Compute the exact area under the ROC curve.

    Binary when ``num_classes`` is ``None``: ``preds`` is ``(N,)`` and ``target`` contains 0/1.
    Multiclass otherwise: one-vs-rest AUROC of each class from ``(N, C)`` scores, averaged with
    ``average="macro"`` (plain mean), ``"weighted"`` (by class support) or ``"none"`` (per class).

    .. math::
        \mathrm{AUROC} = \frac{R_+ - n_+(n_+ + 1)/2}{n_+ n_-}

    with :math:`R_+` the rank sum of the positive samples' scores (ties share their mean rank),
    :math:`n_+` and :math:`n_-` the numbers of positives and negatives.

    ``input`` says whether ``preds`` are ``"logits"`` (sigmoid or softmax is applied) or
    ``"probs"``; it is never decided from the value range. A class with no positive or no
    negative sample has no AUROC: it is left out of the mean with a warning (NaN with
    ``average="none"``), and data with a single class or no sample raises ``ValueError``.

    Source: scikit-learn's ``roc_auc_score`` (``multi_class="ovr"``), which the tests match.

    Example:
        >>> import torch
        >>> auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]), input="probs")
        tensor(0.7500, dtype=torch.float64)
    """
    _check_options(num_classes, average)
    probs, labels = _auroc_update(preds, target, num_classes, input)
    if labels.numel() == 0:
        raise ValueError(
            f"`preds` and `target` contain no samples (`target` has shape {tuple(target.shape)}); "
            f"AUROC needs at least one positive and one negative sample."
        )
    return _auroc_compute(probs, labels, num_classes, average)


class AUROC(KPIMetric):
    """Stateful exact AUROC; see :func:`auroc` for the definition and options.

    State: every probability and label seen (list states concatenated across processes), since
    the exact curve needs all scores. ``compute()`` before any sample raises ``ValueError``.
    """

    kpi_area = "accuracy"
    unit = "fraction"
    higher_is_better = True

    def __init__(
        self,
        *,
        input: InputKind,
        num_classes: int | None = None,
        average: Average = "macro",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_in_choices(input, "input", INPUT_KINDS)
        _check_options(num_classes, average)
        self.input = input
        self.num_classes = num_classes
        self.average = average
        self.add_state("probs", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of scores and labels."""
        probs, labels = _auroc_update(preds, target, self.num_classes, self.input)
        self.probs.append(probs)
        self.labels.append(labels)

    def compute(self) -> torch.Tensor:
        """Return the AUROC of every sample seen so far."""
        labels = dim_zero_cat(self.labels) if len(self.labels) else torch.zeros(0)
        self._check_not_empty(labels.numel())
        return _auroc_compute(dim_zero_cat(self.probs), labels, self.num_classes, self.average)

r"""Segmentation overlap scores: IoU (Jaccard index) and Dice (F1), with explicit rules.

Both scores are computed per class :math:`c` from the intersection :math:`I_c` (positions where
prediction and target are both :math:`c`), the predicted area :math:`P_c` and the target area
:math:`T_c`:

.. math::
    \text{IoU}_c = \frac{I_c}{P_c + T_c - I_c}, \qquad
    \text{Dice}_c = \frac{2 I_c}{P_c + T_c}

Rules, the same for both scores:

* **Absent class.** A class found in neither prediction nor target (:math:`P_c + T_c = 0`) has
  no score: it is NaN per class and left out of the mean. With ``absent_score`` set, it scores
  that value instead and enters the mean.
* **Empty target, non-empty prediction.** :math:`T_c = 0 < P_c` gives :math:`I_c = 0`, so the
  class scores 0 and enters the mean.
* **ignore_index.** Positions whose target equals ``ignore_index`` are removed before counting.
  Any integer is valid: inside ``[0, num_classes)`` it also removes that class from the mean (it
  is NaN per class, even with ``absent_score``), outside it (such as 255 for void) it only
  marks positions. Predictions are never masked: a prediction of the ignored class on a kept
  position counts against the target's class.
* **aggregate.** ``"dataset"`` sums :math:`I_c, P_c, T_c` over every image of the evaluation
  and applies the rules once (the PASCAL VOC and Cityscapes convention). ``"per_image"`` applies
  the rules to each image (the first dimension) and averages each image's mean over its counted
  classes across images. An image with no counted class is skipped.
  The per-class value in that mode is the mean over the images where the class is counted.
* **average.** ``"macro"`` returns the mean over counted classes, ``"none"`` the ``(C,)``
  per-class values, and ``"binary"`` (``num_classes=2``) the score of class 1 alone, as
  scikit-learn's ``jaccard_score(average="binary")``.

Inputs are ``target`` integer class indices of shape ``(N, *)`` and ``preds`` either integer
indices of the same shape (``input="index"``) or float scores (``input="logits"``) of shape
``(N, C, *)``, reduced by argmax (the first maximum wins a tie). For ``num_classes=2``, logits of
the target's shape are one score per position, class 1 where the score is above 0.

Source: Jaccard (1912) and Dice (1945); the dataset-level convention is that of PASCAL VOC
(Everingham et al., IJCV 2010). With the present classes as ``labels``, the ``"dataset"`` macro
IoU equals scikit-learn's ``jaccard_score(average="macro")``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import (
    check_finite,
    check_in_choices,
    check_int_range,
    check_labels_in_range,
    check_same_shape,
    check_tensor,
)

Average = Literal["macro", "none", "binary"]
Aggregate = Literal["dataset", "per_image"]
InputKind = Literal["index", "logits"]
AVERAGES = ("macro", "none", "binary")
AGGREGATES = ("dataset", "per_image")
INPUT_KINDS = ("index", "logits")
ScoreKind = Literal["iou", "dice"]


def _check_options(
    num_classes: int,
    ignore_index: int | None,
    absent_score: float | None,
    average: str,
    aggregate: str,
    input_kind: str,
) -> None:
    check_int_range(num_classes, "num_classes", low=2)
    if ignore_index is not None:
        check_int_range(ignore_index, "ignore_index")
    if absent_score is not None:
        if isinstance(absent_score, bool) or not isinstance(absent_score, (int, float)):
            raise TypeError(
                f"`absent_score` must be a number in [0, 1] or None, got {absent_score!r} "
                f"({type(absent_score).__name__})."
            )
        if not 0.0 <= absent_score <= 1.0:
            raise ValueError(
                f"`absent_score` must lie in [0, 1] (or be None to leave absent classes out of "
                f"the mean), got {absent_score!r}."
            )
    check_in_choices(average, "average", AVERAGES)
    check_in_choices(aggregate, "aggregate", AGGREGATES)
    check_in_choices(input_kind, "input", INPUT_KINDS)
    if average == "binary":
        if num_classes != 2:
            raise ValueError(
                f"`average='binary'` needs num_classes=2, got num_classes={num_classes}; use "
                f"average='none' to read one class of a multiclass score."
            )
        if ignore_index == 1:
            raise ValueError(
                "`ignore_index` must not be 1 with average='binary', because class 1 is the "
                "class it reports."
            )


def _to_class_indices(
    preds: torch.Tensor, target: torch.Tensor, num_classes: int, input_kind: str, aggregate: str
) -> torch.Tensor:
    """Check the inputs and return the predicted class of every position, shaped like target."""
    min_ndim = 2 if aggregate == "per_image" else 1
    check_tensor(preds, "preds")
    check_tensor(target, "target", dtype="int")
    if target.ndim < min_ndim:
        raise ValueError(
            f"`target` must have at least {min_ndim} dimension(s) (N, *) with aggregate="
            f"{aggregate!r}, got shape {tuple(target.shape)}."
        )
    if input_kind == "index":
        check_tensor(preds, "preds", dtype="int")
        check_same_shape(preds, target, "preds", "target")
        check_labels_in_range(preds, num_classes, "preds")
        return preds.long()
    check_tensor(preds, "preds", dtype="float")
    check_finite(preds, "preds")
    if preds.shape == target.shape and num_classes == 2:
        return (preds > 0).long()
    expected = (target.shape[0], num_classes, *target.shape[1:])
    if preds.shape != expected:
        raise ValueError(
            f"`preds` logits must have shape (N, C, *) = {expected} for num_classes={num_classes} "
            f"and target shape {tuple(target.shape)}, got {tuple(preds.shape)}."
        )
    return preds.argmax(dim=1)


def _overlap_update(
    preds: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None,
    input_kind: str,
    aggregate: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return per-image intersections, predicted areas and target areas, each ``(N, C)`` int64."""
    pred_class = _to_class_indices(preds, target, num_classes, input_kind, aggregate)
    check_labels_in_range(target, num_classes, "target", ignore_index=ignore_index)
    images = target.shape[0]
    # Explicit position count so that an empty batch (N = 0) reshapes too, unlike reshape(0, -1).
    positions = math.prod(target.shape[1:])
    target = target.long().reshape(images, positions)
    pred_class = pred_class.reshape(images, positions)
    if ignore_index is None:
        keep = torch.ones_like(target, dtype=torch.bool)
    else:
        keep = target != ignore_index
    # One bincount per quantity over image-major bins `image * C + class`.
    offset = torch.arange(images, device=target.device).unsqueeze(1) * num_classes
    bins = images * num_classes
    hit = keep & (pred_class == target)
    intersection = torch.bincount((offset + target)[hit], minlength=bins)
    pred_area = torch.bincount((offset + pred_class)[keep], minlength=bins)
    target_area = torch.bincount((offset + target)[keep], minlength=bins)
    shape = (images, num_classes)
    return intersection.reshape(shape), pred_area.reshape(shape), target_area.reshape(shape)


def _class_scores(
    intersection: torch.Tensor,
    pred_area: torch.Tensor,
    target_area: torch.Tensor,
    kind: str,
    ignore_index: int | None,
    absent_score: float | None,
) -> torch.Tensor:
    """Return float64 scores ``(..., C)``, NaN for the ignored class and for absent classes."""
    inter = intersection.double()
    area_sum = (pred_area + target_area).double()
    if kind == "iou":
        numerator, denominator = inter, area_sum - inter
    else:
        numerator, denominator = 2 * inter, area_sum
    absent = denominator == 0
    scores = numerator / denominator.clamp(min=1)
    fill = math.nan if absent_score is None else float(absent_score)
    scores = torch.where(absent, torch.full_like(scores, fill), scores)
    num_classes = scores.shape[-1]
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        scores[..., ignore_index] = math.nan
    return scores


def _nanmean_last(values: torch.Tensor) -> torch.Tensor:
    """Return the mean over the last dimension of the non-NaN entries (NaN when there are none)."""
    counted = ~values.isnan()
    total = torch.where(counted, values, torch.zeros_like(values)).sum(dim=-1)
    count = counted.sum(dim=-1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, math.nan))


def _per_image_statistics(scores: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Reduce per-image scores ``(N, C)`` to per-class sums and counts and image-mean sums."""
    counted = ~scores.isnan()
    score_sum = torch.where(counted, scores, torch.zeros_like(scores)).sum(dim=0)
    score_count = counted.sum(dim=0)
    image_means = _nanmean_last(scores)
    defined = ~image_means.isnan()
    image_sum = image_means[defined].sum()
    image_count = defined.sum()
    return score_sum, score_count, image_sum, image_count


def _reduce_average(per_class: torch.Tensor, average: str) -> torch.Tensor:
    if average == "none":
        return per_class
    if average == "binary":
        return per_class[1]
    return _nanmean_last(per_class)


def _dataset_compute(
    intersection: torch.Tensor,
    pred_area: torch.Tensor,
    target_area: torch.Tensor,
    kind: str,
    ignore_index: int | None,
    absent_score: float | None,
    average: str,
) -> torch.Tensor:
    scores = _class_scores(intersection, pred_area, target_area, kind, ignore_index, absent_score)
    return _reduce_average(scores, average)


def _per_image_compute(
    score_sum: torch.Tensor,
    score_count: torch.Tensor,
    image_sum: torch.Tensor,
    image_count: torch.Tensor,
    average: str,
) -> torch.Tensor:
    per_class = torch.where(
        score_count > 0, score_sum / score_count.clamp(min=1), torch.full_like(score_sum, math.nan)
    )
    if average != "macro":
        return _reduce_average(per_class, average)
    if int(image_count) == 0:
        return torch.tensor(math.nan, dtype=torch.float64, device=image_sum.device)
    return image_sum / image_count


def _overlap_score(
    preds: torch.Tensor,
    target: torch.Tensor,
    kind: str,
    num_classes: int,
    ignore_index: int | None,
    absent_score: float | None,
    average: str,
    aggregate: str,
    input_kind: str,
) -> torch.Tensor:
    _check_options(num_classes, ignore_index, absent_score, average, aggregate, input_kind)
    inter, pred_area, target_area = _overlap_update(
        preds, target, num_classes, ignore_index, input_kind, aggregate
    )
    if int(target_area.sum()) == 0:
        raise ValueError(
            "`target` contains no position to score (it is empty or every position equals "
            "`ignore_index`); pass at least one labelled position."
        )
    if aggregate == "dataset":
        return _dataset_compute(
            inter.sum(0), pred_area.sum(0), target_area.sum(0), kind, ignore_index, absent_score,
            average,
        )
    scores = _class_scores(inter, pred_area, target_area, kind, ignore_index, absent_score)
    return _per_image_compute(*_per_image_statistics(scores), average)


def iou(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int,
    ignore_index: int | None = None,
    absent_score: float | None = None,
    average: Average = "macro",
    aggregate: Aggregate = "dataset",
    input: InputKind = "index",  # noqa: A002 - the option name every accuracy metric uses
) -> torch.Tensor:
    r"""Compute the intersection over union (Jaccard index) of a segmentation.

    :math:`\text{IoU}_c = I_c / (P_c + T_c - I_c)` per class, with the absent-class,
    empty-target, ``ignore_index`` and aggregation rules of this module's docstring.

    Args:
        preds: ``(N, *)`` integer class indices (``input="index"``) or ``(N, C, *)`` float
            scores (``input="logits"``; ``(N, *)`` single scores when ``num_classes=2``).
        target: ``(N, *)`` integer class indices in ``[0, C)`` or equal to ``ignore_index``.
        num_classes: ``C``, at least 2.
        ignore_index: target value whose positions are removed; any integer.
        absent_score: value in [0, 1] given to a class absent from prediction and target;
            ``None`` leaves it out of the mean (NaN per class).
        average: ``"macro"``, ``"none"`` or ``"binary"``.
        aggregate: ``"dataset"`` or ``"per_image"``.
        input: ``"index"`` or ``"logits"``.

    Returns:
        A float64 scalar, or ``(C,)`` with ``average="none"``. NaN when no class is counted.
        A target with no labelled position raises ``ValueError``.

    Example:
        >>> import torch
        >>> target = torch.tensor([[0, 0, 1, 1]])
        >>> preds = torch.tensor([[0, 1, 1, 1]])
        >>> iou(preds, target, num_classes=3, average="none")
        tensor([0.5000, 0.6667,    nan], dtype=torch.float64)
        >>> iou(preds, target, num_classes=3)
        tensor(0.5833, dtype=torch.float64)
    """
    return _overlap_score(
        preds, target, "iou", num_classes, ignore_index, absent_score, average, aggregate, input
    )


def dice(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int,
    ignore_index: int | None = None,
    absent_score: float | None = None,
    average: Average = "macro",
    aggregate: Aggregate = "dataset",
    input: InputKind = "index",  # noqa: A002 - the option name every accuracy metric uses
) -> torch.Tensor:
    r"""Compute the Dice coefficient (F1 score per class) of a segmentation.

    :math:`\text{Dice}_c = 2 I_c / (P_c + T_c)` per class, with the same arguments, rules and
    return values as :func:`iou`. Per class, :math:`\text{Dice} = 2\,\text{IoU} / (1 + \text{IoU})`.

    Example:
        >>> import torch
        >>> target = torch.tensor([[0, 0, 1, 1]])
        >>> preds = torch.tensor([[0, 1, 1, 1]])
        >>> dice(preds, target, num_classes=2, average="none")
        tensor([0.6667, 0.8000], dtype=torch.float64)
    """
    return _overlap_score(
        preds, target, "dice", num_classes, ignore_index, absent_score, average, aggregate, input
    )


class _OverlapScore(KPIMetric):
    """Stateful shell shared by :class:`IoU` and :class:`Dice`."""

    kpi_area = "accuracy"
    unit = "fraction"
    higher_is_better = True
    _kind: str = "iou"

    def __init__(
        self,
        *,
        num_classes: int,
        ignore_index: int | None = None,
        absent_score: float | None = None,
        average: Average = "macro",
        aggregate: Aggregate = "dataset",
        input: InputKind = "index",  # noqa: A002 - the option name every accuracy metric uses
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check_options(num_classes, ignore_index, absent_score, average, aggregate, input)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.absent_score = absent_score
        self.average = average
        self.aggregate = aggregate
        self.input = input
        zeros = torch.zeros(num_classes, dtype=torch.long)
        self.add_state("positions", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        if aggregate == "dataset":
            self.add_state("intersection", zeros.clone(), dist_reduce_fx="sum")
            self.add_state("pred_area", zeros.clone(), dist_reduce_fx="sum")
            self.add_state("target_area", zeros.clone(), dist_reduce_fx="sum")
        else:
            self.add_state("score_sum", zeros.double(), dist_reduce_fx="sum")
            self.add_state("score_count", zeros.clone(), dist_reduce_fx="sum")
            self.add_state("image_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state("image_count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predictions and ``(N, *)`` target class indices."""
        inter, pred_area, target_area = _overlap_update(
            preds, target, self.num_classes, self.ignore_index, self.input, self.aggregate
        )
        self.positions += target_area.sum()
        if self.aggregate == "dataset":
            self.intersection += inter.sum(0)
            self.pred_area += pred_area.sum(0)
            self.target_area += target_area.sum(0)
            return
        scores = _class_scores(
            inter, pred_area, target_area, self._kind, self.ignore_index, self.absent_score
        )
        score_sum, score_count, image_sum, image_count = _per_image_statistics(scores)
        self.score_sum += score_sum
        self.score_count += score_count
        self.image_sum += image_sum
        self.image_count += image_count

    def compute(self) -> torch.Tensor:
        """Return the score over every position seen so far (see the module rules)."""
        self._check_not_empty(self.positions)
        if self.aggregate == "dataset":
            return _dataset_compute(
                self.intersection, self.pred_area, self.target_area, self._kind,
                self.ignore_index, self.absent_score, self.average,
            )
        return _per_image_compute(
            self.score_sum, self.score_count, self.image_sum, self.image_count, self.average
        )


class IoU(_OverlapScore):
    """Stateful intersection over union (Jaccard index); see :func:`iou` and the module rules.

    State with ``aggregate="dataset"``: per-class intersections, predicted and target areas
    (int64, summed across processes). With ``"per_image"``: per-class sums and counts of image
    scores and the sum and count of image means. ``compute()`` before any labelled position
    raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = IoU(num_classes=3, ignore_index=255)
        >>> metric.update(torch.tensor([[0, 1]]), torch.tensor([[0, 255]]))
        >>> metric.update(torch.tensor([[1, 1]]), torch.tensor([[1, 0]]))
        >>> metric.compute()
        tensor(0.5000, dtype=torch.float64)
    """

    _kind = "iou"


class Dice(_OverlapScore):
    """Stateful Dice coefficient; see :func:`dice` and the module rules.

    State and empty behaviour as :class:`IoU`.

    Example:
        >>> import torch
        >>> metric = Dice(num_classes=2, average="binary")
        >>> metric.update(torch.tensor([[0, 1, 1, 1]]), torch.tensor([[0, 0, 1, 1]]))
        >>> metric.compute()
        tensor(0.8000, dtype=torch.float64)
    """

    _kind = "dice"

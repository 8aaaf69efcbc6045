"""Top-k accuracy, micro and macro averaged."""

from __future__ import annotations

from typing import Literal

import torch

from andante_metrics.accuracy._inputs import check_multiclass_inputs
from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import check_in_choices, check_int_range

Average = Literal["micro", "macro"]


def _check_top_k(top_k: int, num_classes: int) -> None:
    check_int_range(num_classes, "num_classes", low=2)
    check_int_range(top_k, "top_k", low=1)
    if top_k > num_classes:
        raise ValueError(
            f"`top_k` must be at most num_classes={num_classes}, got {top_k}; lower `top_k`."
        )


def _topk_update(
    preds: torch.Tensor, target: torch.Tensor, num_classes: int, top_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return per-class counts of top-k hits and of samples, both ``(num_classes,)`` int64."""
    check_multiclass_inputs(preds, target, num_classes)
    target_score = preds.gather(1, target.long().unsqueeze(1))
    # The rank of the target is the number of classes scoring strictly higher, so a tie with
    # the target never pushes it out of the top k and the hit rate can only grow with k.
    rank = (preds > target_score).sum(dim=1)
    hit = (rank < top_k).long()
    hits = torch.zeros(num_classes, dtype=torch.long, device=preds.device)
    hits.scatter_add_(0, target.long(), hit)
    support = torch.bincount(target.long(), minlength=num_classes)
    return hits, support


def _topk_compute(hits: torch.Tensor, support: torch.Tensor, average: str) -> torch.Tensor:
    if average == "micro":
        return hits.sum().double() / support.sum()
    present = support > 0
    return (hits[present].double() / support[present]).mean()


def topk_accuracy(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int,
    top_k: int = 1,
    average: Average = "micro",
) -> torch.Tensor:
    r"""Compute the fraction of samples whose true class is among the ``top_k`` highest scores.

    A sample counts as a hit when fewer than ``k`` classes score strictly higher than its true
    class, so ties go to the true class and the value never decreases as ``k`` grows.

    .. math::
        \text{micro} = \frac{1}{N}\sum_i [r_i < k], \qquad
        \text{macro} = \frac{1}{|P|}\sum_{c \in P} \frac{1}{N_c}\sum_{i: y_i = c} [r_i < k]

    with :math:`r_i` the number of classes scoring strictly above :math:`y_i` and :math:`P` the
    classes present in ``target`` (absent classes are left out of the macro mean).

    Args:
        preds: ``(N, C)`` float scores (logits or probabilities; only their order matters).
        target: ``(N,)`` integer class indices in ``[0, C)``.
        num_classes: ``C``.
        top_k: ``k``, between 1 and ``C``.
        average: ``"micro"`` (over samples) or ``"macro"`` (over present classes).

    Returns:
        A float64 scalar in [0, 1]. An empty input raises ``ValueError``.

    Source: the definition of scikit-learn's ``top_k_accuracy_score`` (equal for untied scores).

    Example:
        >>> import torch
        >>> preds = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
        >>> topk_accuracy(preds, torch.tensor([2, 2]), num_classes=3, top_k=2)
        tensor(1., dtype=torch.float64)
    """
    _check_top_k(top_k, num_classes)
    check_in_choices(average, "average", ("micro", "macro"))
    hits, support = _topk_update(preds, target, num_classes, top_k)
    if int(support.sum()) == 0:
        raise ValueError("`preds` and `target` are empty; pass at least one sample.")
    return _topk_compute(hits, support, average)


class TopKAccuracy(KPIMetric):
    """Stateful top-k accuracy; see :func:`topk_accuracy` for the definition.

    State: per-class hit counts and per-class sample counts (int64, summed across processes).
    ``compute()`` before any sample raises ``ValueError``.

    Example:
        >>> import torch
        >>> metric = TopKAccuracy(num_classes=3, top_k=1)
        >>> metric.update(torch.tensor([[0.1, 0.6, 0.3]]), torch.tensor([1]))
        >>> metric.update(torch.tensor([[0.5, 0.2, 0.3]]), torch.tensor([2]))
        >>> metric.compute()
        tensor(0.5000, dtype=torch.float64)
    """

    kpi_area = "accuracy"
    unit = "fraction"
    higher_is_better = True

    def __init__(
        self,
        *,
        num_classes: int,
        top_k: int = 1,
        average: Average = "micro",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check_top_k(top_k, num_classes)
        check_in_choices(average, "average", ("micro", "macro"))
        self.num_classes = num_classes
        self.top_k = top_k
        self.average = average
        self.add_state("hits", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("support", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(N, C)`` scores and ``(N,)`` class indices."""
        hits, support = _topk_update(preds, target, self.num_classes, self.top_k)
        self.hits += hits
        self.support += support

    def compute(self) -> torch.Tensor:
        """Return the top-k accuracy of every sample seen so far."""
        self._check_not_empty(self.support.sum())
        return _topk_compute(self.hits, self.support, self.average)

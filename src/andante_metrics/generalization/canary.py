r"""In-loop memorization canaries: a few training samples with wrong labels, tracked every epoch.

A small set of training samples gets labels drawn uniformly from the classes other than the
true one. They stay in the training set for the whole run, and after each epoch the metric
measures the fraction of them the model predicts with the canary label:

.. math:: m = \frac{1}{M} \sum_{i=1}^{M} [\arg\max_k z_{ik} = \tilde y_i]

with logits :math:`z` and canary labels :math:`\tilde y`. The true class is excluded, so
predicting a canary label is never explained by what the model learned from the rest of the
data: :math:`m` rises only as the model memorizes individual samples. Unlike the full random
label probe, it needs no second training run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import (
    check_finite,
    check_int_range,
    check_labels_in_range,
    check_same_first_dim,
    check_tensor,
)


@dataclass
class CanarySet:
    """Training samples picked as canaries and their wrong labels.

    Attributes:
        indices: ``(M,)`` positions of the canaries in the training set.
        labels: ``(M,)`` canary labels, each different from the true label.
        true_labels: ``(M,)`` the original labels of those samples.
    """

    indices: torch.Tensor
    labels: torch.Tensor
    true_labels: torch.Tensor

    def apply(self, labels: torch.Tensor) -> torch.Tensor:
        """Return a copy of the training ``labels`` with the canary labels written in."""
        relabelled = labels.clone()
        relabelled[self.indices.to(labels.device)] = self.labels.to(labels.device, labels.dtype)
        return relabelled


def make_canaries(
    labels: torch.Tensor, num_classes: int, *, count: int, generator: torch.Generator
) -> CanarySet:
    """Pick ``count`` training samples at random and give each a uniform random wrong label.

    Example:
        >>> canaries = make_canaries(torch.arange(10) % 3, 3, count=4,
        ...                          generator=torch.Generator().manual_seed(0))
        >>> bool((canaries.labels != canaries.true_labels).all())
        True
    """
    check_tensor(labels, "labels", ndim=1, dtype="int")
    check_int_range(num_classes, "num_classes", low=2)
    check_labels_in_range(labels, num_classes, "labels")
    check_int_range(count, "count", low=1, high=len(labels))
    indices = torch.randperm(len(labels), generator=generator)[:count]
    true_labels = labels.cpu()[indices]
    # A shift in [1, K-1] modulo K gives each of the K-1 wrong classes with equal probability.
    shift = torch.randint(1, num_classes, (count,), generator=generator)
    return CanarySet(indices, (true_labels + shift) % num_classes, true_labels)


def _check_canary_inputs(preds: torch.Tensor, target: torch.Tensor, num_classes: int) -> None:
    check_tensor(preds, "preds", ndim=2, dtype="float")
    check_tensor(target, "target", ndim=1, dtype="int")
    check_same_first_dim(preds, target, "preds", "target")
    if preds.shape[1] != num_classes:
        raise ValueError(f"`preds` must have num_classes={num_classes} columns, got shape "
                         f"{tuple(preds.shape)}.")
    check_finite(preds, "preds")
    check_labels_in_range(target, num_classes, "target")


def _canary_update(
    preds: torch.Tensor, target: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the number of canaries predicted with their canary label and the number seen."""
    _check_canary_inputs(preds, target, num_classes)
    fitted = (preds.argmax(dim=1) == target).sum()
    return fitted, torch.tensor(len(target), device=preds.device)


def _canary_compute(fitted: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    return fitted.double() / total


def canary_fitted_fraction(
    preds: torch.Tensor, target: torch.Tensor, *, num_classes: int
) -> torch.Tensor:
    """Compute the fraction of canaries whose top-scoring class is their canary label.

    Args:
        preds: ``(M, K)`` logits or probabilities of the canary samples.
        target: ``(M,)`` canary labels (the wrong labels they were trained with).
        num_classes: number of classes ``K``.

    Returns:
        A float64 scalar in [0, 1]; an empty batch raises ``ValueError``.

    Example:
        >>> preds = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> canary_fitted_fraction(preds, torch.tensor([0, 0]), num_classes=2)
        tensor(0.5000, dtype=torch.float64)
    """
    check_int_range(num_classes, "num_classes", low=2)
    fitted, total = _canary_update(preds, target, num_classes)
    if int(total) == 0:
        raise ValueError("`target` is empty; pass the predictions of at least one canary.")
    return _canary_compute(fitted, total)


class CanaryMemorization(KPIMetric):
    r"""Fraction of canary samples the model has fitted with their wrong labels.

    Call ``update(preds, target)`` with the model's outputs on the canary samples and their
    canary labels (:attr:`CanarySet.labels`) once per epoch, then ``compute()`` and
    ``reset()``. The sequence of values is the memorization curve. The formula is in the module
    docstring. With no update, ``compute()`` raises ``ValueError``.

    The direction is left open (``higher_is_better=None``): a high value shows capacity to
    memorize, which is harmful on noisy labels but not a defect by itself.

    Args:
        num_classes: number of classes ``K``.

    Example:
        >>> metric = CanaryMemorization(num_classes=3)
        >>> metric.update(torch.eye(3), torch.tensor([0, 2, 2]))
        >>> metric.compute()
        tensor(0.6667, dtype=torch.float64)
    """

    kpi_area = "generalization"
    unit = "fraction"
    higher_is_better = None

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        check_int_range(num_classes, "num_classes", low=2)
        self.num_classes = num_classes
        self.add_state("fitted", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Count the canaries of this batch predicted with their canary label."""
        fitted, total = _canary_update(preds, target, self.num_classes)
        self.fitted += fitted.to(self.fitted.device)
        self.total += total.to(self.total.device)

    def compute(self) -> torch.Tensor:
        """Return the fitted fraction of every canary seen since the last reset."""
        self._check_not_empty(self.total)
        return _canary_compute(self.fitted, self.total)

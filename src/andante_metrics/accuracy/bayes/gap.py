"""Gap to Bayes: how far a model's error is above the Bayes error of its data."""

from __future__ import annotations

import math
from typing import Literal

import torch

from andante_metrics.accuracy._inputs import check_multiclass_inputs
from andante_metrics.accuracy.bayes.estimator import BayesErrorResult
from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import check_in_choices, check_int_range

Reference = Literal["estimate", "lower", "upper"]
REFERENCES = ("estimate", "lower", "upper")


def _reference_value(bayes_error: float | BayesErrorResult, reference: str) -> float:
    """Return the Bayes-error value the gap is measured from, checked to lie in [0, 1]."""
    check_in_choices(reference, "reference", REFERENCES)
    if isinstance(bayes_error, BayesErrorResult):
        value = getattr(bayes_error, reference)
        if math.isnan(value):
            raise ValueError(
                f"`bayes_error` from method={bayes_error.method!r} has no {reference!r} (NaN); "
                f"pass reference='upper' (the smallest gap the bounds allow) or 'lower' for "
                f"knn and ghp, or reference='estimate' for soft_label."
            )
        return value
    if isinstance(bayes_error, bool) or not isinstance(bayes_error, (int, float)):
        raise TypeError(
            f"`bayes_error` must be a float or a BayesErrorResult, got {bayes_error!r} "
            f"({type(bayes_error).__name__})."
        )
    if not 0.0 <= bayes_error <= 1.0:
        raise ValueError(f"`bayes_error` must lie in [0, 1], got {bayes_error!r}.")
    return float(bayes_error)


def gap_to_bayes(
    model_error: float | torch.Tensor,
    bayes_error: float | BayesErrorResult,
    *,
    reference: Reference = "estimate",
) -> torch.Tensor:
    r"""Return the model's error minus the Bayes error of the data, :math:`e - \varepsilon^*`.

    A gap near zero means the model is close to the best any classifier can do on this data,
    so further work on the model gains little. A negative gap means the Bayes-error figure is
    too high (an upper bound, or an estimate from over-smoothed soft labels) or the model's
    error was measured on too few samples.

    Args:
        model_error: the model's top-1 error rate in [0, 1], measured on held-out data.
        bayes_error: a Bayes-error value in [0, 1] or a :class:`BayesErrorResult`.
        reference: which field of a result to use: ``"estimate"`` (``soft_label``),
            ``"upper"`` (the smallest gap the bounds of ``knn`` or ``ghp`` allow) or ``"lower"``
            (the largest). Ignored for a plain value.

    Returns:
        A float64 scalar in [-1, 1]. A NaN field selected by ``reference`` raises
        ``ValueError``.

    Example:
        >>> gap_to_bayes(0.12, 0.05)
        tensor(0.0700, dtype=torch.float64)
    """
    value = _reference_value(bayes_error, reference)
    error = torch.as_tensor(model_error, dtype=torch.float64)
    if error.numel() != 1 or not 0.0 <= float(error) <= 1.0:
        raise ValueError(f"`model_error` must be one value in [0, 1], got {model_error!r}.")
    return error.reshape(()) - value


class GapToBayes(KPIMetric):
    """Stateful gap to Bayes: top-1 error of the accumulated predictions minus the Bayes error.

    The Bayes error (a number or a :class:`BayesErrorResult` with ``reference``) is fixed at
    construction; ``update(preds, target)`` counts top-1 errors of ``(N, C)`` scores against
    ``(N,)`` labels, with ties going to the smallest class index. State: error and sample
    counts (int64, summed across processes). ``compute()`` before any sample raises
    ``ValueError``.

    Example:
        >>> import torch
        >>> metric = GapToBayes(num_classes=2, bayes_error=0.25)
        >>> metric.update(torch.tensor([[2.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        >>> metric.compute()
        tensor(0.2500, dtype=torch.float64)
    """

    kpi_area = "accuracy"
    unit = "fraction"
    higher_is_better = False

    def __init__(
        self,
        *,
        num_classes: int,
        bayes_error: float | BayesErrorResult,
        reference: Reference = "estimate",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_int_range(num_classes, "num_classes", low=2)
        self.bayes_value = _reference_value(bayes_error, reference)
        self.num_classes = num_classes
        self.add_state("errors", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(N, C)`` scores and ``(N,)`` class indices."""
        check_multiclass_inputs(preds, target, self.num_classes)
        self.errors += (preds.argmax(dim=1) != target.long()).sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        """Return the top-1 error of every sample seen so far minus the Bayes error."""
        self._check_not_empty(self.total)
        return gap_to_bayes(self.errors.double() / self.total, self.bayes_value)

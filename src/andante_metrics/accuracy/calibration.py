"""Calibration KPIs: top-label ECE and MCE, reliability diagram, Brier score and NLL."""

from __future__ import annotations

import torch

from andante_metrics.accuracy._inputs import (
    INPUT_KINDS,
    InputKind,
    check_multiclass_inputs,
    to_probabilities,
)
from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import check_in_choices, check_int_range

DEFAULT_BINS = 15


def _binned_update(
    preds: torch.Tensor, target: torch.Tensor, num_classes: int, input_kind: str, n_bins: int
) -> torch.Tensor:
    """Return ``(3, n_bins)`` float64 sums per bin: sample count, confidence, correct.

    The confidence is the top-label probability. Bins are equal-width on [0, 1]; bin ``b``
    holds confidences in ``[b/M, (b+1)/M)``, and the last bin is closed on the right so that a
    confidence of exactly 1.0 is counted in it.
    """
    check_multiclass_inputs(preds, target, num_classes)
    probs = to_probabilities(preds, input_kind)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == target.long()).double()
    bins = (confidence * n_bins).floor().long().clamp_(0, n_bins - 1)
    sums = torch.zeros(3, n_bins, dtype=torch.float64, device=preds.device)
    sums[0].index_add_(0, bins, torch.ones_like(confidence))
    sums[1].index_add_(0, bins, confidence)
    sums[2].index_add_(0, bins, correct)
    return sums


def _bin_gaps(sums: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return per-bin weights, |accuracy - confidence| gaps and the non-empty mask."""
    count, conf_sum, correct_sum = sums
    filled = count > 0
    safe = count.clamp(min=1.0)
    gaps = (correct_sum / safe - conf_sum / safe).abs()
    return count / count.sum(), gaps, filled


def _ece_compute(sums: torch.Tensor) -> torch.Tensor:
    weights, gaps, filled = _bin_gaps(sums)
    return (weights[filled] * gaps[filled]).sum()


def _mce_compute(sums: torch.Tensor) -> torch.Tensor:
    _, gaps, filled = _bin_gaps(sums)
    return gaps[filled].max()


def _check_binning(num_classes: int, n_bins: int, input_kind: str) -> None:
    check_int_range(num_classes, "num_classes", low=2)
    check_int_range(n_bins, "n_bins", low=1)
    check_in_choices(input_kind, "input", INPUT_KINDS)


def expected_calibration_error(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int,
    input: InputKind,
    n_bins: int = DEFAULT_BINS,
) -> torch.Tensor:
    r"""Compute the top-label expected calibration error with equal-width bins.

    .. math::
        \mathrm{ECE} = \sum_{b=1}^{M} \frac{n_b}{N} \left| \mathrm{acc}_b - \mathrm{conf}_b \right|

    where the confidence of a sample is its largest class probability, :math:`\mathrm{acc}_b`
    the fraction of samples in bin :math:`b` whose top class is right and
    :math:`\mathrm{conf}_b` their mean confidence. Bins split [0, 1] into ``n_bins`` equal
    widths, ``[b/M, (b+1)/M)``, the last closed on the right so a confidence of 1.0 counts.

    Args:
        preds: ``(N, C)`` logits or probabilities, as ``input`` states.
        target: ``(N,)`` class indices.
        num_classes: ``C``.
        input: ``"logits"`` (softmax applied) or ``"probs"``.
        n_bins: ``M``, 15 by default as in Guo et al.

    Returns:
        A float64 scalar in [0, 1]; empty input raises ``ValueError``.

    Source: Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks",
    ICML 2017 (top-label ECE, 15 bins); the tests match netcal's ``ECE``.

    Example:
        >>> import torch
        >>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
        >>> target = torch.tensor([0, 1, 1])
        >>> expected_calibration_error(probs, target, num_classes=2, input="probs")
        tensor(0.3333, dtype=torch.float64)
    """
    _check_binning(num_classes, n_bins, input)
    sums = _binned_update(preds, target, num_classes, input, n_bins)
    if sums[0].sum() == 0:
        raise ValueError("`preds` and `target` are empty; pass at least one sample.")
    return _ece_compute(sums)


def max_calibration_error(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int,
    input: InputKind,
    n_bins: int = DEFAULT_BINS,
) -> torch.Tensor:
    r"""Compute the top-label maximum calibration error, the largest gap over non-empty bins.

    .. math::
        \mathrm{MCE} = \max_{b:\, n_b > 0} \left| \mathrm{acc}_b - \mathrm{conf}_b \right|

    Binning as in :func:`expected_calibration_error`. Source: Naeini, Cooper and Hauskrecht,
    "Obtaining Well Calibrated Probabilities Using Bayesian Binning", AAAI 2015.
    """
    _check_binning(num_classes, n_bins, input)
    sums = _binned_update(preds, target, num_classes, input, n_bins)
    if sums[0].sum() == 0:
        raise ValueError("`preds` and `target` are empty; pass at least one sample.")
    return _mce_compute(sums)


class _TopLabelBinned(KPIMetric):
    """Shared state of the binned calibration metrics: per-bin count, confidence, correct."""

    kpi_area = "accuracy"

    def __init__(
        self, *, num_classes: int, input: InputKind, n_bins: int = DEFAULT_BINS, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        _check_binning(num_classes, n_bins, input)
        self.num_classes = num_classes
        self.input = input
        self.n_bins = n_bins
        self.add_state(
            "bin_sums", torch.zeros(3, n_bins, dtype=torch.float64), dist_reduce_fx="sum"
        )

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(N, C)`` scores and ``(N,)`` class indices."""
        self.bin_sums += _binned_update(preds, target, self.num_classes, self.input, self.n_bins)


class ExpectedCalibrationError(_TopLabelBinned):
    """Top-label ECE with equal-width bins; see :func:`expected_calibration_error`.

    State: three float64 sums per bin, summed across processes.
    """

    unit = "fraction"
    higher_is_better = False

    def compute(self) -> torch.Tensor:
        """Return the ECE of every sample seen so far."""
        self._check_not_empty(self.bin_sums[0].sum())
        return _ece_compute(self.bin_sums)


class MaxCalibrationError(_TopLabelBinned):
    """Top-label MCE with equal-width bins; see :func:`max_calibration_error`."""

    unit = "fraction"
    higher_is_better = False

    def compute(self) -> torch.Tensor:
        """Return the MCE of every sample seen so far."""
        self._check_not_empty(self.bin_sums[0].sum())
        return _mce_compute(self.bin_sums)


class ReliabilityDiagram(_TopLabelBinned):
    """Data of a top-label reliability diagram with equal-width bins.

    ``compute()`` returns a dict of ``(n_bins,)`` float64 tensors: ``bin_lower`` and
    ``bin_upper`` edges, ``count``, ``confidence`` (mean per bin) and ``accuracy`` (per bin).
    Empty bins have count 0 and NaN confidence and accuracy, since neither is defined there.
    """

    unit = ""
    higher_is_better = None

    def compute(self) -> dict[str, torch.Tensor]:
        """Return the per-bin counts, mean confidences and accuracies."""
        self._check_not_empty(self.bin_sums[0].sum())
        count, conf_sum, correct_sum = self.bin_sums
        empty = torch.full_like(count, float("nan"))
        edges = torch.linspace(0.0, 1.0, self.n_bins + 1, dtype=torch.float64)
        return {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "count": count.clone(),
            "confidence": torch.where(count > 0, conf_sum / count.clamp(min=1.0), empty),
            "accuracy": torch.where(count > 0, correct_sum / count.clamp(min=1.0), empty),
        }


def _proper_score_update(
    preds: torch.Tensor, target: torch.Tensor, num_classes: int, input_kind: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the summed Brier score, summed NLL and the sample count of a batch (float64)."""
    check_multiclass_inputs(preds, target, num_classes)
    if input_kind == "logits":
        log_probs = preds.double().log_softmax(dim=1)
        probs = log_probs.exp()
    else:
        probs = to_probabilities(preds, input_kind)
        log_probs = probs.log()
    one_hot = torch.nn.functional.one_hot(target.long(), num_classes).double()
    brier = ((probs - one_hot) ** 2).sum()
    nll = -log_probs.gather(1, target.long().unsqueeze(1)).sum()
    count = torch.tensor(float(target.numel()), dtype=torch.float64, device=preds.device)
    return brier, nll, count


def brier_score(
    preds: torch.Tensor, target: torch.Tensor, *, num_classes: int, input: InputKind
) -> torch.Tensor:
    r"""Compute the multiclass Brier score, the mean squared distance to the one-hot target.

    .. math::
        \mathrm{BS} = \frac{1}{N}\sum_{i=1}^{N}\sum_{k=1}^{C} (p_{ik} - [y_i = k])^2

    This is Brier's original multiclass form, with range [0, 2]; scikit-learn's
    ``brier_score_loss`` with ``scale_by_half=False`` returns the same value.

    Source: Brier, "Verification of Forecasts Expressed in Terms of Probability", Monthly
    Weather Review 1950.
    """
    check_int_range(num_classes, "num_classes", low=2)
    check_in_choices(input, "input", INPUT_KINDS)
    brier, _, count = _proper_score_update(preds, target, num_classes, input)
    if count == 0:
        raise ValueError("`preds` and `target` are empty; pass at least one sample.")
    return brier / count


def negative_log_likelihood(
    preds: torch.Tensor, target: torch.Tensor, *, num_classes: int, input: InputKind
) -> torch.Tensor:
    r"""Compute the mean negative log-likelihood (cross-entropy) of the true class, in nats.

    .. math::
        \mathrm{NLL} = -\frac{1}{N}\sum_{i=1}^{N} \log p_{i, y_i}

    With ``input="logits"`` the log-probabilities come from ``log_softmax`` (no overflow). With
    ``input="probs"`` a zero probability on the true class gives ``inf``, which is the value of
    the definition, not an error. Source: scikit-learn's ``log_loss`` (without its clipping).
    """
    check_int_range(num_classes, "num_classes", low=2)
    check_in_choices(input, "input", INPUT_KINDS)
    _, nll, count = _proper_score_update(preds, target, num_classes, input)
    if count == 0:
        raise ValueError("`preds` and `target` are empty; pass at least one sample.")
    return nll / count


class _ProperScore(KPIMetric):
    """Shared state of the Brier score and NLL: their sums and the sample count."""

    kpi_area = "accuracy"
    higher_is_better = False

    def __init__(self, *, num_classes: int, input: InputKind, **kwargs) -> None:
        super().__init__(**kwargs)
        check_int_range(num_classes, "num_classes", low=2)
        check_in_choices(input, "input", INPUT_KINDS)
        self.num_classes = num_classes
        self.input = input
        self.add_state("brier_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("nll_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of ``(N, C)`` scores and ``(N,)`` class indices."""
        brier, nll, count = _proper_score_update(preds, target, self.num_classes, self.input)
        self.brier_sum += brier
        self.nll_sum += nll
        self.count += count


class BrierScore(_ProperScore):
    """Multiclass Brier score (range [0, 2]); see :func:`brier_score`."""

    unit = "score"

    def compute(self) -> torch.Tensor:
        """Return the mean Brier score of every sample seen so far."""
        self._check_not_empty(self.count)
        return self.brier_sum / self.count


class NegativeLogLikelihood(_ProperScore):
    """Mean negative log-likelihood in nats; see :func:`negative_log_likelihood`."""

    unit = "nats"

    def compute(self) -> torch.Tensor:
        """Return the mean NLL of every sample seen so far."""
        self._check_not_empty(self.count)
        return self.nll_sum / self.count

r"""Expected MACs of an early-exit model from the exit each sample took.

An early-exit model with exits :math:`k = 0, \dots, K-1` runs backbone stage :math:`k` and then
exit head :math:`k`; a sample leaves at the first head that is confident enough. The cumulative
cost of leaving at exit :math:`k` includes every earlier stage and every earlier head, because
those heads were evaluated and rejected:

.. math::

    C_k = \sum_{j \le k} (s_j + h_j), \qquad E[C] = \sum_k q_k C_k,

with :math:`s_j` the MACs of stage :math:`j`, :math:`h_j` those of head :math:`j` and
:math:`q_k` the fraction of samples that left at exit :math:`k`: the expectation of the
per-exit cost under the exit distribution observed on the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import check_tensor


def cumulative_exit_costs(stage_macs: Sequence[float], head_macs: Sequence[float]) -> torch.Tensor:
    r"""Return :math:`C_k = \sum_{j \le k} (s_j + h_j)`, the MACs of leaving at each exit.

    Args:
        stage_macs: MACs of each backbone stage, in the order the exits follow them.
        head_macs: MACs of each exit head, same length.

    Returns:
        A float64 tensor of shape ``(K,)``.

    Example:
        >>> cumulative_exit_costs([100, 100, 100], [10, 10, 20])
        tensor([110., 220., 340.], dtype=torch.float64)
    """
    stages = torch.as_tensor(stage_macs, dtype=torch.float64)
    heads = torch.as_tensor(head_macs, dtype=torch.float64)
    if stages.ndim != 1 or stages.shape != heads.shape or stages.numel() == 0:
        raise ValueError(
            f"`stage_macs` and `head_macs` must be non-empty sequences of the same length, got "
            f"lengths {stages.numel()} and {heads.numel()}."
        )
    if bool((stages < 0).any()) or bool((heads < 0).any()):
        raise ValueError("`stage_macs` and `head_macs` must not contain negative costs.")
    return torch.cumsum(stages + heads, dim=0)


def _check_costs(exit_costs: Any) -> torch.Tensor:
    costs = torch.as_tensor(exit_costs, dtype=torch.float64)
    if costs.ndim != 1 or costs.numel() == 0:
        raise ValueError(
            f"`exit_costs` must be a non-empty 1-D sequence of MACs per exit, got shape "
            f"{tuple(costs.shape)}."
        )
    if not bool(torch.isfinite(costs).all()) or bool((costs < 0).any()):
        raise ValueError(f"`exit_costs` must be finite and non-negative, got {costs.tolist()}.")
    return costs


def _update(exit_index: torch.Tensor, num_exits: int) -> torch.Tensor:
    check_tensor(exit_index, "exit_index", ndim=1, dtype="int")
    if exit_index.numel() and (int(exit_index.min()) < 0 or int(exit_index.max()) >= num_exits):
        raise ValueError(
            f"`exit_index` must be in [0, {num_exits - 1}] (one entry per exit cost), got values "
            f"from {int(exit_index.min())} to {int(exit_index.max())}."
        )
    return torch.bincount(exit_index.long().cpu(), minlength=num_exits).to(torch.float64)


def _compute(exit_counts: torch.Tensor, costs: torch.Tensor) -> torch.Tensor:
    fractions = exit_counts / exit_counts.sum()
    return (fractions * costs.to(fractions.device)).sum()


def expected_exit_macs(exit_index: torch.Tensor, exit_costs: Sequence[float]) -> torch.Tensor:
    r"""Return :math:`E[C] = \sum_k q_k C_k`, the mean MACs per sample of an early-exit model.

    Args:
        exit_index: integer tensor ``(N,)``, the exit each sample left at (0 is the first).
        exit_costs: :math:`C_k` per exit, cumulative including the earlier exit heads (see
            :func:`cumulative_exit_costs`).

    Returns:
        A float64 scalar in MACs. An empty ``exit_index`` raises ``ValueError``.

    Example:
        >>> expected_exit_macs(torch.tensor([0, 0, 1, 2]), [110.0, 220.0, 340.0])
        tensor(195., dtype=torch.float64)
    """
    costs = _check_costs(exit_costs)
    counts = _update(exit_index, costs.numel())
    if counts.sum() == 0:
        raise ValueError("`exit_index` must contain at least one sample, got an empty tensor.")
    return _compute(counts, costs)


class ExpectedExitMACs(KPIMetric):
    r"""Expected MACs per sample of an early-exit model, :math:`E[C] = \sum_k q_k C_k`.

    ``update(exit_index)`` adds the exits that a batch of samples took; ``compute()`` weighs the
    cumulative exit costs by the fraction of samples at each exit. Also returned per exit by
    :meth:`exit_fractions`.

    Args:
        exit_costs: :math:`C_k` per exit in MACs, cumulative including earlier exit heads.

    ``compute()`` returns a float64 scalar; with no sample seen it raises ``ValueError``.

    Example:
        >>> metric = ExpectedExitMACs([110.0, 220.0, 340.0])
        >>> metric.update(torch.tensor([0, 0, 1, 2]))
        >>> metric.compute()
        tensor(195., dtype=torch.float64)
    """

    kpi_area = "efficiency"
    unit = "MACs"
    higher_is_better = False

    def __init__(self, exit_costs: Sequence[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        costs = _check_costs(exit_costs)
        self.register_buffer("exit_costs", costs, persistent=False)
        self.add_state("exit_counts", torch.zeros(costs.numel(), dtype=torch.float64),
                       dist_reduce_fx="sum")

    def update(self, exit_index: torch.Tensor) -> None:
        """Add the exit index of each sample of a batch."""
        self.exit_counts += _update(exit_index, self.exit_costs.numel()).to(self.exit_counts.device)

    def compute(self) -> torch.Tensor:
        """Return the expected MACs per sample over every sample seen."""
        self._check_not_empty(self.exit_counts.sum())
        return _compute(self.exit_counts, self.exit_costs)

    def exit_fractions(self) -> torch.Tensor:
        """Return :math:`q_k`, the fraction of samples that left at each exit."""
        self._check_not_empty(self.exit_counts.sum())
        return self.exit_counts / self.exit_counts.sum()

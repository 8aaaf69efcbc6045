"""Model-parameter randomization check (Adebayo et al., Sanity Checks for Saliency Maps, 2018)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from andante_metrics.interpretability._core import (
    AttributeFn,
    check_grad_mode,
    check_inputs,
    eval_mode,
    pearson_rows,
    predicted_or_checked_target,
)
from andante_metrics.utilities.checks import check_module
from andante_metrics.utilities.logging import warn_once


def randomized_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """Return a deep copy of ``model`` with every module's parameters re-initialized.

    Each module with a ``reset_parameters`` method re-draws its weights with its own default
    initialization, from a random state seeded by ``seed`` inside ``torch.random.fork_rng``,
    so the caller's global random state is restored afterwards. Modules without
    ``reset_parameters`` keep their weights, and a warning names how many there were.
    """
    check_module(model)
    clone = copy.deepcopy(model)
    devices = [p.device for p in clone.parameters() if p.device.type == "cuda"]
    kept = 0
    with torch.random.fork_rng(devices=sorted({d.index or 0 for d in devices})):
        torch.manual_seed(seed)
        for module in clone.modules():
            own = list(module.parameters(recurse=False))
            if not own:
                continue
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            else:
                kept += 1
    if kept:
        warn_once(
            f"randomized_copy_kept_{type(model).__name__}",
            f"{kept} module(s) of {type(model).__name__} have parameters but no "
            f"reset_parameters(); the randomized copy keeps their trained weights.",
        )
    return clone


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Return the ranks of each row of ``(N, E)`` values, ties sharing their average rank."""
    ranks = torch.empty_like(values, dtype=torch.float64)
    for row, out in zip(values, ranks, strict=True):
        unique, inverse, counts = torch.unique(row, return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).double()
        out.copy_(((ends - counts.double() + 1 + ends) / 2)[inverse])
    return ranks


def spearman_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return Spearman's rank correlation of each row pair of ``(N, E)`` tensors.

    Ties take the average rank, as ``scipy.stats.spearmanr`` does; a constant row gives NaN.
    """
    return pearson_rows(_average_ranks(a.double()), _average_ranks(b.double()))


def model_randomization_check(
    model: nn.Module,
    inputs: torch.Tensor,
    attribute: AttributeFn,
    *,
    target: torch.Tensor | None = None,
    absolute: bool = True,
    seed: int = 0,
    randomized_model: nn.Module | None = None,
) -> torch.Tensor:
    r"""Compare attributions of the model with those of a re-initialized copy (Adebayo et al.).

    The value per sample is Spearman's rank correlation between the flattened attribution maps
    :math:`\Phi(f, x)` and :math:`\Phi(\tilde f, x)`, where :math:`\tilde f` is the model with
    all parameters re-initialized (:func:`randomized_copy`), both for the target class of the
    trained model. With ``absolute`` the ranks are those of :math:`|\Phi|`, as in the paper's
    main figures. A method that depends on the model drops towards 0; an "explanation" that
    ignores the model (the input itself, an edge detector) stays at 1. Lower is better.

    Cost: one attribution of the batch on each model. A constant attribution map gives NaN.

    Returns:
        ``(N,)`` float64 rank correlations in ``[-1, 1]``.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(),
        ...                             torch.nn.Linear(8, 2))
        >>> x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
        >>> model_randomization_check(model, x, lambda m, inputs, t: inputs)
        tensor([1., 1., 1.], dtype=torch.float64)
    """
    check_module(model)
    check_grad_mode()
    check_inputs(inputs)
    if randomized_model is None:
        randomized_model = randomized_copy(model, seed)
    check_module(randomized_model, "randomized_model")
    with eval_mode(model, randomized_model), torch.enable_grad():
        target, _ = predicted_or_checked_target(model, inputs, target)
        trained = attribute(model, inputs, target).detach().reshape(len(inputs), -1)
        randomized = attribute(randomized_model, inputs, target).detach().reshape(len(inputs), -1)
    if absolute:
        trained, randomized = trained.abs(), randomized.abs()
    return spearman_rows(trained, randomized)

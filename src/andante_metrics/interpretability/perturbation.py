"""Perturbation scores of attributions: deletion and insertion curves, faithfulness correlation."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from andante_metrics.interpretability._core import (
    Baseline,
    Score,
    check_attributions,
    check_grad_mode,
    check_inputs,
    check_options,
    chunk_size,
    clean_scores,
    differing_units,
    eval_mode,
    make_baseline,
    masked_scores,
    pearson_rows,
    predicted_or_checked_target,
    sample_generators,
    unit_map,
    unit_relevance,
)
from andante_metrics.utilities.checks import (
    check_finite,
    check_in_choices,
    check_int_range,
    check_module,
    check_positive,
    check_tensor,
)

Mode = Literal["deletion", "insertion"]
Order = Literal["most_relevant_first", "least_relevant_first"]
MODES = ("deletion", "insertion")
ORDERS = ("most_relevant_first", "least_relevant_first")


def _unit_ranks(relevance: torch.Tensor, order: str) -> torch.Tensor:
    """Return the position of each unit in the perturbation order: ``(N, U)`` int64.

    Ties keep the unit index order (a stable sort), so equal relevances are removed in a
    fixed order.
    """
    sorted_units = torch.sort(
        relevance, dim=1, descending=order == "most_relevant_first", stable=True
    ).indices
    ranks = torch.empty_like(sorted_units)
    positions = torch.arange(relevance.shape[1], device=relevance.device)
    return ranks.scatter_(1, sorted_units, positions.expand_as(sorted_units))


def _step_counts(num_units: int, steps: int | None) -> torch.Tensor:
    """Return how many units are perturbed at each of the ``S + 1`` points of the curve."""
    total = num_units if steps is None else steps
    fractions = torch.arange(total + 1, dtype=torch.float64) / total
    return torch.round(fractions * num_units).long()


def perturbation_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    mode: Mode = "deletion",
    order: Order = "most_relevant_first",
    baseline: Baseline = "zeros",
    steps: int | None = None,
    patch_size: int = 1,
    score: Score = "probability",
    blur_sigma: float = 1.0,
    max_batch: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Compute deletion or insertion curves of attributions (Petsiuk et al., RISE, BMVC 2018).

    The units (pixels or patches, see below) are ranked by their relevance, the sum of the
    attributions over their elements. At step :math:`s = 0, \dots, S` the first
    :math:`n_s = \mathrm{round}(s U / S)` units of that order are

    * ``"deletion"``: replaced by the baseline, starting from the input;
    * ``"insertion"``: copied from the input, starting from the baseline;

    and the curve records the score of the target class. The curve's point ``s`` sits at the
    step fraction :math:`s / S`, so :func:`curve_area` integrates it over ``[0, 1]``.

    Units: for images ``(N, C, H, W)`` a unit is a ``patch_size`` square of pixels over all
    channels (edge patches may be smaller); for other shapes ``(N, *)`` a unit is one element.

    Cost: at most ``S + 1`` forward passes per sample, evaluated ``max_batch`` copies at a
    time; a step that only perturbs units equal to the baseline reuses the previous score.

    Args:
        model: the classifier; it runs in ``eval()`` mode, its previous mode restored.
        inputs: ``(N, ...)`` float inputs.
        attributions: float attributions of the inputs' shape.
        target: ``(N,)`` class indices; the predicted class of each input when None.
        mode: ``"deletion"`` or ``"insertion"``.
        order: ``"most_relevant_first"`` (the usual curve) or ``"least_relevant_first"``.
        baseline: ``"zeros"``, ``"channel_mean"`` (each sample's per-channel mean) or
            ``"blur"`` (the input blurred by a Gaussian of ``blur_sigma`` pixels).
        steps: the number of steps ``S``; None takes one unit per step (``S = U``).
        patch_size: the side of a unit in pixels (images only).
        score: ``"probability"`` (softmax) or ``"logit"`` of the target class.
        blur_sigma: the standard deviation of the blur baseline, in pixels.
        max_batch: the largest number of perturbed copies in one forward pass; None takes at most
            512 copies and 2**22 input elements.

    Returns:
        ``(fractions, curves)``: ``(S + 1,)`` step fractions and ``(N, S + 1)`` float64 scores.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(4, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]]))
        >>> x = torch.ones(1, 4)
        >>> fractions, curve = perturbation_curve(model, x, model.weight[:1] * x, score="logit")
        >>> curve
        tensor([[10.,  6.,  3.,  1.,  0.]], dtype=torch.float64)
    """
    check_module(model)
    check_grad_mode()
    check_inputs(inputs)
    check_attributions(attributions, inputs)
    check_options(baseline, score, patch_size, inputs)
    check_in_choices(mode, "mode", MODES)
    check_in_choices(order, "order", ORDERS)
    if steps is not None:
        check_int_range(steps, "steps", low=1)
    check_positive(blur_sigma, "blur_sigma")
    if max_batch is not None:
        check_int_range(max_batch, "max_batch", low=1)

    units = unit_map(inputs.shape[1:], patch_size, inputs.device)
    relevance = unit_relevance(attributions, units)
    ranks = _unit_ranks(relevance, order)
    counts = _step_counts(relevance.shape[1], steps).to(inputs.device)
    # Unit u is perturbed at step s when its rank is below n_s: (N, S + 1, U).
    perturbed = ranks[:, None, :] < counts[None, :, None]
    replaced = perturbed if mode == "deletion" else ~perturbed

    with eval_mode(model):
        target, _ = predicted_or_checked_target(model, inputs, target)
        fill = make_baseline(inputs, baseline, blur_sigma)
        # A step whose newly perturbed units all equal the baseline leaves the copy as it was
        # at the step before, so it reuses that score instead of running the model.
        step_of_unit = torch.searchsorted(counts, ranks, right=True)
        changed = torch.zeros(len(inputs), len(counts), dtype=torch.long, device=inputs.device)
        changed.scatter_reduce_(1, step_of_unit, differing_units(inputs, fill, units).long(),
                                reduce="amax")
        changed = changed.bool()
        changed[:, 0] = True
        curves = masked_scores(model, inputs, fill, replaced, units, target, score,
                               chunk_size(max_batch, inputs), evaluate=changed)
    positions = torch.arange(len(counts), device=inputs.device).expand_as(changed)
    last_evaluated = torch.where(changed, positions, 0).cummax(dim=1).values
    curves = curves.gather(1, last_evaluated)
    fractions = torch.arange(len(counts), dtype=torch.float64) / (len(counts) - 1)
    return fractions, curves


def curve_area(curves: torch.Tensor) -> torch.Tensor:
    """Integrate ``(N, S + 1)`` curves over the step fraction in ``[0, 1]`` (trapezoidal rule).

    With probability scores the area lies in ``[0, 1]``. Lower is better for a deletion curve
    with the most relevant units first, higher for an insertion curve.

    Example:
        >>> curve_area(torch.tensor([[1.0, 0.0, 0.0]]))
        tensor([0.2500])
    """
    check_tensor(curves, "curves", dtype="float")
    check_finite(curves, "curves")
    steps = curves.shape[-1] - 1
    if steps < 1:
        raise ValueError(f"`curves` must hold at least 2 points, got shape {tuple(curves.shape)}.")
    return torch.trapezoid(curves, dx=1.0 / steps, dim=-1)


def _random_subsets(
    generators: list[torch.Generator], num_units: int, subsets: int, subset_size: int
) -> torch.Tensor:
    rows = [
        torch.stack([torch.randperm(num_units, generator=g)[:subset_size] for _ in range(subsets)])
        for g in generators
    ]
    return torch.stack(rows)


def faithfulness_correlation(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    baseline: Baseline = "zeros",
    subsets: int = 32,
    subset_size: int | None = None,
    patch_size: int = 1,
    score: Score = "probability",
    blur_sigma: float = 1.0,
    seed: int = 0,
    subset_indices: torch.Tensor | None = None,
    max_batch: int | None = None,
) -> torch.Tensor:
    r"""Compute the faithfulness correlation of attributions (Bhatt et al., IJCAI 2020).

    For each sample, ``subsets`` random sets :math:`S_r` of ``subset_size`` units are replaced
    by the baseline. The value is the Pearson correlation over :math:`r` between the
    attribution mass :math:`\sum_{i \in S_r} a_i` and the score drop
    :math:`f(x) - f(x_{S_r \leftarrow b})`:

    .. math:: \rho = \mathrm{corr}_r\Big(\sum_{i \in S_r} a_i,\; f(x) - f(x_{S_r \leftarrow b})\Big)

    For a linear model with the logit score and zero baseline, gradient times input gives
    exactly 1. A sample whose masses or drops are all equal has an undefined correlation: NaN.

    The subsets come from a generator seeded by ``seed`` and the sample's bytes, so the value
    does not depend on batching. ``subset_indices`` ``(N, R, m)`` gives them explicitly.
    Units, baselines and scores are those of :func:`perturbation_curve`. Cost: at most
    ``subsets + 1`` forward passes per sample (a subset equal to the baseline is skipped).

    Returns:
        ``(N,)`` float64 correlations in ``[-1, 1]``; higher is better.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(6, 2)
        >>> x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
        >>> exact = model.weight[:1].detach() * x  # gradient times input of output 0
        >>> rho = faithfulness_correlation(model, x, exact, target=torch.zeros(3, dtype=torch.long),
        ...                                subset_size=2, score="logit")
        >>> torch.allclose(rho, torch.ones(3, dtype=torch.float64))
        True
    """
    check_module(model)
    check_grad_mode()
    check_inputs(inputs)
    check_attributions(attributions, inputs)
    check_options(baseline, score, patch_size, inputs)
    check_positive(blur_sigma, "blur_sigma")
    if max_batch is not None:
        check_int_range(max_batch, "max_batch", low=1)
    units = unit_map(inputs.shape[1:], patch_size, inputs.device)
    relevance = unit_relevance(attributions, units)
    num_units = relevance.shape[1]

    if subset_indices is None:
        check_int_range(subsets, "subsets", low=2)
        size = max(1, num_units // 4) if subset_size is None else subset_size
        check_int_range(size, "subset_size", low=1, high=num_units)
        generators = sample_generators(inputs, seed, 1)
        subset_indices = _random_subsets(generators, num_units, subsets, size)
    elif subset_indices.ndim != 3 or subset_indices.shape[0] != len(inputs):
        raise ValueError(
            f"`subset_indices` must have shape (N, R, m) with N={len(inputs)}, got "
            f"{tuple(subset_indices.shape)}."
        )
    subset_indices = subset_indices.to(inputs.device)
    replaced = torch.zeros(
        *subset_indices.shape[:2], num_units, dtype=torch.bool, device=inputs.device
    )
    replaced.scatter_(2, subset_indices, True)

    with eval_mode(model):
        target, _ = predicted_or_checked_target(model, inputs, target)
        fill = make_baseline(inputs, baseline, blur_sigma)
        chunk = chunk_size(max_batch, inputs)
        clean = clean_scores(model, inputs, target, score, chunk)
        # A subset of units that all equal the baseline leaves the input unchanged: drop 0.
        changes = (replaced & differing_units(inputs, fill, units)[:, None, :]).any(dim=2)
        perturbed = masked_scores(model, inputs, fill, replaced, units, target, score, chunk,
                                  evaluate=changes)
        drops = torch.where(changes, clean[:, None] - perturbed, 0.0)
    masses = (relevance[:, None, :] * replaced).sum(dim=2)
    return pearson_rows(masses, drops)

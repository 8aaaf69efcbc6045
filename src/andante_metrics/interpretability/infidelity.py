"""Infidelity and max-sensitivity of attributions (Yeh et al., NeurIPS 2019)."""

from __future__ import annotations

import torch
from torch import nn

from andante_metrics.interpretability._core import (
    SCORES,
    AttributeFn,
    Score,
    check_attributions,
    check_grad_mode,
    check_inputs,
    chunk_size,
    clean_scores,
    eval_mode,
    predicted_or_checked_target,
    sample_generators,
    score_outputs,
)
from andante_metrics.utilities.checks import (
    check_in_choices,
    check_int_range,
    check_module,
    check_positive,
    check_tensor,
)


def infidelity(
    model: nn.Module,
    inputs: torch.Tensor,
    attributions: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    samples: int = 16,
    noise_std: float = 0.1,
    normalize: bool = True,
    multiply_by_inputs: bool = False,
    score: Score = "logit",
    seed: int = 0,
    perturbations: torch.Tensor | None = None,
    max_batch: int | None = None,
) -> torch.Tensor:
    r"""Compute the infidelity of attributions (Yeh et al., NeurIPS 2019), per sample.

    With noise :math:`I_r \sim \mathcal{N}(0, \sigma^2)` per element (``noise_std`` = σ) and
    the score drop :math:`\Delta_r = f(x) - f(x - I_r)`:

    .. math:: \mathrm{INFD} = \frac{1}{R} \sum_r \big(\beta\, \tilde I_r^\top a - \Delta_r\big)^2,
        \qquad \beta = \frac{\sum_r \tilde I_r^\top a\, \Delta_r}{\sum_r (\tilde I_r^\top a)^2}

    with :math:`\beta = 1` when ``normalize`` is False. The normalized form does not change
    when the attributions are scaled. :math:`\tilde I = I` for attributions of the gradient kind;
    with ``multiply_by_inputs`` (gradient times input, integrated gradients)
    :math:`\tilde I = I / x`, the division by zero replaced by division by 1. This is the
    convention of ``captum.metrics.infidelity`` (captum 0.9) with a perturbation function
    decorated by ``infidelity_perturb_func_decorator(multiply_by_inputs)``, no baselines,
    and ``normalize`` as here. The tests check the agreement. Gradient attributions of a linear
    model have infidelity 0, and so has gradient times input when no input element is 0.
    A sample whose products :math:`\tilde I_r^\top a` are all zero gets :math:`\beta = 0`.

    The noise comes from a generator seeded by ``seed`` and the sample's bytes;
    ``perturbations`` ``(N, R, ...)`` gives :math:`I` explicitly. Cost: ``samples + 1``
    forward passes per sample.

    Returns:
        ``(N,)`` float64 values, at least 0; lower is better.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(5, 2)
        >>> x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
        >>> gradient = model.weight[:1].detach().expand(4, 5)
        >>> values = infidelity(model, x, gradient, target=torch.zeros(4, dtype=torch.long))
        >>> bool(values.max() < 1e-10)
        True
    """
    check_module(model)
    check_grad_mode()
    check_inputs(inputs)
    check_attributions(attributions, inputs)
    check_in_choices(score, "score", SCORES)
    if max_batch is not None:
        check_int_range(max_batch, "max_batch", low=1)
    max_batch = chunk_size(max_batch, inputs)
    num = len(inputs)

    if perturbations is None:
        check_int_range(samples, "samples", low=1)
        check_positive(noise_std, "noise_std")
        generators = sample_generators(inputs, seed, 2)
        noise = [
            torch.randn(samples, *inputs.shape[1:], generator=g, dtype=torch.float64)
            for g in generators
        ]
        perturbations = torch.stack(noise) * noise_std
    else:
        check_tensor(perturbations, "perturbations", dtype="float")
        if perturbations.ndim != inputs.ndim + 1 or perturbations.shape[0] != num or (
            perturbations.shape[2:] != inputs.shape[1:]
        ):
            raise ValueError(
                f"`perturbations` must have shape (N, R, *inputs.shape[1:]) with N={num}, got "
                f"{tuple(perturbations.shape)}."
            )
    perturbations = perturbations.to(device=inputs.device, dtype=inputs.dtype)
    copies = perturbations.shape[1]

    flat_noise = perturbations.reshape(num, copies, -1).double()
    flat_inputs = inputs.reshape(num, 1, -1).double()
    if multiply_by_inputs:
        flat_noise = flat_noise / torch.where(flat_inputs == 0, 1.0, flat_inputs)
    products = (flat_noise * attributions.reshape(num, 1, -1).double()).sum(dim=2)

    with eval_mode(model), torch.no_grad():
        target, _ = predicted_or_checked_target(model, inputs, target)
        clean = clean_scores(model, inputs, target, score, max_batch)
        perturbed = (inputs[:, None] - perturbations).reshape(num * copies, *inputs.shape[1:])
        repeated_target = target.repeat_interleave(copies)
        parts = []
        for begin in range(0, num * copies, max_batch):
            outputs = model(perturbed[begin : begin + max_batch])
            parts.append(score_outputs(outputs, repeated_target[begin : begin + max_batch], score))
    drops = clean[:, None] - torch.cat(parts).reshape(num, copies)

    if normalize:
        denominator = products.square().sum(dim=1)
        beta = (products * drops).sum(dim=1) / torch.where(denominator == 0, 1.0, denominator)
        products = beta[:, None] * products
    return (products - drops).square().mean(dim=1)


def max_sensitivity(
    model: nn.Module,
    inputs: torch.Tensor,
    attribute: AttributeFn,
    *,
    target: torch.Tensor | None = None,
    samples: int = 8,
    radius: float = 0.02,
    seed: int = 0,
    perturbations: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Compute the max-sensitivity of an attribution method (Yeh et al., NeurIPS 2019).

    .. math:: \mathrm{SENS}_{\max} = \max_r \frac{\lVert \Phi(x + \delta_r) - \Phi(x) \rVert_F}
        {\lVert \Phi(x) \rVert_F}, \qquad \delta_r \sim U[-r, r]^d

    where :math:`\Phi` is ``attribute(model, inputs, target)``. This is the convention of
    ``captum.metrics.sensitivity_max`` (captum 0.9) with its default perturbation (uniform in
    the L-infinity ball of ``radius``) and ``norm_ord="fro"``. The target stays the one of the
    unperturbed input. A zero attribution map gives a division by zero: inf or NaN.

    The noise comes from a generator seeded by ``seed`` and the sample's bytes;
    ``perturbations`` ``(N, R, ...)`` gives :math:`\delta` explicitly. Cost: one attribution of
    the batch plus one of ``N * samples`` perturbed inputs.

    Returns:
        ``(N,)`` float64 values, at least 0; lower is better.

    Example:
        >>> import torch
        >>> from andante_metrics.interpretability import gradient_attribution
        >>> model = torch.nn.Linear(3, 2)
        >>> x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
        >>> max_sensitivity(model, x, gradient_attribution)  # constant gradients: 0
        tensor([0., 0.], dtype=torch.float64)
    """
    check_module(model)
    check_grad_mode()
    check_inputs(inputs)
    num = len(inputs)
    if perturbations is None:
        check_int_range(samples, "samples", low=1)
        check_positive(radius, "radius")
        generators = sample_generators(inputs, seed, 3)
        shape = (samples, *inputs.shape[1:])
        rows = [torch.rand(shape, generator=g, dtype=torch.float64) for g in generators]
        perturbations = (torch.stack(rows) * 2 - 1) * radius
    perturbations = perturbations.to(device=inputs.device, dtype=inputs.dtype)
    copies = perturbations.shape[1]

    with eval_mode(model), torch.enable_grad():
        target, _ = predicted_or_checked_target(model, inputs, target)
        reference = attribute(model, inputs, target).detach().reshape(num, 1, -1).double()
        noisy_inputs = (inputs[:, None] + perturbations).reshape(num * copies, *inputs.shape[1:])
        noisy = attribute(model, noisy_inputs, target.repeat_interleave(copies)).detach()
    noisy = noisy.reshape(num, copies, -1).double()
    ratios = (noisy - reference).norm(dim=2) / reference.norm(dim=2)
    return ratios.max(dim=1).values


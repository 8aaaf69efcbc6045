r"""Adversarial robustness: FGSM and PGD attacks and robust accuracy over a list of budgets.

The attacks perturb inputs in [0, 1] pixel space, so any input normalization must sit inside
the model (wrap it in :class:`NormalizedModel`). Attacking already-normalized inputs measures
the budget in the wrong units and clips to the wrong box.

Gradients come from ``torch.autograd.grad`` with respect to the inputs only, so the ``.grad``
of the model's parameters is never touched. The model runs in ``eval()`` during the attack and
every submodule gets its previous mode back afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from andante_metrics.base import KPIMetric
from andante_metrics.robustness._model import check_model, evaluating
from andante_metrics.robustness._noise_seeds import (
    GeneratorArg,
    content_keys,
    draw,
    per_sample_generators,
)
from andante_metrics.utilities.checks import (
    call_model_on,
    check_finite,
    check_in_choices,
    check_int_range,
    check_labels_in_range,
    check_positive,
    check_same_first_dim,
    check_tensor,
)

Norm = Literal["linf", "l2"]
Attack = Literal["fgsm", "pgd"]
NORMS = ("linf", "l2")
ATTACKS = ("fgsm", "pgd")
Box = tuple[float, float] | None

# Guards the division by a gradient or perturbation norm of zero.
_TINY_NORM = 1e-12


class NormalizedModel(nn.Module):
    r"""Wrap a model that expects normalized inputs so that it takes pixels in [0, 1].

    ``forward(x)`` returns ``model((x - mean) / std)`` with ``mean`` and ``std`` per channel,
    so attacks and corruptions work in pixel space and their budgets are in pixel units.

    Args:
        model: the model trained on normalized inputs.
        mean: per-channel means, one value per channel.
        std: per-channel standard deviations, all greater than 0.

    Example:
        >>> import torch
        >>> wrapped = NormalizedModel(torch.nn.Identity(), mean=[0.5], std=[0.25])
        >>> wrapped(torch.ones(1, 1, 1, 1)).flatten()
        tensor([2.])
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = check_model(model)
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.shape != std_t.shape or mean_t.numel() == 0:
            raise ValueError(
                f"`mean` and `std` must hold one value per channel each, got {mean_t.numel()} "
                f"and {std_t.numel()} values."
            )
        if bool((std_t <= 0).any()):
            raise ValueError(
                f"`std` must be greater than 0 in every channel, got {std_t.tolist()}."
            )
        self.register_buffer("mean", mean_t.reshape(1, -1, 1, 1))
        self.register_buffer("std", std_t.reshape(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> Any:
        """Normalize ``(N, C, H, W)`` images per channel and run the wrapped model."""
        mean = self.mean.to(images.dtype)
        std = self.std.to(images.dtype)
        return self.model((images - mean) / std)


def _check_attack_options(eps: float, norm: str, box: Box) -> None:
    check_positive(eps, "eps", allow_zero=True)
    check_in_choices(norm, "norm", NORMS)
    if box is not None and (len(box) != 2 or not box[0] < box[1]):
        raise ValueError(
            f"`clamp` must be None or a pair (low, high) with low < high, got {box!r}."
        )


def _per_sample_norm(values: torch.Tensor) -> torch.Tensor:
    """Return the L2 norm of each sample, shaped to broadcast against ``values``."""
    norms = values.flatten(1).norm(p=2, dim=1)
    return norms.reshape(-1, *([1] * (values.ndim - 1)))


def _loss_gradient(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return d(summed cross-entropy)/d(inputs); parameters' ``.grad`` stay as they are."""
    inputs = inputs.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = call_model_on(model, inputs, name="images")
        loss = F.cross_entropy(logits, target, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, inputs)
    return gradient


def _ascent_direction(gradient: torch.Tensor, norm: str) -> torch.Tensor:
    """Return the steepest-ascent direction of unit size in ``norm``."""
    if norm == "linf":
        return gradient.sign()
    return gradient / (_per_sample_norm(gradient) + _TINY_NORM)


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project each sample's perturbation onto the ``norm`` ball of radius ``eps``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    factor = (eps / (_per_sample_norm(delta) + _TINY_NORM)).clamp(max=1.0)
    return delta * factor


def _clip(images: torch.Tensor, box: Box) -> torch.Tensor:
    return images if box is None else images.clamp(box[0], box[1])


def _random_start(
    images: torch.Tensor, eps: float, norm: str, generator: GeneratorArg
) -> torch.Tensor:
    if norm == "linf":
        uniform = draw(lambda rows, gen: torch.rand(images[rows].shape, generator=gen), images,
                       generator)
        return (2 * uniform - 1) * eps
    direction = draw(lambda rows, gen: torch.randn(images[rows].shape, generator=gen), images,
                     generator)
    radius = draw(lambda rows, gen: torch.rand(images[rows].shape[0], generator=gen),
                  images.flatten(1)[:, 0], generator)
    radius = radius.reshape(-1, *([1] * (images.ndim - 1)))
    return direction / (_per_sample_norm(direction) + _TINY_NORM) * radius * eps


def fgsm(
    model: nn.Module,
    images: torch.Tensor,
    target: torch.Tensor,
    *,
    eps: float,
    norm: Norm = "linf",
    clamp: Box = (0.0, 1.0),
) -> torch.Tensor:
    r"""Return adversarial examples from one gradient step of size ``eps`` (FGSM).

    .. math::
        x' = \mathrm{clip}\big(x + \epsilon\, d(\nabla_x L)\big)

    with :math:`L` the cross-entropy of ``model(x)`` and ``target``, :math:`d(g) = \mathrm{sign}(g)`
    for ``norm="linf"`` (Goodfellow et al., ICLR 2015) and :math:`d(g) = g / \lVert g \rVert_2`
    per sample for ``norm="l2"`` (the fast gradient method). ``clamp`` is the valid input box,
    ``None`` for none.

    Args:
        model: classifier returning ``(N, K)`` logits for inputs in pixel space.
        images: ``(N, ...)`` float inputs.
        target: ``(N,)`` class indices.
        eps: the budget, a distance in ``norm``; 0 returns a copy of ``images``.
        norm: ``"linf"`` or ``"l2"``.
        clamp: ``(low, high)`` box of valid inputs or ``None``.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 2)
        >>> x = torch.zeros(1, 2)
        >>> (fgsm(model, x, torch.tensor([0]), eps=0.1, clamp=None) - x).abs().max()
        tensor(0.1000)
    """
    check_model(model)
    _check_attack_options(eps, norm, clamp)
    if eps == 0:
        return images.detach().clone()
    with evaluating(model):
        gradient = _loss_gradient(model, images, target)
    return _clip(images.detach() + eps * _ascent_direction(gradient, norm), clamp)


def pgd(
    model: nn.Module,
    images: torch.Tensor,
    target: torch.Tensor,
    *,
    eps: float,
    norm: Norm = "linf",
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    generator: GeneratorArg = None,
    clamp: Box = (0.0, 1.0),
) -> torch.Tensor:
    r"""Return adversarial examples from projected gradient descent on the loss (PGD).

    Starting from :math:`x_0 = x + \delta_0` (a random point of the ball when ``random_start``,
    else :math:`x`), each of ``steps`` iterations takes a step of size :math:`\alpha` along the
    steepest-ascent direction of the cross-entropy (the gradient's sign for L-infinity, the
    per-sample normalized gradient for L2), projects the perturbation onto the ``eps`` ball and
    clips to ``clamp`` (Madry et al., ICLR 2018):

    .. math::
        x_{t+1} = \mathrm{clip}\Big(x + \Pi_\epsilon\big(x_t + \alpha\,
                  d(\nabla_x L(x_t)) - x\big)\Big)

    The default :math:`\alpha = 2.5 \epsilon / \text{steps}` lets the iterate cross the ball.
    The L-infinity random start is uniform in the cube; the L2 start has a uniform random
    direction and a radius uniform in :math:`[0, \epsilon]`. The last iterate is returned.

    NOTE: for L2 with a random start, each step of size :math:`a\epsilon` followed by the radial
    projection shrinks the part of the perturbation off the best direction by about
    :math:`(1 - a)`. With the default :math:`a = 2.5/\text{steps}` the total shrinkage stays
    near :math:`e^{-2.5}` however many steps run, and on a linear model the attack can stop
    short of the worst case; pass a larger ``step_size`` with more steps to close the gap.

    Args:
        model: classifier returning ``(N, K)`` logits for inputs in pixel space.
        images: ``(N, ...)`` float inputs.
        target: ``(N,)`` class indices.
        eps: the budget, a distance in ``norm``; 0 returns a copy of ``images``.
        norm: ``"linf"`` or ``"l2"``.
        steps: number of iterations, at least 1.
        step_size: :math:`\alpha` in input units; ``None`` for :math:`2.5\epsilon/\text{steps}`.
        random_start: start from a random point of the ball.
        generator: generator of the random start, or one per sample.
        clamp: ``(low, high)`` box of valid inputs or ``None``.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 2)
        >>> x = torch.zeros(3, 2)
        >>> adv = pgd(model, x, torch.tensor([0, 1, 0]), eps=0.1, clamp=None,
        ...           generator=torch.Generator().manual_seed(0))
        >>> bool((adv - x).abs().max() <= 0.1)
        True
    """
    check_model(model)
    _check_attack_options(eps, norm, clamp)
    check_int_range(steps, "steps", low=1)
    alpha = 2.5 * eps / steps if step_size is None else check_positive(step_size, "step_size")
    clean = images.detach()
    if eps == 0:
        return clean.clone()
    delta = _random_start(clean, eps, norm, generator) if random_start else torch.zeros_like(clean)
    adversarial = _clip(clean + delta, clamp)
    with evaluating(model):
        for _ in range(steps):
            gradient = _loss_gradient(model, adversarial, target)
            stepped = adversarial + alpha * _ascent_direction(gradient, norm)
            adversarial = _clip(clean + _project(stepped - clean, eps, norm), clamp)
    return adversarial.detach()


def _check_budgets(budgets: Sequence[float]) -> tuple[float, ...]:
    if isinstance(budgets, (int, float)) or len(budgets) == 0:
        raise ValueError(f"`budgets` must be a non-empty sequence of numbers, got {budgets!r}.")
    values = tuple(check_positive(b, "budgets", allow_zero=True) for b in budgets)
    if any(later <= earlier for earlier, later in zip(values, values[1:], strict=False)):
        raise ValueError(f"`budgets` must be strictly increasing, got {list(values)}.")
    return values


def _check_robustness_options(
    budgets: Sequence[float], attack: str, norm: str, steps: int,
    relative_step_size: float | None, seed: int, clamp: Box,
) -> tuple[float, ...]:
    values = _check_budgets(budgets)
    check_in_choices(attack, "attack", ATTACKS)
    _check_attack_options(0.0, norm, clamp)
    check_int_range(steps, "steps", low=1)
    if relative_step_size is not None:
        check_positive(relative_step_size, "relative_step_size")
    check_int_range(seed, "seed", low=0)
    return values


def _check_inputs(images: torch.Tensor, box: Box) -> None:
    """Check a float batch of finite inputs, inside the ``clamp`` box when there is one."""
    check_tensor(images, "images", dtype="float")
    check_finite(images, "images")
    if images.ndim < 2:
        raise ValueError(f"`images` must have a batch dimension, got shape {tuple(images.shape)}.")
    if box is None or images.numel() == 0:
        return
    low, high = float(images.min()), float(images.max())
    if low < box[0] or high > box[1]:
        raise ValueError(
            f"`images` must lie in the `clamp` box [{box[0]}, {box[1]}], got values in "
            f"[{low:.4g}, {high:.4g}]; scale the images to pixel range and move any "
            f"normalization into the model (see NormalizedModel)."
        )


def _robustness_update(
    model: nn.Module,
    images: torch.Tensor,
    target: torch.Tensor,
    budgets: tuple[float, ...],
    options: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the clean hits ``(N,)`` and the robust hits ``(B, N)`` of a batch, both bool.

    A sample is robust at a budget when it is classified correctly and no attack at that budget
    or any smaller one in ``budgets`` fooled the model: an adversarial example inside a smaller
    ball lies inside every larger one.
    """
    _check_inputs(images, options["clamp"])
    check_tensor(target, "target", ndim=1, dtype="int")
    check_same_first_dim(images, target, "images", "target")
    target = target.long()
    with evaluating(model), torch.no_grad():
        logits = call_model_on(model, images, name="images")
    check_labels_in_range(target, logits.shape[1], "target")
    clean_hits = logits.argmax(dim=1) == target
    keys = content_keys(images) if options["random_start"] and options["attack"] == "pgd" else []
    robust = clean_hits.clone()
    rows = []
    bar = tqdm(budgets, desc=f"{options['attack']} {options['norm']}", unit="budget",
               leave=False, disable=not options["progress"])
    for index, eps in enumerate(bar):
        if eps > 0:
            if options["attack"] == "fgsm":
                adversarial = fgsm(model, images, target, eps=eps, norm=options["norm"],
                                   clamp=options["clamp"])
            else:
                relative = options["relative_step_size"]
                step_size = None if relative is None else relative * eps
                generator = per_sample_generators(keys, options["seed"], index) if keys else None
                adversarial = pgd(model, images, target, eps=eps, norm=options["norm"],
                                  steps=options["steps"], step_size=step_size,
                                  random_start=options["random_start"], generator=generator,
                                  clamp=options["clamp"])
            with evaluating(model), torch.no_grad():
                robust = robust & (model(adversarial).argmax(dim=1) == target)
        rows.append(robust)
    bar.close()
    return clean_hits, torch.stack(rows)


def _robustness_compute(
    clean_correct: torch.Tensor, robust_correct: torch.Tensor, count: torch.Tensor
) -> dict[str, torch.Tensor]:
    total = count.double()
    return {
        "clean_accuracy": clean_correct.double() / total,
        "robust_accuracy": robust_correct.double() / total,
    }


def robust_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    target: torch.Tensor,
    *,
    budgets: Sequence[float],
    attack: Attack = "pgd",
    norm: Norm = "linf",
    steps: int = 10,
    relative_step_size: float | None = None,
    random_start: bool = True,
    seed: int = 0,
    clamp: Box = (0.0, 1.0),
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Compute the clean accuracy and the robust accuracy at every budget of one batch.

    Same options and result as :class:`AdversarialRobustness`.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 2)
        >>> x = torch.rand(8, 2, generator=torch.Generator().manual_seed(0))
        >>> result = robust_accuracy(model, x, model(x).argmax(1), budgets=[0.0, 0.5])
        >>> result["robust_accuracy"][0]
        tensor(1., dtype=torch.float64)
    """
    check_model(model)
    values = _check_robustness_options(budgets, attack, norm, steps, relative_step_size, seed,
                                       clamp)
    options = {"attack": attack, "norm": norm, "steps": steps, "relative_step_size":
               relative_step_size, "random_start": random_start, "seed": seed, "clamp": clamp,
               "progress": progress}
    clean_hits, robust_hits = _robustness_update(model, images, target, values, options)
    if clean_hits.numel() == 0:
        raise ValueError("`images` and `target` are empty; pass at least one sample.")
    count = torch.tensor(clean_hits.numel())
    return _robustness_compute(clean_hits.sum(), robust_hits.sum(dim=1), count)


class AdversarialRobustness(KPIMetric):
    r"""Robust accuracy of a classifier under FGSM or PGD at every budget of a list.

    .. math::
        \mathrm{RA}(\epsilon_j) = \frac{1}{N} \sum_i \big[\, f(x_i) = y_i \text{ and }
        f(x_i + \delta_{ij'}) = y_i \ \forall j' \le j,\ \epsilon_{j'} > 0 \,\big]

    with :math:`\delta_{ij}` the attack's perturbation at budget :math:`\epsilon_j`. Counting a
    sample as fooled at every budget above one where an attack fooled it keeps the curve
    non-increasing in the budget. At budget 0 the value is the clean accuracy. See :func:`pgd`
    and :func:`fgsm` for the attacks, their step size and random start.

    The random start of each sample is seeded from ``seed``, the budget's index and the
    sample's pixels, so the result does not depend on batching, order or process count.

    Args:
        model: classifier mapping inputs in pixel space (``[0, 1]`` by default) to ``(N, K)``
            logits. Put input normalization inside it (:class:`NormalizedModel`).
        budgets: strictly increasing budgets :math:`\epsilon` in ``norm``, in input units
            (for 8-bit images, ``8 / 255`` is eight gray levels).
        attack: ``"pgd"`` or ``"fgsm"``.
        norm: ``"linf"`` or ``"l2"``.
        steps: PGD iterations.
        relative_step_size: PGD step size divided by :math:`\epsilon`; ``None`` for
            ``2.5 / steps``.
        random_start: PGD starts from a random point of the ball.
        seed: seed of the random starts.
        clamp: the box of valid inputs; with the default (0, 1) the images are checked to lie
            in it. ``None`` lets the attack leave any box.
        progress: show a progress bar over the budgets of each update.

    State: clean hits, robust hits per budget (int64) and the sample count, summed across
    processes. ``compute()`` returns ``{"clean_accuracy": (), "robust_accuracy": (B,)}`` as
    float64 fractions; before any sample it raises ``ValueError``.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> metric = AdversarialRobustness(model, budgets=[0.0, 0.1, 1.0], progress=False)
        >>> images = torch.rand(16, 1, 2, 2)
        >>> metric.update(images, model(images).argmax(1))
        >>> metric.compute()["robust_accuracy"]
        tensor([1., 1., 0.], dtype=torch.float64)
    """

    kpi_area = "robustness"
    unit = "fraction"
    higher_is_better = True

    def __init__(
        self,
        model: nn.Module,
        *,
        budgets: Sequence[float],
        attack: Attack = "pgd",
        norm: Norm = "linf",
        steps: int = 10,
        relative_step_size: float | None = None,
        random_start: bool = True,
        seed: int = 0,
        clamp: Box = (0.0, 1.0),
        progress: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_model(model)
        self.budgets = _check_robustness_options(budgets, attack, norm, steps,
                                                 relative_step_size, seed, clamp)
        # A list keeps the model out of the metric's submodules and state_dict.
        self._model = [model]
        self.options = {"attack": attack, "norm": norm, "steps": steps, "relative_step_size":
                        relative_step_size, "random_start": random_start, "seed": seed,
                        "clamp": None if clamp is None else tuple(clamp), "progress": progress}
        self.add_state("clean_correct", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("robust_correct", torch.zeros(len(self.budgets), dtype=torch.long),
                       dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, images: torch.Tensor, target: torch.Tensor) -> None:
        """Attack a batch of ``(N, ...)`` inputs with ``(N,)`` class indices at every budget."""
        clean_hits, robust_hits = _robustness_update(self._model[0], images, target,
                                                     self.budgets, self.options)
        self.clean_correct += clean_hits.sum().to(self.clean_correct.device)
        self.robust_correct += robust_hits.sum(dim=1).to(self.robust_correct.device)
        self.count += clean_hits.numel()

    def compute(self) -> dict[str, torch.Tensor]:
        """Return the clean accuracy and the robust accuracy at every budget."""
        self._check_not_empty(self.count)
        return _robustness_compute(self.clean_correct, self.robust_correct, self.count)

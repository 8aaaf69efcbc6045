r"""Random-label memorization probe: how fast a model fits true labels versus random ones.

Zhang et al. ("Understanding deep learning requires rethinking generalization", ICLR 2017)
train the same network on the true labels and on labels drawn uniformly at random, with no
augmentation, and find that it fits both, the random ones only a small factor slower. The probe
repeats that experiment on a user's model and data subset under a fixed budget and reports:

* the chance-normalized fitted fraction at the budget,
  :math:`f = (a - 1/K) / (1 - 1/K)` with train accuracy :math:`a` on the labels the copy was
  trained on and :math:`K` classes (0 at chance, 1 at a perfect fit, negative below chance);
* the epochs each copy needed to reach a target train accuracy and their ratio
  (random over true, the "slowdown");
* the train-accuracy curve of each copy, evaluated at every epoch end and at the budget.

The paper's other conditions are options:

* partially corrupted labels: each label is replaced, independently with probability ``p``, by
  a uniform random class;
* shuffled pixels: one random permutation of the input features is applied to every sample;
* random pixels: each sample gets its own random permutation;
* Gaussian pixels: inputs are drawn from a normal distribution with the data's overall mean and
  standard deviation.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from tqdm.auto import tqdm

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
from andante_metrics.utilities.logging import warn_once

Condition = Literal["true_labels", "random_labels", "shuffled_pixels", "random_pixels",
                    "gaussian_pixels"]
CONDITIONS: tuple[str, ...] = ("true_labels", "random_labels", "shuffled_pixels",
                               "random_pixels", "gaussian_pixels")
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]

# Each condition draws its random labels or inputs from its own stream, seeded from the probe's
# seed plus a fixed offset, so a condition's data do not depend on which other conditions run.
_STREAM_OFFSETS = {"labels": 1, "shuffled_pixels": 2, "random_pixels": 3, "gaussian_pixels": 4,
                   "order": 5}


def chance_normalized_accuracy(
    accuracy: float | torch.Tensor, num_classes: int
) -> float | torch.Tensor:
    r"""Rescale an accuracy so that chance level maps to 0 and a perfect fit to 1.

    .. math:: f = \frac{a - 1/K}{1 - 1/K}

    Accuracies below chance give negative values. An accuracy outside [0, 1] or NaN raises
    ``ValueError``.

    Example:
        >>> chance_normalized_accuracy(0.1, 10), chance_normalized_accuracy(1.0, 10)
        (0.0, 1.0)
    """
    check_int_range(num_classes, "num_classes", low=2)
    values = torch.as_tensor(accuracy, dtype=torch.float64)
    if not bool(((values >= 0.0) & (values <= 1.0)).all()):
        raise ValueError(
            f"`accuracy` must contain accuracies in [0, 1] (NaN is rejected), got {accuracy!r}."
        )
    chance = 1.0 / num_classes
    return (accuracy - chance) / (1.0 - chance)


def corrupt_labels(
    labels: torch.Tensor, num_classes: int, *, fraction: float, generator: torch.Generator
) -> torch.Tensor:
    """Replace each label, independently with probability ``fraction``, by a uniform random class.

    With ``fraction=1`` every label is drawn uniformly from ``[0, num_classes)``, independently
    of the true labels. A replaced label equals the true one with probability ``1/num_classes``,
    as in Zhang et al. (ICLR 2017). The same generator state gives the same labels.

    Example:
        >>> labels = torch.arange(6) % 3
        >>> gen = torch.Generator().manual_seed(0)
        >>> torch.equal(corrupt_labels(labels, 3, fraction=0.0, generator=gen), labels)
        True
    """
    check_tensor(labels, "labels", ndim=1, dtype="int")
    check_int_range(num_classes, "num_classes", low=2)
    check_labels_in_range(labels, num_classes, "labels")
    _check_fraction(fraction, "fraction")
    # Both draws happen for every fraction, so the generator advances the same way for all.
    replace = torch.rand(len(labels), generator=generator) < fraction
    random = torch.randint(0, num_classes, (len(labels),), generator=generator)
    return torch.where(replace, random, labels.cpu()).to(labels.device, labels.dtype)


def _check_sample_batch(inputs: torch.Tensor) -> None:
    """Check a ``(N, ...)`` batch with at least one sample and one feature per sample."""
    check_tensor(inputs, "inputs")
    if inputs.ndim < 2 or inputs.numel() == 0:
        raise ValueError(
            f"`inputs` must have shape (N, ...) with N >= 1 samples and at least one feature "
            f"each, got shape {tuple(inputs.shape)}; add a feature dimension to 1-D data with "
            f"`inputs[:, None]`."
        )


def shuffle_pixels(inputs: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Apply one random permutation of the features (dimensions after the first) to all samples."""
    _check_sample_batch(inputs)
    flat = inputs.reshape(len(inputs), -1)
    order = torch.randperm(flat.shape[1], generator=generator).to(inputs.device)
    return flat[:, order].reshape(inputs.shape)


def random_pixels(inputs: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Apply an independent random permutation of the features to each sample."""
    _check_sample_batch(inputs)
    flat = inputs.reshape(len(inputs), -1)
    order = torch.rand(flat.shape, generator=generator).argsort(dim=1).to(inputs.device)
    return flat.gather(1, order).reshape(inputs.shape)


def gaussian_pixels(inputs: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Draw inputs from a normal distribution with the data's overall mean and standard deviation.

    A single mean and standard deviation over all samples and features are used, so ``inputs``
    needs at least two values.
    """
    _check_sample_batch(inputs)
    if inputs.numel() < 2:
        raise ValueError(
            f"`inputs` must contain at least two values to estimate a standard deviation, got "
            f"shape {tuple(inputs.shape)}."
        )
    noise = torch.randn(inputs.shape, generator=generator, dtype=torch.float64)
    mean, std = inputs.double().mean(), inputs.double().std()
    return (noise * std.cpu() + mean.cpu()).to(inputs.device, inputs.dtype)


def _check_fraction(value: float, name: str) -> float:
    check_positive(value, name, allow_zero=True)
    if value > 1:
        raise ValueError(f"`{name}` must lie in [0, 1], got {value!r}.")
    return float(value)


@dataclass
class ConditionResult:
    """Outcome of one trained copy: the labels it fitted, its curve and its budget use.

    Attributes:
        condition: ``"true_labels"``, ``"random_labels"``, ``"corrupted_labels_0.5"``, ...
        labels: the labels the copy was trained on, drawn once before training.
        label_agreement: fraction of ``labels`` equal to the true labels.
        train_accuracy: accuracy on ``labels`` (and the condition's inputs) at the budget.
        fitted_fraction: ``train_accuracy`` normalized so that chance is 0 and a perfect fit 1.
        epochs_to_target: epochs (fractional when the budget ends mid-epoch) until the train
            accuracy first reached the target at an evaluation, ``None`` when it never did.
        steps, epochs, seconds: optimizer steps, epochs and wall-clock seconds used.
        curve_epochs, curve_accuracy: the train-accuracy curve, one point per evaluation.
    """

    condition: str
    labels: torch.Tensor
    label_agreement: float
    train_accuracy: float
    fitted_fraction: float
    epochs_to_target: float | None
    steps: int
    epochs: float
    seconds: float
    curve_epochs: list[float] = field(default_factory=list)
    curve_accuracy: list[float] = field(default_factory=list)


@dataclass
class MemorizationResult:
    """Results of every condition of a probe run, by condition name."""

    conditions: dict[str, ConditionResult]
    num_classes: int
    target_accuracy: float

    @property
    def slowdown(self) -> float | None:
        """Epochs to target with random labels divided by epochs with true labels.

        ``None`` unless both conditions ran and both reached the target.
        """
        true, rand = self._pair()
        if true is None or rand is None or true.epochs_to_target is None:
            return None
        if rand.epochs_to_target is None:
            return None
        return rand.epochs_to_target / true.epochs_to_target

    @property
    def slowdown_lower_bound(self) -> float | None:
        """A lower bound on the slowdown when only the true-label copy reached the target.

        The random-label copy needed more than its whole budget, so the slowdown is at least
        its epochs divided by the true-label copy's epochs to target. ``None`` otherwise.
        """
        true, rand = self._pair()
        if true is None or rand is None or true.epochs_to_target is None:
            return None
        if rand.epochs_to_target is not None:
            return None
        return rand.epochs / true.epochs_to_target

    def _pair(self) -> tuple[ConditionResult | None, ConditionResult | None]:
        return self.conditions.get("true_labels"), self.conditions.get("random_labels")

    def rows(self) -> list[list[object]]:
        """Return one table row per condition: name, label agreement, accuracy, fitted fraction,
        epochs to target (``None`` when not reached), steps and seconds."""
        return [
            [r.condition, r.label_agreement, r.train_accuracy, r.fitted_fraction,
             r.epochs_to_target, r.steps, r.seconds]
            for r in self.conditions.values()
        ]


ROW_COLUMNS = ["condition", "label agreement", "train accuracy", "fitted fraction",
               "epochs to target", "steps", "seconds"]


class MemorizationProbe:
    r"""Train copies of a model on true and on random labels and compare how fast they fit.

    Every copy starts from the same initial weights: ``model`` is either a factory (called with
    the global RNG seeded by ``seed``) or an ``nn.Module`` that is deep-copied and
    re-initialized with each submodule's ``reset_parameters`` under the same seed. The module
    passed in is left unchanged (weights, buffers and training mode), and so is the global RNG
    state. All copies see the same mini-batch order. No augmentation is applied: the copy
    trains on exactly the tensors it is given.

    The budget is whichever of ``max_epochs``, ``max_steps`` and ``max_seconds`` runs out
    first (at least one is required). Train accuracy is evaluated in ``eval()`` mode at every
    epoch end and when the budget ends.

    Args:
        model: an ``nn.Module`` to copy and re-initialize, or a callable returning a new one.
        num_classes: number of classes :math:`K`.
        conditions: which copies to train, any of ``CONDITIONS``; the pixel conditions keep
            the true labels and change the inputs.
        corruption_fractions: extra copies trained on labels corrupted with each probability
            (0.0 gives the true labels, 1.0 fully random labels), named
            ``"corrupted_labels_<p>"``.
        optimizer: the optimizer recipe, called with the parameters of each copy; Adam with
            learning rate 1e-3 by default.
        loss_fn: the training loss of ``(logits, labels)``; cross-entropy by default.
        batch_size: mini-batch size.
        max_epochs, max_steps, max_seconds: the budget of each copy.
        target_accuracy: the train accuracy whose first crossing gives the epochs to target.
        stop_at_target: stop a copy as soon as it reaches the target, to save time.
        seed: seeds the initial weights, the random labels and inputs and the batch order.
        progress: show a tqdm progress bar.

    Source: Zhang, Bengio, Hardt, Recht and Vinyals, "Understanding deep learning requires
    rethinking generalization", ICLR 2017, section 2 (randomization tests).

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> inputs, labels = torch.randn(16, 4), torch.arange(16) % 2
        >>> probe = MemorizationProbe(nn.Linear(4, 2), num_classes=2, max_epochs=2, progress=False)
        >>> result = probe.run(inputs, labels)
        >>> sorted(result.conditions)
        ['random_labels', 'true_labels']
        >>> result.conditions["true_labels"].curve_epochs
        [1.0, 2.0]
    """

    def __init__(
        self,
        model: nn.Module | Callable[[], nn.Module],
        *,
        num_classes: int,
        conditions: Sequence[Condition] = ("true_labels", "random_labels"),
        corruption_fractions: Sequence[float] = (),
        optimizer: OptimizerFactory | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        batch_size: int = 32,
        max_epochs: int | None = None,
        max_steps: int | None = None,
        max_seconds: float | None = None,
        target_accuracy: float = 0.99,
        stop_at_target: bool = False,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        if not (isinstance(model, nn.Module) or callable(model)):
            raise TypeError(
                f"`model` must be a torch.nn.Module or a callable returning one, got "
                f"{type(model).__name__}."
            )
        if not isinstance(model, nn.Module):
            _check_factory(model)
        check_int_range(num_classes, "num_classes", low=2)

        for condition in conditions:
            check_in_choices(condition, "conditions", CONDITIONS)
        fractions = [_check_fraction(p, "corruption_fractions") for p in corruption_fractions]
        if not conditions and not fractions:
            raise ValueError("`conditions` and `corruption_fractions` are both empty; give at "
                             "least one condition to train.")
        check_int_range(batch_size, "batch_size", low=1)

        if max_epochs is None and max_steps is None and max_seconds is None:
            raise ValueError("No budget given: set at least one of `max_epochs`, `max_steps` "
                             "and `max_seconds`.")
        if max_epochs is not None:
            check_int_range(max_epochs, "max_epochs", low=1)
        if max_steps is not None:
            check_int_range(max_steps, "max_steps", low=1)
        if max_seconds is not None:
            check_positive(max_seconds, "max_seconds")
        _check_fraction(target_accuracy, "target_accuracy")
        check_int_range(seed, "seed", low=0)

        self.model = model
        self.num_classes = num_classes
        self.conditions = tuple(conditions)
        self.corruption_fractions = tuple(fractions)
        self.optimizer = optimizer or functools.partial(torch.optim.Adam, lr=1e-3)
        self.loss_fn = loss_fn or nn.CrossEntropyLoss()
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.target_accuracy = float(target_accuracy)
        self.stop_at_target = stop_at_target
        self.seed = seed
        self.progress = progress

    def _generator(self, stream: str) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1009 + _STREAM_OFFSETS[stream])

    def condition_data(
        self, inputs: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Return the ``(inputs, labels)`` each condition trains on, drawn once from the seed.

        Random labels of every label condition come from the same stream, so
        ``corrupted_labels_1.0`` equals ``random_labels``.
        """
        _check_inputs(inputs, labels, self.num_classes)
        data: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        transforms = {"shuffled_pixels": shuffle_pixels, "random_pixels": random_pixels,
                      "gaussian_pixels": gaussian_pixels}
        for condition in self.conditions:
            if condition == "true_labels":
                data[condition] = (inputs, labels)
            elif condition == "random_labels":
                data[condition] = (inputs, corrupt_labels(
                    labels, self.num_classes, fraction=1.0, generator=self._generator("labels")))
            else:
                transform = transforms[condition]
                data[condition] = (transform(inputs, generator=self._generator(condition)), labels)
        for fraction in self.corruption_fractions:
            data[f"corrupted_labels_{fraction:g}"] = (inputs, corrupt_labels(
                labels, self.num_classes, fraction=fraction, generator=self._generator("labels")))
        return data

    def run(self, inputs: torch.Tensor, labels: torch.Tensor) -> MemorizationResult:
        """Train one copy per condition on ``inputs`` ``(N, ...)`` and ``labels`` ``(N,)``.

        Returns:
            A :class:`MemorizationResult` with one :class:`ConditionResult` per condition.
        """
        data = self.condition_data(inputs, labels)
        steps_per_epoch = math.ceil(len(labels) / self.batch_size)
        epoch_steps = None if self.max_epochs is None else self.max_epochs * steps_per_epoch
        limits = [s for s in (self.max_steps, epoch_steps) if s is not None]
        total = min(limits) * len(data) if limits else None
        bar = tqdm(total=total, desc="memorization probe", unit="step",
                   disable=not self.progress, leave=False)
        results = {}
        try:
            for name, (cond_inputs, cond_labels) in data.items():
                bar.set_postfix_str(name)
                results[name] = self._train_copy(name, cond_inputs, cond_labels, labels, bar)
        finally:
            bar.close()
        return MemorizationResult(results, self.num_classes, self.target_accuracy)

    def _fresh_model(self) -> nn.Module:
        if isinstance(self.model, nn.Module):
            model = copy.deepcopy(self.model)
            _reinitialize(model)
        else:
            model = self.model()
            if not isinstance(model, nn.Module):
                raise TypeError(f"The `model` factory must return a torch.nn.Module, got "
                                f"{type(model).__name__}.")
        return model.train()

    def _train_copy(
        self,
        name: str,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        true_labels: torch.Tensor,
        bar: tqdm,
    ) -> ConditionResult:
        # The copy is built and trained on a forked RNG seeded with `seed`: every copy starts
        # from the same weights and draws the same dropout masks, and the caller's RNG state is
        # left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self._fresh_model()
            first = next(iter(model.parameters()), None)
            device = first.device if first is not None else inputs.device
            cuda_devices = [device] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=cuda_devices):
                if cuda_devices:
                    torch.cuda.manual_seed(self.seed)
                return self._fit(model, device, name, inputs, labels, true_labels, bar)

    def _fit(
        self,
        model: nn.Module,
        device: torch.device,
        name: str,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        true_labels: torch.Tensor,
        bar: tqdm,
    ) -> ConditionResult:
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer = self.optimizer(model.parameters())
        order_generator = self._generator("order")
        steps_per_epoch = math.ceil(len(labels) / self.batch_size)
        curve_epochs: list[float] = []
        curve_accuracy: list[float] = []
        reached: float | None = None
        steps, start = 0, time.perf_counter()

        def out_of_budget() -> bool:
            if self.max_steps is not None and steps >= self.max_steps:
                return True
            if self.max_epochs is not None and steps >= self.max_epochs * steps_per_epoch:
                return True
            return self.max_seconds is not None and time.perf_counter() - start >= self.max_seconds

        def evaluate() -> None:
            nonlocal reached
            accuracy = _train_accuracy(model, inputs, labels)
            curve_epochs.append(steps / steps_per_epoch)
            curve_accuracy.append(accuracy)
            if reached is None and accuracy >= self.target_accuracy:
                reached = curve_epochs[-1]

        while not out_of_budget():
            order = torch.randperm(len(labels), generator=order_generator).to(device)
            for begin in range(0, len(labels), self.batch_size):
                index = order[begin : begin + self.batch_size]
                loss = self.loss_fn(call_model_on(model, inputs[index]), labels[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
                bar.update(1)
                if out_of_budget():
                    break
            evaluate()
            if self.stop_at_target and reached is not None:
                break

        accuracy = curve_accuracy[-1]
        return ConditionResult(
            condition=name,
            labels=labels.cpu(),
            label_agreement=float((labels.cpu() == true_labels.cpu()).double().mean()),
            train_accuracy=accuracy,
            fitted_fraction=float(chance_normalized_accuracy(accuracy, self.num_classes)),
            epochs_to_target=reached,
            steps=steps,
            epochs=steps / steps_per_epoch,
            seconds=time.perf_counter() - start,
            curve_epochs=curve_epochs,
            curve_accuracy=curve_accuracy,
        )


def _check_inputs(inputs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    check_tensor(inputs, "inputs", dtype="float")
    check_tensor(labels, "labels", ndim=1, dtype="int")
    if inputs.ndim < 2:
        raise ValueError(f"`inputs` must have a sample dimension and at least one feature "
                         f"dimension, got shape {tuple(inputs.shape)}.")
    check_same_first_dim(inputs, labels, "inputs", "labels")
    if len(labels) == 0:
        raise ValueError("`labels` is empty; the probe needs at least one training sample.")
    check_finite(inputs, "inputs")
    check_labels_in_range(labels, num_classes, "labels")


def _reinitialize(model: nn.Module) -> None:
    """Call ``reset_parameters`` on every submodule that has it; warn about the others."""
    kept = 0
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        else:
            kept += sum(p.numel() for p in module.parameters(recurse=False))
    if kept:
        warn_once(
            f"memorization-reinit-{type(model).__name__}",
            f"{kept} parameters of {type(model).__name__} belong to modules without "
            f"reset_parameters() and keep their values in every copy; pass a model factory "
            f"to control the initialization.",
        )


def _check_factory(factory: Callable[..., object]) -> None:
    """Raise ``TypeError`` when a model factory cannot be called without arguments."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return  # Some built-in callables expose no signature; calling them will tell.
    try:
        signature.bind()
    except TypeError:
        raise TypeError(
            f"`model` must be a torch.nn.Module or a factory called without arguments, got a "
            f"callable with signature {signature}; pass the module itself or a zero-argument "
            f"function such as `lambda: MyNet()`."
        ) from None


@torch.no_grad()
def _train_accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    hits = 0
    for begin in range(0, len(labels), 512):
        logits = call_model_on(model, inputs[begin : begin + 512])
        hits += int((logits.argmax(dim=1) == labels[begin : begin + 512]).sum())
    model.train()
    return hits / len(labels)


def memorization_probe(
    model: nn.Module | Callable[[], nn.Module],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    **options,
) -> MemorizationResult:
    """Run a :class:`MemorizationProbe` once; ``options`` are its keyword arguments.

    Example:
        >>> inputs, labels = torch.randn(8, 3), torch.arange(8) % 2
        >>> result = memorization_probe(nn.Linear(3, 2), inputs, labels, num_classes=2,
        ...                             max_steps=3, progress=False)
        >>> result.conditions["random_labels"].steps
        3
    """
    return MemorizationProbe(model, num_classes=num_classes, **options).run(inputs, labels)

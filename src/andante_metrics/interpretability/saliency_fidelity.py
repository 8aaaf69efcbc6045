"""``SaliencyFidelity``: the saliency-fidelity scores of a model's attributions as one metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchmetrics.utilities.data import dim_zero_cat
from tqdm.auto import tqdm

from andante_metrics.base import KPIMetric
from andante_metrics.interpretability._core import (
    BASELINES,
    SCORES,
    Baseline,
    Score,
    check_attributions,
    check_grad_mode,
    check_inputs,
    check_options,
    eval_mode,
    predicted_or_checked_target,
    random_like,
    sample_generators,
)
from andante_metrics.interpretability.attribution import as_attribute_fn, multiplies_by_inputs
from andante_metrics.interpretability.infidelity import infidelity, max_sensitivity
from andante_metrics.interpretability.perturbation import (
    ORDERS,
    Order,
    curve_area,
    faithfulness_correlation,
    perturbation_curve,
)
from andante_metrics.interpretability.randomization import (
    model_randomization_check,
    randomized_copy,
)
from andante_metrics.utilities.checks import (
    check_in_choices,
    check_int_range,
    check_positive,
)

SCORE_NAMES = (
    "deletion",
    "insertion",
    "faithfulness_correlation",
    "infidelity",
    "max_sensitivity",
    "randomization",
)
DEFAULT_SCORES = (
    "deletion", "insertion", "faithfulness_correlation", "infidelity", "randomization"
)
# Scores that take the attributions as given get a random-attribution control.
CONTROLLED = ("deletion", "insertion", "faithfulness_correlation", "infidelity")
# Scores that call the attribution method again, so precomputed attributions cannot serve them.
NEEDS_METHOD = ("max_sensitivity", "randomization")

# The key of each score in compute()'s result and whether a higher value is better.
RESULT_KEYS = {
    "deletion": "deletion_auc",
    "insertion": "insertion_auc",
    "faithfulness_correlation": "faithfulness_correlation",
    "infidelity": "infidelity",
    "max_sensitivity": "max_sensitivity",
    "randomization": "randomization_rank_correlation",
}
HIGHER_IS_BETTER = {
    "deletion_auc": False,
    "insertion_auc": True,
    "faithfulness_correlation": True,
    "infidelity": False,
    "max_sensitivity": False,
    "randomization_rank_correlation": False,
}


class SaliencyFidelity(KPIMetric):
    r"""Faithfulness of a model's attributions: deletion/insertion AUC, correlation, infidelity.

    Each ``update(inputs, target=None, attributions=None)`` explains ``inputs`` with the
    attribution method (or takes the precomputed ``attributions``) and scores every sample:

    * ``deletion_auc`` / ``insertion_auc``: area under the deletion / insertion curve over the
      step fraction in ``[0, 1]`` (:func:`perturbation_curve`, :func:`curve_area`); with
      ``order="most_relevant_first"`` lower deletion and higher insertion are better (with
      ``"least_relevant_first"`` the better direction flips);
    * ``faithfulness_correlation`` (Bhatt et al. 2020, :func:`faithfulness_correlation`);
    * ``infidelity`` (Yeh et al. 2019, normalized form by default, :func:`infidelity`);
    * ``max_sensitivity`` (Yeh et al. 2019, :func:`max_sensitivity`), off by default;
    * ``randomization_rank_correlation`` (Adebayo et al. 2018,
      :func:`model_randomization_check`).

    The first four are also computed for random attributions (standard normal per element),
    the control a method must beat, under the key suffix ``_random``.

    Training-loop hygiene: the model runs in ``eval()`` and its mode is restored; gradients go
    through ``torch.autograd.grad`` (captum does the same), so ``.grad`` of the parameters is
    untouched; under ``torch.no_grad()`` gradients are re-enabled locally, and under
    ``torch.inference_mode()`` ``update`` raises ``RuntimeError``. Every random draw comes from
    a generator seeded by ``seed`` and the bytes of the sample, never from the global state, so
    a fixed probe set gets the same draws each time and the value does not depend on batching
    or process count. The randomized model copy is drawn once, at the first ``update``.

    Forward passes per sample (``R`` = random control, doubling the first four):
    ``(S + 1)`` per curve with ``S = steps``, ``subsets + 1`` for the correlation,
    ``infidelity_samples + 1`` for infidelity; attributions: one call of the batch, plus one on
    the randomized copy, plus ``sensitivity_samples`` perturbed copies for max-sensitivity.

    Args:
        model: the classifier to explain, held by reference (not in the state_dict).
        attribution: a captum attribution object bound to ``model`` (``Saliency(model)``), a
            callable ``fn(model, inputs, target)``, or None to pass ``attributions`` to
            ``update`` (then ``max_sensitivity`` and ``randomization`` are unavailable).
        scores: the scores to compute, a subset of ``SCORE_NAMES``.
        baseline, patch_size, score, blur_sigma: units and baseline of the perturbation
            scores and the model score read, see :func:`perturbation_curve`.
        order: the order of the deletion and insertion curves.
        steps: ``S``, the number of curve steps; None for one unit per step.
        subsets, subset_size: the random subsets of the faithfulness correlation.
        infidelity_samples, infidelity_noise_std, normalize_infidelity: see :func:`infidelity`;
            the score read there is always the logit, as in captum.
        multiply_by_inputs: the infidelity convention; None reads captum's
            ``multiplies_by_inputs`` flag of the method (False for plain callables).
        sensitivity_samples, sensitivity_radius: see :func:`max_sensitivity`.
        randomization_absolute: rank absolute attributions in the randomization check.
        attribution_options: keyword arguments for each attribution call.
        random_control: compute the random-attribution control.
        seed: the seed of every random draw.
        max_batch: the most perturbed copies per forward pass; None takes at most 512 copies
            and 2**22 input elements.
        progress: show a progress bar over the scores of each update.

    ``compute()`` returns a dict of float64 scalars: for each score its mean over samples, its
    standard deviation (``_std``, unbiased, NaN for one sample) and, where there is a control,
    ``_random`` and ``_random_std``. NaN per-sample values (an undefined correlation) propagate
    to the mean. With no sample ``compute()`` raises ``ValueError``. :meth:`per_sample` returns
    the per-sample values and :meth:`mean_curves` the mean curves.

    Example:
        >>> import torch
        >>> from andante_metrics.interpretability import input_x_gradient
        >>> model = torch.nn.Linear(6, 3)
        >>> metric = SaliencyFidelity(model, input_x_gradient, scores=("deletion",), steps=3)
        >>> metric.update(torch.rand(4, 6, generator=torch.Generator().manual_seed(0)))
        >>> sorted(metric.compute())
        ['deletion_auc', 'deletion_auc_random', 'deletion_auc_random_std', 'deletion_auc_std']
    """

    kpi_area = "interpretability"
    unit = "score"
    higher_is_better = None

    def __init__(
        self,
        model: nn.Module,
        attribution: Any = None,
        *,
        scores: Sequence[str] = DEFAULT_SCORES,
        baseline: Baseline = "zeros",
        order: Order = "most_relevant_first",
        steps: int | None = 16,
        patch_size: int = 1,
        score: Score = "probability",
        blur_sigma: float = 1.0,
        subsets: int = 32,
        subset_size: int | None = None,
        infidelity_samples: int = 16,
        infidelity_noise_std: float = 0.1,
        normalize_infidelity: bool = True,
        multiply_by_inputs: bool | None = None,
        sensitivity_samples: int = 8,
        sensitivity_radius: float = 0.02,
        randomization_absolute: bool = True,
        attribution_options: Mapping[str, Any] | None = None,
        random_control: bool = True,
        seed: int = 0,
        max_batch: int | None = None,
        progress: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
        if attribution is not None:
            as_attribute_fn(attribution)  # raises TypeError for an unusable method
        if isinstance(scores, str) or not scores:
            raise ValueError(
                f"`scores` must be a non-empty sequence of names from {SCORE_NAMES}, got "
                f"{scores!r}."
            )
        for name in scores:
            check_in_choices(name, "scores", SCORE_NAMES)
        if attribution is None:
            needing = [name for name in scores if name in NEEDS_METHOD]
            if needing:
                raise ValueError(
                    f"`scores` {needing} call the attribution method again, but `attribution` "
                    f"is None; pass a captum attribution or a callable, or drop them."
                )
        check_in_choices(baseline, "baseline", BASELINES)
        check_in_choices(order, "order", ORDERS)
        check_in_choices(score, "score", SCORES)
        if steps is not None:
            check_int_range(steps, "steps", low=1)
        check_int_range(patch_size, "patch_size", low=1)
        check_positive(blur_sigma, "blur_sigma")
        check_int_range(subsets, "subsets", low=2)
        if subset_size is not None:
            check_int_range(subset_size, "subset_size", low=1)
        check_int_range(infidelity_samples, "infidelity_samples", low=1)
        check_positive(infidelity_noise_std, "infidelity_noise_std")
        check_int_range(sensitivity_samples, "sensitivity_samples", low=1)
        check_positive(sensitivity_radius, "sensitivity_radius")
        check_int_range(seed, "seed", low=0)
        if max_batch is not None:
            check_int_range(max_batch, "max_batch", low=1)

        # Lists keep the models out of the metric's state_dict.
        self._model = [model]
        self._randomized_model: list[nn.Module] = []
        self.attribution = attribution
        self.scores = tuple(scores)
        self.baseline = baseline
        self.order = order
        self.steps = steps
        self.patch_size = patch_size
        self.score = score
        self.blur_sigma = blur_sigma
        self.subsets = subsets
        self.subset_size = subset_size
        self.infidelity_samples = infidelity_samples
        self.infidelity_noise_std = infidelity_noise_std
        self.normalize_infidelity = normalize_infidelity
        self.multiply_by_inputs = (
            multiplies_by_inputs(attribution) if multiply_by_inputs is None else multiply_by_inputs
        )
        self.sensitivity_samples = sensitivity_samples
        self.sensitivity_radius = sensitivity_radius
        self.randomization_absolute = randomization_absolute
        self.attribution_options = dict(attribution_options or {})
        self.random_control = random_control
        self.seed = seed
        self.max_batch = max_batch
        self.progress = progress

        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        for name in self.scores:
            self.add_state(RESULT_KEYS[name], [], dist_reduce_fx="cat")
            if random_control and name in CONTROLLED:
                self.add_state(f"{RESULT_KEYS[name]}_random", [], dist_reduce_fx="cat")
        for name in ("deletion", "insertion"):
            if name in self.scores and steps is not None:
                self.add_state(f"{name}_curve_sum", torch.zeros(steps + 1, dtype=torch.float64),
                               dist_reduce_fx="sum")
                if random_control:
                    zeros = torch.zeros(steps + 1, dtype=torch.float64)
                    self.add_state(f"{name}_curve_random_sum", zeros, dist_reduce_fx="sum")

    def _score_attributions(
        self, name: str, inputs: torch.Tensor, target: torch.Tensor, attributions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the per-sample values of a score that takes attributions (and the curves)."""
        model = self._model[0]
        if name in ("deletion", "insertion"):
            _, curves = perturbation_curve(
                model, inputs, attributions, target=target, mode=name, order=self.order,
                baseline=self.baseline, steps=self.steps, patch_size=self.patch_size,
                score=self.score, blur_sigma=self.blur_sigma, max_batch=self.max_batch,
            )
            return curve_area(curves), curves
        if name == "faithfulness_correlation":
            values = faithfulness_correlation(
                model, inputs, attributions, target=target, baseline=self.baseline,
                subsets=self.subsets, subset_size=self.subset_size, patch_size=self.patch_size,
                score=self.score, blur_sigma=self.blur_sigma, seed=self.seed,
                max_batch=self.max_batch,
            )
            return values, None
        values = infidelity(
            model, inputs, attributions, target=target, samples=self.infidelity_samples,
            noise_std=self.infidelity_noise_std, normalize=self.normalize_infidelity,
            multiply_by_inputs=self.multiply_by_inputs, score="logit", seed=self.seed,
            max_batch=self.max_batch,
        )
        return values, None

    def _record(self, key: str, values: torch.Tensor, curves: torch.Tensor | None) -> None:
        getattr(self, key).append(values.to(self.device))
        curve_state = key.replace("_auc", "_curve") + "_sum"
        if curves is not None and hasattr(self, curve_state):
            total = getattr(self, curve_state) + curves.sum(dim=0).to(self.device)
            setattr(self, curve_state, total)

    def update(
        self,
        inputs: torch.Tensor,
        target: torch.Tensor | None = None,
        attributions: torch.Tensor | None = None,
    ) -> None:
        """Explain ``inputs`` ``(N, ...)`` and add the scores of every sample.

        ``target`` ``(N,)`` gives the class to explain (default: the predicted class);
        ``attributions`` are required when the metric has no attribution method.
        """
        check_grad_mode()
        check_inputs(inputs)
        model = self._model[0]
        if self.attribution is None and attributions is None:
            raise ValueError(
                "`attributions` are missing: the metric has no attribution method, so pass "
                "precomputed attributions of the inputs' shape to update()."
            )
        check_options(self.baseline, self.score, self.patch_size, inputs)

        with eval_mode(model):
            target, _ = predicted_or_checked_target(model, inputs, target)
            method = None if self.attribution is None else as_attribute_fn(
                self.attribution, self.attribution_options
            )
            if attributions is None:
                attributions = method(model, inputs, target)
            check_attributions(attributions, inputs)
            attributions = attributions.detach()
            control = None
            if self.random_control:
                control = random_like(inputs, sample_generators(inputs, self.seed, 0))

            names = tqdm(self.scores, desc="saliency fidelity", disable=not self.progress,
                         leave=False)
            for name in names:
                key = RESULT_KEYS[name]
                if name in CONTROLLED:
                    values, curves = self._score_attributions(name, inputs, target, attributions)
                    self._record(key, values, curves)
                    if control is not None:
                        values, curves = self._score_attributions(name, inputs, target, control)
                        self._record(f"{key}_random", values, curves)
                elif name == "max_sensitivity":
                    values = max_sensitivity(
                        model, inputs, method, target=target, samples=self.sensitivity_samples,
                        radius=self.sensitivity_radius, seed=self.seed,
                    )
                    self._record(key, values, None)
                else:
                    if not self._randomized_model:
                        self._randomized_model.append(randomized_copy(model, self.seed))
                    values = model_randomization_check(
                        model, inputs, method, target=target, absolute=self.randomization_absolute,
                        randomized_model=self._randomized_model[0],
                    )
                    self._record(key, values, None)
        self.count += len(inputs)

    def per_sample(self) -> dict[str, torch.Tensor]:
        """Return the per-sample values of every score, in the order this process saw them."""
        out = {}
        for name in self.scores:
            key = RESULT_KEYS[name]
            for state in (key, f"{key}_random"):
                if hasattr(self, state):
                    values = getattr(self, state)
                    out[state] = dim_zero_cat(values) if len(values) else torch.zeros(0)
        return out

    def mean_curves(self) -> dict[str, torch.Tensor]:
        """Return the mean deletion and insertion curves (``steps + 1`` points each).

        The dict is empty when ``steps`` is None, because the number of points then depends on
        the input size.
        """
        out = {}
        count = max(int(self.count), 1)
        for name in ("deletion", "insertion"):
            for state in (f"{name}_curve_sum", f"{name}_curve_random_sum"):
                if hasattr(self, state):
                    out[state.replace("_sum", "")] = getattr(self, state) / count
        return out

    def compute(self) -> dict[str, torch.Tensor]:
        """Return the mean and spread of every score and of its random control."""
        self._check_not_empty(self.count)
        result = {}
        for state, values in self.per_sample().items():
            values = values.double()
            result[state] = values.mean()
            result[f"{state}_std"] = values.std() if len(values) > 1 else torch.tensor(torch.nan)
        return result

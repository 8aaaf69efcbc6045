r"""Corruption robustness: error under each corruption and severity, mCE and relative mCE."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchmetrics import Metric
from tqdm.auto import tqdm

from andante_metrics.base import KPIMetric
from andante_metrics.robustness._model import check_model, check_unit_images, evaluating
from andante_metrics.robustness._noise_seeds import content_keys, per_sample_generators
from andante_metrics.robustness.corruptions import (
    CORRUPTIONS,
    RANDOM_CORRUPTIONS,
    SEVERITIES,
    corrupt,
)
from andante_metrics.utilities.checks import (
    call_model_on,
    check_in_choices,
    check_int_range,
    check_positive,
    check_same_first_dim,
)
from andante_metrics.utilities.logging import warn_once

_CORRUPTION_INDEX = {name: index for index, name in enumerate(CORRUPTIONS)}


def _check_finite_errors(values: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(values).all()):
        bad = int((~torch.isfinite(values)).sum())
        raise ValueError(
            f"`{name}` contains {bad} NaN or infinite value(s), so the mean errors would be NaN; "
            f"check the metric that produced them (a metric undefined on some corruption "
            f"returns NaN)."
        )


def corruption_error_summary(
    errors: torch.Tensor,
    clean_error: torch.Tensor | float,
    baseline_errors: torch.Tensor | None = None,
    baseline_clean_error: torch.Tensor | float | None = None,
) -> dict[str, torch.Tensor]:
    r"""Summarise an error table into corruption errors, mCE and relative mCE.

    With :math:`E_{c,s}` the error of the model under corruption :math:`c` at severity
    :math:`s`, :math:`E_\text{clean}` its clean error and :math:`B` the same quantities of a
    baseline model:

    .. math::
        \mathrm{CE}_c = \frac{\sum_s E_{c,s}}{\sum_s B_{c,s}}, \qquad
        \mathrm{rCE}_c = \frac{\sum_s (E_{c,s} - E_\text{clean})}
                              {\sum_s (B_{c,s} - B_\text{clean})},

    and mCE and relative mCE are their means over the corruptions (Hendrycks and Dietterich,
    ICLR 2019, section 3). A baseline with zero error (or zero degradation) on a corruption
    makes that ratio infinite or NaN; a warning names the corruption.

    Args:
        errors: ``(K, S)`` errors in [0, 1], one row per corruption.
        clean_error: the model's error on the clean inputs.
        baseline_errors: the baseline's ``(K, S)`` errors, measured on the same corrupted inputs.
        baseline_clean_error: the baseline's clean error.

    Returns:
        A dict of float64 tensors: ``errors``, ``clean_error``, ``mean_error`` (``(K,)``, the
        unnormalized mean over severities) and, with a baseline, ``baseline_errors``,
        ``baseline_clean_error``, ``corruption_error`` and ``relative_corruption_error``
        (``(K,)``), ``mce`` and ``relative_mce`` (scalars).

    Example:
        >>> import torch
        >>> errors = torch.tensor([[0.2, 0.4], [0.1, 0.1]])
        >>> baseline = torch.tensor([[0.4, 0.8], [0.4, 0.6]])
        >>> summary = corruption_error_summary(errors, 0.1, baseline, 0.2)
        >>> summary["corruption_error"]
        tensor([0.5000, 0.2000], dtype=torch.float64)
        >>> summary["relative_mce"]
        tensor(0.2500, dtype=torch.float64)
    """
    errors = torch.as_tensor(errors, dtype=torch.float64)
    clean = torch.as_tensor(clean_error, dtype=torch.float64, device=errors.device)
    if errors.ndim != 2:
        raise ValueError(f"`errors` must have shape (K, S), got {tuple(errors.shape)}.")
    _check_finite_errors(errors, "errors")
    _check_finite_errors(clean, "clean_error")
    summary = {"clean_error": clean, "errors": errors, "mean_error": errors.mean(dim=1)}
    if baseline_errors is None:
        return summary
    if baseline_clean_error is None:
        raise ValueError("`baseline_clean_error` is missing; pass it with `baseline_errors`.")
    base = torch.as_tensor(baseline_errors, dtype=torch.float64, device=errors.device)
    base_clean = torch.as_tensor(baseline_clean_error, dtype=torch.float64, device=errors.device)
    if base.shape != errors.shape:
        raise ValueError(
            f"`baseline_errors` must have the shape of `errors` {tuple(errors.shape)}, got "
            f"{tuple(base.shape)}."
        )
    _check_finite_errors(base, "baseline_errors")
    _check_finite_errors(base_clean, "baseline_clean_error")
    denominator = base.sum(dim=1)
    relative_denominator = (base - base_clean).sum(dim=1)
    if bool((denominator == 0).any()) or bool((relative_denominator == 0).any()):
        warn_once(
            "corruption_summary_zero_baseline",
            "The baseline has zero error or zero degradation on some corruption, so its "
            "corruption error or relative corruption error is infinite or NaN; use a weaker "
            "baseline or more samples.",
        )
    corruption_error = errors.sum(dim=1) / denominator
    relative = (errors - clean).sum(dim=1) / relative_denominator
    summary.update(
        baseline_errors=base,
        baseline_clean_error=base_clean,
        corruption_error=corruption_error,
        mce=corruption_error.mean(),
        relative_corruption_error=relative,
        relative_mce=relative.mean(),
    )
    return summary


def _check_options(
    corruptions: Sequence[str], severities: Sequence[int], seed: int, pixel_scale: float
) -> None:
    if isinstance(corruptions, str) or len(corruptions) == 0:
        raise ValueError(
            f"`corruptions` must be a non-empty sequence of corruption names, got {corruptions!r}."
        )
    for name in corruptions:
        check_in_choices(name, "corruptions", CORRUPTIONS)
    if len(set(corruptions)) != len(corruptions):
        raise ValueError(f"`corruptions` must not repeat a name, got {list(corruptions)}.")
    if isinstance(severities, (int, str)) or len(severities) == 0:
        raise ValueError(f"`severities` must be a non-empty sequence of ints, got {severities!r}.")
    for severity in severities:
        check_int_range(severity, "severities", low=1, high=5)
    if len(set(severities)) != len(severities):
        raise ValueError(f"`severities` must not repeat a value, got {list(severities)}.")
    check_int_range(seed, "seed", low=0)
    check_positive(pixel_scale, "pixel_scale")


class CorruptionRobustness(KPIMetric):
    r"""Error of a model under common corruptions at every severity, with mCE and relative mCE.

    Each ``update(images, target)`` takes a clean batch, evaluates the model on it and on every
    corruption of :mod:`~andante_metrics.robustness.corruptions` at every severity, and feeds
    each set of predictions to its own copy of the wrapped accuracy-like ``metric``. The error
    of a cell is ``1 - value`` (or the value itself when ``metric.higher_is_better`` is False).
    ``compute()`` returns the error table and :func:`corruption_error_summary` of it.

    The noise an image receives is seeded from ``seed``, the corruption, the severity and the
    image's own pixels, so the result does not depend on batching, batch order or the number of
    processes. With ``baseline_model``, the baseline is evaluated on exactly the same corrupted
    images.

    The mCE of ImageNet-C is normalized by AlexNet's errors on the published ImageNet-C images.
    Those normalizers do not apply here, because these corruptions are generated on the fly
    (other images, sizes and noise draws), so the baseline must be measured in the same pipeline:
    pass it as ``baseline_model``.

    State: one copy of the wrapped metric's states per model and cell (clean plus corruption x
    severity), with the wrapped metric's reductions, and the number of samples seen.

    Args:
        model: the classifier under test, mapping ``images`` in [0, 1] to the ``preds`` the
            wrapped metric takes (any input normalization belongs inside the model).
        metric: an accuracy-like ``torchmetrics.Metric`` taking ``(preds, target)``, used as a
            template (it is copied, never updated).
        baseline_model: the model whose errors normalize mCE; without it the result has no
            ``mce`` entries.
        corruptions: names from ``CORRUPTIONS`` (all nine by default).
        severities: severities from 1 to 5 (all five by default).
        seed: seed of the noise corruptions.
        pixel_scale: multiplier of the blur radii, see the corruptions module.
        progress: show a progress bar over the cells of each update.

    ``compute()`` returns the dict of :func:`corruption_error_summary` (float64 tensors, rows in
    the order of ``corruptions``, columns in the order of ``severities``). Before any sample it
    raises ``ValueError``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from andante_metrics import TopKAccuracy
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        >>> metric = CorruptionRobustness(model, TopKAccuracy(num_classes=3),
        ...                               corruptions=["contrast", "pixelate"],
        ...                               severities=[1, 5], progress=False)
        >>> metric.update(torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> result = metric.compute()
        >>> result["errors"].shape
        torch.Size([2, 2])
    """

    kpi_area = "robustness"
    unit = "ratio"
    higher_is_better = False

    def __init__(
        self,
        model: nn.Module,
        metric: Metric,
        *,
        baseline_model: nn.Module | None = None,
        corruptions: Sequence[str] = tuple(CORRUPTIONS),
        severities: Sequence[int] = SEVERITIES,
        seed: int = 0,
        pixel_scale: float = 1.0,
        progress: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

        check_model(model)
        if baseline_model is not None:
            check_model(baseline_model, "baseline_model")
        if not isinstance(metric, Metric):
            raise TypeError(
                f"`metric` must be a torchmetrics.Metric such as TopKAccuracy, got "
                f"{type(metric).__name__}."
            )
        _check_options(corruptions, severities, seed, pixel_scale)

        # Lists keep the models and the worker metric out of this metric's submodules, so their
        # weights and states stay out of its state_dict.
        self._models = [model] if baseline_model is None else [model, baseline_model]
        self._worker = [copy.deepcopy(metric)]
        self._worker[0].reset()
        self.corruptions = tuple(corruptions)
        self.severities = tuple(severities)
        self.seed = seed
        self.pixel_scale = pixel_scale
        self.progress = progress
        self._error_is_value = metric.higher_is_better is False
        self._cells = [("clean", 0)] + [(c, s) for c in self.corruptions for s in self.severities]

        # Each model and cell gets its own copy of the wrapped metric's states, with the same
        # reductions, so state_dict, forward and process synchronisation treat them as ours.
        worker = self._worker[0]
        for tag in self._tags():
            for cell in self._cells:
                for state, default in worker._defaults.items():
                    self.add_state(
                        self._state_name(tag, cell, state),
                        copy.deepcopy(default),
                        dist_reduce_fx=worker._reductions[state],
                    )
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _tags(self) -> tuple[str, ...]:
        return ("model", "baseline")[: len(self._models)]

    @staticmethod
    def _state_name(tag: str, cell: tuple[str, int], state: str) -> str:
        return f"{tag}__{cell[0]}_{cell[1]}__{state}"

    def _update_cell(self, tag: str, cell: tuple[str, int], preds: Any, target: Any) -> None:
        """Run the wrapped metric's own update on the states of one model and cell."""
        worker = self._worker[0]
        for state in worker._defaults:
            setattr(worker, state, getattr(self, self._state_name(tag, cell, state)))
        # The class attribute is the undecorated update: the instance's decorated one would
        # count calls and cache results that the worker never uses.
        type(worker).update(worker, preds, target)
        for state in worker._defaults:
            setattr(self, self._state_name(tag, cell, state), getattr(worker, state))

    def _cell_error(self, tag: str, cell: tuple[str, int]) -> torch.Tensor:
        worker = self._worker[0]
        for state in worker._defaults:
            setattr(worker, state, getattr(self, self._state_name(tag, cell, state)))
        value = torch.as_tensor(type(worker).compute(worker), dtype=torch.float64)
        if value.numel() != 1:
            raise ValueError(
                f"`metric` must compute a scalar, got shape {tuple(value.shape)}; pass an "
                f"accuracy-like metric with a single value."
            )
        value = value.reshape(())
        return value if self._error_is_value else 1.0 - value

    def update(self, images: torch.Tensor, target: torch.Tensor) -> None:
        """Evaluate the models on a clean ``(N, C, H, W)`` batch in [0, 1] and its corruptions."""
        check_unit_images(images)
        check_same_first_dim(images, target, "images", "target")
        keys = content_keys(images)
        bar = tqdm(self._cells, desc="corruptions", unit="cell", leave=False,
                   disable=not self.progress)
        with torch.no_grad():
            for cell in bar:
                corruption, severity = cell
                if corruption == "clean":
                    inputs = images
                else:
                    generator = None
                    if corruption in RANDOM_CORRUPTIONS:
                        salt = (self.seed, _CORRUPTION_INDEX[corruption], severity)
                        generator = per_sample_generators(keys, *salt)
                    inputs = corrupt(images, corruption, severity, generator=generator,
                                     pixel_scale=self.pixel_scale)
                for tag, model in zip(self._tags(), self._models, strict=True):
                    with evaluating(model):
                        preds = call_model_on(model, inputs, name="images")
                    self._update_cell(tag, cell, preds, target)
        bar.close()
        self.count += images.shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        """Return the error table, the clean error and, with a baseline, mCE and relative mCE."""
        self._check_not_empty(self.count)
        tables = {}
        for tag in self._tags():
            clean = self._cell_error(tag, ("clean", 0))
            rows = [
                torch.stack([self._cell_error(tag, (c, s)) for s in self.severities])
                for c in self.corruptions
            ]
            tables[tag] = (torch.stack(rows), clean)
        if "baseline" not in tables:
            return corruption_error_summary(*tables["model"])
        return corruption_error_summary(*tables["model"], *tables["baseline"])


def corruption_robustness(
    model: nn.Module,
    images: torch.Tensor,
    target: torch.Tensor,
    *,
    metric: Metric,
    baseline_model: nn.Module | None = None,
    corruptions: Sequence[str] = tuple(CORRUPTIONS),
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    pixel_scale: float = 1.0,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Evaluate :class:`CorruptionRobustness` on one set of images; same options and result.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from andante_metrics import TopKAccuracy
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> images, labels = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 0, 1])
        >>> result = corruption_robustness(model, images, labels,
        ...                                metric=TopKAccuracy(num_classes=2),
        ...                                corruptions=["brightness"], severities=[2])
        >>> sorted(result)
        ['clean_error', 'errors', 'mean_error']
    """
    state = CorruptionRobustness(
        model, metric, baseline_model=baseline_model, corruptions=corruptions,
        severities=severities, seed=seed, pixel_scale=pixel_scale, progress=progress,
    )
    state.update(images, target)
    return state.compute()

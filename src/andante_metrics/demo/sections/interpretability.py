"""Interpretability section of the demo card: saliency fidelity of three captum methods."""

from __future__ import annotations

import logging
from typing import Any

import torch

from andante_metrics.demo.runner import DemoContext
from andante_metrics.interpretability import (
    SaliencyFidelity,
    gradient_attribution,
    input_x_gradient,
)
from andante_metrics.interpretability.saliency_fidelity import HIGHER_IS_BETTER
from andante_metrics.report import KPICard

COLUMNS = (
    ("deletion_auc", "deletion AUC (lower better)"),
    ("insertion_auc", "insertion AUC (higher better)"),
    ("faithfulness_correlation", "faithfulness corr. (higher better)"),
    ("infidelity", "infidelity, normalized (lower better)"),
    ("max_sensitivity", "max-sensitivity (lower better)"),
    ("randomization_rank_correlation", "randomization rank corr. (lower better)"),
)


logger = logging.getLogger(__name__)


def _fmt(value: torch.Tensor) -> str:
    return f"{float(value):.4f}"


def _methods(model: torch.nn.Module) -> tuple[dict[str, tuple[Any, dict | None]], str]:
    """Return the attribution methods by label, captum's where installed, and a note."""
    try:
        from captum.attr import InputXGradient, IntegratedGradients, Saliency
    except ImportError:
        logger.warning("captum is not installed; the interpretability section scores the "
                       "library's own gradient methods instead of captum's")
        methods = {
            "gradient (signed)": (gradient_attribution, None),
            "InputXGradient (own)": (input_x_gradient, None),
        }
        return methods, "captum is not installed: own gradient methods, no IntegratedGradients. "
    methods = {
        "Saliency (|gradient|)": (Saliency(model), None),
        "IntegratedGradients": (IntegratedGradients(model), {"n_steps": 16}),
        "InputXGradient": (InputXGradient(model), None),
    }
    return methods, "captum attribution methods, IntegratedGradients with 16 steps. "


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Score three attribution methods and a random control on a probe set of test digits."""
    model = ctx.model
    probe_size = 32 if ctx.config.quick else 64
    order = torch.randperm(len(ctx.data.test_images), generator=ctx.generator(801))
    probe = ctx.data.test_images[order[:probe_size]]
    steps = 16
    methods, methods_note = _methods(model)
    control_label = next(iter(methods))

    rows, curves, results = [], [], {}
    for label, (method, options) in methods.items():
        metric = SaliencyFidelity(
            model, method, scores=("deletion", "insertion", "faithfulness_correlation",
                                   "infidelity", "max_sensitivity", "randomization"),
            steps=steps, subsets=32 if ctx.config.quick else 64, subset_size=16,
            infidelity_samples=16, infidelity_noise_std=0.1, sensitivity_samples=4,
            attribution_options=options, random_control=label == control_label,
            seed=ctx.config.seed,
        )
        metric.update(probe)
        values = metric.compute()
        results[label] = values
        rows.append([label, *(_fmt(values[key]) for key, _ in COLUMNS)])
        mean = metric.mean_curves()
        curves.append((label, mean["deletion_curve"]))
        if "deletion_curve_random" in mean:
            control_values, control_curve = values, mean["deletion_curve_random"]

    rows.append(["random control (standard normal)", *(
        _fmt(control_values[f"{key}_random"]) if f"{key}_random" in control_values else "-"
        for key, _ in COLUMNS
    )])
    curves.append(("random control", control_curve))

    note = methods_note + (
        f"{probe_size} test digits, predicted class, softmax probability, zero baseline, "
        f"one pixel per unit, {steps} steps; faithfulness: random subsets of 16 pixels; "
        f"infidelity: Gaussian noise of std 0.1, 16 samples, logit; max-sensitivity: 4 samples "
        f"in an L-infinity ball of radius 0.02; randomization: Spearman of |attributions| "
        f"against a re-initialized copy. IntegratedGradients and InputXGradient multiply by "
        f"the input, so both maps are 0 on the blank background and much of their rank order "
        f"comes from the input itself, which keeps their randomization correlation high."
    )
    card.add_table("interpretability", "Saliency fidelity on the digits CNN",
                   ["method", *(title for _, title in COLUMNS)], rows, note=note)
    card.add_figure("interpretability", "Deletion curves (mean over the probe set)", "line", {
        "x_label": "fraction of pixels removed (most relevant first)",
        "y_label": "probability of the predicted class",
        "series": [{"label": label, "x": torch.linspace(0, 1, steps + 1).tolist(),
                    "y": curve.tolist()} for label, curve in curves],
    })

    best_label = "IntegratedGradients" if "IntegratedGradients" in results else control_label
    best = results[best_label]
    suffix = "integrated_gradients" if best_label == "IntegratedGradients" else "gradient"
    for key in ("deletion_auc", "faithfulness_correlation"):
        card.add_kpi("interpretability", f"{key}_{suffix}", best[key], unit="score",
                     higher_is_better=HIGHER_IS_BETTER[key],
                     description=f"{key.replace('_', ' ')} of {best_label} over "
                                 f"{probe_size} test digits (random control: "
                                 f"{_fmt(control_values[key + '_random'])})")

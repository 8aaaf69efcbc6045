"""Interpretability KPIs: is a saliency map faithful to the model it explains?"""

from andante_metrics.interpretability.attribution import gradient_attribution, input_x_gradient
from andante_metrics.interpretability.infidelity import infidelity, max_sensitivity
from andante_metrics.interpretability.perturbation import (
    curve_area,
    faithfulness_correlation,
    perturbation_curve,
)
from andante_metrics.interpretability.randomization import (
    model_randomization_check,
    randomized_copy,
)
from andante_metrics.interpretability.saliency_fidelity import SaliencyFidelity

__all__ = [
    "SaliencyFidelity",
    "curve_area",
    "faithfulness_correlation",
    "gradient_attribution",
    "infidelity",
    "input_x_gradient",
    "max_sensitivity",
    "model_randomization_check",
    "perturbation_curve",
    "randomized_copy",
]

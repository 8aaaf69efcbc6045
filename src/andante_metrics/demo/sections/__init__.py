"""One module per KPI area; each adds its part of the demo's KPI card.

A section is a function ``build_section(ctx, card)`` that receives the
:class:`~andante_metrics.demo.runner.DemoContext` (trained model, data, config, training
history) and adds KPIs, tables and figures to the :class:`~andante_metrics.report.KPICard`.
A new area adds its module and one entry below, in the order the card shows them.
"""

from andante_metrics.demo.sections import (
    accuracy,
    bayes,
    characterization,
    convergence,
    efficiency,
    fidelity,
    generalization,
    generative,
    interpretability,
    reproducibility,
    robustness,
)

SECTIONS = [
    ("accuracy", accuracy.build_section),
    ("bayes", bayes.build_section),
    ("characterization", characterization.build_section),
    ("efficiency", efficiency.build_section),
    ("fidelity", fidelity.build_section),
    ("generalization", generalization.build_section),
    ("generative", generative.build_section),
    ("interpretability", interpretability.build_section),
    ("convergence", convergence.build_section),
    ("reproducibility", reproducibility.build_section),
    ("robustness", robustness.build_section),
]

"""Import every ``cases_<area>.py`` module of this folder so their cases register."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from conformance.harness import MetricCase, registered


def load_cases() -> dict[str, MetricCase]:
    """Import all case modules once and return every registered case by name."""
    folder = Path(__file__).parent
    for module in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if module.name.startswith("cases_"):
            importlib.import_module(f"conformance.{module.name}")
    return registered()

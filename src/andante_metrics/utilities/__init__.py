"""Shared helpers: input checks, one-time warnings and distributed utilities."""

from andante_metrics.utilities.checks import (
    call_model_on,
    check_finite,
    check_in_choices,
    check_int_range,
    check_labels_in_range,
    check_module,
    check_positive,
    check_same_first_dim,
    check_same_shape,
    check_tensor,
)
from andante_metrics.utilities.logging import get_logger, reset_warnings, warn_once

__all__ = [
    "call_model_on",
    "check_finite",
    "check_in_choices",
    "check_int_range",
    "check_labels_in_range",
    "check_module",
    "check_positive",
    "check_same_first_dim",
    "check_same_shape",
    "check_tensor",
    "get_logger",
    "reset_warnings",
    "warn_once",
]

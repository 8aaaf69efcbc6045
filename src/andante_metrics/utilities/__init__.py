"""Shared helpers: input checks, one-time warnings and distributed utilities."""

from andante_metrics.utilities.checks import (
    check_finite,
    check_in_choices,
    check_int_range,
    check_labels_in_range,
    check_positive,
    check_same_first_dim,
    check_same_shape,
    check_tensor,
)
from andante_metrics.utilities.logging import get_logger, reset_warnings, warn_once

__all__ = [
    "check_finite",
    "check_in_choices",
    "check_int_range",
    "check_labels_in_range",
    "check_positive",
    "check_same_first_dim",
    "check_same_shape",
    "check_tensor",
    "get_logger",
    "reset_warnings",
    "warn_once",
]

"""Loaders for the real data sets that installed packages ship (no download)."""

from andante_metrics.data.digits import DigitsSplit, load_digits_split

__all__ = ["DigitsSplit", "load_digits_split"]

"""Library logging: a package logger and warnings issued once per cause."""

from __future__ import annotations

import logging
import warnings

_LOGGER_NAME = "andante_metrics"
_warned: set[str] = set()


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the package logger, or a child of it for ``name``."""
    return logging.getLogger(_LOGGER_NAME if name is None else f"{_LOGGER_NAME}.{name}")


def _is_rank_zero() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def warn_once(key: str, message: str, category: type[Warning] = UserWarning) -> bool:
    """Issue ``message`` as a warning the first time ``key`` is seen, on rank zero only.

    Returns ``True`` when the warning was issued. Silence every warning of the package with
    ``warnings.filterwarnings("ignore", module="andante_metrics")`` or reset the memory of
    issued warnings with :func:`reset_warnings`.
    """
    if key in _warned or not _is_rank_zero():
        return False
    _warned.add(key)
    warnings.warn(message, category, stacklevel=3)
    return True


def reset_warnings() -> None:
    """Forget which warnings were issued, so each can be issued once more."""
    _warned.clear()

"""Input checks shared by every metric.

Each check raises ``ValueError`` or ``TypeError`` with a message that names the argument in
backticks, the rule it broke, the value received and what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _describe(value: Any) -> str:
    """Return a short description of ``value`` for error messages."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{value!r} ({type(value).__name__})"


def check_tensor(
    value: Any,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    dtype: str | None = None,
) -> torch.Tensor:
    """Check that ``value`` is a tensor with an allowed number of dimensions and dtype kind.

    Args:
        value: the object to check.
        name: the argument name used in the error message.
        ndim: allowed number of dimensions, one int or several.
        dtype: ``"float"``, ``"int"`` (integer or bool) or ``"number"`` (either).

    Returns:
        ``value`` itself, so the call can be used inline.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {_describe(value)}.")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            expected = " or ".join(str(n) for n in allowed)
            raise ValueError(
                f"`{name}` must have {expected} dimensions, got shape {tuple(value.shape)}."
            )
    if dtype == "float" and value.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"`{name}` must be a floating-point tensor, got dtype {value.dtype}; "
            f"convert it with `.float()`."
        )
    if dtype == "int" and (value.is_floating_point() or value.is_complex()):
        raise TypeError(
            f"`{name}` must be an integer tensor of class indices, got dtype {value.dtype}; "
            f"convert it with `.long()`."
        )
    if dtype == "number" and value.is_complex():
        raise TypeError(f"`{name}` must be a real tensor, got dtype {value.dtype}.")
    return value


def check_finite(value: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` when a floating-point tensor contains NaN or infinite entries."""
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(
            f"`{name}` contains {bad} NaN or infinite value(s); remove or replace them before "
            f"updating the metric."
        )


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` when two tensors differ in shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}."
        )


def check_same_first_dim(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` when two tensors hold a different number of samples."""
    if a.shape[:1] != b.shape[:1]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must hold the same number of samples (first dimension), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}."
        )


def check_labels_in_range(
    labels: torch.Tensor, num_classes: int, name: str, *, ignore_index: int | None = None
) -> None:
    """Raise ``ValueError`` when a class index lies outside ``[0, num_classes)``."""
    values = labels if ignore_index is None else labels[labels != ignore_index]
    if values.numel() == 0:
        return
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise ValueError(
            f"`{name}` must hold class indices in [0, {num_classes - 1}] for num_classes="
            f"{num_classes}, got {bad}; check `num_classes` or remap the labels."
        )


def check_in_choices(value: Any, name: str, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` when ``value`` is not one of ``choices``."""
    allowed = tuple(choices)
    if value not in allowed:
        listed = ", ".join(repr(c) for c in allowed)
        raise ValueError(f"`{name}` must be one of {listed}, got {value!r}.")


def check_int_range(
    value: Any, name: str, *, low: int | None = None, high: int | None = None
) -> int:
    """Check that ``value`` is an int (not a bool) within ``[low, high]``; return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {_describe(value)}.")
    if low is not None and value < low:
        raise ValueError(f"`{name}` must be at least {low}, got {value}.")
    if high is not None and value > high:
        raise ValueError(f"`{name}` must be at most {high}, got {value}.")
    return value


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Check that ``value`` is a finite real number above zero (or at least zero); return it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number, got {_describe(value)}.")
    ok = value >= 0 if allow_zero else value > 0
    if not ok or value != value or value in (float("inf"), float("-inf")):
        rule = "at least 0" if allow_zero else "greater than 0"
        raise ValueError(f"`{name}` must be a finite number {rule}, got {value!r}.")
    return float(value)


def check_module(value: Any, name: str = "model") -> Any:
    """Raise ``TypeError`` unless ``value`` is a ``torch.nn.Module``; return it."""
    if not isinstance(value, torch.nn.Module):
        raise TypeError(
            f"`{name}` must be a torch.nn.Module, got {type(value).__name__}; pass the module "
            f"itself, or wrap a plain function in an nn.Module whose forward() calls it."
        )
    return value


def _describe_shapes(inputs: Any) -> str:
    """Return the shape of a tensor, or the shapes inside a tuple, list or dict of inputs."""
    if isinstance(inputs, torch.Tensor):
        return f"shape {tuple(inputs.shape)}"
    if isinstance(inputs, Mapping):
        items = [f"{key}: {_shape_or_type(value)}" for key, value in inputs.items()]
        return "shapes {" + ", ".join(items) + "}"
    if isinstance(inputs, (tuple, list)):
        return "shapes (" + ", ".join(_shape_or_type(value) for value in inputs) + ")"
    return f"type {type(inputs).__name__}"


def _shape_or_type(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    return type(value).__name__


def call_model_on(
    model: Callable[..., Any],
    inputs: Any,
    call: Callable[[Any, Any], Any] | None = None,
    *,
    name: str = "inputs",
) -> Any:
    """Call ``model`` on user inputs, reporting a failure of the call as a bad ``name`` value.

    ``call(model, inputs)`` defaults to ``model(inputs)``. A ``RuntimeError`` raised inside the
    model (in most cases a shape or dtype mismatch such as "mat1 and mat2 shapes cannot be
    multiplied") becomes a ``ValueError`` that names the argument and its shape and keeps the
    original error as its ``__cause__``. Out-of-memory errors pass through unchanged.
    """
    try:
        return model(inputs) if call is None else call(model, inputs)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        raise ValueError(
            f"The model raised RuntimeError on `{name}` of {_describe_shapes(inputs)} "
            f"({str(err).strip()}). Pass {name} the model accepts, batch dimension first."
        ) from err

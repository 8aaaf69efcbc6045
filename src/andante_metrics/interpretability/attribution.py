"""Attribution methods in the form the scores call: ``attribute(model, inputs, target)``.

The scores accept any captum attribution object (anything with an ``attribute(inputs,
target=...)`` method), a callable ``fn(model, inputs, target)``, or precomputed attributions.
The two gradient methods below take gradients with ``torch.autograd.grad``, so the ``.grad``
fields of the model's parameters, which an optimizer reads, stay untouched.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from andante_metrics.interpretability._core import AttributeFn, check_inputs, score_outputs
from andante_metrics.utilities.checks import call_model_on


def gradient_attribution(
    model: nn.Module, inputs: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    r"""Return the gradient of the target logit with respect to the inputs (signed saliency).

    :math:`a = \partial f_t(x) / \partial x`, computed with ``torch.autograd.grad`` under
    ``torch.enable_grad()``, so it also works inside ``torch.no_grad()`` and leaves every
    parameter's ``.grad`` as it was.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = model.weight.fill_(3.0)
        >>> gradient_attribution(model, torch.ones(1, 2), torch.zeros(1, dtype=torch.long))
        tensor([[3., 3.]])
    """
    check_inputs(inputs)
    with torch.enable_grad():
        leaf = inputs.detach().clone().requires_grad_(True)
        selected = score_outputs(call_model_on(model, leaf), target, "logit")
        (grad,) = torch.autograd.grad(selected.sum(), leaf)
    return grad.to(inputs.dtype)


def input_x_gradient(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Return gradient times input, :math:`a = x \odot \partial f_t(x) / \partial x`.

    For a linear model the attributions sum to :math:`f_t(x) - f_t(0)`.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = model.weight.fill_(3.0)
        >>> input_x_gradient(model, torch.tensor([[1.0, 2.0]]), torch.zeros(1, dtype=torch.long))
        tensor([[3., 6.]])
    """
    return inputs * gradient_attribution(model, inputs, target)


def is_captum_like(method: Any) -> bool:
    """Return True for an object with an ``attribute`` method (a captum attribution)."""
    return callable(getattr(method, "attribute", None))


def multiplies_by_inputs(method: Any) -> bool:
    """Return whether the method's attributions scale with the input (captum's flag)."""
    if method is input_x_gradient:
        return True
    return bool(getattr(method, "multiplies_by_inputs", False))


def as_attribute_fn(method: Any, options: Mapping[str, Any] | None = None) -> AttributeFn:
    """Wrap a captum attribution object or a callable as ``fn(model, inputs, target)``.

    A captum object is bound to its own model. Called with another model (the randomized copy
    of the model-randomization check), it is rebuilt for that model by
    :func:`rebuild_for_model`. ``options`` are passed to ``attribute`` as keyword arguments,
    and every call runs under ``torch.enable_grad()``.
    """
    extra = dict(options or {})
    if is_captum_like(method):
        rebuilt: dict[int, Any] = {}

        def attribute(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            bound = method
            if getattr(method, "forward_func", model) is not model:
                bound = rebuilt.setdefault(id(model), rebuild_for_model(method, model))
            with torch.enable_grad():
                leaf = inputs.detach().clone().requires_grad_(True)
                return bound.attribute(leaf, target=target, **extra).detach()

        return attribute
    if callable(method):

        def call(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                return method(model, inputs, target, **extra).detach()

        return call
    raise TypeError(
        f"`attribution` must be a captum attribution object (with an `attribute` method), a "
        f"callable fn(model, inputs, target) or None for precomputed attributions, got "
        f"{type(method).__name__}."
    )


def rebuild_for_model(method: Any, model: nn.Module) -> Any:
    """Build a captum attribution object of the same class for ``model``.

    Only the forward function and captum's ``multiply_by_inputs`` flag carry over.
    """
    cls = type(method)
    parameters = inspect.signature(cls.__init__).parameters
    kwargs = {}
    if "multiply_by_inputs" in parameters:
        kwargs["multiply_by_inputs"] = multiplies_by_inputs(method)
    try:
        return cls(model, **kwargs)
    except TypeError as err:
        raise TypeError(
            f"Cannot rebuild the attribution {cls.__name__} for the randomized model copy: its "
            f"constructor takes more than the model. Pass a callable fn(model, inputs, target) "
            f"that builds it for the given model instead."
        ) from err

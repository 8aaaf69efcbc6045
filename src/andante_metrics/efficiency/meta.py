"""Build a model with its parameters and buffers on the ``meta`` device (no memory, no init)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Move every parameter and buffer to ``meta`` as soon as a module registers it.

    Used where ``with torch.device("meta")`` fails because the constructor computes with
    tensors (torchvision's RegNet builders call ``.tolist()`` on a tensor). Initialisers then run
    on meta tensors and cost nothing.

    NOTE: it replaces two methods of ``nn.Module`` for the whole process while active, so a
    module built by another thread at the same time also lands on ``meta``.
    """
    register_parameter = nn.Module.register_parameter
    register_buffer = nn.Module.register_buffer

    def parameter_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(module, name, param)

    def buffer_on_meta(module: nn.Module, name: str, tensor: torch.Tensor | None, *args: Any,
                       **kwargs: Any) -> None:
        if tensor is not None:
            tensor = tensor.to("meta")
        register_buffer(module, name, tensor, *args, **kwargs)

    nn.Module.register_parameter = parameter_on_meta  # type: ignore[method-assign]
    nn.Module.register_buffer = buffer_on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        nn.Module.register_buffer = register_buffer  # type: ignore[method-assign]


def build_on_meta(builder: Callable[..., nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    """Call ``builder(*args, **kwargs)`` so that the model's tensors live on the ``meta`` device.

    It first builds under ``with torch.device("meta")``. A constructor that needs real tensor
    values (``NotImplementedError`` from a meta tensor) is built again with each parameter and
    buffer moved to ``meta`` when registered; the CPU tensors it creates on the way are freed at
    once, so even a billion-parameter model needs little memory.

    Example:
        >>> from torch import nn
        >>> build_on_meta(nn.Linear, 1000, 1000).weight.device
        device(type='meta')
    """
    try:
        with torch.device("meta"):
            return builder(*args, **kwargs)
    except NotImplementedError:
        with _parameters_on_meta():
            return builder(*args, **kwargs)

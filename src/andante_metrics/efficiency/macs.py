"""MACs and FLOPs of a forward pass, counted at PyTorch's dispatch level, per module and operator.

The counting convention (which operators count and how) is written out in
:mod:`andante_metrics.efficiency._formulas`. Counted: matrix products, ``linear`` on any number
of dimensions, ``matmul`` and ``einsum`` (as the ``mm``/``bmm`` calls they decompose into),
convolutions of every kind and scaled-dot-product attention. Bias additions, normalization,
activations, pooling, upsampling and element-wise operators are "other": they are listed with
their call counts only. ``FLOPs = 2 * MACs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from andante_metrics.base import KPIMetric
from andante_metrics.efficiency._dispatch import Recorder, Recording, buffers_restored
from andante_metrics.utilities.checks import call_model_on, check_module, check_tensor
from andante_metrics.utilities.logging import get_logger, warn_once

_LOG = get_logger("efficiency")


@dataclass(frozen=True)
class ModuleCost:
    """MACs of one module path, inclusive of its children, summed over all its calls."""

    path: str
    type_name: str
    depth: int
    calls: int
    macs: int
    parameters: int

    @property
    def flops(self) -> int:
        """Floating-point operations, ``2 * macs``."""
        return 2 * self.macs


@dataclass(frozen=True)
class OperatorCost:
    """MACs of one ATen operator summed over its calls."""

    name: str
    calls: int
    macs: int

    @property
    def flops(self) -> int:
        """Floating-point operations, ``2 * macs``."""
        return 2 * self.macs


@dataclass(frozen=True)
class MACCount:
    """Result of :func:`count_macs`.

    Attributes:
        macs: multiply-accumulate operations of the whole forward pass.
        by_module: module path (``""`` for the root) to its inclusive :class:`ModuleCost`, in the
            order the modules were first called.
        by_operator: counted ATen operator (``"aten.convolution"``, ``"aten.addmm"``, ...) to its
            :class:`OperatorCost`.
        other_operators: operators without a MAC formula (normalization, activations, pooling,
            element-wise, bias additions) to their call counts; views are not listed.
    """

    macs: int
    by_module: dict[str, ModuleCost] = field(default_factory=dict)
    by_operator: dict[str, OperatorCost] = field(default_factory=dict)
    other_operators: dict[str, int] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        """Floating-point operations, ``2 * macs`` (one multiplication and one addition)."""
        return 2 * self.macs

    def table(self, *, max_depth: int | None = None, unit: float = 1e6) -> str:
        """Format the per-module and per-operator breakdown as a plain-text table.

        Args:
            max_depth: deepest module level to list (the root is level 0); ``None`` lists all.
            unit: divisor of the MAC and FLOP columns, ``1e6`` for millions (``M``).
        """
        suffix = {1.0: "", 1e3: "K", 1e6: "M", 1e9: "G"}.get(unit, f"/{unit:g}")
        rows = [("module", "type", "calls", "params", f"{suffix}MACs", f"{suffix}FLOPs", "share")]
        total = max(self.macs, 1)
        for cost in self.by_module.values():
            if max_depth is not None and cost.depth > max_depth:
                continue
            name = "  " * cost.depth + (cost.path.rsplit(".", 1)[-1] if cost.path else "(model)")
            rows.append((name, cost.type_name, str(cost.calls), f"{cost.parameters:,}",
                         f"{cost.macs / unit:.3f}", f"{cost.flops / unit:.3f}",
                         f"{100 * cost.macs / total:.1f}%"))
        rows.append(("", "", "", "", "", "", ""))
        rows.append(("operator", "", "calls", "", f"{suffix}MACs", f"{suffix}FLOPs", "share"))
        for op in sorted(self.by_operator.values(), key=lambda o: -o.macs):
            rows.append((op.name, "", str(op.calls), "", f"{op.macs / unit:.3f}",
                         f"{op.flops / unit:.3f}", f"{100 * op.macs / total:.1f}%"))
        for name, calls in sorted(self.other_operators.items()):
            rows.append((name, "other", str(calls), "", "-", "-", "-"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                           for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
                 for row in rows]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _call_model(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, torch.Tensor):
        return call_model_on(model, inputs)
    if isinstance(inputs, Mapping):
        return call_model_on(model, inputs, lambda m, kwargs: m(**kwargs))
    if isinstance(inputs, (tuple, list)):
        return call_model_on(model, inputs, lambda m, args: m(*args))
    raise TypeError(
        f"`inputs` must be a tensor, a tuple of positional arguments or a dict of keyword "
        f"arguments, got {type(inputs).__name__}."
    )


def _to_result(recording: Recording) -> MACCount:
    modules = {
        path: ModuleCost(path, r.type_name, r.depth, r.calls, r.macs, r.parameters)
        for path, r in recording.modules.items()
    }
    operators = {
        name: OperatorCost(name, recording.op_calls[name], recording.op_macs[name])
        for name in recording.op_calls
    }
    return MACCount(recording.total_macs, modules, operators, dict(recording.other_calls))


def _record_forward(
    model: nn.Module, inputs: Any, **recorder_options: Any
) -> tuple[Recording, Any]:
    check_module(model)
    recorder = Recorder(model, **recorder_options)
    with buffers_restored(model), torch.no_grad(), recorder:
        output = _call_model(model, inputs)
    return recorder.recording, output


def count_macs(model: nn.Module, inputs: Any) -> MACCount:
    """Count the MACs and FLOPs of one forward pass, per module and per ATen operator.

    The forward pass runs under ``torch.no_grad`` (also inside ``torch.inference_mode``) inside a
    ``TorchDispatchMode`` that intercepts every operator after composite operators are
    decomposed, so functional calls, ``matmul`` and attention count as well as ``nn.Conv2d``
    and ``nn.Linear``. Modules are tracked with global forward hooks that are removed on exit.
    The model keeps its mode (call ``eval()`` first for inference counts), its parameters, its
    hooks and its buffers: running statistics that a training-mode pass updates are restored.
    Put the model and the inputs on the ``meta`` device to count a large model with no memory
    or compute.

    Counts are per call: a module called twice (shared by two parents, or a loop) adds its MACs
    twice, under one path per parent. The convention, with the formulas, is in the module
    docstring of ``andante_metrics.efficiency._formulas``. In short, ``mm`` of ``[m,k] x [k,n]``
    is ``m k n`` MACs and a convolution is ``N * prod(weight.shape) * prod(output spatial)``.

    Args:
        model: the model; it is called as ``model(inputs)``, ``model(*inputs)`` for a tuple or
            list, or ``model(**inputs)`` for a dict.
        inputs: the forward-pass arguments.

    Returns:
        A :class:`MACCount` with ``.macs``, ``.flops``, ``.by_module``, ``.by_operator``,
        ``.other_operators`` and ``.table()``. A model without counted operators gives 0 MACs.

    Example:
        >>> from torch import nn
        >>> result = count_macs(nn.Linear(4, 3), torch.zeros(2, 5, 4))
        >>> result.macs, result.flops  # 2 * 5 tokens x 4 inputs x 3 outputs
        (120, 240)
    """
    recording, _ = _record_forward(model, inputs)
    result = _to_result(recording)
    if result.other_operators:
        _LOG.debug("Operators counted as 'other' (no MAC formula): %s", result.other_operators)
    recurrent = sorted(op for op in result.other_operators if _is_recurrent(op))
    if recurrent:
        warn_once(
            f"count-macs-recurrent-{recurrent}",
            f"count_macs has no MAC formula for the recurrent operators {recurrent}; their "
            f"multiply-accumulates are missing from .macs, which is therefore an undercount.",
        )
    return result


# Fused recurrent kernels (LSTM, GRU, RNN layers) carry matrix products that no formula here
# counts. By the convention, every other operator left as "other" does no multiply-accumulate.
_RECURRENT_MARKERS = ("rnn", "lstm", "gru")


def _is_recurrent(operator: str) -> bool:
    name = operator.lower()
    return any(marker in name for marker in _RECURRENT_MARKERS)


def _batch_size(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        check_tensor(inputs, "inputs")
        if inputs.ndim == 0 or inputs.shape[0] == 0:
            raise ValueError(
                f"`inputs` must hold at least one sample along dimension 0, got shape "
                f"{tuple(inputs.shape)}."
            )
        return int(inputs.shape[0])
    raise TypeError(f"`inputs` must be a torch.Tensor, got {type(inputs).__name__}.")


class MACsPerSample(KPIMetric):
    r"""Mean MACs per sample of a model over real data: :math:`\frac{1}{N}\sum_b C(x_b)`.

    Each ``update(inputs)`` counts the MACs of one forward pass on the batch ``inputs`` with
    :func:`count_macs` and adds them, with the batch size, to the state. The mean over samples
    is what a dynamic model (early exit, mixture of experts, token dropping) costs on that data.
    For a static model it equals the MACs of one sample.

    Args:
        model: the model; it stays in the mode it is in.

    ``compute()`` returns the float64 mean MACs per sample; with no sample seen it raises
    ``ValueError``.

    Example:
        >>> from torch import nn
        >>> metric = MACsPerSample(nn.Linear(4, 3))
        >>> metric.update(torch.zeros(5, 4))
        >>> metric.compute()
        tensor(12., dtype=torch.float64)
    """

    kpi_area = "efficiency"
    unit = "MACs"
    higher_is_better = False

    def __init__(self, model: nn.Module, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_module(model)
        # Kept in a list so that the model's weights stay out of the metric's state_dict.
        self._model = [model]
        self.add_state("total_macs", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("samples", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, inputs: torch.Tensor) -> None:
        """Count the MACs of the forward pass on ``inputs`` (first dimension is the batch)."""
        size = _batch_size(inputs)
        macs = count_macs(self._model[0], inputs).macs
        self.total_macs += float(macs)
        self.samples += size

    def compute(self) -> torch.Tensor:
        """Return the mean MACs per sample over every update so far."""
        self._check_not_empty(self.samples)
        return self.total_macs / self.samples

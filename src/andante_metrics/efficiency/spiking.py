r"""Spike counts, synaptic operations and an energy estimate of spiking neural networks.

A spiking layer emits binary outputs (1 = spike). The next weighted layer then does one
accumulation per spike and per synapse the spike reaches, instead of one multiply-accumulate
per input and synapse. The counts, per layer:

* spikes: number of non-zero outputs of each neuron module (a module whose type is in
  ``neuron_types``), with its neuron count (output elements) and firing rate
  :math:`\text{spikes} / \text{neurons}`;
* synaptic operations (SynOps) of a weighted operator whose input is binary: the spikes it
  receives times their fan-out. For ``mm``/``addmm``/``bmm`` with input ``[m, k]`` and
  ``n`` outputs, :math:`\text{SynOps} = \text{nnz}(A)\,n`. For a convolution it is the exact number
  of (spike, weight) pairs that meet in some output, computed by convolving the spike indicator
  with a kernel of ones. A weighted operator whose input is not binary (the first layer, fed
  with pixels) does dense MACs as counted by :func:`count_macs`.

Energy estimate: :math:`E = \text{SynOps}\, E_{AC} + \text{MACs}_{dense}\, E_{MAC}`, with the
32-bit floating-point costs of the 45 nm, 0.9 V energy table in M. Horowitz, "Computing's
energy problem (and what we can do about it)", ISSCC 2014 (reproduced, for example, in Table 3 of
PubMed Central article PMC8934428): addition 0.9 pJ, multiplication 3.7 pJ, so
:math:`E_{AC} = 0.9` pJ and :math:`E_{MAC} = 4.6` pJ. It counts arithmetic only, no memory access,
so it is an estimate for comparing models, not a measurement of any chip.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from andante_metrics.base import KPIMetric
from andante_metrics.efficiency._dispatch import Recorder, buffers_restored
from andante_metrics.efficiency.macs import _batch_size, _call_model
from andante_metrics.utilities.checks import check_module

aten = torch.ops.aten

ENERGY_PER_AC_PJ = 0.9
"""Energy of one 32-bit float addition, 45 nm (Horowitz, ISSCC 2014), in picojoules."""
ENERGY_PER_MAC_PJ = 3.7 + 0.9
"""Energy of one 32-bit float multiplication plus addition, 45 nm (Horowitz, ISSCC 2014), pJ."""

_MATMULS = {aten.mm, aten.bmm}
_BIASED_MATMULS = {aten.addmm, aten.baddbmm}
_CONVOLUTIONS = {aten.convolution, aten._convolution}


@dataclass(frozen=True)
class SpikingCost:
    """Result of :func:`count_synaptic_operations`.

    Attributes:
        spikes: neuron module path to its number of spikes.
        neurons: neuron module path to its number of output elements over all calls.
        synops: weighted module path to the synaptic operations its binary inputs caused.
        dense_macs: weighted module path to the MACs it did on non-binary inputs.
        energy_pj: the arithmetic energy estimate in picojoules (see the module docstring).
    """

    spikes: dict[str, int] = field(default_factory=dict)
    neurons: dict[str, int] = field(default_factory=dict)
    synops: dict[str, int] = field(default_factory=dict)
    dense_macs: dict[str, int] = field(default_factory=dict)
    energy_pj: float = 0.0

    @property
    def total_spikes(self) -> int:
        """Spikes of every neuron module."""
        return sum(self.spikes.values())

    @property
    def total_synops(self) -> int:
        """Synaptic operations of every weighted module."""
        return sum(self.synops.values())

    @property
    def firing_rates(self) -> dict[str, float]:
        """Spikes per neuron output of each neuron module."""
        return {path: self.spikes[path] / max(self.neurons[path], 1) for path in self.spikes}


def _is_binary(tensor: torch.Tensor) -> bool:
    if tensor.device.type == "meta":
        raise ValueError(
            "Synaptic operations depend on the spike values, so the model and `inputs` must be "
            "on a real device, got the meta device."
        )
    return bool(((tensor == 0) | (tensor == 1)).all())


def _convolution_synops(args: tuple) -> int:
    x, weight, _, stride, padding, dilation, transposed, _, groups = args[:9]
    spikes = (x != 0).to(weight.dtype if weight.is_floating_point() else torch.float32)
    out_per_group = weight.shape[1] if transposed else weight.shape[0] // groups
    if transposed:
        # NOTE: an upper bound: spikes near the border whose targets are cropped by the
        # transposed convolution's padding are still counted with their full fan-out.
        return int(spikes.sum()) * out_per_group * prod(weight.shape[2:])
    in_per_group = weight.shape[1]
    ones = torch.ones(groups, in_per_group, *weight.shape[2:], dtype=spikes.dtype,
                      device=spikes.device)
    convolve = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[x.ndim]
    reached = convolve(spikes, ones, None, stride, padding, dilation, groups)
    return int(reached.sum()) * out_per_group


def _synops(func: Any, args: tuple) -> tuple[int, bool]:
    """Return (synaptic operations, whether the input was binary) of a weighted operator."""
    if func.overloadpacket in _MATMULS or func.overloadpacket in _BIASED_MATMULS:
        a, b = (args[0], args[1]) if func.overloadpacket in _MATMULS else (args[1], args[2])
        if not _is_binary(a):
            return 0, False
        return int((a != 0).sum()) * int(b.shape[-1]), True
    if func.overloadpacket in _CONVOLUTIONS:
        if not _is_binary(args[0]):
            return 0, False
        return _convolution_synops(args), True
    return 0, False


def _check_neuron_types(neuron_types: Any) -> None:
    if (not isinstance(neuron_types, tuple) or not neuron_types
            or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in neuron_types)):
        raise TypeError(
            f"`neuron_types` must be a non-empty tuple of nn.Module subclasses, got "
            f"{neuron_types!r}."
        )


def count_synaptic_operations(
    model: nn.Module, inputs: Any, *, neuron_types: tuple[type[nn.Module], ...]
) -> SpikingCost:
    """Count spikes per neuron module, synaptic operations per weighted module and the energy.

    The forward pass runs once under ``torch.no_grad`` inside the same dispatch-level recorder
    as :func:`count_macs`. Convolutions and matrix products whose input is all zeros and ones
    count synaptic operations, the others dense MACs. Operators attribute to the innermost module
    active at the call; the formulas and the energy constants are in the module docstring.

    Args:
        model: the spiking model, on a real device (spike values are needed).
        inputs: the forward-pass arguments (tensor, tuple or dict, as for :func:`count_macs`).
        neuron_types: module types whose outputs are spikes (for example a LIF layer class).

    Returns:
        A :class:`SpikingCost`. A model without neuron modules has empty ``spikes``.

    Example:
        >>> from torch import nn
        >>> class Step(nn.Module):
        ...     def forward(self, x):
        ...         return (x > 0).float()
        >>> model = nn.Sequential(Step(), nn.Linear(4, 3, bias=False))
        >>> cost = count_synaptic_operations(model, torch.tensor([[1.0, -1, 2, -3]]),
        ...                                  neuron_types=(Step,))
        >>> cost.spikes["0"], cost.synops["1"]  # 2 spikes, each reaching 3 outputs
        (2, 6)
    """
    check_module(model)
    _check_neuron_types(neuron_types)
    spikes: dict[str, int] = defaultdict(int)
    neurons: dict[str, int] = defaultdict(int)
    synops: dict[str, int] = defaultdict(int)
    dense: dict[str, int] = defaultdict(int)
    recorder: Recorder

    def on_op(func: Any, args: tuple, kwargs: dict, out: Any, macs: int) -> None:
        path = recorder.stack[-1] if recorder.stack else ""
        count, binary = _synops(func, args)
        if binary:
            synops[path] += count
        else:
            dense[path] += macs

    def on_module(path: str, module: nn.Module, output: Any) -> None:
        if isinstance(module, neuron_types) and isinstance(output, torch.Tensor):
            spikes[path] += int((output != 0).sum())
            neurons[path] += output.numel()

    recorder = Recorder(model, op_hook=on_op, module_hook=on_module)
    with buffers_restored(model), torch.no_grad(), recorder:
        _call_model(model, inputs)

    energy = sum(synops.values()) * ENERGY_PER_AC_PJ + sum(dense.values()) * ENERGY_PER_MAC_PJ
    return SpikingCost(dict(spikes), dict(neurons), dict(synops), dict(dense), float(energy))


class SynapticOperations(KPIMetric):
    """Spikes, synaptic operations and arithmetic energy per sample of a spiking model.

    Each ``update(inputs)`` runs :func:`count_synaptic_operations` on the batch and adds its
    totals; ``compute()`` divides by the number of samples (dimension 0 of ``inputs``).

    Args:
        model: the spiking model, on a real device.
        neuron_types: module types whose outputs are spikes.

    ``compute()`` returns ``{"spikes", "synops", "dense_macs", "energy_pj"}``, float64 means per
    sample; with no sample seen it raises ``ValueError``.
    """

    kpi_area = "efficiency"
    unit = "SynOps"
    higher_is_better = False

    def __init__(
        self, model: nn.Module, *, neuron_types: tuple[type[nn.Module], ...], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        check_module(model)
        _check_neuron_types(neuron_types)
        self._model = [model]
        self.neuron_types = neuron_types
        for name in ("spikes", "synops", "dense_macs", "energy_pj"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("samples", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, inputs: torch.Tensor) -> None:
        """Count one forward pass on the batch ``inputs``."""
        size = _batch_size(inputs)
        cost = count_synaptic_operations(self._model[0], inputs, neuron_types=self.neuron_types)
        self.spikes += float(cost.total_spikes)
        self.synops += float(cost.total_synops)
        self.dense_macs += float(sum(cost.dense_macs.values()))
        self.energy_pj += cost.energy_pj
        self.samples += size

    def compute(self) -> dict[str, torch.Tensor]:
        """Return the per-sample means of spikes, SynOps, dense MACs and energy (pJ)."""
        self._check_not_empty(self.samples)
        return {name: getattr(self, name) / self.samples
                for name in ("spikes", "synops", "dense_macs", "energy_pj")}

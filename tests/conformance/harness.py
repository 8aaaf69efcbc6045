"""Table-driven conformance checks shared by every metric.

A metric joins the suite with a :class:`MetricCase` registered in a ``cases_<area>.py`` module
of this folder; :mod:`conformance.registry` imports every such module. The checks in
``test_conformance.py`` then run on every case:

* the value does not depend on how the samples are split into batches, nor on batch order;
* ``forward`` returns the value of the batch alone and still accumulates;
* ``compute`` twice gives the same value, and ``reset`` returns to the empty state;
* a ``state_dict`` saved in the middle of a stream and loaded into a fresh metric continues to
  the same final value;
* two processes over ``torch.distributed`` (gloo on loopback) with uneven batch counts give the
  value of one process;
* each bad input raises ``ValueError`` or ``TypeError`` whose message matches the case's
  pattern (the argument name and the value received), and ``compute`` with no data does what
  the metric documents.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torchmetrics import Metric

Batch = tuple[Any, ...]


@dataclass
class BadInput:
    """An invalid call: the ``update`` arguments, the exception type and a regex for its message.

    ``construct`` set to a dict means the bad input is a constructor option instead: the
    metric is built with those keyword arguments, replacing the case's defaults.
    """

    label: str
    args: Batch = ()
    error: type[Exception] = ValueError
    match: str = ""
    construct: dict[str, Any] | None = None


@dataclass
class MetricCase:
    """One metric configuration with the data it is checked on.

    Attributes:
        name: unique id shown in test names.
        make_metric: builds a fresh metric (``**overrides`` for constructor bad inputs).
        make_batches: returns the list of ``update`` argument tuples from a seeded generator.
        bad_inputs: invalid calls and the errors they must raise.
        empty: what ``compute()`` with no data does: ``"raise"`` (``ValueError``) or a callable
            that checks the returned value.
        splittable: every argument of a batch is a tensor split along dimension 0, so the
            samples can be re-batched; ``False`` for metrics fed whole objects.
        order_invariant: the value does not depend on the order of the batches.
        distributed: the case runs in the two-process check (``False`` needs a ``reason``).
        forward_is_batch_value: ``forward`` returns the batch's own value.
        rtol, atol: tolerances of the value comparisons.
        reason: why a check is switched off.
    """

    name: str
    make_metric: Callable[..., Metric]
    make_batches: Callable[[torch.Generator], list[Batch]]
    bad_inputs: list[BadInput] = field(default_factory=list)
    empty: str | Callable[[Any], None] = "raise"
    splittable: bool = True
    order_invariant: bool = True
    distributed: bool = True
    forward_is_batch_value: bool = True
    rtol: float = 1e-9
    atol: float = 1e-12
    reason: str = ""

    def batches(self, seed: int = 0) -> list[Batch]:
        """Return the case's batches for ``seed``."""
        return self.make_batches(torch.Generator().manual_seed(seed))


_REGISTRY: dict[str, MetricCase] = {}


def register(*cases: MetricCase) -> None:
    """Add cases to the suite; names must be unique."""
    for case in cases:
        if case.name in _REGISTRY:
            raise ValueError(f"Conformance case {case.name!r} is registered twice.")
        _REGISTRY[case.name] = case


def registered() -> dict[str, MetricCase]:
    """Return every registered case by name."""
    return dict(_REGISTRY)


def run_stream(metric: Metric, batches: Sequence[Batch]) -> Any:
    """Update ``metric`` with every batch and return ``compute()``."""
    for batch in batches:
        metric.update(*batch)
    return metric.compute()


def rebatch(batches: Sequence[Batch], sizes: Sequence[int]) -> list[Batch]:
    """Concatenate the batches along dimension 0 and split them again into ``sizes`` chunks.

    The last chunk takes the remainder; sizes beyond the number of samples are dropped.
    """
    columns = [torch.cat([batch[i] for batch in batches]) for i in range(len(batches[0]))]
    total = len(columns[0])
    out, begin = [], 0
    for size in sizes:
        if begin >= total:
            break
        out.append(tuple(col[begin : begin + size] for col in columns))
        begin += size
    if begin < total:
        out.append(tuple(col[begin:] for col in columns))
    return out


def assert_close(
    actual: Any, expected: Any, *, rtol: float, atol: float, path: str = "value"
) -> None:
    """Compare nested results (tensors, numbers, dicts, sequences, dataclasses); NaN equals NaN."""
    if dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        assert dataclasses.is_dataclass(actual), f"{path}: expected a dataclass, got {actual!r}"
        assert_close(
            dataclasses.asdict(actual),
            dataclasses.asdict(expected),
            rtol=rtol,
            atol=atol,
            path=path,
        )
        return
    if isinstance(expected, Mapping):
        assert isinstance(actual, Mapping), f"{path}: expected a mapping, got {type(actual)}"
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_close(actual[key], expected[key], rtol=rtol, atol=atol, path=f"{path}[{key!r}]")
        return
    if isinstance(expected, torch.Tensor) or isinstance(actual, torch.Tensor):
        actual_t = torch.as_tensor(actual).detach().cpu()
        expected_t = torch.as_tensor(expected).detach().cpu()
        assert actual_t.shape == expected_t.shape, (
            f"{path}: shape {actual_t.shape} != {expected_t.shape}"
        )
        if expected_t.is_floating_point() or actual_t.is_floating_point():
            torch.testing.assert_close(
                actual_t.double(),
                expected_t.double(),
                rtol=rtol,
                atol=atol,
                equal_nan=True,
                msg=lambda m: f"{path}: {m}",
            )
        else:
            assert torch.equal(actual_t, expected_t), f"{path}: {actual_t} != {expected_t}"
        return
    if isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)), f"{path}: expected a sequence, got {actual!r}"
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, rtol=rtol, atol=atol, path=f"{path}[{i}]")
        return
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        if math.isnan(expected):
            assert math.isnan(actual), f"{path}: {actual} is not NaN"
        else:
            assert math.isclose(actual, expected, rel_tol=rtol, abs_tol=atol), (
                f"{path}: {actual} != {expected}"
            )
        return
    assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def factory(cls: Callable[..., Metric], *args: Any, **defaults: Any) -> Callable[..., Metric]:
    """Return ``make_metric`` for a case: ``cls(*args, **defaults)``, keyword overrides allowed."""

    def make(**overrides: Any) -> Metric:
        return cls(*args, **{**defaults, **overrides})

    return make


def classification_batches(
    num_classes: int, sizes: Sequence[int] = (7, 16, 1, 9, 12)
) -> Callable[[torch.Generator], list[Batch]]:
    """Return a ``make_batches`` of ``(logits, labels)`` pairs with every class present."""

    def make(gen: torch.Generator) -> list[Batch]:
        total = sum(sizes)
        # Each batch holds consecutive classes, so a batch of at least num_classes samples
        # holds every class.
        labels = torch.cat([torch.arange(size) % num_classes for size in sizes])
        labels = (
            labels[torch.randperm(total, generator=gen)] if min(sizes) < num_classes else labels
        )
        logits = torch.randn(total, num_classes, generator=gen, dtype=torch.float64) * 2
        logits[torch.arange(total), labels] += 1.5
        out, begin = [], 0
        for size in sizes:
            out.append((logits[begin : begin + size].float(), labels[begin : begin + size]))
            begin += size
        return out

    return make

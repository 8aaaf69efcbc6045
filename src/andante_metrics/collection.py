"""KPI collections: many metrics updated from one call, computed into one nested result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from andante_metrics.base import KPIMetric

POSITIONAL_NAMES = ("preds", "target")


class KPICollection(nn.Module):
    r"""A group of KPI metrics updated together and reported as ``{area: {name: value}}``.

    Inputs are routed by name: each metric receives, from the keywords of ``update``, exactly
    the names in its ``input_names`` (by default the parameters of its ``update``). A metric is
    skipped in a call that lacks one of its inputs, so one collection can hold metrics fed from
    logits in the training step and metrics fed a model in the evaluation step. A keyword that no
    metric takes raises ``TypeError`` (a misspelled name is never dropped silently). Positional
    arguments are read as ``preds, target``.

    ``input_map`` renames inputs per metric, ``{"ece": {"preds": "probs"}}`` feeding the
    collection's ``probs`` keyword to the ``preds`` input of the metric named ``ece``.

    Metrics never share state because their values happen to be equal. Sharing is declared:
    ``shared_state=[["ece", "mce", "reliability"]]`` updates only the first metric of each group,
    and the others read its state at compute time. The members must have the same state names
    and the same constructor options.

    Args:
        metrics: a mapping of name to metric, or a sequence of metrics (named after their class).
        input_map: per-metric renaming of inputs, as above.
        shared_state: groups of metric names that share one state, as above.

    Example:
        >>> import torch
        >>> from andante_metrics import KPICollection, TopKAccuracy, ExpectedCalibrationError
        >>> kpis = KPICollection({
        ...     "top1": TopKAccuracy(num_classes=3),
        ...     "ece": ExpectedCalibrationError(num_classes=3, input="logits"),
        ... })
        >>> kpis.update(torch.tensor([[2.0, 0.1, 0.3]]), torch.tensor([0]))
        >>> sorted(kpis.compute()["accuracy"])
        ['ece', 'top1']
    """

    def __init__(
        self,
        metrics: Mapping[str, KPIMetric] | Sequence[KPIMetric],
        *,
        input_map: Mapping[str, Mapping[str, str]] | None = None,
        shared_state: Iterable[Sequence[str]] | None = None,
    ) -> None:
        super().__init__()
        named = _name_metrics(metrics)
        self.metrics = nn.ModuleDict(named)
        self._input_map = _check_input_map(input_map or {}, named)
        self._routes = {
            name: tuple((arg, self._input_map.get(name, {}).get(arg, arg)) for arg in m.input_names)
            for name, m in named.items()
        }
        self._accepted = {source for route in self._routes.values() for _, source in route}
        self._followers = _check_shared_state(shared_state or [], named)

    def _route(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        if len(args) > len(POSITIONAL_NAMES):
            raise TypeError(
                f"KPICollection.update takes at most {len(POSITIONAL_NAMES)} positional arguments "
                f"(preds, target), got {len(args)}; pass the others by keyword."
            )
        inputs = dict(zip(POSITIONAL_NAMES, args, strict=False))
        clash = set(inputs) & set(kwargs)
        if clash:
            raise TypeError(
                f"KPICollection.update got {sorted(clash)} both by position and by keyword."
            )
        inputs.update(kwargs)
        unknown = set(inputs) - self._accepted
        if unknown:
            raise TypeError(
                f"KPICollection.update got input(s) {sorted(unknown)} that no metric takes; the "
                f"metrics take {sorted(self._accepted)}. Rename the input or add `input_map`."
            )
        return inputs

    def _calls(self, inputs: dict[str, Any], *, include_followers: bool = False):
        for name, metric in self.metrics.items():
            if name in self._followers and not include_followers:
                continue
            route = self._routes[name]
            if all(source in inputs for _, source in route):
                yield name, metric, {arg: inputs[source] for arg, source in route}

    def _no_metric_updated(self, inputs: dict[str, Any]) -> TypeError:
        needs = "; ".join(
            f"{name} needs {[source for _, source in route]}"
            for name, route in self._routes.items()
        )
        return TypeError(
            f"KPICollection got inputs {sorted(inputs)}, which complete no metric's inputs: "
            f"{needs}. Pass every input of at least one metric."
        )

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Update every metric whose inputs are all present in this call.

        A call that completes no metric's inputs raises ``TypeError``. Metrics are updated one
        after another: if one raises on the batch, those before it keep the batch.
        """
        inputs = self._route(args, kwargs)
        calls = list(self._calls(inputs))
        if not calls:
            raise self._no_metric_updated(inputs)
        for _, metric, metric_kwargs in calls:
            metric.update(**metric_kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, dict[str, Any]]:
        """Update like :meth:`update` and return the values of this batch alone, nested by area.

        Every metric, including the members of a declared ``shared_state`` group, reports the
        value of this batch under its own definition.
        """
        inputs = self._route(args, kwargs)
        calls = list(self._calls(inputs, include_followers=True))
        if not calls:
            raise self._no_metric_updated(inputs)
        result: dict[str, dict[str, Any]] = {}
        for name, metric, metric_kwargs in calls:
            result.setdefault(metric.kpi_area, {})[name] = metric(**metric_kwargs)
        return result

    def _sync_followers(self) -> None:
        for follower, leader in self._followers.items():
            source, target = self.metrics[leader], self.metrics[follower]
            for state in source._defaults:
                setattr(target, state, getattr(source, state))
            target._update_count = source._update_count
            target._computed = None

    def compute(self) -> dict[str, dict[str, Any]]:
        """Return ``{area: {name: value}}`` over everything seen since the last reset.

        Metrics that were never updated are left out, because their inputs never came.
        """
        self._sync_followers()
        result: dict[str, dict[str, Any]] = {}
        for name, metric in self.metrics.items():
            leader = self.metrics[self._followers.get(name, name)]
            if not _has_data(leader):
                continue
            result.setdefault(metric.kpi_area, {})[name] = metric.compute()
        return result

    def compute_flat(self, *, separator: str = "/") -> dict[str, Any]:
        """Return the scalar values of :meth:`compute` keyed ``"area/name"`` for loggers."""
        flat: dict[str, Any] = {}
        for area, values in self.compute().items():
            for name, value in values.items():
                if isinstance(value, torch.Tensor) and value.numel() == 1:
                    flat[f"{area}{separator}{name}"] = value
                elif isinstance(value, Mapping):
                    for key, item in value.items():
                        if isinstance(item, torch.Tensor) and item.numel() == 1:
                            flat[f"{area}{separator}{name}{separator}{key}"] = item
        return flat

    def reset(self) -> None:
        """Reset every metric to its empty state."""
        for metric in self.metrics.values():
            metric.reset()

    def areas(self) -> dict[str, list[str]]:
        """Return the metric names grouped by KPI area."""
        grouped: dict[str, list[str]] = {}
        for name, metric in self.metrics.items():
            grouped.setdefault(metric.kpi_area, []).append(name)
        return grouped

    def metadata(self) -> dict[str, dict[str, Any]]:
        """Return each metric's KPI metadata (area, unit, higher_is_better) by name."""
        return {name: metric.kpi_metadata() for name, metric in self.metrics.items()}

    def __len__(self) -> int:
        return len(self.metrics)

    def __getitem__(self, name: str) -> KPIMetric:
        return self.metrics[name]


def _has_data(metric: KPIMetric) -> bool:
    """Return ``True`` when a metric was updated or contains loaded, non-empty state."""
    if metric.update_count:
        return True
    for state, default in metric._defaults.items():
        value = getattr(metric, state)
        if isinstance(value, list):
            if value:
                return True
        elif not torch.equal(value, default.to(value.device)):
            return True
    return False


def _options(metric: KPIMetric) -> dict[str, Any]:
    """Return the plain-valued constructor options of a metric, which shape its state."""
    return {
        key: value
        for key, value in vars(metric).items()
        if not key.startswith("_") and isinstance(value, (int, float, str, bool, type(None)))
    }


def _name_metrics(metrics: Mapping[str, KPIMetric] | Sequence[KPIMetric]) -> dict[str, KPIMetric]:
    if isinstance(metrics, Mapping):
        named = dict(metrics)
    elif isinstance(metrics, Sequence) and not isinstance(metrics, (str, bytes)):
        named = {}
        for metric in metrics:
            name = type(metric).__name__
            if name in named:
                raise ValueError(
                    f"`metrics` holds two {name} instances; pass a dict to name them apart."
                )
            named[name] = metric
    else:
        raise TypeError(
            f"`metrics` must be a dict of name to metric or a list of metrics, got "
            f"{type(metrics).__name__}."
        )
    if not named:
        raise ValueError("`metrics` is empty; pass at least one metric.")
    for name, metric in named.items():
        if not isinstance(metric, KPIMetric):
            raise TypeError(
                f"`metrics[{name!r}]` must be an andante_metrics KPIMetric, got "
                f"{type(metric).__name__}; wrap torchmetrics metrics in a KPIMetric subclass "
                f"that declares kpi_area, unit and higher_is_better."
            )
        if "." in name or not name:
            raise ValueError(f"Metric name {name!r} must be non-empty and contain no '.'.")
    return named


def _check_input_map(
    input_map: Mapping[str, Mapping[str, str]], named: Mapping[str, KPIMetric]
) -> dict[str, dict[str, str]]:
    if not isinstance(input_map, Mapping):
        raise TypeError(
            f"`input_map` must be a dict of metric name to {{input: source}} dict, got "
            f"{type(input_map).__name__}."
        )
    for name, renames in input_map.items():
        if not isinstance(renames, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in renames.items()
        ):
            raise TypeError(
                f"`input_map[{name!r}]` must be a dict of input name to source name (strings), "
                f"got {renames!r}."
            )
        if name not in named:
            raise ValueError(
                f"`input_map` names metric {name!r}, which is not in the collection "
                f"({sorted(named)})."
            )
        unknown = set(renames) - set(named[name].input_names)
        if unknown:
            raise ValueError(
                f"`input_map[{name!r}]` renames {sorted(unknown)}, but the metric takes "
                f"{list(named[name].input_names)}."
            )
    return {name: dict(renames) for name, renames in input_map.items()}


def _check_shared_state(
    groups: Iterable[Sequence[str]], named: Mapping[str, KPIMetric]
) -> dict[str, str]:
    followers: dict[str, str] = {}
    if isinstance(groups, (str, bytes)):
        raise TypeError(f"`shared_state` must be a list of lists of metric names, got {groups!r}.")
    for group in groups:
        if isinstance(group, (str, bytes)):
            raise TypeError(
                f"`shared_state` must be a list of lists of metric names, got the group "
                f"{group!r}; write shared_state=[[...]] with one inner list per group."
            )
        group = list(group)
        if len(group) < 2:
            raise ValueError(f"`shared_state` groups need at least two metric names, got {group}.")
        for name in group:
            if name not in named:
                raise ValueError(
                    f"`shared_state` names metric {name!r}, which is not in the collection."
                )
            if name in followers or any(name == leader for leader in followers.values()):
                raise ValueError(f"`shared_state` lists metric {name!r} in more than one group.")
        leader = named[group[0]]
        for name in group[1:]:
            member = named[name]
            same_states = set(member._defaults) == set(leader._defaults) and all(
                member._defaults[s].shape == leader._defaults[s].shape
                if isinstance(member._defaults[s], torch.Tensor)
                else isinstance(leader._defaults[s], list)
                for s in member._defaults
            )
            if (
                not same_states
                or member.input_names != leader.input_names
                or _options(member) != _options(leader)
            ):
                raise ValueError(
                    f"`shared_state` groups {group[0]!r} and {name!r}, whose states or inputs "
                    f"differ; only metrics with the same state layout can share it."
                )
            followers[name] = group[0]
    return followers

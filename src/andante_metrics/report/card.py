"""The KPI card: every KPI of a run with its unit and direction, as JSON and Markdown."""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from andante_metrics.base import KPI_AREAS

SCHEMA_VERSION = 1
FIGURE_KINDS = ("line", "bar", "heatmap", "reliability", "image")
_FIGURE_KEYS = {
    "line": ("series",),
    "bar": ("labels", "values"),
    "heatmap": ("rows", "columns", "values"),
    "reliability": ("bin_lower", "bin_upper", "accuracy"),
    "image": ("images",),
}
_LIBRARIES = (
    "andante-metrics",
    "torch",
    "torchvision",
    "torchmetrics",
    "numpy",
    "scipy",
    "scikit-learn",
    "scikit-image",
    "captum",
    "onnxruntime",
)


def to_plain(value: Any) -> Any:
    """Convert tensors, numpy values and non-finite floats into JSON-ready Python values.

    NaN and infinities become the strings ``"nan"``, ``"inf"`` and ``"-inf"``, because JSON has
    no number for them. A card keeps its values in this form, also after :meth:`KPICard.from_json`;
    :func:`from_plain` turns one such value back into a float.
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.item() if value.numel() == 1 and value.ndim == 0 else value.tolist()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (torch.device, torch.dtype, os.PathLike)):
        return str(value)
    raise TypeError(
        f"A KPI card value must be a number, string, bool, None, tensor, or a list or dict of "
        f"these; got {type(value).__name__} ({value!r}). Convert it before adding it."
    )


def from_plain(value: Any) -> Any:
    """Turn the strings written for non-finite floats back into floats."""
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def environment_record() -> dict[str, Any]:
    """Return the environment a card was measured in: versions, threads, processor, device."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    record: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "versions": versions,
    }
    if torch.cuda.is_available():
        record["gpu"] = torch.cuda.get_device_name(0)
    return record


@dataclass
class KPICard:
    """A run's KPIs, tables and figure data, grouped by KPI area.

    Each area contains ``metrics`` (name to ``{value, unit, higher_is_better, description}``),
    ``tables`` (title, columns, rows, note) and ``figures`` (the data of a plot, drawn by the
    report renderers). :meth:`to_json` writes the machine-readable card, :meth:`to_markdown`
    the table a person reads.
    """

    title: str = "KPI card"
    model: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=environment_record)
    areas: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def _area(self, area: str) -> dict[str, Any]:
        return self.areas.setdefault(area, {"metrics": {}, "tables": [], "figures": []})

    def add_kpi(
        self,
        area: str,
        name: str,
        value: Any,
        *,
        unit: str,
        higher_is_better: bool | None,
        description: str = "",
        **extra: Any,
    ) -> None:
        """Add one KPI value with its unit, its better direction and a one-line definition."""
        if area not in KPI_AREAS:
            raise ValueError(
                f"`area` must be one of {', '.join(KPI_AREAS)}, got {area!r}; check the spelling."
            )
        if higher_is_better not in (True, False, None):
            raise TypeError(
                f"`higher_is_better` must be True, False or None, got {higher_is_better!r}."
            )
        if not isinstance(unit, str):
            raise TypeError(f"`unit` must be a string, got {unit!r}.")
        entry = {
            "value": to_plain(value),
            "unit": unit,
            "higher_is_better": higher_is_better,
            "description": description,
        }
        entry.update({key: to_plain(item) for key, item in extra.items()})
        self._area(area)["metrics"][name] = entry

    def add_metric(self, name: str, metric: Any, value: Any, *, description: str = "") -> None:
        """Add a value computed by a KPI metric, taking area, unit and direction from it."""
        if not hasattr(metric, "kpi_metadata"):
            raise TypeError(
                f"`metric` must be an andante_metrics KPIMetric (or its class), got "
                f"{type(metric).__name__}; use add_kpi() to give area, unit and direction."
            )
        meta = metric.kpi_metadata()
        self.add_kpi(
            meta["area"],
            name,
            value,
            unit=meta["unit"],
            higher_is_better=meta["higher_is_better"],
            description=description,
        )

    def add_table(
        self,
        area: str,
        title: str,
        columns: list[str],
        rows: list[list[Any]],
        *,
        note: str = "",
    ) -> None:
        """Add a table; each row is a list of cells in the order of ``columns``."""
        for row in rows:
            if len(row) != len(columns):
                raise ValueError(
                    f"Table {title!r} has {len(columns)} columns but a row of {len(row)} cells: "
                    f"{row!r}."
                )
        self._area(area)["tables"].append(
            {"title": title, "columns": list(columns), "rows": to_plain(rows), "note": note}
        )

    def add_figure(self, area: str, title: str, kind: str, data: dict[str, Any]) -> None:
        """Add the data of a figure; ``kind`` is one of ``FIGURE_KINDS``.

        ``line``: ``{"x_label", "y_label", "series": [{"label", "x", "y"}]}``;
        ``bar``: ``{"x_label", "y_label", "labels", "values"}``;
        ``heatmap``: ``{"rows", "columns", "values", "label"}``;
        ``reliability``: ``{"bin_lower", "bin_upper", "accuracy", "confidence", "count"}``;
        ``image``: ``{"images": [{"label", "pixels"}]}`` with pixels as nested lists.
        """
        if kind not in FIGURE_KINDS:
            raise ValueError(f"`kind` must be one of {', '.join(FIGURE_KINDS)}, got {kind!r}.")
        missing = [key for key in _FIGURE_KEYS[kind] if key not in data]
        if missing:
            raise ValueError(
                f"Figure {title!r} of kind {kind!r} lacks the data key(s) {missing}; a {kind} "
                f"figure needs {list(_FIGURE_KEYS[kind])}."
            )
        self._area(area)["figures"].append({"title": title, "kind": kind, "data": to_plain(data)})

    def to_dict(self) -> dict[str, Any]:
        """Return the card as JSON-ready data, with its schema version."""
        return {
            "schema_version": SCHEMA_VERSION,
            "title": self.title,
            "model": to_plain(self.model),
            "dataset": to_plain(self.dataset),
            "environment": to_plain(self.environment),
            "areas": self.areas,
            "timings": to_plain(self.timings),
        }

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the card as JSON (NaN and infinities as strings) and return the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KPICard:
        """Read a card from the data :meth:`to_dict` wrote; other schema versions raise."""
        if not isinstance(data, dict):
            raise ValueError(
                f"A KPI card must be a JSON object with a schema_version, got "
                f"{type(data).__name__}."
            )
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"KPI card schema_version {version!r} is not supported by this andante-metrics "
                f"(schema {SCHEMA_VERSION}); re-create the card with this version."
            )
        return cls(
            title=data.get("title", "KPI card"),
            model=data.get("model", {}),
            dataset=data.get("dataset", {}),
            environment=data.get("environment", {}),
            areas=data.get("areas", {}),
            timings=data.get("timings", {}),
        )

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> KPICard:
        """Read a card written by :meth:`to_json`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"KPI card file {str(path)!r} not found.")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"KPI card file {str(path)!r} is not valid JSON: {err}.") from err
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"KPI card file {str(path)!r}: {err}") from err

    def to_markdown(self, *, figure_files: dict[tuple[str, int], str] | None = None) -> str:
        """Return the card as Markdown: a summary of every KPI, then one section per area.

        ``figure_files`` maps ``(area, figure index)`` to an image path to link, as
        :func:`andante_metrics.report.write_card` produces.
        """
        from andante_metrics.report.markdown import render_markdown

        return render_markdown(self, figure_files or {})


def format_value(value: Any) -> str:
    """Format a KPI value for a table cell: 4 significant digits, dicts as key=value pairs."""
    value = from_plain(value)
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        if len(value) > 6:
            return f"[{len(value)} values]"
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def direction(higher_is_better: bool | None) -> str:
    """Return the arrow a table shows for the better direction."""
    if higher_is_better is None:
        return ""
    return "higher" if higher_is_better else "lower"


__all__ = ["KPICard", "SCHEMA_VERSION", "environment_record", "format_value", "to_plain"]

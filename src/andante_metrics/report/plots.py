"""Drawing of the figure data a KPI card holds, with matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from andante_metrics.report.card import from_plain  # noqa: E402


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([from_plain(v) if v is not None else np.nan for v in values], dtype=float)


def _draw_line(ax: plt.Axes, data: dict[str, Any]) -> None:
    for series in data["series"]:
        ax.plot(_floats(series["x"]), _floats(series["y"]), marker=".", label=series.get("label"))
    ax.set_xlabel(data.get("x_label", ""))
    ax.set_ylabel(data.get("y_label", ""))
    if any(s.get("label") for s in data["series"]):
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)


def _draw_bar(ax: plt.Axes, data: dict[str, Any]) -> None:
    labels = [str(label) for label in data["labels"]]
    ax.barh(labels, _floats(data["values"]))
    ax.invert_yaxis()
    ax.set_xlabel(data.get("x_label", ""))
    ax.set_ylabel(data.get("y_label", ""))


def _draw_heatmap(ax: plt.Axes, data: dict[str, Any]) -> None:
    values = np.array([_floats(row) for row in data["values"]])
    image = ax.imshow(values, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(data["columns"])), [str(c) for c in data["columns"]], rotation=45)
    ax.set_yticks(range(len(data["rows"])), [str(r) for r in data["rows"]])
    plt.colorbar(image, ax=ax, label=data.get("label", ""))


def _draw_reliability(ax: plt.Axes, data: dict[str, Any]) -> None:
    lower, upper = _floats(data["bin_lower"]), _floats(data["bin_upper"])
    accuracy = _floats(data["accuracy"])
    centers = (lower + upper) / 2
    ax.bar(
        centers,
        np.nan_to_num(accuracy),
        width=upper - lower,
        edgecolor="black",
        alpha=0.7,
        label="accuracy per bin",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    ax.set_xlabel("confidence (top-label probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")


def _draw_images(fig: plt.Figure, data: dict[str, Any]) -> None:
    images = data["images"]
    for index, item in enumerate(images):
        ax = fig.add_subplot(1, len(images), index + 1)
        ax.imshow(np.array(item["pixels"], dtype=float), cmap="gray")
        ax.set_title(str(item.get("label", "")), fontsize="small")
        ax.axis("off")


_DRAWERS = {
    "line": _draw_line,
    "bar": _draw_bar,
    "heatmap": _draw_heatmap,
    "reliability": _draw_reliability,
}


def draw_figure(figure: dict[str, Any], path: str | Path | BinaryIO) -> str | Path | BinaryIO:
    """Draw one card figure as PNG into a file path or a binary stream and return the target."""
    if isinstance(path, str):
        path = Path(path)
    fig = plt.figure(figsize=(6.4, 4.0), dpi=100)
    try:
        if figure["kind"] == "image":
            _draw_images(fig, figure["data"])
        else:
            ax = fig.add_subplot(1, 1, 1)
            _DRAWERS[figure["kind"]](ax, figure["data"])
        fig.suptitle(figure["title"], fontsize="medium")
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path

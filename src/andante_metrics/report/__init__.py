"""The KPI card and its renderers."""

from __future__ import annotations

import re
from pathlib import Path

from andante_metrics.report.card import SCHEMA_VERSION, KPICard, environment_record, to_plain
from andante_metrics.report.compare import Comparison, compare_cards, render_comparison_html


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "figure"


def write_card(card: KPICard, out_dir: str | Path, *, stem: str = "kpi_card") -> dict[str, Path]:
    """Write ``card`` to ``out_dir`` as JSON, Markdown, self-contained HTML and one PNG per figure.

    Returns the paths written, keyed ``"json"``, ``"markdown"``, ``"html"`` and ``"plots"``
    (the folder of the PNG files the Markdown links).
    """
    from andante_metrics.report.html import render_html
    from andante_metrics.report.plots import draw_figure

    out = Path(out_dir)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    figure_files: dict[tuple[str, int], str] = {}
    for area, content in card.areas.items():
        for index, figure in enumerate(content["figures"]):
            name = f"{area}_{index:02d}_{_slug(figure['title'])}.png"
            draw_figure(figure, plots / name)
            figure_files[(area, index)] = f"plots/{name}"
    paths = {"json": card.to_json(out / f"{stem}.json"), "plots": plots}
    markdown = out / f"{stem}.md"
    markdown.write_text(card.to_markdown(figure_files=figure_files) + "\n")
    paths["markdown"] = markdown
    page = out / f"{stem}.html"
    pngs = {key: (out / name).read_bytes() for key, name in figure_files.items()}
    page.write_text(render_html(card, figure_pngs=pngs))
    paths["html"] = page
    return paths


__all__ = [
    "Comparison",
    "KPICard",
    "SCHEMA_VERSION",
    "compare_cards",
    "environment_record",
    "render_comparison_html",
    "to_plain",
    "write_card",
]

"""Markdown rendering of a KPI card."""

from __future__ import annotations

from typing import TYPE_CHECKING

from andante_metrics.report.card import direction, format_value

if TYPE_CHECKING:
    from andante_metrics.report.card import KPICard


def _table(columns: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        # Escape the characters Markdown renderers would read as table borders or raw HTML.
        cells = [
            format_value(cell).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            for cell in row
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary_rows(card: KPICard) -> list[list[object]]:
    """Return one row per KPI: area, name, value, unit, better direction."""
    rows = []
    for area, content in card.areas.items():
        for name, entry in content["metrics"].items():
            rows.append(
                [area, name, entry["value"], entry["unit"], direction(entry["higher_is_better"])]
            )
    return rows


METRIC_COLUMNS = ["KPI", "value", "unit", "better", "definition"]


def metric_rows(metrics: dict[str, dict]) -> list[list[object]]:
    """Return one row per KPI of an area, in the order of ``METRIC_COLUMNS``."""
    return [
        [name, e["value"], e["unit"], direction(e["higher_is_better"]), e.get("description", "")]
        for name, e in metrics.items()
    ]


def render_markdown(card: KPICard, figure_files: dict[tuple[str, int], str]) -> str:
    """Render ``card`` as Markdown, linking the figure images named in ``figure_files``."""
    lines = [f"# {card.title}", ""]
    for label, block in (("Model", card.model), ("Data set", card.dataset)):
        if block:
            lines.append(
                f"**{label}:** " + ", ".join(f"{k}: {format_value(v)}" for k, v in block.items())
            )
            lines.append("")
    env = card.environment
    if env:
        versions = env.get("versions", {})
        lines.append(
            f"**Environment:** torch {versions.get('torch', '?')}, "
            f"{env.get('torch_threads', '?')} threads, device {env.get('device', '?')}, "
            f"Python {env.get('python', '?')}"
        )
        lines.append("")
    lines += ["## Summary", ""]
    lines += _table(["area", "KPI", "value", "unit", "better"], summary_rows(card))
    lines.append("")
    for area, content in card.areas.items():
        lines += [f"## {area.capitalize()}", ""]
        metrics = content["metrics"]
        if metrics:
            rows = metric_rows(metrics)
            lines += _table(METRIC_COLUMNS, rows)
            lines.append("")
        for table in content["tables"]:
            lines += [f"### {table['title']}", ""]
            lines += _table(table["columns"], table["rows"])
            if table.get("note"):
                lines += ["", table["note"]]
            lines.append("")
        for index, figure in enumerate(content["figures"]):
            path = figure_files.get((area, index))
            if path:
                lines += [f"![{figure['title']}]({path})", ""]
    if card.timings:
        lines += ["## Timings", ""]
        lines += _table(["step", "seconds"], [[k, v] for k, v in card.timings.items()])
        lines.append("")
    return "\n".join(lines)

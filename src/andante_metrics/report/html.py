"""HTML rendering of KPI cards: one self-contained file, figures embedded, no script, no network."""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

from andante_metrics.report.card import format_value
from andante_metrics.report.markdown import METRIC_COLUMNS, metric_rows, summary_rows

if TYPE_CHECKING:
    from andante_metrics.report.card import KPICard

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { border-bottom: 2px solid #446; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccd; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ccd; padding: .25em .6em; text-align: right; }
th { background: #eef; } td.text, th.text { text-align: left; }
td.best { font-weight: bold; background: #dfd; }
p.note, p.meta { color: #555; font-size: .9em; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: .9em; }
img { max-width: 100%; border: 1px solid #eee; }
nav a { margin-right: 1em; }
"""


def _escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any, *, css: str = "") -> str:
    text = value if isinstance(value, str) else format_value(value)
    css_class = css or ("text" if isinstance(value, str) else "")
    attr = f' class="{css_class}"' if css_class else ""
    return f"<td{attr}>{_escape(text)}</td>"


def html_table(
    columns: list[str],
    rows: list[list[Any]],
    *,
    table_id: str = "",
    marks: list[list[str]] | None = None,
) -> str:
    """Return an HTML table; ``marks`` gives an optional CSS class per cell."""
    head = "".join(f'<th class="text">{_escape(c)}</th>' for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            _cell(value, css=(marks[i][j] if marks else "")) for j, value in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    attr = f' id="{_escape(table_id)}"' if table_id else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure_png(figure: dict[str, Any]) -> bytes:
    """Draw a card figure and return the PNG bytes."""
    from andante_metrics.report.plots import draw_figure

    buffer = io.BytesIO()
    draw_figure(figure, buffer)
    return buffer.getvalue()


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_escape(alt)}" src="data:image/png;base64,{data}">'


def page(title: str, body: str) -> str:
    """Wrap ``body`` in a complete HTML document with the report style."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def render_html(card: KPICard, *, figure_pngs: dict[tuple[str, int], bytes] | None = None) -> str:
    """Render ``card`` as one self-contained HTML document.

    The page has a summary table of every KPI (value, unit, better direction), then one section
    per area with its KPI table, its tables and its figures as embedded PNG images. It loads
    nothing from the network and needs no JavaScript. ``figure_pngs`` passes figures already
    drawn, keyed ``(area, figure index)``; the others are drawn here.
    """
    figure_pngs = figure_pngs or {}
    parts = [f"<h1>{_escape(card.title)}</h1>"]
    meta = []
    for label, block in (("Model", card.model), ("Data set", card.dataset)):
        if block:
            meta.append(
                f"<b>{label}:</b> "
                + _escape(", ".join(f"{k}: {format_value(v)}" for k, v in block.items()))
            )
    env = card.environment
    if env:
        versions = env.get("versions", {})
        meta.append(
            f"<b>Environment:</b> torch {_escape(versions.get('torch', '?'))}, "
            f"{_escape(env.get('torch_threads', '?'))} threads, device "
            f"{_escape(env.get('device', '?'))}, Python {_escape(env.get('python', '?'))}"
        )
    parts += [f'<p class="meta">{line}</p>' for line in meta]
    links = "".join(f'<a href="#area-{_escape(a)}">{_escape(a)}</a>' for a in card.areas)
    parts.append(f"<nav>{links}</nav>")
    parts.append('<h2 id="summary">Summary</h2>')
    parts.append(
        html_table(
            ["area", "KPI", "value", "unit", "better"], summary_rows(card), table_id="summary-table"
        )
    )
    for area, content in card.areas.items():
        parts.append(f'<h2 id="area-{_escape(area)}">{_escape(area.capitalize())}</h2>')
        metrics = content["metrics"]
        if metrics:
            rows = metric_rows(metrics)
            parts.append(html_table(METRIC_COLUMNS, rows))
        for table in content["tables"]:
            parts.append(f"<h3>{_escape(table['title'])}</h3>")
            parts.append(html_table(table["columns"], table["rows"]))
            if table.get("note"):
                parts.append(f'<p class="note">{_escape(table["note"])}</p>')
        for index, figure in enumerate(content["figures"]):
            png = figure_pngs.get((area, index)) or figure_png(figure)
            parts.append(
                f"<figure>{_img(png, figure['title'])}"
                f"<figcaption>{_escape(figure['title'])}</figcaption></figure>"
            )
    if card.timings:
        parts.append("<h2>Timings</h2>")
        parts.append(html_table(["step", "seconds"], [[k, v] for k, v in card.timings.items()]))
    return page(card.title, "\n".join(parts))

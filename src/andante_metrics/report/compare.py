"""Side-by-side comparison of KPI cards: rows are KPIs, columns are runs, best value marked."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from andante_metrics.report.card import KPICard, direction, from_plain
from andante_metrics.report.html import html_table, page


@dataclass
class Comparison:
    """KPI values of several cards side by side.

    ``rows`` holds one entry per KPI present in any card: ``(area, name, unit,
    higher_is_better, values)`` with ``values[i]`` the value in card ``i`` (``None`` when that
    card lacks the KPI). ``best`` gives, per row, the indices of the cards holding the best
    value (empty when values are not comparable numbers or the KPI has no better direction).
    """

    labels: list[str]
    rows: list[tuple[str, str, str, bool | None, list[Any]]]
    best: list[list[int]]
    baseline: int


def _number(value: Any) -> float | None:
    value = from_plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def compare_cards(
    cards: Sequence[KPICard], *, labels: Sequence[str] | None = None, baseline: int = 0
) -> Comparison:
    """Line up the scalar KPIs of ``cards`` and mark the best value of each row.

    The best value follows each KPI's ``higher_is_better``; ties mark every card that reaches
    it. Cards must share one schema version (cards read with :meth:`KPICard.from_json` do).
    """
    if len(cards) < 2:
        raise ValueError(f"`cards` must hold at least two cards to compare, got {len(cards)}.")
    names = list(labels) if labels is not None else [f"run {i + 1}" for i in range(len(cards))]
    if len(names) != len(cards):
        raise ValueError(
            f"`labels` must name each of the {len(cards)} cards, got {len(names)} labels."
        )
    if not 0 <= baseline < len(cards):
        raise ValueError(
            f"`baseline` must be a card index in [0, {len(cards) - 1}], got {baseline}."
        )
    order: dict[tuple[str, str], tuple[str, bool | None]] = {}
    for card in cards:
        for area, content in card.areas.items():
            for name, entry in content["metrics"].items():
                order.setdefault((area, name), (entry["unit"], entry["higher_is_better"]))
    rows, best = [], []
    for (area, name), (unit, higher) in order.items():
        values = [
            card.areas.get(area, {}).get("metrics", {}).get(name, {}).get("value") for card in cards
        ]
        rows.append((area, name, unit, higher, values))
        numbers = [_number(v) for v in values]
        valid = [x for x in numbers if x is not None]
        if higher is None or not valid:
            best.append([])
            continue
        target = max(valid) if higher else min(valid)
        best.append([i for i, x in enumerate(numbers) if x == target])
    return Comparison(names, rows, best, baseline)


def _difference(value: Any, reference: Any) -> Any:
    a, b = _number(value), _number(reference)
    if a is None or b is None or math.isinf(a) or math.isinf(b):
        return ""
    return a - b


def render_comparison_html(comparison: Comparison, *, title: str = "KPI comparison") -> str:
    """Render a comparison as one self-contained HTML page.

    Columns: area, KPI, unit, better direction, each card's value (best in bold on green) and
    each other card's difference to the baseline card.
    """
    base = comparison.baseline
    others = [i for i in range(len(comparison.labels)) if i != base]
    columns = ["area", "KPI", "unit", "better", *comparison.labels]
    columns += [f"{comparison.labels[i]} - {comparison.labels[base]}" for i in others]
    rows, marks = [], []
    for (area, name, unit, higher, values), best in zip(
        comparison.rows, comparison.best, strict=True
    ):
        diffs = [_difference(values[i], values[base]) for i in others]
        rows.append([area, name, unit, direction(higher), *values, *diffs])
        value_marks = ["best" if i in best else "" for i in range(len(values))]
        marks.append(["text", "text", "text", "text", *value_marks, *[""] * len(diffs)])
    baseline_label = html.escape(comparison.labels[base])
    intro = (
        f'<h1>{html.escape(title)}</h1><p class="meta">Best value of each row in bold, by the '
        f"KPI's better direction. Differences are to the baseline column {baseline_label}.</p>"
    )
    return page(title, intro + html_table(columns, rows, table_id="comparison-table", marks=marks))

"""HTML rendering, card comparison and the check of the report in a real browser."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from andante_metrics import KPICard, write_card
from andante_metrics.cli import main
from andante_metrics.report import SCHEMA_VERSION, compare_cards, render_comparison_html
from andante_metrics.report.html import render_html

FIXTURE = Path(__file__).parent / "data" / "kpi_card_fixture.json"


@pytest.fixture
def card() -> KPICard:
    return KPICard.from_json(FIXTURE)


def test_html_has_every_area_kpi_and_figure(card):
    page = render_html(card)
    assert page.startswith("<!DOCTYPE html>")
    for area, content in card.areas.items():
        assert f'id="area-{area}"' in page
        for name in content["metrics"]:
            assert f'<td class="text">{name}</td>' in page
        for table in content["tables"]:
            assert html.escape(table["title"]) in page
    figures = sum(len(c["figures"]) for c in card.areas.values())
    assert page.count('src="data:image/png;base64,') == figures


def test_html_numbers_equal_the_json(card):
    page = render_html(card)
    summary = page.split('id="summary-table"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", summary)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    by_name = {(c[0], c[1]): c[2] for c in cells if c}
    for area, content in card.areas.items():
        for name, entry in content["metrics"].items():
            shown = by_name[(area, name)]
            value = entry["value"]
            if isinstance(value, float):
                assert float(shown) == pytest.approx(value, rel=1e-3), (area, name)


def test_html_is_self_contained(card):
    page = render_html(card)
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']https?://""", page)
    for encoded in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page):
        assert base64.b64decode(encoded)[:4] == b"\x89PNG"


def test_write_card_writes_html_next_to_json(card, tmp_path):
    paths = write_card(card, tmp_path)
    assert paths["html"] == tmp_path / "kpi_card.html"
    assert "Summary" in paths["html"].read_text()


def _two_cards() -> list[KPICard]:
    cards = []
    for accuracy, latency in ((0.9, 2.0), (0.95, 3.0)):
        card = KPICard()
        card.add_kpi("accuracy", "top1", accuracy, unit="fraction", higher_is_better=True)
        card.add_kpi("efficiency", "latency", latency, unit="ms", higher_is_better=False)
        card.add_kpi("efficiency", "note", "n/a", unit="", higher_is_better=None)
        cards.append(card)
    return cards


def test_compare_marks_best_by_direction():
    comparison = compare_cards(_two_cards(), labels=["a", "b"])
    best = dict(zip([row[1] for row in comparison.rows], comparison.best, strict=True))
    assert best["top1"] == [1]  # higher is better
    assert best["latency"] == [0]  # lower is better
    assert best["note"] == []  # no direction, nothing marked


def test_compare_html_shows_difference_to_baseline():
    page = render_comparison_html(compare_cards(_two_cards(), labels=["a", "b"], baseline=0))
    assert "b - a" in page
    assert '<td class="best">0.95</td>' in page
    assert '<td class="best">2</td>' in page
    assert "<td>0.05</td>" in page


def test_compare_rejects_mismatched_schema(tmp_path, capsys):
    first, second = _two_cards()
    first.to_json(tmp_path / "a.json")
    data = second.to_dict()
    data["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "b.json").write_text(json.dumps(data))
    code = main(
        [
            "compare",
            str(tmp_path / "a.json"),
            str(tmp_path / "b.json"),
            "--out",
            str(tmp_path / "c.html"),
        ]
    )
    assert code == 2
    assert f"schema_version {SCHEMA_VERSION + 1} is not supported" in capsys.readouterr().err


def test_compare_needs_two_cards():
    with pytest.raises(ValueError, match="at least two cards"):
        compare_cards(_two_cards()[:1])


def test_report_command_writes_html(tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(FIXTURE), "--out", str(out)]) == 0
    assert "summary-table" in out.read_text()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(
    _chromium() is None,
    reason="Chromium is not installed; .ci/run installs "
    "the Debian package chromium, so this skip means that install failed",
)
def test_report_renders_in_headless_chromium(card, tmp_path):
    page = tmp_path / "kpi_card.html"
    page.write_text(render_html(card))
    shot = tmp_path / "shot.png"
    common = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run(
        [*common, "--window-size=1280,1600", f"--screenshot={shot}", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1280)
    assert pixels.std() > 10, "the screenshot is blank"
    assert (pixels < 128).mean() > 0.01, "the screenshot shows almost no text or plot"
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert 'id="summary-table"' in dom
    assert "top1_accuracy" in dom

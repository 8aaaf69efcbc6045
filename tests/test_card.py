"""The KPI card: JSON round trip, Markdown content, schema checks and figures."""

from __future__ import annotations

import json

import pytest

from andante_metrics import KPICard, TopKAccuracy, write_card
from andante_metrics.report import SCHEMA_VERSION


def _card() -> KPICard:
    card = KPICard(title="test card", model={"name": "m"}, dataset={"name": "d", "test": 3})
    card.add_metric("top1_accuracy", TopKAccuracy(num_classes=3), 0.75, description="top-1")
    card.add_kpi("fidelity", "psnr_identical", float("inf"), unit="dB", higher_is_better=True)
    card.add_table("accuracy", "per class", ["class", "accuracy"], [[0, 0.5], [1, float("nan")]])
    card.add_figure(
        "accuracy",
        "curve",
        "line",
        {"x_label": "x", "y_label": "y", "series": [{"label": "a", "x": [0, 1], "y": [1, 2]}]},
    )
    return card


def test_json_round_trip_keeps_values_and_metadata(tmp_path):
    card = _card()
    path = card.to_json(tmp_path / "card.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    entry = data["areas"]["accuracy"]["metrics"]["top1_accuracy"]
    assert entry == {
        "value": 0.75,
        "unit": "fraction",
        "higher_is_better": True,
        "description": "top-1",
    }
    assert data["areas"]["fidelity"]["metrics"]["psnr_identical"]["value"] == "inf"
    assert data["areas"]["accuracy"]["tables"][0]["rows"][1][1] == "nan"
    assert KPICard.from_json(path).areas == card.areas
    assert "torch" in data["environment"]["versions"]


def test_other_schema_version_is_rejected(tmp_path):
    data = _card().to_dict()
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match=f"schema_version {SCHEMA_VERSION + 1} is not supported"):
        KPICard.from_dict(data)


def test_markdown_lists_every_kpi_table_and_figure(tmp_path):
    paths = write_card(_card(), tmp_path)
    text = paths["markdown"].read_text()
    assert "| accuracy | top1_accuracy | 0.75 | fraction | higher |" in text
    assert "| fidelity | psnr_identical | inf | dB | higher |" in text
    assert "### per class" in text
    assert "![curve](plots/accuracy_00_curve.png)" in text
    png = tmp_path / "plots" / "accuracy_00_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_row_width_is_checked():
    with pytest.raises(ValueError, match="has 2 columns but a row of 1 cells"):
        KPICard().add_table("accuracy", "t", ["a", "b"], [[1]])


def test_unknown_figure_kind_is_rejected():
    with pytest.raises(ValueError, match="`kind` must be one of"):
        KPICard().add_figure("accuracy", "t", "pie", {})


def test_figure_data_is_checked_before_writing():
    with pytest.raises(ValueError, match=r"lacks the data key\(s\) \['series'\]"):
        KPICard().add_figure("accuracy", "f", "line", {"x": [1]})


def test_invalid_kpi_metadata_and_values_raise():
    card = KPICard()
    with pytest.raises(
        TypeError, match=r"`higher_is_better` must be True, False or None, got 'yes'"
    ):
        card.add_kpi("accuracy", "a", 1.0, unit="fraction", higher_is_better="yes")
    with pytest.raises(TypeError, match=r"`metric` must be an andante_metrics KPIMetric"):
        card.add_metric("x", object(), 0.5)
    with pytest.raises(TypeError, match=r"got object"):
        card.add_kpi("accuracy", "a", object(), unit="", higher_is_better=None)


def test_devices_and_paths_are_written_as_strings(tmp_path):
    import torch

    card = KPICard(model={"device": torch.device("cpu"), "dtype": torch.float32})
    data = json.loads(card.to_json(tmp_path / "c.json").read_text())
    assert data["model"] == {"device": "cpu", "dtype": "torch.float32"}


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"list.json'.*must be a JSON object"):
        KPICard.from_json(path)
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ValueError, match=r"bad.json' is not valid JSON"):
        KPICard.from_json(bad)


def test_misspelled_area_is_rejected():
    with pytest.raises(ValueError, match=r"`area` must be one of .* got 'acuracy'"):
        KPICard().add_kpi("acuracy", "a", 1.0, unit="fraction", higher_is_better=True)


def test_markdown_escapes_html_in_cells(tmp_path):
    card = KPICard()
    card.add_table("accuracy", "t", ["name"], [["<script>alert(1)</script>"]])
    text = write_card(card, tmp_path)["markdown"].read_text()
    assert "<script>" not in text
    assert "&lt;script&gt;" in text

"""The main job end to end: the demo writes a KPI card computed on the digits."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from andante_metrics.cli import main


@pytest.fixture(scope="module")
def quick_card(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out), "--no-progress", "--seed", "1"]) == 0
    return out, json.loads((out / "kpi_card.json").read_text())


def test_demo_writes_json_and_markdown(quick_card):
    out, card = quick_card
    assert (out / "kpi_card.md").read_text().startswith("# andante_metrics demo")
    assert card["schema_version"] == 1
    assert card["dataset"]["test"] + card["dataset"]["train"] == 1797
    assert card["environment"]["torch_threads"] >= 1


def test_demo_card_has_every_kpi_with_metadata(quick_card):
    _, card = quick_card
    for area, content in card["areas"].items():
        for name, entry in content["metrics"].items():
            assert set(entry) >= {"value", "unit", "higher_is_better", "description"}, (area, name)
            assert entry["value"] not in (None, "nan"), (area, name)


def test_demo_accuracy_is_computed_not_constant(quick_card):
    _, card = quick_card
    accuracy = card["areas"]["accuracy"]["metrics"]
    top1 = accuracy["top1_accuracy"]["value"]
    assert 0.5 < top1 <= 1.0
    assert accuracy["top3_accuracy"]["value"] >= top1


def test_same_seed_same_card(quick_card, tmp_path):
    _, first = quick_card
    assert main(["demo", "--quick", "--out", str(tmp_path), "--no-progress", "--seed", "1"]) == 0
    second = json.loads((tmp_path / "kpi_card.json").read_text())
    timing_units = {"ms", "s", "samples/s"}
    for area, content in first["areas"].items():
        for name, entry in content["metrics"].items():
            if entry["unit"] in timing_units:
                continue
            assert second["areas"][area]["metrics"][name]["value"] == entry["value"], (area, name)


def test_python_dash_m_entry_point_shows_help():
    result = subprocess.run(
        [sys.executable, "-m", "andante_metrics", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--epochs" in result.stdout


def test_invalid_epochs_is_rejected(capsys):
    assert main(["demo", "--epochs", "0"]) == 2
    assert "--epochs must be at least 1, got 0" in capsys.readouterr().err


def test_full_demo_reaches_095_test_accuracy(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--no-progress"]) == 0
    card = json.loads((tmp_path / "kpi_card.json").read_text())
    assert card["areas"]["accuracy"]["metrics"]["top1_accuracy"]["value"] >= 0.95


def test_compare_two_demo_runs_with_different_seeds(quick_card, tmp_path):
    first_dir, first = quick_card
    assert (
        main(["demo", "--quick", "--out", str(tmp_path / "seed2"), "--no-progress", "--seed", "2"])
        == 0
    )
    out = tmp_path / "comparison.html"
    code = main(
        [
            "compare",
            str(first_dir / "kpi_card.json"),
            str(tmp_path / "seed2" / "kpi_card.json"),
            "--labels",
            "seed 1,seed 2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    page = out.read_text()
    assert "seed 2 - seed 1" in page
    assert 'id="comparison-table"' in page
    assert page.count('class="best"') >= len(first["areas"]["accuracy"]["metrics"]) // 2

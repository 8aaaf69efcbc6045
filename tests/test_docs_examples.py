"""The Python examples of the usage docs run as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs" / "usage"


def test_plain_loop_page_runs(tmp_path, monkeypatch):
    text = (DOCS / "plain_loop.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    script = tmp_path / "plain_loop.py"
    script.write_text(blocks[0])
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    assert (tmp_path / "plain_loop_card" / "kpi_card.json").exists()

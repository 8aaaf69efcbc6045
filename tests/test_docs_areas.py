"""The pages of docs/areas run as written and their images exist."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

AREAS = Path(__file__).parents[1] / "docs" / "areas"
PAGES = sorted(AREAS.glob("*.md"))
EXAMPLE_PAGES = [page for page in PAGES if page.name != "README.md"]


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


def test_every_area_has_a_page():
    from andante_metrics.base import KPI_AREAS

    assert {page.stem for page in EXAMPLE_PAGES} == set(KPI_AREAS)


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=lambda page: page.stem)
def test_area_example_runs(page, tmp_path, monkeypatch):
    blocks = _python_blocks(page)
    assert blocks, f"{page.name} has no ```python block"
    monkeypatch.chdir(tmp_path)
    for index, block in enumerate(blocks):
        script = tmp_path / f"{page.stem}_{index}.py"
        script.write_text(block)
        runpy.run_path(str(script), run_name="__main__")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.stem)
def test_area_links_resolve(page):
    text = page.read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    if page in EXAMPLE_PAGES:
        assert images, f"{page.name} embeds no image"
    links = re.findall(r"(?<!!)\[[^\]]*\]\(([^)#]+)(?:#[^)]*)?\)", text)
    for target in images + links:
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"

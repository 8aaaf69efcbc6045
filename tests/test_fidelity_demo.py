"""The demo's photograph table: every fidelity metric ranks distortion levels as a person would."""

from __future__ import annotations

import pytest
import torch

from andante_metrics.data.photos import load_photos
from andante_metrics.demo.sections import fidelity as section


@pytest.fixture(scope="module")
def table():
    return section.fidelity_table(load_photos(("astronaut", "camera"), size=176), seed=0)


LEVELS = {
    "JPEG": [f"JPEG q{q}" for q in section.JPEG_QUALITIES],
    "noise": [f"noise {s}" for s in section.NOISE_SIGMAS],
    "blur": [f"blur {s}" for s in section.BLUR_SIGMAS],
}
HIGHER_IS_BETTER = {"PSNR": True, "SSIM": True, "MS-SSIM": True, "MSE": False, "L1": False,
                    "IW-SSIM": True, "GMSD": False, "FSIMc": True}


@pytest.mark.parametrize("distortion", sorted(LEVELS))
@pytest.mark.parametrize("metric", sorted(HIGHER_IS_BETTER))
def test_levels_ordered_monotonically(table, metric, distortion):
    # Levels run from mildest to strongest, so quality must fall strictly along them.
    values = [table[metric][column] for column in LEVELS[distortion]]
    worse = values if HIGHER_IS_BETTER[metric] else [-v for v in values]
    assert all(a > b for a, b in zip(worse, worse[1:], strict=False)), (metric, values)


def test_table_covers_every_metric_and_level(table):
    assert set(table) == set(section.METRICS)
    expected_columns = [c for levels in LEVELS.values() for c in levels]
    for values in table.values():
        assert list(values) == expected_columns


def test_jpeg_round_trip_is_lossy_but_close():
    photos = load_photos(("coffee",), size=64)
    decoded = section.jpeg_compress(photos, 90)
    assert decoded.shape == photos.shape and decoded.dtype == torch.uint8
    error = (decoded.float() - photos.float()).abs().mean()
    assert 0.0 < float(error) < 5.0

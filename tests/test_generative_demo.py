"""The demo's generative table: every KPI ranks noised and generated digits as worse."""

from __future__ import annotations

import pytest
import torch

from andante_metrics.data import load_digits_split
from andante_metrics.demo.model import DigitsCNN
from andante_metrics.demo.runner import train_classifier
from andante_metrics.demo.sections import generative as section


@pytest.fixture(scope="module")
def table():
    data = load_digits_split(seed=0)
    torch.manual_seed(0)
    model = train_classifier(
        DigitsCNN(num_classes=data.num_classes), data.train_images, data.train_labels,
        epochs=2, batch_size=32, learning_rate=3e-3, generator=torch.Generator().manual_seed(0),
    )
    rows, bandwidth = section.generative_table(model.features, data, seed=0, quick=True)
    return rows, bandwidth


NOISE_ROWS = ["train digits", *(f"train + noise {s}" for s in section.NOISE_SIGMAS)]


@pytest.mark.parametrize("metric", section.METRICS)
def test_values_worsen_with_noise(table, metric):
    rows, _ = table
    values = [rows[name][metric] for name in NOISE_ROWS]
    worse = [-v for v in values] if section.HIGHER_IS_BETTER[metric] else values
    assert all(a < b for a, b in zip(worse, worse[1:], strict=False)), (metric, values)


@pytest.mark.parametrize("metric", section.METRICS)
def test_poor_generator_worse_than_real_digits(table, metric):
    rows, _ = table
    real, generated = rows["train digits"][metric], rows["class-mean generator"][metric]
    assert (generated < real) if section.HIGHER_IS_BETTER[metric] else (generated > real)


def test_bandwidth_is_scott_factor(table):
    _, bandwidth = table
    test_count = len(load_digits_split(seed=0).test_images)
    assert bandwidth == pytest.approx(test_count ** (-1 / (64 + 4)))

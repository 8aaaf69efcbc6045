"""Seed spread, determinism check and ONNX round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from andante_metrics import (
    check_determinism,
    onnx_round_trip,
    seed_spread,
    summarize_over_seeds,
)
from andante_metrics.demo.model import DigitsCNN


def test_seed_spread_equals_direct_computation():
    # Reference: numpy mean and std (ddof=1) and scipy's t quantile, computed directly.
    def run(seed: int) -> dict[str, float]:
        return {"kpi": float(torch.rand(1)), "twice": 2 * float(seed)}

    spread = seed_spread(run, [3, 4, 5, 6], progress=False)
    values = []
    for seed in [3, 4, 5, 6]:
        torch.manual_seed(seed)
        values.append(float(torch.rand(1)))
    kpi = spread["kpi"]
    assert kpi.values == values
    assert kpi.mean == pytest.approx(np.mean(values))
    assert kpi.std == pytest.approx(np.std(values, ddof=1))
    half = stats.t.ppf(0.975, df=3) * np.std(values, ddof=1) / 2
    assert kpi.ci_low == pytest.approx(np.mean(values) - half)
    assert kpi.ci_high == pytest.approx(np.mean(values) + half)
    assert spread["twice"].mean == pytest.approx(9.0)


def test_single_seed_raises():
    with pytest.raises(ValueError, match=r"at least two values .* got \[0\.5\]"):
        summarize_over_seeds([0.5])
    with pytest.raises(ValueError, match=r"`seeds` must contain at least two seeds .* got \[7\]"):
        seed_spread(lambda seed: {"kpi": 1.0}, [7], progress=False)


def test_seed_spread_rejects_duplicate_seeds():
    with pytest.raises(ValueError, match=r"`seeds` lists \[0\] more than once"):
        seed_spread(lambda seed: {"kpi": 1.0}, [0, 0], progress=False)
    with pytest.raises(ValueError, match=r"`seeds` lists \[1, 2\] more than once"):
        seed_spread(lambda seed: {"kpi": 1.0}, [2, 1, 0, 1, 2], progress=False)


def test_seed_spread_rejects_non_scalar_kpi():
    with pytest.raises(TypeError, match=r"KPI 'acc' as a Tensor of shape \(3,\); return one"):
        seed_spread(lambda seed: {"acc": torch.zeros(3)}, [0, 1], progress=False)
    with pytest.raises(TypeError, match=r"KPI 'acc' as str \('high'\); return one number"):
        seed_spread(lambda seed: {"acc": "high"}, [0, 1], progress=False)


def test_seed_spread_accepts_one_element_tensors():
    # Reference: the mean of 0 and 1 (the seeds themselves) is 0.5.
    spread = seed_spread(lambda seed: {"kpi": torch.tensor([float(seed)])}, [0, 1], progress=False)
    assert spread["kpi"].mean == pytest.approx(0.5)


def test_seed_spread_rejects_changing_kpi_names():
    with pytest.raises(ValueError, match="return the same names for every seed"):
        seed_spread(lambda seed: {f"kpi{seed}": 1.0}, [0, 1], progress=False)


def test_determinism_passes_for_seeded_training():
    def run(seed: int) -> nn.Module:
        model = nn.Linear(4, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(5):
            loss = model(torch.randn(8, 4)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return model

    report = check_determinism(run, seed=3)
    assert report.identical
    assert report.compared == 2
    assert report.first_difference is None


def test_determinism_names_first_differing_tensor():
    # An injected nondeterministic operation: noise drawn from an unseeded source.
    counter = iter(range(100))

    def run(seed: int) -> dict[str, torch.Tensor]:
        stable = torch.randn(3)
        drift = torch.full((2,), float(next(counter)))
        return {"stable": stable, "drifting": drift}

    report = check_determinism(run)
    assert not report.identical
    assert report.first_difference == "drifting"
    assert report.max_abs_difference == pytest.approx(1.0)


def test_determinism_restores_global_setting():
    before = torch.are_deterministic_algorithms_enabled()
    check_determinism(lambda seed: torch.zeros(1))
    assert torch.are_deterministic_algorithms_enabled() == before


def test_onnx_round_trip_on_demo_cnn():
    torch.manual_seed(0)
    model = DigitsCNN().train()
    result = onnx_round_trip(model, torch.rand(32, 1, 8, 8))
    assert result.max_abs_difference < 1e-4
    assert result.class_agreement == 1.0
    assert model.training, "the training mode must be restored"


def test_onnx_round_trip_on_torchvision_model():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    result = onnx_round_trip(model, torch.rand(3, 3, 32, 32))
    assert result.max_abs_difference < 1e-3
    assert result.class_agreement == 1.0


def test_onnx_round_trip_rejects_bad_inputs():
    with pytest.raises(TypeError, match=r"`inputs` must be a floating-point tensor"):
        onnx_round_trip(nn.Linear(2, 2), torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got str"):
        onnx_round_trip("model", torch.ones(2, 2))


def test_seed_spread_run_must_return_a_dict():
    with pytest.raises(
        TypeError, match=r"`run` must return a dict of KPI name to value, got float"
    ):
        seed_spread(lambda seed: 0.5, [0, 1], progress=False)

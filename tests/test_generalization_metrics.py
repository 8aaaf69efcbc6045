"""Tests of the canary, train/test gap and cross-domain metrics of the generalization area."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from andante_metrics.generalization import (
    CanaryMemorization,
    CrossDomainGap,
    GeneralizationGap,
    canary_fitted_fraction,
    cross_domain_table,
    generalization_gap,
    make_canaries,
)

# --- canaries -------------------------------------------------------------------------------


def test_canary_labels_are_wrong_and_uniform():
    labels = torch.arange(6000) % 4
    canaries = make_canaries(labels, 4, count=6000, generator=torch.Generator().manual_seed(0))
    assert bool((canaries.labels != canaries.true_labels).all())
    assert torch.equal(canaries.true_labels, labels[canaries.indices])
    assert sorted(canaries.indices.tolist()) == list(range(6000))
    # Given true class 0 (1500 samples), each of the 3 wrong classes has probability 1/3: an
    # expected count of 500 with standard error sqrt(1500 * 1/3 * 2/3) = 18.3.
    from_zero = canaries.labels[canaries.true_labels == 0]
    counts = torch.bincount(from_zero, minlength=4)
    assert counts[0] == 0
    assert bool(((counts[1:] - 500).abs() < 80).all())


def test_canary_apply_writes_only_canaries():
    labels = torch.arange(20) % 5
    canaries = make_canaries(labels, 5, count=4, generator=torch.Generator().manual_seed(1))
    relabelled = canaries.apply(labels)
    assert torch.equal(relabelled[canaries.indices], canaries.labels)
    keep = torch.ones(20, dtype=torch.bool)
    keep[canaries.indices] = False
    assert torch.equal(relabelled[keep], labels[keep])
    assert torch.equal(labels, torch.arange(20) % 5)


def test_canary_fraction_matches_direct_computation():
    gen = torch.Generator().manual_seed(2)
    preds = torch.randn(50, 6, generator=gen)
    target = torch.randint(0, 6, (50,), generator=gen)
    target[:20] = preds[:20].argmax(dim=1)
    direct = (preds.argmax(dim=1) == target).double().mean()
    torch.testing.assert_close(canary_fitted_fraction(preds, target, num_classes=6), direct)
    metric = CanaryMemorization(num_classes=6)
    metric.update(preds[:13], target[:13])
    metric.update(preds[13:], target[13:])
    torch.testing.assert_close(metric.compute(), direct)


def test_canary_curve_in_training_loop_matches_direct():
    # Train a small model with canaries mixed in and compare the metric, epoch by epoch, with
    # the fraction computed directly from the model's predictions.
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(96) % 3
    inputs = torch.randn(96, 6, generator=gen) + nn.functional.one_hot(labels, 6).float() * 3
    canaries = make_canaries(labels, 3, count=8, generator=gen)
    train_labels = canaries.apply(labels)
    model = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    metric = CanaryMemorization(num_classes=3)
    curve, direct = [], []
    for _ in range(60):
        loss = nn.functional.cross_entropy(model(inputs), train_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            logits = model(inputs[canaries.indices])
        metric.update(logits, canaries.labels)
        curve.append(float(metric.compute()))
        metric.reset()
        direct.append(float((logits.argmax(dim=1) == canaries.labels).double().mean()))
    assert curve == direct
    assert curve[0] < 0.5
    assert curve[-1] > curve[0]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: make_canaries(torch.arange(4), 4, count=5, generator=torch.Generator()),
         ValueError, r"`count` must be at most 4, got 5"),
        (lambda: make_canaries(torch.arange(4), 4, count=0, generator=torch.Generator()),
         ValueError, r"`count` must be at least 1, got 0"),
        (lambda: make_canaries(torch.arange(4.0), 4, count=1, generator=torch.Generator()),
         TypeError, r"`labels` must be an integer tensor"),
        (lambda: canary_fitted_fraction(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long),
                                        num_classes=3), ValueError, r"`target` is empty"),
        (lambda: CanaryMemorization(num_classes=1), ValueError,
         r"`num_classes` must be at least 2, got 1"),
    ],
)
def test_canary_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- train/test gap -------------------------------------------------------------------------


def test_gap_matches_numpy_polyfit():
    # Reference trend: numpy.polyfit(steps, gap, 1)[0], the least-squares slope.
    steps = np.arange(8)
    train = np.array([0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 1.0])
    test = np.array([0.5, 0.68, 0.76, 0.8, 0.82, 0.82, 0.81, 0.8])
    out = generalization_gap(torch.tensor(steps), torch.tensor(train), torch.tensor(test))
    np.testing.assert_allclose(out["gap"].numpy(), train - test, rtol=1e-12)
    assert float(out["final_gap"]) == pytest.approx(0.2)
    assert float(out["max_gap"]) == pytest.approx(0.2)
    assert float(out["trend"]) == pytest.approx(np.polyfit(steps, train - test, 1)[0])
    last3 = generalization_gap(torch.tensor(steps), torch.tensor(train), torch.tensor(test),
                               window=3)
    assert float(last3["trend"]) == pytest.approx(np.polyfit(steps[-3:], (train - test)[-3:], 1)[0])


def test_gap_for_loss_is_test_minus_train():
    out = generalization_gap(torch.tensor([0, 1]), torch.tensor([1.0, 0.2]),
                             torch.tensor([1.2, 0.9]), metric_higher_is_better=False)
    torch.testing.assert_close(out["gap"], torch.tensor([0.2, 0.7], dtype=torch.float64))


def test_gap_metric_sorts_and_averages_duplicate_steps():
    metric = GeneralizationGap()
    metric.update(2, 0.9, 0.7)
    metric.update(0, 0.5, 0.5)
    metric.update(torch.tensor([1, 2]), torch.tensor([0.8, 0.9]), torch.tensor([0.6, 0.7]))
    out = metric.compute()
    assert out["steps"].tolist() == [0, 1, 2]
    torch.testing.assert_close(out["gap"], torch.tensor([0.0, 0.2, 0.2], dtype=torch.float64))


def test_gap_single_step_trend_is_nan():
    out = generalization_gap(3, 0.9, 0.8)
    assert torch.isnan(out["trend"])
    assert float(out["final_gap"]) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("args", "options", "error", "match"),
    [
        ((torch.tensor([0, 1]), torch.tensor([0.1]), torch.tensor([0.1, 0.2])), {}, ValueError,
         r"must hold the same number of entries, got 2, 1 and 2"),
        ((torch.tensor([0.5]), 0.1, 0.2), {}, TypeError, r"`step` must be an integer tensor"),
        ((0, float("nan"), 0.2), {}, ValueError, r"`train_value` contains 1 NaN"),
        ((0, 0.1, 0.2), {"window": 1}, ValueError, r"`window` must be at least 2, got 1"),
        ((torch.zeros(0, dtype=torch.long), torch.zeros(0), torch.zeros(0)), {}, ValueError,
         r"`step` is empty"),
        ((0, torch.zeros(2, 2), 0.1), {}, ValueError, r"`train_value` must have 0 or 1 dim"),
    ],
)
def test_gap_errors(args, options, error, match):
    with pytest.raises(error, match=match):
        generalization_gap(*args, **options)


def test_gap_metric_rejects_non_bool_direction():
    with pytest.raises(TypeError, match=r"`metric_higher_is_better` must be a bool, got str"):
        GeneralizationGap(metric_higher_is_better="yes")


# --- cross-domain ---------------------------------------------------------------------------


def test_cross_domain_matches_direct_means():
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(60, generator=gen)
    domain = torch.randint(0, 3, (60,), generator=gen)
    metric = CrossDomainGap(["clean", "rotated", "inverted"])
    metric.update(scores[:25], domain[:25])
    metric.update(scores[25:], domain[25:])
    out = metric.compute()
    direct = torch.stack([scores[domain == d].double().mean() for d in range(3)])
    torch.testing.assert_close(out["values"], direct)
    torch.testing.assert_close(out["delta"], direct - direct[0])
    torch.testing.assert_close(out["relative"], direct / direct[0])
    rows = metric.table()
    assert [row[0] for row in rows] == ["clean", "rotated", "inverted"]
    assert rows[2][2] == pytest.approx(float(direct[2] - direct[0]))


def test_cross_domain_named_batches_and_in_domain():
    metric = CrossDomainGap(["a", "b", "c"], in_domain="b")
    metric.update(torch.tensor([1.0, 0.0]), "a")
    metric.update(torch.tensor([1.0, 1.0]), "b")
    out = metric.compute()
    torch.testing.assert_close(out["delta"][:2], torch.tensor([-0.5, 0.0], dtype=torch.float64))
    assert torch.isnan(out["values"][2])
    assert metric.table()[0][0] == "b"


def test_cross_domain_table_of_values():
    # Hand computation: delta = 0.45 - 0.9 = -0.45, relative = 0.45 / 0.9 = 0.5.
    rows = cross_domain_table({"clean": 0.9, "inverted": 0.45}, in_domain="clean")
    assert rows[0] == ["clean", 0.9, 0.0, 1.0]
    assert rows[1][0] == "inverted"
    assert rows[1][2] == pytest.approx(-0.45)
    assert rows[1][3] == pytest.approx(0.5)
    zero = cross_domain_table({"clean": 0.0, "x": 0.3}, in_domain="clean")
    assert np.isnan(zero[1][3])


def test_cross_domain_empty_in_domain_raises():
    metric = CrossDomainGap(["clean", "rotated"])
    metric.update(torch.tensor([1.0]), "rotated")
    with pytest.raises(ValueError, match=r"The in-domain 'clean' has no samples"):
        metric.compute()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: CrossDomainGap(["only"]), ValueError, r"`domains` must list at least two"),
        (lambda: CrossDomainGap(["a", "a"]), ValueError, r"`domains` must not repeat a name"),
        (lambda: CrossDomainGap(["a", "b"], in_domain="c"), ValueError,
         r"`in_domain` must be one of 'a', 'b', got 'c'"),
        (lambda: CrossDomainGap(["a", "b"]).update(torch.ones(2), "z"), ValueError,
         r"`domain` must be one of 'a', 'b', got 'z'"),
        (lambda: CrossDomainGap(["a", "b"]).update(torch.ones(2), torch.tensor([0, 2])),
         ValueError, r"`domain` must hold domain indices in \[0, 1\] for 2 domains, got 2"),
        (lambda: cross_domain_table({}, in_domain="a"), ValueError,
         r"`values` must be a non-empty mapping"),
        (lambda: cross_domain_table({"a": 1.0}, in_domain="b"), ValueError,
         r"`in_domain` must be one of 'a', got 'b'"),
    ],
)
def test_cross_domain_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()

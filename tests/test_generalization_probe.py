"""Tests of the random-label memorization probe (Zhang et al., ICLR 2017, randomization tests)."""

from __future__ import annotations

import functools

import pytest
import torch
from scipy import stats
from torch import nn

from andante_metrics.generalization import (
    MemorizationProbe,
    chance_normalized_accuracy,
    corrupt_labels,
    gaussian_pixels,
    memorization_probe,
    random_pixels,
    shuffle_pixels,
)


def _mlp(inputs: int = 8, classes: int = 4, hidden: int = 32) -> nn.Module:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def _blobs(seed: int, per_class: int = 16, classes: int = 4, dim: int = 8):
    """Linearly separable data: class c sits at 6 * e_c with unit Gaussian noise."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(per_class)
    centers = torch.zeros(classes, dim)
    centers[torch.arange(classes), torch.arange(classes)] = 6.0
    inputs = centers[labels] + torch.randn(len(labels), dim, generator=gen)
    return inputs, labels


def _probe(model, **options) -> MemorizationProbe:
    defaults = {"num_classes": 4, "batch_size": 16, "progress": False,
                "optimizer": functools.partial(torch.optim.Adam, lr=1e-2)}
    return MemorizationProbe(model, **{**defaults, **options})


# --- chance normalization -------------------------------------------------------------------


@pytest.mark.parametrize("classes", [2, 3, 10])
def test_chance_normalization_endpoints(classes):
    # Closed form: (a - 1/K) / (1 - 1/K) is 0 at a = 1/K and 1 at a = 1.
    assert chance_normalized_accuracy(1.0 / classes, classes) == pytest.approx(0.0, abs=1e-12)
    assert chance_normalized_accuracy(1.0, classes) == pytest.approx(1.0)


def test_chance_normalization_below_chance_and_tensor():
    # Closed form for K = 10: (0 - 0.1) / 0.9 = -1/9 and (0.55 - 0.1) / 0.9 = 0.5.
    assert chance_normalized_accuracy(0.0, 10) == pytest.approx(-1 / 9)
    value = chance_normalized_accuracy(torch.tensor([0.55]), 10)
    torch.testing.assert_close(value, torch.tensor([0.5]))


def test_chance_normalization_bad_inputs():
    with pytest.raises(ValueError, match="`num_classes` must be at least 2, got 1"):
        chance_normalized_accuracy(0.5, 1)
    with pytest.raises(ValueError, match=r"`accuracy` must contain accuracies in \[0, 1\]"):
        chance_normalized_accuracy(float("nan"), 10)
    with pytest.raises(ValueError, match=r"`accuracy` must contain accuracies in \[0, 1\]"):
        chance_normalized_accuracy(torch.tensor([0.5, 1.5]), 10)


# --- random labels and inputs ---------------------------------------------------------------


def test_corrupt_labels_fraction_zero_keeps_labels():
    labels = torch.arange(100) % 7
    out = corrupt_labels(labels, 7, fraction=0.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, labels)


def test_random_labels_independent_of_true_labels():
    # With fraction 1 the labels are uniform and independent of the true ones: a chi-square
    # test of independence (scipy.stats.chi2_contingency) and of uniformity must not reject.
    classes = 5
    labels = torch.arange(20_000) % classes
    random = corrupt_labels(labels, classes, fraction=1.0,
                            generator=torch.Generator().manual_seed(0))
    table = torch.zeros(classes, classes)
    table.index_put_((labels, random), torch.ones(len(labels)), accumulate=True)
    assert stats.chi2_contingency(table.numpy()).pvalue > 1e-3
    assert stats.chisquare(torch.bincount(random).numpy()).pvalue > 1e-3
    # Agreement with the true label is 1/K = 0.2, standard error sqrt(0.16 / 20000) = 0.0028.
    agreement = float((random == labels).double().mean())
    assert abs(agreement - 0.2) < 0.012


def test_partial_corruption_agreement():
    # Expected agreement with the true label: (1 - p) + p / K = 0.5 + 0.5 / 4 = 0.625.
    labels = torch.arange(20_000) % 4
    out = corrupt_labels(labels, 4, fraction=0.5, generator=torch.Generator().manual_seed(1))
    assert abs(float((out == labels).double().mean()) - 0.625) < 0.015


def test_shuffle_pixels_uses_one_permutation():
    inputs = torch.arange(12.0).repeat(3, 1).reshape(3, 1, 3, 4)
    out = shuffle_pixels(inputs, generator=torch.Generator().manual_seed(0))
    assert out.shape == inputs.shape
    flat = out.reshape(3, -1)
    assert torch.equal(flat[0], flat[1])
    assert torch.equal(flat[0], flat[2])
    assert torch.equal(flat[0].sort().values, torch.arange(12.0))
    assert not torch.equal(flat[0], torch.arange(12.0))


def test_random_pixels_permutes_each_sample_independently():
    inputs = torch.arange(16.0).repeat(4, 1)
    out = random_pixels(inputs, generator=torch.Generator().manual_seed(0))
    for row in out:
        assert torch.equal(row.sort().values, torch.arange(16.0))
    assert len({tuple(row.tolist()) for row in out}) == 4


def test_gaussian_pixels_match_mean_and_std():
    inputs = torch.rand(2000, 1, 8, 8)
    out = gaussian_pixels(inputs, generator=torch.Generator().manual_seed(0))
    assert out.shape == inputs.shape
    assert abs(float(out.mean() - inputs.mean())) < 0.01
    assert abs(float(out.std() - inputs.std())) < 0.01



def test_pixel_transforms_reject_bad_batches():
    generator = torch.Generator().manual_seed(0)
    match = r"`inputs` must have shape \(N, \.\.\.\) with N >= 1 samples.*got shape \({shape}\)"
    for transform in (shuffle_pixels, random_pixels, gaussian_pixels):
        with pytest.raises(ValueError, match=match.format(shape="0, 3")):
            transform(torch.zeros(0, 3), generator=generator)
        with pytest.raises(ValueError, match=match.format(shape="5,")):
            transform(torch.zeros(5), generator=generator)
    with pytest.raises(ValueError, match=r"at least two values to estimate a standard deviation"):
        gaussian_pixels(torch.zeros(1, 1), generator=generator)


# --- the probe ------------------------------------------------------------------------------


def test_probe_is_deterministic_under_seed():
    inputs, labels = _blobs(0)
    first = _probe(_mlp, max_epochs=4, seed=5).run(inputs, labels)
    second = _probe(_mlp, max_epochs=4, seed=5).run(inputs, labels)
    for name in first.conditions:
        assert first.conditions[name].curve_accuracy == second.conditions[name].curve_accuracy
        assert torch.equal(first.conditions[name].labels, second.conditions[name].labels)
    other = _probe(_mlp, max_epochs=1, seed=6).run(inputs, labels)
    assert not torch.equal(other.conditions["random_labels"].labels,
                           first.conditions["random_labels"].labels)


def test_random_labels_fixed_across_epochs():
    # The model records the sample index (feature 0) and the loss records the target of every
    # training step, so each (sample, label) pair the copy trained on is known.
    seen_index: list[int] = []
    seen_label: list[int] = []

    class Recorder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 4)

        def forward(self, x):
            if self.training:
                seen_index.extend(int(v) for v in x[:, 0])
            return self.linear(x)

    def loss_fn(logits, target):
        seen_label.extend(target.tolist())
        return nn.functional.cross_entropy(logits, target)

    inputs = torch.cat([torch.arange(20.0).unsqueeze(1), torch.randn(20, 2)], dim=1)
    labels = torch.arange(20) % 4
    result = _probe(Recorder, conditions=("random_labels",), max_epochs=3, batch_size=6,
                    loss_fn=loss_fn).run(inputs, labels)
    trained = result.conditions["random_labels"].labels
    assert len(seen_index) == 3 * 20
    assert sorted(seen_index) == sorted(list(range(20)) * 3)
    assert seen_label == [int(trained[i]) for i in seen_index]
    assert not torch.equal(trained, labels)


def test_true_labels_fit_faster_on_separable_data():
    inputs, labels = _blobs(0)
    result = _probe(_mlp, max_epochs=60, target_accuracy=1.0).run(inputs, labels)
    true, rand = result.conditions["true_labels"], result.conditions["random_labels"]
    assert true.epochs_to_target is not None
    assert true.epochs_to_target <= 5
    if rand.epochs_to_target is not None:
        assert rand.epochs_to_target > true.epochs_to_target
        assert result.slowdown > 1
    else:
        assert result.slowdown_lower_bound > 1
    assert true.fitted_fraction == pytest.approx(1.0)


def _paired_final_accuracy(make_data, seeds):
    differences = []
    for seed in seeds:
        inputs, labels = make_data(seed)
        result = _probe(functools.partial(_mlp, inputs=16, classes=3), num_classes=3,
                        max_steps=5, batch_size=48, seed=seed).run(inputs, labels)
        differences.append(result.conditions["true_labels"].train_accuracy
                           - result.conditions["random_labels"].train_accuracy)
    return torch.tensor(differences)


def _noise(seed: int):
    gen = torch.Generator().manual_seed(100 + seed)
    return torch.randn(48, 16, generator=gen), torch.randint(0, 3, (48,), generator=gen)


def _separable(seed: int):
    inputs, labels = _blobs(seed, per_class=16, classes=3, dim=16)
    return inputs, labels


def test_noise_inputs_fit_equally_in_distribution():
    # On pure-noise inputs the true labels are themselves independent of the inputs, so
    # (inputs, true labels) and (inputs, random labels) have the same distribution and the
    # paired accuracy difference is symmetric about 0. A two-sided sign test
    # (scipy.stats.binomtest) and a paired t-test over 16 seeds must not reject at the 1% level.
    # Five full-batch steps leave both copies between chance and a perfect fit.
    differences = _paired_final_accuracy(_noise, range(16))
    nonzero = differences[differences != 0]
    positive = int((nonzero > 0).sum())
    assert stats.binomtest(positive, len(nonzero)).pvalue > 0.01
    assert stats.ttest_1samp(differences.numpy(), 0.0).pvalue > 0.01


def test_sign_test_detects_separable_difference():
    # The same check has power: on separable data the true labels win on every seed.
    differences = _paired_final_accuracy(_separable, range(8))
    assert bool((differences > 0).all())
    assert stats.binomtest(int((differences > 0).sum()), len(differences)).pvalue < 0.01
    assert stats.ttest_1samp(differences.numpy(), 0.0).pvalue < 0.01


@pytest.mark.parametrize("training", [True, False])
def test_model_passed_in_is_unchanged(training):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.1),
                          nn.Linear(16, 4))
    model.train(training)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    inputs, labels = _blobs(1)
    _probe(model, max_epochs=3).run(inputs, labels)
    assert model.training is training
    assert all(m.training is training for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_module_and_factory_start_from_same_weights():
    # nn.Linear's constructor draws its weights with reset_parameters, so re-initializing a copy
    # under the same seed gives the weights the factory builds.
    inputs, labels = _blobs(2)
    from_module = _probe(nn.Linear(8, 4), max_epochs=3).run(inputs, labels)
    from_factory = _probe(lambda: nn.Linear(8, 4), max_epochs=3).run(inputs, labels)
    for name in from_module.conditions:
        assert (from_module.conditions[name].curve_accuracy
                == from_factory.conditions[name].curve_accuracy)


def test_budget_in_steps_and_epochs():
    inputs, labels = _blobs(0)  # 64 samples, 4 steps per epoch at batch size 16
    by_steps = _probe(_mlp, max_steps=10).run(inputs, labels).conditions["true_labels"]
    assert by_steps.steps == 10
    assert by_steps.epochs == pytest.approx(2.5)
    assert by_steps.curve_epochs == [1.0, 2.0, 2.5]
    by_epochs = _probe(_mlp, max_epochs=2, max_steps=100).run(inputs, labels)
    assert by_epochs.conditions["random_labels"].steps == 8


def test_budget_in_seconds_stops():
    inputs, labels = _blobs(0)
    result = _probe(_mlp, max_seconds=0.05, conditions=("true_labels",)).run(inputs, labels)
    copy = result.conditions["true_labels"]
    assert copy.steps >= 1
    assert copy.seconds < 5


def test_stop_at_target_ends_early():
    inputs, labels = _blobs(0)
    result = _probe(_mlp, conditions=("true_labels",), max_epochs=50, target_accuracy=0.9,
                    stop_at_target=True).run(inputs, labels)
    copy = result.conditions["true_labels"]
    assert copy.epochs == copy.epochs_to_target
    assert copy.epochs < 50


def test_corruption_sweep_and_pixel_conditions():
    inputs, labels = _blobs(0)
    probe = _probe(_mlp, conditions=("true_labels", "shuffled_pixels", "random_pixels",
                                     "gaussian_pixels"),
                   corruption_fractions=(0.0, 0.5, 1.0), max_epochs=1)
    data = probe.condition_data(inputs, labels)
    assert torch.equal(data["corrupted_labels_0"][1], labels)
    assert torch.equal(data["shuffled_pixels"][1], labels)
    assert not torch.equal(data["shuffled_pixels"][0], inputs)
    result = probe.run(inputs, labels)
    assert list(result.conditions) == [
        "true_labels", "shuffled_pixels", "random_pixels", "gaussian_pixels",
        "corrupted_labels_0", "corrupted_labels_0.5", "corrupted_labels_1"]
    agreement = [result.conditions[f"corrupted_labels_{p}"].label_agreement
                 for p in ("0", "0.5", "1")]
    assert agreement[0] == 1.0
    assert agreement[0] > agreement[1] > agreement[2]
    assert len(result.rows()) == 7


def test_functional_form_matches_class():
    inputs, labels = _blobs(3)
    options = {"num_classes": 4, "max_epochs": 2, "progress": False}
    direct = memorization_probe(_mlp, inputs, labels, **options)
    via_class = MemorizationProbe(_mlp, **options).run(inputs, labels)
    assert (direct.conditions["random_labels"].curve_accuracy
            == via_class.conditions["random_labels"].curve_accuracy)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({}, ValueError, r"No budget given: set at least one of `max_epochs`"),
        ({"max_steps": 0}, ValueError, r"`max_steps` must be at least 1, got 0"),
        ({"max_seconds": -1.0}, ValueError, r"`max_seconds` must be a finite number greater"),
        ({"max_epochs": 1, "conditions": ("noise",)}, ValueError,
         r"`conditions` must be one of 'true_labels'.*got 'noise'"),
        ({"max_epochs": 1, "corruption_fractions": (1.5,)}, ValueError,
         r"`corruption_fractions` must lie in \[0, 1\], got 1.5"),
        ({"max_epochs": 1, "conditions": ()}, ValueError, r"`conditions` and "
         r"`corruption_fractions` are both empty"),
        ({"max_epochs": 1, "target_accuracy": 2.0}, ValueError,
         r"`target_accuracy` must lie in \[0, 1\], got 2.0"),
        ({"max_epochs": 1, "num_classes": 1}, ValueError, r"`num_classes` must be at least 2"),
    ],
)
def test_probe_rejects_bad_options(options, error, match):
    with pytest.raises(error, match=match):
        _probe(_mlp, **options)


def test_probe_rejects_bad_model_and_data():
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module or a callable"):
        MemorizationProbe("resnet", num_classes=2, max_epochs=1)
    inputs, labels = _blobs(0)
    with pytest.raises(TypeError, match=r"factory must return a torch.nn.Module, got str"):
        _probe(lambda: "resnet", max_epochs=1).run(inputs, labels)
    probe = _probe(_mlp, max_epochs=1)
    with pytest.raises(ValueError, match=r"`inputs` and `labels` must hold the same number"):
        probe.run(inputs, labels[:-1])
    with pytest.raises(ValueError, match=r"`labels` must hold class indices in \[0, 3\].*got 4"):
        probe.run(inputs, labels + 1)
    with pytest.raises(TypeError, match=r"`labels` must be an integer tensor"):
        probe.run(inputs, labels.float())
    with pytest.raises(ValueError, match=r"`inputs` contains 1 NaN"):
        probe.run(inputs.index_put((torch.tensor([0]), torch.tensor([0])),
                                   torch.tensor(float("nan"))), labels)
    with pytest.raises(ValueError, match=r"`inputs` must have a sample dimension"):
        probe.run(torch.zeros(64), labels)
    with pytest.raises(ValueError, match=r"`labels` is empty"):
        probe.run(torch.zeros(0, 8), labels[:0])
    with pytest.raises(TypeError, match=r"factory called without arguments, got a callable "
                                         r"with signature \(x\)"):
        MemorizationProbe(lambda x: x, num_classes=2, max_epochs=1)
    # _mlp() takes 8 features; 5 features fail inside nn.Linear with a torch RuntimeError.
    with pytest.raises(ValueError, match=r"`inputs` of shape \(\d+, 5\) \(mat1 and mat2"):
        probe.run(inputs[:, :5], labels)


@pytest.mark.slow
def test_digits_cnn_memorizes_random_labels():
    # Zhang et al. (ICLR 2017) report that networks fit random labels given enough steps; on 256
    # training digits the demo CNN reaches it within 600 steps (seed 0).
    from andante_metrics.data import load_digits_split
    from andante_metrics.demo.model import DigitsCNN

    data = load_digits_split(seed=0)
    order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(0))
    subset = order[:256]
    probe = MemorizationProbe(DigitsCNN, num_classes=10, max_steps=600, target_accuracy=0.95,
                              optimizer=functools.partial(torch.optim.Adam, lr=3e-3),
                              progress=False)
    result = probe.run(data.train_images[subset], data.train_labels[subset])
    assert result.conditions["random_labels"].fitted_fraction > 0.9
    assert result.conditions["true_labels"].fitted_fraction > 0.99
    assert result.slowdown > 1

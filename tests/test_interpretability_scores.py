"""Closed-form and peer-library checks of the saliency-fidelity scores.

Closed forms come from the linear model f(x) = w.x + c: its gradient is w, gradient times input
sums to f(x) - f(0), and removing a set S of inputs (zero baseline) drops the logit by
sum_{i in S} w_i x_i. Peer values come from captum 0.9 (``captum.metrics``) and Quantus 0.6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from andante_metrics.interpretability import (
    curve_area,
    faithfulness_correlation,
    gradient_attribution,
    infidelity,
    input_x_gradient,
    max_sensitivity,
    model_randomization_check,
    perturbation_curve,
    randomized_copy,
)


def _linear(in_features: int = 8, out_features: int = 3, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(in_features, out_features).double()


def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3)).double()


def _inputs(num: int, features: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(num, features, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def _targets(num: int) -> torch.Tensor:
    return torch.arange(num) % 3


# Linear model closed forms.

def test_input_x_gradient_completeness():
    model, x, t = _linear(), _inputs(5, 8), _targets(5)
    attributions = input_x_gradient(model, x, t)
    with torch.no_grad():
        expected = (model(x) - model(torch.zeros_like(x))).gather(1, t[:, None]).squeeze(1)
    torch.testing.assert_close(attributions.sum(dim=1), expected)


@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_zero_for_linear_gradient(normalize: bool):
    model, x, t = _linear(), _inputs(6, 8), _targets(6)
    values = infidelity(model, x, gradient_attribution(model, x, t), target=t, normalize=normalize)
    assert values.shape == (6,)
    assert float(values.max()) < 1e-20


def test_infidelity_zero_for_input_x_gradient_scaled_noise():
    # With I~ = I / x (captum's multiply_by_inputs convention), I~ . (w * x) = w . I exactly
    # when no input element is 0.
    model, x, t = _linear(), _inputs(6, 8), _targets(6)
    values = infidelity(model, x, input_x_gradient(model, x, t), target=t, multiply_by_inputs=True)
    assert float(values.max()) < 1e-20


def test_normalized_infidelity_invariant_to_scale():
    model, x, t = _mlp(0), _inputs(4, 16), _targets(4)
    attributions = gradient_attribution(model, x, t)
    base = infidelity(model, x, attributions, target=t, normalize=True)
    scaled = infidelity(model, x, attributions * 7.5, target=t, normalize=True)
    torch.testing.assert_close(scaled, base)
    raw = infidelity(model, x, attributions * 7.5, target=t, normalize=False)
    assert not torch.allclose(raw, infidelity(model, x, attributions, target=t, normalize=False))


# Deletion and insertion curves on a model that depends on only k inputs.

def _k_input_model(features: int, relevant: list[int]) -> nn.Linear:
    model = nn.Linear(features, 2, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
        model.weight[0, relevant] = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    return model


def test_perfect_attribution_reaches_floor_at_step_k():
    relevant = [4, 11, 17]
    model = _k_input_model(20, relevant)
    x = torch.rand(8, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64) + 0.5
    t = torch.zeros(8, dtype=torch.long)
    perfect = input_x_gradient(model, x, t)
    _, curves = perturbation_curve(model, x, perfect, target=t, score="logit")
    assert curves.shape == (8, 21)
    # Floor: the logit of the zero baseline, 0 for this bias-free model.
    torch.testing.assert_close(curves[:, 3:], torch.zeros(8, 18, dtype=torch.float64))
    assert bool((curves[:, 2] > 0).all())

    random = torch.randn(8, 20, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    _, random_curves = perturbation_curve(model, x, random, target=t, score="logit")
    assert bool((curve_area(random_curves) > curve_area(curves)).all())
    assert bool((random_curves[:, 3] > 0).any())


def test_curve_endpoints_deletion_and_insertion():
    model, x = _mlp(1), _inputs(3, 16)
    attributions = _inputs(3, 16, seed=9)
    with torch.no_grad():
        probs = model(x).softmax(dim=1)
        floor = model(torch.zeros_like(x)).softmax(dim=1)
    t = probs.argmax(dim=1)
    expected_clean = probs.gather(1, t[:, None]).squeeze(1)
    expected_floor = floor.gather(1, t[:, None]).squeeze(1)
    _, deletion = perturbation_curve(model, x, attributions, steps=4)
    _, insertion = perturbation_curve(model, x, attributions, mode="insertion", steps=4)
    torch.testing.assert_close(deletion[:, 0], expected_clean)
    torch.testing.assert_close(deletion[:, -1], expected_floor)
    torch.testing.assert_close(insertion[:, 0], expected_floor)
    torch.testing.assert_close(insertion[:, -1], expected_clean)


def test_least_relevant_first_equals_reversed_attributions():
    model, x = _mlp(2), _inputs(3, 16)
    attributions = _inputs(3, 16, seed=5)
    _, least = perturbation_curve(model, x, attributions, order="least_relevant_first")
    _, flipped = perturbation_curve(model, x, -attributions)
    torch.testing.assert_close(least, flipped)


def test_curve_area_normalized_trapezoid():
    # Trapezoid over fractions 0, 1/4, ..., 1 of a curve falling linearly from 1 to 0: 1/2.
    curve = torch.linspace(1, 0, 5, dtype=torch.float64)[None]
    torch.testing.assert_close(curve_area(curve), torch.tensor([0.5], dtype=torch.float64))


def test_patch_units_and_flat_baselines():
    # A model reading the mean of an image; with 2x2 patches the 4x4 image has 4 units, so the
    # curve over S = 4 steps removes one quarter of the pixels per step.
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2)).double()
    with torch.no_grad():
        model[1].weight.fill_(1.0 / 16)
        model[1].bias.zero_()
    x = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    t = torch.zeros(1, dtype=torch.long)
    _, curves = perturbation_curve(model, x, x.clone(), target=t, patch_size=2, score="logit")
    torch.testing.assert_close(curves, torch.tensor([[1.0, 0.75, 0.5, 0.25, 0.0]],
                                                    dtype=torch.float64))
    for baseline in ("blur", "channel_mean"):
        _, flat = perturbation_curve(model, x, x.clone(), target=t, patch_size=2, score="logit",
                                     baseline=baseline)
        torch.testing.assert_close(flat, torch.ones(1, 5, dtype=torch.float64))


# Faithfulness correlation.

def test_faithfulness_correlation_one_for_exact_linear():
    model, x, t = _linear(16), _inputs(10, 16), _targets(10)
    values = faithfulness_correlation(model, x, input_x_gradient(model, x, t), target=t,
                                      score="logit", subset_size=4)
    torch.testing.assert_close(values, torch.ones(10, dtype=torch.float64))


def test_faithfulness_correlation_near_zero_for_random():
    model, x, t = _linear(16), _inputs(64, 16), _targets(64)
    random = _inputs(64, 16, seed=11)
    values = faithfulness_correlation(model, x, random, target=t, score="logit", subset_size=4)
    # Per sample the correlation over 32 subsets has spread about 1/sqrt(32); the mean over
    # 64 samples has spread about 0.02.
    assert abs(float(values.mean())) < 0.1


# Model-parameter randomization check.

def test_randomization_drops_for_gradients():
    model, x, t = _mlp(0), _inputs(32, 16), _targets(32)
    values = model_randomization_check(model, x, gradient_attribution, target=t)
    assert float(values.mean()) < 0.3


def test_randomization_stays_for_input_explanation():
    model, x = _mlp(0), _inputs(8, 16)
    values = model_randomization_check(model, x, lambda m, inputs, target: inputs)
    torch.testing.assert_close(values, torch.ones(8, dtype=torch.float64))


def test_randomization_spearman_matches_scipy():
    from scipy.stats import spearmanr

    model, x, t = _mlp(3), _inputs(4, 16), _targets(4)
    values = model_randomization_check(model, x, gradient_attribution, target=t, absolute=False,
                                       randomized_model=_mlp(7))
    trained = gradient_attribution(model, x, t)
    other = gradient_attribution(_mlp(7), x, t)
    expected = [spearmanr(a.numpy(), b.numpy()).statistic
                for a, b in zip(trained, other, strict=True)]
    torch.testing.assert_close(values, torch.tensor(expected, dtype=torch.float64))


# Agreement with captum.metrics at matched perturbations.

@pytest.mark.parametrize(("normalize", "multiply"), [(False, False), (True, False), (True, True)])
def test_infidelity_matches_captum(normalize: bool, multiply: bool):
    from captum.metrics import infidelity as captum_infidelity
    from captum.metrics import infidelity_perturb_func_decorator

    model, x, t = _mlp(4), _inputs(5, 16), _targets(5)
    attribute = input_x_gradient if multiply else gradient_attribution
    attributions = attribute(model, x, t)
    noise = torch.randn(5, 6, 16, generator=torch.Generator().manual_seed(2),
                        dtype=torch.float64) * 0.1

    @infidelity_perturb_func_decorator(multiply)
    def perturb(inputs):
        return inputs - noise.reshape(-1, 16)

    expected = captum_infidelity(model, perturb, x, attributions, target=t, n_perturb_samples=6,
                                 normalize=normalize)
    actual = infidelity(model, x, attributions, target=t, perturbations=noise,
                        normalize=normalize, multiply_by_inputs=multiply)
    torch.testing.assert_close(actual, expected.double())


def test_max_sensitivity_matches_captum():
    from captum.attr import Saliency
    from captum.metrics import sensitivity_max

    model, x, t = _mlp(5), _inputs(4, 16), _targets(4)
    delta = (torch.rand(4, 5, 16, generator=torch.Generator().manual_seed(6),
                        dtype=torch.float64) * 2 - 1) * 0.05

    def perturb(inputs, perturb_radius=0.02):
        return inputs + delta.reshape(-1, 16)

    saliency = Saliency(model)
    expected = sensitivity_max(saliency.attribute, x, perturb_func=perturb, n_perturb_samples=5,
                               target=t)
    actual = max_sensitivity(model, x, lambda m, inputs, target: saliency.attribute(
        inputs, target=target), target=t, perturbations=delta)
    torch.testing.assert_close(actual, expected.double())


# Agreement with Quantus 0.6 (zero baseline, softmax score, one pixel per step).

def _digits_like(num: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 36, 3))
    x = torch.rand(num, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    x[:, :, 0, 0] = 0.0  # a zero pixel, so Quantus' "black" baseline (per-sample min) is 0
    return model.eval(), x, _targets(num)


def test_deletion_curve_matches_quantus_pixel_flipping():
    import quantus

    model, x, t = _digits_like(3)
    attributions = gradient_attribution(model, x, t)
    metric = quantus.PixelFlipping(features_in_step=1, perturb_baseline="black", normalise=False,
                                   abs=False, disable_warnings=True)
    expected = metric(model=model, x_batch=x.numpy(), y_batch=t.numpy(),
                      a_batch=attributions.numpy(), device="cpu", softmax=True)
    _, curves = perturbation_curve(model, x, attributions, target=t)
    # Quantus records the curve after each step; ours also has the unperturbed point 0.
    np.testing.assert_allclose(curves[:, 1:].numpy(), np.array(expected), rtol=1e-5, atol=1e-6)


def test_faithfulness_correlation_matches_quantus():
    import quantus

    model, x, t = _digits_like(3)
    attributions = gradient_attribution(model, x, t)
    runs, size = 10, 6
    # Replay Quantus' draws: per run one subset per sample, then one np.random.uniform call of
    # batch size, which its baseline lookup makes even for the "black" baseline.
    np.random.seed(0)
    per_run = []
    for _ in range(runs):
        per_run.append(np.stack([np.random.choice(36, size, replace=False) for _ in range(3)]))
        np.random.uniform(size=3)
    subsets = np.stack(per_run, axis=1)
    np.random.seed(0)
    metric = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=size,
                                             perturb_baseline="black", normalise=False, abs=False,
                                             return_aggregate=False, disable_warnings=True)
    expected = metric(model=model, x_batch=x.numpy(), y_batch=t.numpy(),
                      a_batch=attributions.numpy(), device="cpu", softmax=True)
    actual = faithfulness_correlation(model, x, attributions, target=t,
                                      subset_indices=torch.from_numpy(subsets))
    np.testing.assert_allclose(actual.numpy(), np.array(expected), rtol=1e-4, atol=1e-5)


def test_skipped_steps_match_naive_loop():
    # Half the pixels equal the zero baseline, so their steps reuse the previous score. A naive
    # loop that runs the model at every step must give the same curve.
    model, x = _mlp(6), _inputs(3, 16).abs()
    x[:, ::2] = 0.0
    attributions = _inputs(3, 16, seed=8)
    t = _targets(3)
    _, curves = perturbation_curve(model, x, attributions, target=t, score="logit")
    order = attributions.argsort(dim=1, descending=True, stable=True)
    expected = torch.empty(3, 17, dtype=torch.float64)
    with torch.no_grad():
        for step in range(17):
            copy = x.clone()
            copy.scatter_(1, order[:, :step], 0.0)
            expected[:, step] = model(copy).gather(1, t[:, None]).squeeze(1)
    torch.testing.assert_close(curves, expected)


# Bad models and inputs.


def _identity(model, inputs, target):
    return inputs


def test_scores_reject_function_as_model():
    x, attributions = _inputs(2, 8), _inputs(2, 8, seed=2)
    match = r"`model` must be a torch.nn.Module, got function; pass the module itself"
    calls = [
        lambda: infidelity(lambda a: a, x, attributions),
        lambda: max_sensitivity(lambda a: a, x, _identity),
        lambda: perturbation_curve(lambda a: a, x, attributions),
        lambda: faithfulness_correlation(lambda a: a, x, attributions),
        lambda: model_randomization_check(lambda a: a, x, _identity),
        lambda: randomized_copy(lambda a: a),
    ]
    for call in calls:
        with pytest.raises(TypeError, match=match):
            call()
    with pytest.raises(TypeError, match=r"`randomized_model` must be a torch.nn.Module"):
        model_randomization_check(_linear(), x, _identity, randomized_model=lambda a: a)


def test_scores_name_inputs_on_shape_mismatch():
    # _linear() takes 8 features; 5 features fail inside nn.Linear with a torch RuntimeError.
    x = _inputs(2, 5)
    match = r"`inputs` of shape \(2, 5\) \(mat1 and mat2 shapes cannot be multiplied"
    calls = [
        lambda: infidelity(_linear(), x, x),
        lambda: perturbation_curve(_linear(), x, x),
        lambda: faithfulness_correlation(_linear(), x, x),
        lambda: gradient_attribution(_linear(), x, _targets(2)),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=match) as raised:
            call()
        assert isinstance(raised.value.__cause__, RuntimeError)


def test_gradient_attribution_rejects_empty_inputs():
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(N, \.\.\.\) with N >= 1"):
        gradient_attribution(_linear(), torch.zeros(0, 8, dtype=torch.float64),
                             torch.zeros(0, dtype=torch.long))


def test_curve_area_rejects_nan_and_non_tensor():
    with pytest.raises(ValueError, match=r"`curves` contains 1 NaN or infinite value"):
        curve_area(torch.tensor([[0.1, float("nan")]]))
    with pytest.raises(TypeError, match=r"`curves` must be a torch.Tensor, got \[1.0, 0.0\]"):
        curve_area([1.0, 0.0])

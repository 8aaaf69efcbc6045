"""``SaliencyFidelity``: agreement with the functional forms, training-loop hygiene, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from andante_metrics import SaliencyFidelity
from andante_metrics.interpretability import (
    curve_area,
    faithfulness_correlation,
    gradient_attribution,
    infidelity,
    input_x_gradient,
    model_randomization_check,
    perturbation_curve,
    randomized_copy,
)


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                         nn.Linear(4 * 36, 3))


def _images(num: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(num, 1, 6, 6, generator=torch.Generator().manual_seed(seed))


def test_metric_matches_functional_forms():
    model, x = _cnn().eval(), _images()
    metric = SaliencyFidelity(model, gradient_attribution, steps=4, subsets=8,
                              infidelity_samples=4, random_control=False)
    metric.update(x[:2])
    metric.update(x[2:])
    values = metric.compute()

    target = model(x).argmax(dim=1)
    attributions = gradient_attribution(model, x, target)
    _, deletion = perturbation_curve(model, x, attributions, steps=4)
    _, insertion = perturbation_curve(model, x, attributions, mode="insertion", steps=4)
    expected = {
        "deletion_auc": curve_area(deletion),
        "insertion_auc": curve_area(insertion),
        "faithfulness_correlation": faithfulness_correlation(model, x, attributions, subsets=8),
        "infidelity": infidelity(model, x, attributions, samples=4),
        "randomization_rank_correlation": model_randomization_check(
            model, x, gradient_attribution, randomized_model=randomized_copy(model)),
    }
    for key, per_sample in expected.items():
        torch.testing.assert_close(values[key], per_sample.mean(), msg=key)
        torch.testing.assert_close(values[f"{key}_std"], per_sample.std(), msg=key)
        torch.testing.assert_close(metric.per_sample()[key], per_sample, msg=key)
    torch.testing.assert_close(metric.mean_curves()["deletion_curve"], deletion.mean(dim=0))


def test_random_control_worse_on_linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    metric = SaliencyFidelity(model, input_x_gradient,
                              scores=("deletion", "faithfulness_correlation"), score="logit",
                              steps=None)
    metric.update(_images(16) + 0.1)
    values = metric.compute()
    assert float(values["deletion_auc"]) < float(values["deletion_auc_random"])
    assert float(values["faithfulness_correlation"]) > 0.99
    assert abs(float(values["faithfulness_correlation_random"])) < 0.3


def test_captum_methods_and_rebuild_for_randomized_copy():
    from captum.attr import InputXGradient, IntegratedGradients, Saliency

    model, x = _cnn().eval(), _images(4)
    for method in (Saliency(model), IntegratedGradients(model, multiply_by_inputs=False),
                   InputXGradient(model)):
        metric = SaliencyFidelity(model, method, scores=("deletion", "randomization"), steps=4,
                                  attribution_options={"n_steps": 8}
                                  if isinstance(method, IntegratedGradients) else None)
        metric.update(x)
        values = metric.compute()
        assert torch.isfinite(values["deletion_auc"])
        assert -1 <= float(values["randomization_rank_correlation"]) <= 1
    assert metric.multiply_by_inputs  # read from InputXGradient.multiplies_by_inputs


def test_hygiene_grads_mode_and_global_rng_untouched():
    from captum.attr import Saliency

    model, x = _cnn(), _images(4)
    model.train()
    for parameter in model.parameters():
        parameter.grad = torch.full_like(parameter, 0.5)
    rng_state = torch.get_rng_state()
    for method in (gradient_attribution, Saliency(model)):
        metric = SaliencyFidelity(model, method, scores=("deletion", "max_sensitivity",
                                                         "randomization"), steps=4)
        with torch.no_grad():  # gradients are re-enabled locally
            metric.update(x)
        metric.compute()
    assert model.training
    assert torch.equal(torch.get_rng_state(), rng_state)
    for parameter in model.parameters():
        assert torch.equal(parameter.grad, torch.full_like(parameter, 0.5))


def test_fixed_probe_gives_same_value_every_time():
    model, x = _cnn().eval(), _images(4)
    first = SaliencyFidelity(model, gradient_attribution, steps=4)
    second = SaliencyFidelity(model, gradient_attribution, steps=4)
    first.update(x)
    second.update(x)
    torch.testing.assert_close(first.compute(), second.compute(), rtol=0, atol=0, equal_nan=True)


def test_inference_mode_raises():
    metric = SaliencyFidelity(_cnn(), gradient_attribution, steps=4)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        metric.update(_images(2))
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        perturbation_curve(_cnn(), _images(2), _images(2))


def test_precomputed_attributions():
    model, x = _cnn().eval(), _images(3)
    attributions = gradient_attribution(model, x, model(x).argmax(dim=1))
    metric = SaliencyFidelity(model, scores=("deletion",), steps=4, random_control=False)
    metric.update(x, attributions=attributions)
    _, curves = perturbation_curve(model, x, attributions, steps=4)
    torch.testing.assert_close(metric.compute()["deletion_auc"], curve_area(curves).mean())


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"scores": ("deletion", "roar")}, ValueError, r"`scores` must be one of .*got 'roar'"),
        ({"scores": "deletion"}, ValueError, r"`scores` must be a non-empty sequence"),
        ({"attribution": None}, ValueError, r"call the attribution method again"),
        ({"attribution": 3}, TypeError, r"`attribution` must be a captum attribution.*got int"),
        ({"baseline": "mean"}, ValueError, r"`baseline` must be one of .*got 'mean'"),
        ({"order": "random"}, ValueError, r"`order` must be one of .*got 'random'"),
        ({"steps": 0}, ValueError, r"`steps` must be at least 1, got 0"),
        ({"infidelity_noise_std": -1.0}, ValueError, r"`infidelity_noise_std` must be a finite"),
        ({"subsets": 1}, ValueError, r"`subsets` must be at least 2, got 1"),
    ],
)
def test_bad_options_raise(options, error, match):
    arguments = {"attribution": gradient_attribution, **options}
    with pytest.raises(error, match=match):
        SaliencyFidelity(_cnn(), **arguments)


def test_model_must_be_module():
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got str"):
        SaliencyFidelity("resnet", gradient_attribution)


def test_bad_update_inputs_raise():
    metric = SaliencyFidelity(_cnn(), gradient_attribution, steps=4)
    with pytest.raises(ValueError, match=r"`target` must hold class indices in \[0, 2\]"):
        metric.update(_images(2), target=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"`attributions` and `inputs` must have the same shape"):
        metric.update(_images(2), attributions=torch.zeros(2, 36))
    bad = _images(2)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"`inputs` contains 1 NaN"):
        metric.update(bad)
    no_method = SaliencyFidelity(_cnn(), scores=("deletion",), steps=4)
    with pytest.raises(ValueError, match=r"`attributions` are missing"):
        no_method.update(_images(2))


def test_functional_option_errors():
    model, x = nn.Linear(4, 1), torch.rand(2, 4)
    with pytest.raises(ValueError, match=r"`patch_size` > 1 needs images"):
        perturbation_curve(model, x, x, patch_size=2, score="logit")
    with pytest.raises(ValueError, match=r"`score`='probability' needs a model with at least two"):
        perturbation_curve(model, x, x)
    with pytest.raises(ValueError, match=r"`baseline`='blur' needs images"):
        perturbation_curve(model, x, x, baseline="blur", score="logit")
    with pytest.raises(ValueError, match=r"`subset_size` must be at most 4, got 9"):
        faithfulness_correlation(model, x, x, subset_size=9, score="logit")
    with pytest.raises(ValueError, match=r"`perturbations` must have shape \(N, R"):
        infidelity(model, x, x, perturbations=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"`curves` must hold at least 2 points"):
        curve_area(torch.zeros(3, 1))


def _plain_gradient(model, inputs, target):
    leaf = inputs.detach().clone().requires_grad_(True)
    return torch.autograd.grad(model(leaf)[torch.arange(len(leaf)), target].sum(), leaf)[0]


def test_user_callable_gets_gradients_under_no_grad():
    model, x = _cnn().eval(), _images(3)
    metric = SaliencyFidelity(model, _plain_gradient, scores=("deletion", "max_sensitivity",
                                                               "randomization"), steps=4)
    with torch.no_grad():
        metric.update(x)
    expected = SaliencyFidelity(model, gradient_attribution, scores=("deletion",), steps=4)
    expected.update(x)
    torch.testing.assert_close(metric.compute()["deletion_auc"],
                               expected.compute()["deletion_auc"])

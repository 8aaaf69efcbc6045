"""Tests of FGSM, PGD and AdversarialRobustness."""

from __future__ import annotations

import pytest
import torch
import torchattacks
from torch import nn

from andante_metrics.robustness import (
    AdversarialRobustness,
    NormalizedModel,
    fgsm,
    pgd,
    robust_accuracy,
)


def _linear_binary(seed: int = 0, dim: int = 6):
    """A two-logit linear classifier in float64 and data with labels from a noisy rule."""
    gen = torch.Generator().manual_seed(seed)
    model = nn.Linear(dim, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, dim, generator=gen, dtype=torch.float64))
        model.bias.copy_(torch.randn(2, generator=gen, dtype=torch.float64) * 0.1)
    inputs = torch.randn(400, dim, generator=gen, dtype=torch.float64)
    labels = (torch.rand(400, generator=gen) < 0.5).long()
    return model, inputs, labels


def _linear_margins(model: nn.Linear, inputs: torch.Tensor, labels: torch.Tensor):
    """Return each sample's margin (true logit minus the other) and w = w_1 - w_0."""
    logits = model(inputs).detach()
    true = logits.gather(1, labels[:, None]).squeeze(1)
    other = logits.gather(1, (1 - labels)[:, None]).squeeze(1)
    return true - other, (model.weight[1] - model.weight[0]).detach()


@pytest.mark.parametrize("attack", ["pgd", "fgsm"])
def test_linf_linear_closed_form(attack):
    # Closed form: a linear binary classifier keeps a correct sample under every L-inf
    # perturbation of size eps iff its margin exceeds eps * ||w_1 - w_0||_1, and the worst case
    # is the corner -eps * sign(w) * (label sign), which one sign step reaches.
    model, inputs, labels = _linear_binary()
    margins, w = _linear_margins(model, inputs, labels)
    budgets = [0.0, 0.05, 0.1, 0.2, 0.4]
    result = robust_accuracy(model, inputs, labels, budgets=budgets, attack=attack, clamp=None,
                             seed=3)
    expected = [float((margins > eps * w.abs().sum()).double().mean()) for eps in budgets]
    torch.testing.assert_close(result["robust_accuracy"],
                               torch.tensor(expected, dtype=torch.float64))
    assert expected[-1] < expected[1] < expected[0]


@pytest.mark.parametrize(
    ("random_start", "steps", "relative"), [(False, 10, None), (True, 40, 0.5)]
)
def test_l2_linear_closed_form(random_start, steps, relative):
    # Closed form: under L2 perturbations of size eps the condition is margin > eps * ||w||_2.
    # From a random start each step of size a eps followed by the radial projection shrinks the
    # off-direction part of the perturbation by about a factor (1 - a); with the default
    # a = 2.5 / steps the total shrinkage stays near exp(-2.5) however many steps run, so this
    # case uses a fixed a = 0.5 and 40 steps.
    model, inputs, labels = _linear_binary(seed=1)
    margins, w = _linear_margins(model, inputs, labels)
    budgets = [0.0, 0.1, 0.3, 0.6]
    result = robust_accuracy(model, inputs, labels, budgets=budgets, norm="l2", clamp=None,
                             random_start=random_start, steps=steps,
                             relative_step_size=relative)
    expected = [float((margins > eps * w.norm()).double().mean()) for eps in budgets]
    torch.testing.assert_close(result["robust_accuracy"],
                               torch.tensor(expected, dtype=torch.float64))


def test_pgd_reaches_closed_form_per_sample():
    model, inputs, labels = _linear_binary(seed=2)
    margins, w = _linear_margins(model, inputs, labels)
    eps = 0.15
    adversarial = pgd(model, inputs, labels, eps=eps, clamp=None,
                      generator=torch.Generator().manual_seed(0))
    adversarial_margins, _ = _linear_margins(model, adversarial, labels)
    # PGD ends on the worst corner, so the margin drops by exactly eps * ||w||_1.
    torch.testing.assert_close(adversarial_margins, margins - eps * w.abs().sum())
    assert float((adversarial - inputs).abs().max()) <= eps + 1e-12


class _SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def _small_cnn_batch(seed: int = 0):
    torch.manual_seed(seed)
    model = _SmallCNN().double().eval()
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(24, 1, 6, 6, generator=gen, dtype=torch.float64)
    labels = model(images).argmax(dim=1).detach()
    return model, images, labels


@pytest.mark.parametrize(("norm", "eps", "alpha"), [("linf", 0.05, 0.01), ("l2", 0.5, 0.1)])
def test_pgd_matches_torchattacks(norm, eps, alpha):
    # Reference: torchattacks 3.5 PGD / PGDL2 with the same eps, step size and steps, without
    # random start (both deterministic). torchattacks divides by ||g|| + 1e-10 where we add
    # 1e-12, so L2 results agree to rounding.
    model, images, labels = _small_cnn_batch()
    ours = pgd(model, images, labels, eps=eps, norm=norm, steps=7, step_size=alpha,
               random_start=False)
    if norm == "linf":
        peer = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=7, random_start=False)
    else:
        peer = torchattacks.PGDL2(model, eps=eps, alpha=alpha, steps=7, random_start=False)
    expected = peer(images, labels)
    torch.testing.assert_close(ours, expected, atol=1e-7, rtol=0)
    fooled = (model(ours).argmax(1) != labels).double().mean()
    assert float(fooled) > 0.0


def test_fgsm_matches_torchattacks():
    # Reference: torchattacks 3.5 FGSM (one sign step of size eps, clipped to [0, 1]).
    model, images, labels = _small_cnn_batch(seed=1)
    ours = fgsm(model, images, labels, eps=0.03)
    expected = torchattacks.FGSM(model, eps=0.03)(images, labels)
    torch.testing.assert_close(ours, expected, atol=1e-12, rtol=0)


def test_random_start_robust_accuracy_close_to_torchattacks():
    # With random starts the draws differ, so only the robust accuracies are compared: both
    # attacks run 10 steps of 2.5 eps / 10 from a random point of the L-inf ball.
    model, images, labels = _small_cnn_batch(seed=2)
    eps = 0.08
    ours = robust_accuracy(model, images, labels, budgets=[eps], steps=10)["robust_accuracy"]
    torch.manual_seed(0)
    peer_images = torchattacks.PGD(model, eps=eps, alpha=0.25 * eps, steps=10)(images, labels)
    peer = (model(peer_images).argmax(1) == labels).double().mean()
    assert abs(float(ours[0]) - float(peer)) <= 2 / 24


def test_robust_accuracy_monotone_and_clean_at_zero():
    model, images, labels = _small_cnn_batch(seed=3)
    labels = labels.clone()
    labels[:4] = (labels[:4] + 1) % 3
    budgets = [0.0, 0.01, 0.02, 0.04, 0.08, 0.16]
    for attack in ("pgd", "fgsm"):
        result = robust_accuracy(model, images, labels, budgets=budgets, attack=attack)
        curve = result["robust_accuracy"]
        assert float(curve[0]) == pytest.approx(20 / 24)
        assert float(result["clean_accuracy"]) == pytest.approx(20 / 24)
        assert bool((curve[1:] <= curve[:-1]).all()), curve.tolist()
        assert float(curve[-1]) < float(curve[0])


def test_metric_deterministic_under_seed():
    model, images, labels = _small_cnn_batch(seed=4)
    values = []
    for seed in (5, 5):
        metric = AdversarialRobustness(model, budgets=[0.05, 0.1], seed=seed, steps=3,
                                       progress=False)
        metric.update(images, labels)
        values.append(metric.compute()["robust_accuracy"])
    torch.testing.assert_close(values[0], values[1], atol=0, rtol=0)


def test_parameter_grad_and_mode_untouched():
    model, images, labels = _small_cnn_batch(seed=5)
    model.train()
    marker = [torch.full_like(p, 7.0) for p in model.parameters()]
    for parameter, grad in zip(model.parameters(), marker, strict=True):
        parameter.grad = grad.clone()
    metric = AdversarialRobustness(model, budgets=[0.0, 0.1], steps=3, progress=False)
    metric.update(images, labels)
    fgsm(model, images, labels, eps=0.1)
    assert model.training
    for parameter, grad in zip(model.parameters(), marker, strict=True):
        assert torch.equal(parameter.grad, grad)


def test_attack_runs_in_eval_mode():
    # Dropout with p close to 1 would make the logits random in train mode, so equal results
    # across two calls show that the attack ran in eval mode.
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(36, 3)).double()
    model.train()
    _, images, _ = _small_cnn_batch(seed=6)
    labels = torch.zeros(24, dtype=torch.long)
    first = pgd(model, images, labels, eps=0.1, random_start=False)
    second = pgd(model, images, labels, eps=0.1, random_start=False)
    assert torch.equal(first, second)
    assert model.training


def test_pgd_stays_in_ball_and_box():
    model, images, labels = _small_cnn_batch(seed=7)
    for norm, eps in (("linf", 0.1), ("l2", 0.4)):
        adversarial = pgd(model, images, labels, eps=eps, norm=norm,
                          generator=torch.Generator().manual_seed(0))
        delta = (adversarial - images).flatten(1)
        size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
        assert float(size.max()) <= eps + 1e-9
        assert float(adversarial.min()) >= 0.0
        assert float(adversarial.max()) <= 1.0


def test_normalized_model_matches_manual_normalization():
    model, images, labels = _small_cnn_batch(seed=8)
    wrapped = NormalizedModel(model, mean=[0.4], std=[0.2])
    torch.testing.assert_close(wrapped(images), model((images - 0.4) / 0.2))
    result = robust_accuracy(wrapped, images, labels, budgets=[0.0, 0.05])
    assert result["robust_accuracy"].shape == (2,)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mean": [0.5, 0.5], "std": [0.2]}, ValueError,
         r"`mean` and `std` must hold one value per channel each, got 2 and 1"),
        ({"mean": [0.5], "std": [0.0]}, ValueError, r"`std` must be greater than 0.*\[0.0\]"),
    ],
)
def test_normalized_model_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        NormalizedModel(nn.Identity(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"budgets": [0.1, 0.05]}, ValueError, r"`budgets` must be strictly increasing"),
        ({"budgets": []}, ValueError, r"`budgets` must be a non-empty sequence"),
        ({"budgets": 0.1}, ValueError, r"`budgets` must be a non-empty sequence"),
        ({"budgets": [-0.1]}, ValueError, r"`budgets` must be a finite number at least 0"),
        ({"budgets": [0.1], "attack": "cw"}, ValueError, r"`attack` must be one of 'fgsm', 'pgd'"),
        ({"budgets": [0.1], "norm": "l1"}, ValueError, r"`norm` must be one of 'linf', 'l2'"),
        ({"budgets": [0.1], "steps": 0}, ValueError, r"`steps` must be at least 1, got 0"),
        ({"budgets": [0.1], "relative_step_size": 0.0}, ValueError,
         r"`relative_step_size` must be a finite number greater than 0"),
        ({"budgets": [0.1], "clamp": (1.0, 0.0)}, ValueError, r"`clamp` must be None or a pair"),
        ({"budgets": [0.1], "seed": -2}, ValueError, r"`seed` must be at least 0, got -2"),
    ],
)
def test_metric_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        AdversarialRobustness(nn.Linear(2, 2), **kwargs)


def test_metric_model_not_module():
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got str"):
        AdversarialRobustness("resnet", budgets=[0.1])


def test_attacks_name_images_on_shape_mismatch():
    # nn.Linear(6, 2) takes 6 features; 4 features fail inside it with a torch RuntimeError.
    model = nn.Linear(6, 2).double()
    images = torch.rand(3, 4, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0])
    match = r"`images` of shape \(3, 4\) \(mat1 and mat2 shapes cannot be multiplied"
    with pytest.raises(ValueError, match=match):
        fgsm(model, images, labels, eps=0.1)
    with pytest.raises(ValueError, match=match):
        pgd(model, images, labels, eps=0.1, steps=1)
    with pytest.raises(ValueError, match=match) as raised:
        robust_accuracy(model, images, labels, budgets=[0.1], steps=1)
    assert isinstance(raised.value.__cause__, RuntimeError)


def test_attack_rejects_function_as_model():
    images, labels = torch.rand(3, 4, dtype=torch.float64), torch.tensor([0, 1, 0])
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got function; pass"):
        fgsm(lambda a: a, images, labels, eps=0.1)


def test_attack_bad_options():
    model, images, labels = _small_cnn_batch()
    with pytest.raises(ValueError, match=r"`eps` must be a finite number at least 0, got -0.1"):
        pgd(model, images, labels, eps=-0.1)
    with pytest.raises(ValueError, match=r"`step_size` must be a finite number greater than 0"):
        pgd(model, images, labels, eps=0.1, step_size=0.0)
    with pytest.raises(ValueError, match=r"`norm` must be one of 'linf', 'l2', got 'l0'"):
        fgsm(model, images, labels, eps=0.1, norm="l0")

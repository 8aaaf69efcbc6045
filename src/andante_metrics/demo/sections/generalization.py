"""Generalization section of the demo card: memorization probe, canaries, gap and shifted digits.

* Memorization probe: two fresh demo CNNs are trained on a subset of the training digits, one
  on the true labels and one on labels drawn uniformly at random. Both get the same number of
  steps with the demo's optimizer, and the card records how far each got within that budget.
* Canaries: a fresh demo CNN trained on the whole training split in which a few samples carry a
  wrong label; the fraction of them it predicts with that label is tracked every epoch.
* Gap: the main model's train accuracy (running, over each epoch's steps) against its test
  accuracy at each epoch end, from the training history.
* Cross-domain: the main model's test accuracy and NLL on shifted test digits (rotated by
  20 degrees, inverted, strokes thickened by a 3 x 3 max-pool), relative to the clean digits.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from andante_metrics.demo.model import DigitsCNN
from andante_metrics.demo.runner import DemoContext, predict_logits, train_classifier
from andante_metrics.generalization import (
    CanaryMemorization,
    CrossDomainGap,
    GeneralizationGap,
    MemorizationProbe,
    make_canaries,
)
from andante_metrics.generalization.memorization import ROW_COLUMNS
from andante_metrics.report import KPICard

AREA = "generalization"
# Probe subset size and step budget per copy (full demo, then --quick). With 256 digits and
# Adam at the demo's learning rate, the random-label copy reached 95 % train accuracy after
# 270 to 320 steps on two subsets tried with seed 0. The quick budget is far too short for it.
PROBE_SAMPLES = (256, 96)
PROBE_STEPS = (400, 60)
PROBE_TARGET = 0.95
CANARIES = (32, 16)
ROTATION_DEGREES = 20.0


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Add the probe, the canary curve, the train/test gap and the cross-domain table."""
    _probe(ctx, card)
    _canaries(ctx, card)
    _gap(ctx, card)
    _cross_domain(ctx, card)


def _probe(ctx: DemoContext, card: KPICard) -> None:
    mode = 1 if ctx.config.quick else 0
    data = ctx.data
    order = torch.randperm(len(data.train_labels), generator=ctx.generator(70))
    subset = order[: PROBE_SAMPLES[mode]]
    probe = MemorizationProbe(
        functools.partial(DigitsCNN, num_classes=data.num_classes),
        num_classes=data.num_classes,
        optimizer=functools.partial(torch.optim.Adam, lr=ctx.config.learning_rate),
        batch_size=ctx.config.batch_size,
        max_steps=PROBE_STEPS[mode],
        target_accuracy=PROBE_TARGET,
        seed=ctx.config.seed,
        progress=ctx.config.progress,
    )
    result = probe.run(data.train_images[subset], data.train_labels[subset])
    budget = f"{PROBE_STEPS[mode]} steps on {len(subset)} training digits"
    for name, label in (("true_labels", "true labels"), ("random_labels", "random labels")):
        copy = result.conditions[name]
        card.add_kpi(AREA, f"probe_fitted_fraction_{name}", copy.fitted_fraction,
                     unit="fraction", higher_is_better=None,
                     description=f"chance-normalized train accuracy on {label} after {budget}")
        card.add_kpi(AREA, f"probe_epochs_to_{PROBE_TARGET:g}_{name}",
                     math.inf if copy.epochs_to_target is None else copy.epochs_to_target,
                     unit="epochs", higher_is_better=None,
                     description=f"epochs until train accuracy on {label} reached "
                                 f"{PROBE_TARGET:g} (inf: not within {budget})")
    if result.slowdown is not None:
        card.add_kpi(AREA, "probe_random_label_slowdown", result.slowdown, unit="ratio",
                     higher_is_better=None,
                     description="epochs to target with random labels / with true labels")
    elif result.slowdown_lower_bound is not None:
        # Same name as the measured ratio, so cards of different budgets line up in compare.
        card.add_kpi(AREA, "probe_random_label_slowdown", result.slowdown_lower_bound,
                     unit="ratio", higher_is_better=None, lower_bound=True,
                     description="random labels not fitted within the budget: a lower bound of "
                                 "the epochs-to-target ratio")
    rows = [["not reached" if cell is None else cell for cell in row] for row in result.rows()]
    card.add_table(AREA, "Memorization probe (Zhang et al., ICLR 2017)", ROW_COLUMNS, rows,
                   note=f"Demo CNN, Adam lr {ctx.config.learning_rate:g}, batch "
                        f"{ctx.config.batch_size}, {budget}, no augmentation; target train "
                        f"accuracy {PROBE_TARGET:g}.")
    card.add_figure(AREA, "Memorization probe: train accuracy on true vs random labels", "line", {
        "x_label": "epoch", "y_label": "train accuracy",
        "series": [{"label": name, "x": copy.curve_epochs, "y": copy.curve_accuracy}
                   for name, copy in result.conditions.items()],
    })


def _canaries(ctx: DemoContext, card: KPICard) -> None:
    mode = 1 if ctx.config.quick else 0
    data = ctx.data
    canaries = make_canaries(data.train_labels, data.num_classes, count=CANARIES[mode],
                             generator=ctx.generator(71))
    model = ctx.new_model(seed_offset=72)
    metric = CanaryMemorization(num_classes=data.num_classes)
    curve: list[float] = []

    def on_epoch(epoch: int) -> None:
        metric.update(predict_logits(model, data.train_images[canaries.indices]), canaries.labels)
        curve.append(float(metric.compute()))
        metric.reset()

    train_classifier(
        model, data.train_images, canaries.apply(data.train_labels), epochs=ctx.config.epochs,
        batch_size=ctx.config.batch_size, learning_rate=ctx.config.learning_rate,
        generator=ctx.generator(73), on_epoch=on_epoch,
    )
    test_accuracy = (predict_logits(model, data.test_images).argmax(dim=1) == data.test_labels)
    card.add_metric("canary_fitted_fraction", metric, curve[-1],
                    description=f"fraction of {len(canaries.indices)} wrongly labelled training "
                                f"digits predicted with their wrong label after "
                                f"{ctx.config.epochs} epochs (separate run)")
    card.add_kpi(AREA, "canary_run_test_accuracy", float(test_accuracy.double().mean()),
                 unit="fraction", higher_is_better=True,
                 description="test accuracy of the run trained with the canaries")
    card.add_figure(AREA, "Canaries fitted with their wrong label, per epoch", "line", {
        "x_label": "epoch", "y_label": "fraction of canaries fitted",
        "series": [{"label": f"{len(canaries.indices)} canaries",
                    "x": list(range(1, len(curve) + 1)), "y": curve}],
    })


def _gap(ctx: DemoContext, card: KPICard) -> None:
    history = ctx.history
    gap = GeneralizationGap()
    epochs = list(range(1, len(history.epoch_test_accuracy) + 1))
    gap.update(torch.tensor(epochs), torch.tensor(history.epoch_train_accuracy),
               torch.tensor(history.epoch_test_accuracy))
    values = gap.compute()
    card.add_kpi(AREA, "train_test_accuracy_gap", values["final_gap"], unit="fraction",
                 higher_is_better=None,
                 description="running train accuracy of the last epoch minus test accuracy")
    card.add_kpi(AREA, "train_test_gap_trend", values["trend"], unit="per epoch",
                 higher_is_better=None,
                 description="least-squares slope of the gap over all epochs (NaN with one)")
    card.add_figure(AREA, "Train vs test accuracy and their gap", "line", {
        "x_label": "epoch", "y_label": "accuracy",
        "series": [
            {"label": "train (running)", "x": epochs, "y": values["train"]},
            {"label": "test", "x": epochs, "y": values["test"]},
            {"label": "gap", "x": epochs, "y": values["gap"]},
        ],
    })


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate ``(N, 1, H, W)`` images about their center with bilinear sampling, zeros outside."""
    angle = math.radians(degrees)
    theta = torch.tensor([[math.cos(angle), -math.sin(angle), 0.0],
                          [math.sin(angle), math.cos(angle), 0.0]], dtype=images.dtype)
    grid = F.affine_grid(theta.expand(len(images), 2, 3), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shifted_domains(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Return the clean images and the shifted versions the cross-domain table evaluates."""
    return {
        "clean": images,
        f"rotated {ROTATION_DEGREES:g} deg": rotate(images, ROTATION_DEGREES),
        "inverted": 1.0 - images,
        "thickened": F.max_pool2d(images, kernel_size=3, stride=1, padding=1),
    }


def _cross_domain(ctx: DemoContext, card: KPICard) -> None:
    domains = shifted_domains(ctx.data.test_images)
    labels = ctx.data.test_labels
    accuracy = CrossDomainGap(list(domains))
    nll = CrossDomainGap(list(domains))
    for name, images in domains.items():
        logits = predict_logits(ctx.model, images)
        accuracy.update((logits.argmax(dim=1) == labels).double(), name)
        nll.update(F.cross_entropy(logits, labels, reduction="none"), name)
    accuracy_rows, nll_rows = accuracy.table(), nll.table()
    rows = [[a[0], a[1], a[2], a[3], n[1], n[2]]
            for a, n in zip(accuracy_rows, nll_rows, strict=True)]
    card.add_table(AREA, "Cross-domain: shifted test digits vs clean", [
        "domain", "top-1 accuracy", "accuracy delta", "accuracy relative", "NLL", "NLL delta",
    ], rows, note="Main demo model; deltas are domain minus clean. Thickened: 3 x 3 max-pool "
                  "with stride 1.")
    for name, _, delta, _ in accuracy_rows[1:]:
        card.add_kpi(AREA, f"accuracy_delta_{name.split()[0]}", delta, unit="fraction",
                     higher_is_better=True,
                     description=f"top-1 accuracy on {name} test digits minus clean")
    card.add_figure(AREA, "Shifted digits (first test digit)", "image", {
        "images": [{"label": name, "pixels": images[0, 0]} for name, images in domains.items()],
    })

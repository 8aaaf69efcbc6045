"""Robustness section of the demo card: corruption errors with mCE, and PGD robust accuracy.

The baseline that normalizes mCE is a linear classifier (multinomial logistic regression on the
64 pixels) trained here with the demo's recipe. It is evaluated on the same corrupted digits as
the CNN.
"""

from __future__ import annotations

from torch import nn

from andante_metrics.accuracy import TopKAccuracy
from andante_metrics.demo.runner import DemoContext
from andante_metrics.report import KPICard
from andante_metrics.robustness import AdversarialRobustness, CorruptionRobustness

LINF_BUDGETS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
REPORTED_BUDGET = 0.1


def _train_baseline(ctx: DemoContext) -> nn.Module:
    """Train a linear classifier on the digit pixels (logistic regression) as the mCE baseline."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, ctx.data.num_classes))
    return ctx.train_model(model, ctx.data.train_images, ctx.data.train_labels,
                           epochs=3 if ctx.config.quick else 10, seed_offset=11)


def _add_corruption_results(ctx: DemoContext, card: KPICard, baseline: nn.Module) -> None:
    classes = ctx.data.num_classes
    metric = CorruptionRobustness(ctx.model, TopKAccuracy(num_classes=classes),
                                  baseline_model=baseline, seed=ctx.config.seed, progress=False)
    images, labels = ctx.data.test_images, ctx.data.test_labels
    if ctx.config.quick:
        images, labels = images[:180], labels[:180]
    for begin in range(0, len(labels), 128):
        metric.update(images[begin : begin + 128], labels[begin : begin + 128])
    result = metric.compute()

    card.add_kpi("robustness", "clean_top1_error", result["clean_error"], unit="fraction",
                 higher_is_better=False,
                 description="top-1 error of the CNN on the clean test digits")
    card.add_metric("mce_vs_linear", metric, result["mce"],
                    description="mean corruption error over 9 corruptions x 5 severities, "
                                "normalized by the linear baseline's errors on the same images")
    card.add_metric("relative_mce_vs_linear", metric, result["relative_mce"],
                    description="mean over corruptions of the error increase from clean, "
                                "normalized by the linear baseline's increase")

    severities = list(metric.severities)
    rows = []
    for index, name in enumerate(metric.corruptions):
        rows.append([name, *[round(float(e), 4) for e in result["errors"][index]],
                     round(float(result["baseline_errors"][index].mean()), 4),
                     round(float(result["corruption_error"][index]), 4),
                     round(float(result["relative_corruption_error"][index]), 4)])
    card.add_table(
        "robustness", "Top-1 error under corruption (CNN) with CE against the linear baseline",
        ["corruption", *[f"severity {s}" for s in severities], "baseline mean error", "CE",
         "relative CE"],
        rows,
        note=(f"{len(labels)} test digits; clean error {float(result['clean_error']):.4f} (CNN) "
              f"and {float(result['baseline_clean_error']):.4f} (linear baseline). ImageNet-C "
              "severity parameters on 8x8 images: blurs are in pixels, so they remove most of "
              "the digit, and JPEG codes each digit as a single 8x8 block. The published "
              "AlexNet normalizers of ImageNet-C do not apply to these generated corruptions. "
              "Relative CE divides by the baseline's error increase, so it is unstable, even "
              "negative, where the baseline barely degrades."),
    )
    card.add_figure("robustness", "Top-1 error by corruption and severity (CNN)", "heatmap", {
        "rows": list(metric.corruptions),
        "columns": [f"severity {s}" for s in severities],
        "values": result["errors"],
        "label": "top-1 error",
    })


def _add_adversarial_results(ctx: DemoContext, card: KPICard, baseline: nn.Module) -> None:
    steps = 5 if ctx.config.quick else 10
    images, labels = ctx.data.test_images, ctx.data.test_labels
    if ctx.config.quick:
        images, labels = images[:120], labels[:120]
    series = []
    for label, model, attack in (("CNN, PGD", ctx.model, "pgd"), ("CNN, FGSM", ctx.model, "fgsm"),
                                 ("linear baseline, PGD", baseline, "pgd")):
        metric = AdversarialRobustness(model, budgets=LINF_BUDGETS, attack=attack, steps=steps,
                                       seed=ctx.config.seed, progress=False)
        metric.update(images, labels)
        curve = metric.compute()["robust_accuracy"]
        series.append({"label": label, "x": list(LINF_BUDGETS), "y": curve})
        if label == "CNN, PGD":
            card.add_metric(f"pgd_linf_robust_accuracy_eps_{REPORTED_BUDGET}", metric,
                            curve[LINF_BUDGETS.index(REPORTED_BUDGET)],
                            description=f"top-1 accuracy under an L-inf PGD attack of budget "
                                        f"{REPORTED_BUDGET} ({steps} steps of 2.5 eps / {steps}, "
                                        f"random start), {len(labels)} test digits")
    card.add_figure("robustness", "Robust accuracy against the L-inf budget", "line", {
        "x_label": "L-inf budget eps (pixel range [0, 1])",
        "y_label": "robust top-1 accuracy",
        "series": series,
    })


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Evaluate corruption errors (mCE against a linear baseline) and the robust accuracy curve."""
    baseline = _train_baseline(ctx)
    _add_corruption_results(ctx, card, baseline)
    _add_adversarial_results(ctx, card, baseline)

"""Accuracy section of the demo card: top-k, AUROC and calibration on the held-out digits."""

from __future__ import annotations

from andante_metrics.accuracy import (
    AUROC,
    BrierScore,
    ExpectedCalibrationError,
    MaxCalibrationError,
    NegativeLogLikelihood,
    ReliabilityDiagram,
    TopKAccuracy,
)
from andante_metrics.collection import KPICollection
from andante_metrics.demo.runner import DemoContext, predict_logits
from andante_metrics.report import KPICard

DESCRIPTIONS = {
    "top1_accuracy": "fraction of test digits whose top class is right (micro)",
    "top1_accuracy_macro": "top-1 accuracy averaged over classes (macro)",
    "top3_accuracy": "fraction whose true class is among the 3 highest scores (micro)",
    "auroc_macro": "one-vs-rest AUROC averaged over classes (exact, rank form)",
    "ece_top_label_15_bins": "top-label expected calibration error, 15 equal-width bins (Guo 2017)",
    "mce_top_label_15_bins": "top-label maximum calibration error, 15 equal-width bins",
    "brier_score": "multiclass Brier score, sum over classes (range 0 to 2)",
    "nll": "mean negative log-likelihood of the true class",
}


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Evaluate the accuracy KPIs on the test split and add them and a reliability diagram."""
    classes = ctx.data.num_classes
    kpis = KPICollection(
        {
            "top1_accuracy": TopKAccuracy(num_classes=classes, top_k=1),
            "top1_accuracy_macro": TopKAccuracy(num_classes=classes, top_k=1, average="macro"),
            "top3_accuracy": TopKAccuracy(num_classes=classes, top_k=3),
            "auroc_macro": AUROC(num_classes=classes, input="logits"),
            "ece_top_label_15_bins": ExpectedCalibrationError(num_classes=classes, input="logits"),
            "mce_top_label_15_bins": MaxCalibrationError(num_classes=classes, input="logits"),
            "reliability": ReliabilityDiagram(num_classes=classes, input="logits"),
            "brier_score": BrierScore(num_classes=classes, input="logits"),
            "nll": NegativeLogLikelihood(num_classes=classes, input="logits"),
        },
        shared_state=[
            ["ece_top_label_15_bins", "mce_top_label_15_bins", "reliability"],
            ["brier_score", "nll"],
        ],
    )
    logits = predict_logits(ctx.model, ctx.data.test_images)
    for begin in range(0, len(logits), 64):
        kpis.update(logits[begin : begin + 64], ctx.data.test_labels[begin : begin + 64])
    values = kpis.compute()["accuracy"]
    for name, description in DESCRIPTIONS.items():
        card.add_metric(name, kpis[name], values[name], description=description)
    card.add_kpi(
        "accuracy",
        "train_top1_accuracy",
        ctx.train_kpis["train_top1_accuracy"],
        unit="fraction",
        higher_is_better=True,
        description="top-1 accuracy over the last training epoch, updated every step",
    )
    card.add_figure(
        "accuracy", "Reliability diagram (top label, 15 bins)", "reliability", values["reliability"]
    )

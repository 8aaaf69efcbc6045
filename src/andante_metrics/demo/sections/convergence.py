"""Convergence section of the demo card: how the digits CNN's training reached its targets."""

from __future__ import annotations

import torch

from andante_metrics.convergence import ConvergenceTracker
from andante_metrics.demo.runner import DemoContext
from andante_metrics.report import KPICard

LOSS_TARGET = 0.1
ACCURACY_TARGET = 0.95
COLUMNS = [
    "curve",
    "target",
    "reached",
    "steps to target",
    "epochs to target",
    "seconds to target",
    "best",
    "best at step",
    "relative spread (last window)",
    "slope sign changes (last window)",
    "plateau",
]


def _row(label: str, target: float, summary: dict) -> list:
    return [
        label,
        target,
        bool(summary["reached_target"]),
        summary["steps_to_target"],
        summary.get("epochs_to_target", "n/a"),
        summary.get("seconds_to_target", "n/a"),
        summary["best_value"],
        summary["best_step"],
        summary["relative_spread"],
        summary["slope_sign_changes"],
        bool(summary["plateau"]),
    ]


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Track the per-step training loss and the per-epoch test accuracy of the demo run."""
    history = ctx.history
    steps_per_epoch = len(history.step_loss) // max(1, len(history.epoch_test_accuracy))
    loss = ConvergenceTracker(
        target=LOSS_TARGET, mode="min", window=steps_per_epoch, patience=steps_per_epoch
    )
    step_epochs = torch.arange(len(history.step_loss)) // max(1, steps_per_epoch)
    loss.update(torch.tensor(history.step_loss), epoch=step_epochs)
    loss_summary = loss.compute()

    accuracy = ConvergenceTracker(target=ACCURACY_TARGET, mode="max", window=3, patience=3)
    epochs = len(history.epoch_test_accuracy)
    accuracy.update(
        torch.tensor(history.epoch_test_accuracy),
        seconds=torch.tensor(history.epoch_seconds),
        epoch=torch.arange(epochs),
    )
    accuracy_summary = accuracy.compute()

    card.add_kpi(
        "convergence",
        "epochs_to_test_accuracy_0.95",
        accuracy_summary["epochs_to_target"],
        unit="epochs",
        higher_is_better=False,
        description="first epoch whose test accuracy is at least 0.95 (inf: never)",
    )
    card.add_kpi(
        "convergence",
        "seconds_to_test_accuracy_0.95",
        accuracy_summary["seconds_to_target"],
        unit="s",
        higher_is_better=False,
        description="training time until that epoch ended (inf: never)",
    )
    card.add_kpi(
        "convergence",
        "steps_to_train_loss_0.1",
        loss_summary["steps_to_target"],
        unit="steps",
        higher_is_better=False,
        description="first optimizer step whose batch loss is at most 0.1 (inf: never)",
    )
    card.add_kpi(
        "convergence",
        "train_loss_relative_spread_last_epoch",
        loss_summary["relative_spread"],
        unit="ratio",
        higher_is_better=None,
        description="(max - min) / |mean| of the batch losses of the last epoch",
    )
    card.add_table(
        "convergence",
        "Convergence of the demo run",
        COLUMNS,
        [
            _row("training loss per step", LOSS_TARGET, loss_summary),
            _row("test accuracy per epoch", ACCURACY_TARGET, accuracy_summary),
        ],
        note="Plateau rule: the best of the last `patience` values improves on the best before "
        "them by less than 0.1 % (relative). Windows: one epoch of steps for the loss, "
        "3 epochs for the accuracy.",
    )
    card.add_figure(
        "convergence",
        "Training loss per step",
        "line",
        {
            "x_label": "optimizer step",
            "y_label": "cross-entropy loss",
            "series": [
                {
                    "label": "batch loss",
                    "x": list(range(1, len(history.step_loss) + 1)),
                    "y": history.step_loss,
                }
            ],
        },
    )
    card.add_figure(
        "convergence",
        "Accuracy per epoch",
        "line",
        {
            "x_label": "epoch",
            "y_label": "top-1 accuracy",
            "series": [
                {
                    "label": "train (running, during the epoch)",
                    "x": list(range(1, epochs + 1)),
                    "y": history.epoch_train_accuracy,
                },
                {
                    "label": "test (end of epoch)",
                    "x": list(range(1, epochs + 1)),
                    "y": history.epoch_test_accuracy,
                },
            ],
        },
    )

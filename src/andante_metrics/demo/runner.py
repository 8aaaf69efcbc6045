"""The demo runner: train the digits CNN with a KPI collection, evaluate, write the KPI card.

The runner only trains, evaluates and writes. Each KPI area adds its part of the card in a
section module under ``andante_metrics.demo.sections``, called with the trained model and data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from andante_metrics.accuracy import NegativeLogLikelihood, TopKAccuracy
from andante_metrics.collection import KPICollection
from andante_metrics.data import DigitsSplit, load_digits_split
from andante_metrics.demo.model import DigitsCNN
from andante_metrics.report import KPICard, write_card

logger = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Options of one demo run."""

    out_dir: Path = Path("kpi_card")
    epochs: int = 10
    seed: int = 0
    quick: bool = False
    batch_size: int = 32
    learning_rate: float = 3e-3
    progress: bool = True


@dataclass
class TrainingHistory:
    """Per-step losses and per-epoch values recorded while training."""

    step_loss: list[float] = field(default_factory=list)
    epoch_train_accuracy: list[float] = field(default_factory=list)
    epoch_test_accuracy: list[float] = field(default_factory=list)
    epoch_train_nll: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)


@dataclass
class DemoContext:
    """Inputs of every section: the trained model, the data, the config and the history."""

    config: DemoConfig
    data: DigitsSplit
    model: nn.Module
    history: TrainingHistory
    train_kpis: dict[str, Any]

    def generator(self, offset: int = 0) -> torch.Generator:
        """Return a CPU generator seeded from the run's seed, distinct per ``offset``."""
        return torch.Generator().manual_seed(self.config.seed * 1000 + offset)

    def new_model(self, seed_offset: int = 0) -> DigitsCNN:
        """Return a freshly initialised, untrained demo CNN (same architecture)."""
        torch.manual_seed(self.config.seed * 1000 + seed_offset)
        return DigitsCNN(num_classes=self.data.num_classes)

    def train_model(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        epochs: int,
        seed_offset: int = 0,
    ) -> nn.Module:
        """Train ``model`` with the demo's recipe (Adam, cross-entropy) and return it."""
        return train_classifier(
            model,
            images,
            labels,
            epochs=epochs,
            batch_size=self.config.batch_size,
            learning_rate=self.config.learning_rate,
            generator=self.generator(seed_offset),
        )


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    generator: torch.Generator,
    on_step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
    on_epoch: Callable[[int], None] | None = None,
    progress: bool = False,
) -> nn.Module:
    """Train a classifier with Adam and cross-entropy, shuffling with ``generator``.

    ``on_step(logits, labels, loss)`` runs after each optimizer step and ``on_epoch(epoch)``
    after each epoch, so callers can update KPI collections inside the loop.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    steps = epochs * ((len(labels) + batch_size - 1) // batch_size)
    bar = tqdm(total=steps, desc="training", unit="step", disable=not progress, leave=False)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        for begin in range(0, len(labels), batch_size):
            index = order[begin : begin + batch_size]
            logits = model(images[index])
            loss = loss_fn(logits, labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(logits.detach(), labels[index], loss.detach())
            bar.update(1)
        if on_epoch is not None:
            on_epoch(epoch)
    bar.close()
    model.eval()
    return model


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Return the model's logits for ``images`` in eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    logits = torch.cat(
        [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )
    model.train(was_training)
    return logits


def _train(config: DemoConfig, data: DigitsSplit) -> tuple[nn.Module, TrainingHistory, dict]:
    torch.manual_seed(config.seed)
    model = DigitsCNN(num_classes=data.num_classes)
    history = TrainingHistory()
    kpis = KPICollection(
        {
            "train_top1_accuracy": TopKAccuracy(num_classes=data.num_classes),
            "train_nll": NegativeLogLikelihood(num_classes=data.num_classes, input="logits"),
        }
    )
    epoch_start = [time.perf_counter()]

    def on_step(logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> None:
        kpis.update(logits, labels)
        history.step_loss.append(float(loss))

    def on_epoch(epoch: int) -> None:
        values = kpis.compute()["accuracy"]
        history.epoch_train_accuracy.append(float(values["train_top1_accuracy"]))
        history.epoch_train_nll.append(float(values["train_nll"]))
        test_pred = predict_logits(model, data.test_images).argmax(dim=1)
        history.epoch_test_accuracy.append(float((test_pred == data.test_labels).double().mean()))
        history.epoch_seconds.append(time.perf_counter() - epoch_start[0])
        logger.info(
            "epoch %d: train accuracy %.4f, test accuracy %.4f",
            epoch + 1,
            history.epoch_train_accuracy[-1],
            history.epoch_test_accuracy[-1],
        )
        kpis.reset()
        model.train()

    train_classifier(
        model,
        data.train_images,
        data.train_labels,
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        generator=torch.Generator().manual_seed(config.seed),
        on_step=on_step,
        on_epoch=on_epoch,
        progress=config.progress,
    )
    last = {
        "train_top1_accuracy": history.epoch_train_accuracy[-1],
        "train_nll": history.epoch_train_nll[-1],
    }
    return model, history, last


def run_demo(config: DemoConfig) -> tuple[KPICard, dict[str, Path]]:
    """Train, evaluate every KPI section and write the card; return it and the paths written."""
    from andante_metrics.demo.sections import SECTIONS

    start = time.perf_counter()
    data = load_digits_split(seed=config.seed)
    model, history, train_kpis = _train(config, data)
    card = KPICard(
        title="andante_metrics demo: digits CNN",
        model={
            "name": "DigitsCNN",
            "epochs": config.epochs,
            "seed": config.seed,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "optimizer": "Adam",
        },
        dataset={
            "name": "scikit-learn digits (8x8, 10 classes)",
            **data.sizes,
            "split": "stratified by class",
        },
    )
    card.timings["training"] = time.perf_counter() - start
    context = DemoContext(config, data, model, history, train_kpis)
    sections = tqdm(SECTIONS, desc="KPI sections", unit="area", disable=not config.progress)
    for name, build in sections:
        section_start = time.perf_counter()
        build(context, card)
        card.timings[f"section {name}"] = time.perf_counter() - section_start
    card.timings["total"] = time.perf_counter() - start
    config.out_dir.mkdir(parents=True, exist_ok=True)
    return card, write_card(card, config.out_dir)

"""Lightning integration: a callback that feeds KPI collections and writes the KPI card."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from andante_metrics.collection import KPICollection
from andante_metrics.report import KPICard, write_card

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "andante_metrics.integrations.lightning needs the `lightning` package; install it with "
        "`pip install 'andante-metrics[lightning]'`."
    ) from err

STAGES = ("train", "val", "test")
InputsFn = Callable[[Any, Any], Mapping[str, Any]]


def outputs_as_inputs(outputs: Any, batch: Any) -> Mapping[str, Any]:
    """Return the step's output dict without ``"loss"``: the default way to feed a collection.

    A ``training_step``/``validation_step``/``test_step`` that returns
    ``{"loss": loss, "preds": logits.detach(), "target": y}`` feeds ``preds`` and ``target``.
    """
    if not isinstance(outputs, Mapping):
        raise TypeError(
            "KPICallback needs each step to return a dict of collection inputs, e.g. "
            f"{{'loss': loss, 'preds': logits, 'target': y}}, got {type(outputs).__name__}; "
            "return such a dict or pass `inputs_fn`."
        )
    return {key: value for key, value in outputs.items() if key != "loss"}


class KPICallback(Callback):
    """Attach KPI collections to Lightning's train, validation and test loops.

    After every batch the collection of that loop is updated with ``inputs_fn(outputs, batch)``
    (by default the step's output dict without ``"loss"``). At the end of each epoch its values
    are computed (torchmetrics synchronises them across processes), logged through Lightning's
    loggers as ``"<stage>/<area>/<name>"`` and the collection is reset. At the end of fit and of
    test, rank zero alone writes the KPI card to ``card_dir``.

    The callback's ``state_dict`` holds the collections' states, so a run resumed from a
    checkpoint saved in the middle of an epoch continues the epoch's accumulation.

    Args:
        train, val, test: the collection of each loop, or ``None`` to leave it out.
        card_dir: folder of ``kpi_card.json/.md/.html``; ``None`` writes no card.
        inputs_fn: maps ``(outputs, batch)`` to the collection's keyword inputs.
        card_title: title of the card.
    """

    def __init__(
        self,
        *,
        train: KPICollection | None = None,
        val: KPICollection | None = None,
        test: KPICollection | None = None,
        card_dir: str | Path | None = None,
        inputs_fn: InputsFn = outputs_as_inputs,
        card_title: str = "KPI card",
    ) -> None:
        super().__init__()
        self.collections = {
            stage: collection
            for stage, collection in zip(STAGES, (train, val, test), strict=True)
            if collection is not None
        }
        for stage, collection in self.collections.items():
            if not isinstance(collection, KPICollection):
                raise TypeError(
                    f"`{stage}` must be a KPICollection or None, got {type(collection).__name__}."
                )
        if not self.collections:
            raise ValueError("KPICallback needs at least one of `train`, `val` or `test`.")
        self.card_dir = None if card_dir is None else Path(card_dir)
        self.inputs_fn = inputs_fn
        self.card_title = card_title
        self.last_values: dict[str, dict[str, dict[str, Any]]] = {}
        self.cards_written = 0

    # Moving the collections with the module keeps metric states on the model's device.
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for collection in self.collections.values():
            collection.to(pl_module.device)

    def _update(self, stage: str, outputs: Any, batch: Any) -> None:
        collection = self.collections.get(stage)
        if collection is not None:
            collection.update(**self.inputs_fn(outputs, batch))

    def _epoch_end(self, stage: str, pl_module: LightningModule) -> None:
        collection = self.collections.get(stage)
        if collection is None:
            return
        values = collection.compute()
        self.last_values[stage] = values
        flat = {f"{stage}/{key}": value for key, value in collection.compute_flat().items()}
        if flat:
            # Values are already synchronised by torchmetrics; Lightning must not reduce again.
            pl_module.log_dict(flat, sync_dist=False, rank_zero_only=False)
        collection.reset()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._update("train", outputs, batch)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not trainer.sanity_checking:
            self._update("val", outputs, batch)

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._update("test", outputs, batch)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._epoch_end("train", pl_module)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._epoch_end("val", pl_module)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._epoch_end("test", pl_module)

    def build_card(self, trainer: Trainer, pl_module: LightningModule) -> KPICard:
        """Return a card of the last values of every loop, keyed ``<stage>_<name>``."""
        card = KPICard(
            title=self.card_title,
            model={
                "name": type(pl_module).__name__,
                "epochs": trainer.current_epoch,
                "global_step": trainer.global_step,
            },
            dataset={"world_size": trainer.world_size},
        )
        for stage, values in self.last_values.items():
            collection = self.collections[stage]
            for area_values in values.values():
                for name, value in area_values.items():
                    card.add_metric(f"{stage}_{name}", collection[name], value)
        return card

    def _write_card(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.card_dir is None or not trainer.is_global_zero:
            return
        write_card(self.build_card(trainer, pl_module), self.card_dir)
        self.cards_written += 1

    def on_fit_end(self, trainer, pl_module) -> None:
        self._write_card(trainer, pl_module)

    def on_test_end(self, trainer, pl_module) -> None:
        self._write_card(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        """Return the metric states of every collection, for checkpoints."""
        return {stage: collection.state_dict() for stage, collection in self.collections.items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the metric states saved by :meth:`state_dict`."""
        for stage, states in state_dict.items():
            collection = self.collections.get(stage)
            if collection is None:
                continue
            device = next(iter(collection.metrics.values())).device
            collection.load_state_dict(
                {
                    key: value.to(device) if isinstance(value, torch.Tensor) else value
                    for key, value in states.items()
                }
            )

"""Train a small CNN on the digits with Lightning and a KPICallback; write the KPI card.

Run on one process:      python examples/lightning_digits.py --out lightning_card
Run on two CPU processes: python examples/lightning_digits.py --devices 2 --out lightning_card
Resume from a checkpoint: python examples/lightning_digits.py --resume CKPT --out lightning_card

The data order is fixed (no shuffling) so that runs with the same settings see the same batches;
with ``--devices 2`` Lightning's distributed sampler gives each process half of every epoch.
"""

from __future__ import annotations

import argparse
import json

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from andante_metrics import (
    ExpectedCalibrationError,
    KPICollection,
    NegativeLogLikelihood,
    TopKAccuracy,
)
from andante_metrics.data import load_digits_split
from andante_metrics.demo.model import DigitsCNN
from andante_metrics.integrations.lightning import KPICallback


class ResumableDataLoader(DataLoader):
    """A DataLoader that records how many batches of the epoch it served and skips them on resume.

    Lightning saves ``state_dict()`` in its checkpoints and calls ``load_state_dict()`` on
    resume, so a run resumed in the middle of an epoch continues with the next unseen batch.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._served = 0
        self._skip = 0

    def __iter__(self):
        skip, self._skip = self._skip, 0
        self._served = skip
        for index, batch in enumerate(super().__iter__()):
            if index < skip:
                continue
            self._served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches_served": self._served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._skip = state["batches_served"]


class DigitsModule(L.LightningModule):
    """The demo CNN as a LightningModule whose steps return the KPI inputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = DigitsCNN()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def _step(self, batch):
        images, labels = batch
        logits = self(images)
        loss = nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "preds": logits.detach(), "target": labels}

    def training_step(self, batch, batch_idx):
        return self._step(batch)

    def validation_step(self, batch, batch_idx):
        return self._step(batch)

    def test_step(self, batch, batch_idx):
        return self._step(batch)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def _kpis() -> KPICollection:
    return KPICollection(
        {
            "top1_accuracy": TopKAccuracy(num_classes=10),
            "nll": NegativeLogLikelihood(num_classes=10, input="logits"),
            "ece_top_label_15_bins": ExpectedCalibrationError(num_classes=10, input="logits"),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1, help="CPU processes (DDP over gloo)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps")
    parser.add_argument("--ckpt-dir", default=None, help="save a checkpoint every 10 steps here")
    parser.add_argument("--resume", default=None, help="checkpoint to resume from")
    parser.add_argument("--out", default="lightning_card", help="folder of the KPI card")
    parser.add_argument("--save-weights", default=None, help="save the final weights here")
    args = parser.parse_args()

    data = load_digits_split(seed=0)
    train = ResumableDataLoader(TensorDataset(data.train_images, data.train_labels), batch_size=32)
    test = DataLoader(TensorDataset(data.test_images, data.test_labels), batch_size=64)
    callback = KPICallback(
        train=_kpis(),
        val=_kpis(),
        test=_kpis(),
        card_dir=args.out,
        card_title="Lightning digits CNN",
    )
    callbacks = [callback]
    if args.ckpt_dir:
        callbacks.append(
            L.pytorch.callbacks.ModelCheckpoint(
                dirpath=args.ckpt_dir, every_n_train_steps=10, save_top_k=-1
            )
        )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        max_epochs=args.epochs,
        max_steps=args.max_steps,
        callbacks=callbacks,
        logger=L.pytorch.loggers.CSVLogger(args.out, name="logs"),
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
    )
    module = DigitsModule()
    trainer.fit(module, train, test, ckpt_path=args.resume)
    if args.max_steps < 0 or trainer.global_step < args.max_steps:
        trainer.test(module, test)
    if trainer.is_global_zero and args.save_weights:
        torch.save(module.net.state_dict(), args.save_weights)
    print(
        json.dumps(
            {
                "rank": trainer.global_rank,
                "cards_written": callback.cards_written,
                "global_step": trainer.global_step,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()

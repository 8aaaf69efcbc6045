"""Evaluate KPIs over several processes with plain torch.distributed; write one KPI card.

One process:          python examples/torchrun_digits.py --out torchrun_card
Two CPU processes:    torchrun --nproc-per-node 2 examples/torchrun_digits.py --out torchrun_card

Every process trains the same small CNN from the same seed (so the weights are identical), then
evaluates its own, deliberately uneven, share of the test digits: rank r of W gets a contiguous
slice whose size grows with r. Each KPI synchronises its state over the process group in
``compute()``, so rank 0 writes the same card as a single process would.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist

from andante_metrics import (
    AUROC,
    ExpectedCalibrationError,
    KPICard,
    KPICollection,
    NegativeLogLikelihood,
    TopKAccuracy,
    write_card,
)
from andante_metrics.data import load_digits_split
from andante_metrics.demo.model import DigitsCNN
from andante_metrics.demo.runner import train_classifier


def uneven_slice(total: int, rank: int, world_size: int) -> slice:
    """Return rank's contiguous slice of ``total`` items, with shares proportional to rank + 1."""
    weights = [r + 1 for r in range(world_size)]
    bounds = [total * sum(weights[:r]) // sum(weights) for r in range(world_size + 1)]
    return slice(bounds[rank], bounds[rank + 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="torchrun_card", help="folder of the KPI card")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    args = parser.parse_args()

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world_size > 1 else 0

    data = load_digits_split(seed=0)
    torch.manual_seed(0)
    model = train_classifier(
        DigitsCNN(),
        data.train_images,
        data.train_labels,
        epochs=args.epochs,
        batch_size=32,
        learning_rate=3e-3,
        generator=torch.Generator().manual_seed(0),
    )

    kpis = KPICollection(
        {
            "top1_accuracy": TopKAccuracy(num_classes=10),
            "auroc_macro": AUROC(num_classes=10, input="logits"),
            "ece_top_label_15_bins": ExpectedCalibrationError(num_classes=10, input="logits"),
            "nll": NegativeLogLikelihood(num_classes=10, input="logits"),
        }
    )
    share = uneven_slice(len(data.test_labels), rank, world_size)
    images, labels = data.test_images[share], data.test_labels[share]
    with torch.no_grad():
        for begin in range(0, len(labels), 50):
            kpis.update(model(images[begin : begin + 50]), labels[begin : begin + 50])
    values = kpis.compute()  # every rank takes part in the synchronisation

    if rank == 0:
        card = KPICard(
            title="torchrun digits CNN",
            dataset={"name": "digits", "test": len(data.test_labels), "world_size": world_size},
        )
        for name, value in values["accuracy"].items():
            card.add_metric(name, kpis[name], value)
        write_card(card, args.out)
    if world_size > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

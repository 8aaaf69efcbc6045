"""Segmentation IoU/Dice and sub-set slicing: andante_metrics against torchmetrics, on CPU.

* IoU: ``IoU(num_classes=19, ignore_index=255)`` against torchmetrics'
  ``MulticlassJaccardIndex(num_classes=19, ignore_index=255, average="macro")``.
* Dice: ``Dice`` with the same options against ``MulticlassF1Score(average="macro",
  multidim_average="global")``, the per-class Dice of index maps.
* Sub-sets: ``SubsetMetric(TopKAccuracy)`` with 5 sub-sets given as labels against one
  ``MulticlassAccuracy(average="micro")`` per sub-set plus one overall, each updated with its
  masked rows (the peer way to slice a metric).

Every class is present in the data, so the peers' handling of absent classes (which differs from
ours) does not enter, and the final values are checked equal. All contenders run in one
process, interleaved, and the ratio of best times is printed.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_characterization.py``
"""

from __future__ import annotations

import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)

from andante_metrics import Dice, IoU, SubsetMetric, TopKAccuracy

from harness import interleaved, report

CLASSES = 19
VOID = 255
BATCHES = 10
SUBSETS = ["a", "b", "c", "d", "e"]


def _segmentation_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(BATCHES):
        target = torch.randint(0, CLASSES, (8, 128, 128), generator=gen)
        noise = torch.randint(0, CLASSES, target.shape, generator=gen)
        preds = torch.where(torch.rand(target.shape, generator=gen) < 0.7, target, noise)
        target[torch.rand(target.shape, generator=gen) < 0.05] = VOID
        out.append((preds, target))
    return out


def _stream(metric, batches) -> torch.Tensor:
    metric.reset()
    for batch in batches:
        metric.update(*batch)
    return metric.compute()


def bench_overlap(batches) -> None:
    pairs = {
        "IoU": (IoU(num_classes=CLASSES, ignore_index=VOID),
                MulticlassJaccardIndex(num_classes=CLASSES, ignore_index=VOID, average="macro")),
        "Dice": (Dice(num_classes=CLASSES, ignore_index=VOID),
                 MulticlassF1Score(num_classes=CLASSES, ignore_index=VOID, average="macro",
                                   multidim_average="global")),
    }
    for title, (ours, peer) in pairs.items():
        ours_value = float(_stream(ours, batches))
        peer_value = float(_stream(peer, batches))
        assert abs(ours_value - peer_value) < 1e-5, (title, ours_value, peer_value)
        timings = interleaved(
            {"andante_metrics": lambda m=ours: _stream(m, batches),
             "torchmetrics": lambda m=peer: _stream(m, batches)},
            rounds=7,
        )
        report(f"{title}: {BATCHES} batches of 8x128x128, {CLASSES} classes, void 255 "
               f"(values {ours_value:.6f} / {peer_value:.6f})", timings, "andante_metrics")


def bench_subsets() -> None:
    gen = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(256, 10, generator=gen), torch.randint(0, 10, (256,), generator=gen),
         torch.randint(0, len(SUBSETS), (256,), generator=gen))
        for _ in range(200)
    ]
    ours = SubsetMetric(TopKAccuracy(num_classes=10), subsets=SUBSETS)
    peers = [MulticlassAccuracy(num_classes=10, average="micro") for _ in range(len(SUBSETS) + 1)]

    def run_ours() -> torch.Tensor:
        ours.reset()
        for logits, labels, groups in batches:
            ours.update(logits, labels, groups=groups)
        result = ours.compute()
        return torch.stack([result[name]["value"].float() for name in ("overall", *SUBSETS)])

    def run_peers() -> torch.Tensor:
        for peer in peers:
            peer.reset()
        for logits, labels, groups in batches:
            peers[0].update(logits, labels)
            for index, peer in enumerate(peers[1:]):
                member = groups == index
                peer.update(logits[member], labels[member])
        return torch.stack([peer.compute() for peer in peers])

    torch.testing.assert_close(run_ours(), run_peers(), rtol=0, atol=1e-6)
    timings = interleaved({"andante_metrics": run_ours, "torchmetrics": run_peers}, rounds=7)
    report(f"Sub-set accuracy: 200 batches of 256 x 10 logits, {len(SUBSETS)} sub-sets",
           timings, "andante_metrics")


def main() -> None:
    bench_overlap(_segmentation_batches())
    bench_subsets()


if __name__ == "__main__":
    main()

"""Per-domain accuracy: CrossDomainGap against one torchmetrics accuracy per domain.

The peer way to get accuracy on several evaluation domains is one
``torchmetrics.classification.MulticlassAccuracy(average="micro")`` per domain, each updated
with that domain's rows of a mixed batch. CrossDomainGap takes the batch's per-sample
correctness and domain ids in one update. Both see the same 200 batches of 256 x 10 logits with
samples from 4 domains, and the final per-domain accuracies must be equal.

Run: ``.venv/bin/python benchmarks/bench_generalization.py``
"""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassAccuracy

from andante_metrics import CrossDomainGap

from harness import interleaved, report

STEPS = 200
CLASSES = 10
DOMAINS = ["clean", "rotated", "inverted", "thickened"]


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    batches = [
        (torch.randn(256, CLASSES, generator=gen), torch.randint(0, CLASSES, (256,), generator=gen),
         torch.randint(0, len(DOMAINS), (256,), generator=gen))
        for _ in range(STEPS)
    ]
    ours = CrossDomainGap(DOMAINS)
    theirs = [MulticlassAccuracy(num_classes=CLASSES, average="micro") for _ in DOMAINS]

    def run_ours() -> None:
        ours.reset()
        for logits, target, domain in batches:
            ours.update(logits.argmax(dim=1) == target, domain)

    def run_theirs() -> None:
        for metric in theirs:
            metric.reset()
        for logits, target, domain in batches:
            for index, metric in enumerate(theirs):
                mask = domain == index
                metric.update(logits[mask], target[mask])

    timings = interleaved({"CrossDomainGap": run_ours, "MulticlassAccuracy per domain":
                           run_theirs}, rounds=15)
    report(f"Per-domain accuracy, {STEPS} steps of 256x{CLASSES}, {len(DOMAINS)} domains",
           timings, "CrossDomainGap")
    ours_values = ours.compute()["values"]
    theirs_values = torch.stack([metric.compute().double() for metric in theirs])
    torch.testing.assert_close(ours_values, theirs_values, rtol=0, atol=1e-6)
    print("  values equal:", [round(v, 6) for v in ours_values.tolist()])


if __name__ == "__main__":
    main()

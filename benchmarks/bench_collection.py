"""Per-step overhead of KPICollection.update against torchmetrics.MetricCollection.

Both collections hold the same metric objects (top-1 and top-3 accuracy, ECE, Brier score,
NLL) and are updated with the same 64 x 10 logits each step. MetricCollection is measured
twice: with its default value-inferred compute groups (which merge the Brier score and the NLL,
whose states are equal) and with ``compute_groups=False``. Ours is measured twice too: with no
shared state, and with the Brier-NLL sharing declared, which does the same work as the default
MetricCollection.

Run: ``.venv/bin/python benchmarks/bench_collection.py``
"""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection

from andante_metrics import (
    BrierScore,
    ExpectedCalibrationError,
    KPICollection,
    NegativeLogLikelihood,
    TopKAccuracy,
)

from harness import interleaved, report

STEPS = 200
CLASSES = 10


def _metrics() -> dict:
    return {
        "top1": TopKAccuracy(num_classes=CLASSES),
        "top3": TopKAccuracy(num_classes=CLASSES, top_k=3),
        "ece": ExpectedCalibrationError(num_classes=CLASSES, input="logits"),
        "brier": BrierScore(num_classes=CLASSES, input="logits"),
        "nll": NegativeLogLikelihood(num_classes=CLASSES, input="logits"),
    }


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    batches = [
        (torch.randn(64, CLASSES, generator=gen), torch.randint(0, CLASSES, (64,), generator=gen))
        for _ in range(STEPS)
    ]
    ours = KPICollection(_metrics())
    ours_shared = KPICollection(_metrics(), shared_state=[["brier", "nll"]])
    theirs_default = MetricCollection(_metrics())
    theirs_no_groups = MetricCollection(_metrics(), compute_groups=False)

    def run(collection):
        def loop():
            collection.reset()
            for preds, target in batches:
                collection.update(preds, target)

        return loop

    timings = interleaved(
        {
            "KPICollection": run(ours),
            "KPICollection(declared sharing)": run(ours_shared),
            "MetricCollection(default)": run(theirs_default),
            "MetricCollection(no groups)": run(theirs_no_groups),
        },
        rounds=15,
    )
    title = f"KPICollection.update, {STEPS} steps of 64x{CLASSES}"
    report(title, timings, "KPICollection")
    pairs = [
        ("KPICollection", "MetricCollection(no groups)"),
        ("KPICollection(declared sharing)", "MetricCollection(default)"),
    ]
    for ours_name, theirs_name in pairs:
        overhead = timings[ours_name].best / timings[theirs_name].best
        print(f"  {ours_name} / {theirs_name}: {overhead:.3f}x (goal <= 1.1x)")
    reference = theirs_no_groups.compute()
    for collection in (ours, ours_shared):
        flat = collection.compute_flat()
        for name in reference:
            assert torch.allclose(flat[f"accuracy/{name}"], reference[name]), name


if __name__ == "__main__":
    main()

"""Reproducibility section of the demo card: seed spread, determinism, ONNX round trip."""

from __future__ import annotations

import torch

from andante_metrics.demo.runner import DemoContext, predict_logits
from andante_metrics.report import KPICard
from andante_metrics.reproducibility import check_determinism, onnx_round_trip, seed_spread

SEEDS = (0, 1, 2)


def _seed_spread(ctx: DemoContext, card: KPICard) -> None:
    data = ctx.data
    epochs = 1 if ctx.config.quick else 4

    accuracy_by_seed: dict[int, float] = {}

    def run(seed: int) -> dict[str, float]:
        torch.manual_seed(seed)
        model = type(ctx.model)(num_classes=data.num_classes)
        ctx.train_model(
            model, data.train_images, data.train_labels, epochs=epochs, seed_offset=100 + seed
        )
        logits = predict_logits(model, data.test_images)
        nll = torch.nn.functional.cross_entropy(logits, data.test_labels)
        accuracy = (logits.argmax(dim=1) == data.test_labels).double().mean()
        accuracy_by_seed[seed] = float(accuracy)
        return {"test_top1_accuracy": float(accuracy), "test_nll": float(nll)}

    spread = seed_spread(run, SEEDS, progress=False)
    rows = [[name, s.n, s.mean, s.std, s.ci_low, s.ci_high] for name, s in spread.items()]
    card.add_table(
        "reproducibility",
        f"Spread over seeds {list(SEEDS)} ({epochs} epochs each)",
        ["KPI", "seeds", "mean", "std (ddof=1)", "95% CI low", "95% CI high"],
        rows,
        note="Each seed trains a fresh CNN with its own initialisation and data order; the "
        "interval is Student's t interval for the mean.",
    )
    accuracy = spread["test_top1_accuracy"]
    # Differences to the mean, because bars of the accuracies themselves (all near 1) look equal.
    card.add_figure(
        "reproducibility",
        f"Test top-1 accuracy per seed ({epochs} epochs each)",
        "bar",
        {
            "x_label": f"test top-1 accuracy minus its mean over seeds, {accuracy.mean:.4f} "
                       f"(percentage points)",
            "y_label": "training seed",
            "labels": [f"seed {seed}" for seed in accuracy_by_seed],
            "values": [100 * (value - accuracy.mean) for value in accuracy_by_seed.values()],
        },
    )
    card.add_kpi(
        "reproducibility",
        "seed_std_test_top1_accuracy",
        accuracy.std,
        unit="fraction",
        higher_is_better=False,
        description=f"standard deviation of test accuracy over {accuracy.n} seeds",
        mean=accuracy.mean,
        ci_low=accuracy.ci_low,
        ci_high=accuracy.ci_high,
    )


def _determinism(ctx: DemoContext, card: KPICard) -> None:
    data = ctx.data
    subset = slice(0, 256)

    def run(seed: int):
        model = type(ctx.model)(num_classes=data.num_classes)
        ctx.train_model(
            model, data.train_images[subset], data.train_labels[subset], epochs=1, seed_offset=seed
        )
        return {"weights": model, "test_logits": predict_logits(model, data.test_images)}

    report = check_determinism(run, seed=ctx.config.seed)
    card.add_kpi(
        "reproducibility",
        "deterministic_same_seed",
        report.identical,
        unit="bool",
        higher_is_better=True,
        description="two trainings from one seed give bit-identical weights and "
        "outputs, with torch.use_deterministic_algorithms",
        tensors_compared=report.compared,
        first_difference=report.first_difference,
        max_abs_difference=report.max_abs_difference,
    )


def _onnx(ctx: DemoContext, card: KPICard) -> None:
    try:
        result = onnx_round_trip(ctx.model, ctx.data.test_images)
    except ImportError as err:
        card.add_table("reproducibility", "ONNX round trip", ["status"], [[str(err)]])
        return
    card.add_kpi(
        "reproducibility",
        "onnx_max_abs_difference",
        result.max_abs_difference,
        unit="logit",
        higher_is_better=False,
        description="largest |PyTorch - onnxruntime| logit over the test digits",
        onnxruntime=result.onnxruntime_version,
    )
    card.add_kpi(
        "reproducibility",
        "onnx_class_agreement",
        result.class_agreement,
        unit="fraction",
        higher_is_better=True,
        description="fraction of test digits with the same predicted class in both",
    )


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Measure seed spread, the determinism check and the ONNX round trip of the demo CNN."""
    _seed_spread(ctx, card)
    _determinism(ctx, card)
    _onnx(ctx, card)
    versions = card.environment.get("versions", {})
    card.add_table(
        "reproducibility",
        "Environment",
        ["library", "version"],
        [[name, version] for name, version in versions.items()],
        note=f"{card.environment.get('torch_threads')} torch threads, device "
        f"{card.environment.get('device')}, {card.environment.get('platform')}",
    )

"""Benchmark: deletion curve/AUC and faithfulness correlation, andante_metrics against Quantus.

Matched settings on both sides: the demo's DigitsCNN (seeded initialization, eval mode), 64
scikit-learn test digits (1x8x8, in [0, 1], each with a zero pixel), signed gradient
attributions of the predicted class, softmax probability, zero baseline (Quantus "black", the
per-sample minimum, is 0 on every digit here).

* Deletion: one pixel per step, most relevant first (Quantus ``PixelFlipping``,
  ``features_in_step=1``, 64 steps). Quantus records the curve after each step and integrates it
  with ``np.trapz(dx=1)``; ours also records the unperturbed point and integrates over the step
  fraction. The check compares the curves point by point and Quantus' AUC with ours on the
  same points.
* Faithfulness correlation: 100 random subsets of 16 pixels per digit (Quantus
  ``FaithfulnessCorrelation``, ``nr_runs=100``, ``subset_size=16``). The subsets Quantus draws
  from ``np.random`` are replayed and passed to ours, so both correlate the same numbers.

Run: ``.venv/bin/python benchmarks/bench_interpretability.py`` (torch at 1, then 2 threads)
"""

from __future__ import annotations

import warnings

import numpy as np
import quantus
import torch

from andante_metrics.data import load_digits_split
from andante_metrics.demo.model import DigitsCNN
from andante_metrics.interpretability import (
    faithfulness_correlation,
    gradient_attribution,
    perturbation_curve,
)

from harness import interleaved, report

SAMPLES, RUNS, SUBSET = 64, 100, 16
THREADS = (1, 2)


def _replayed_subsets(seed: int, features: int) -> torch.Tensor:
    """Return the subsets Quantus 0.6 draws after ``np.random.seed(seed)``: ``(N, RUNS, m)``.

    Per run it draws one subset per sample, then one ``np.random.uniform`` of batch size inside
    its baseline lookup.
    """
    np.random.seed(seed)
    per_run = []
    for _ in range(RUNS):
        per_run.append(np.stack([np.random.choice(features, SUBSET, replace=False)
                                 for _ in range(SAMPLES)]))
        np.random.uniform(size=SAMPLES)
    return torch.from_numpy(np.stack(per_run, axis=1))


def main() -> None:
    warnings.filterwarnings("ignore")
    data = load_digits_split(seed=0)
    torch.manual_seed(0)
    model = DigitsCNN(num_classes=data.num_classes).eval()
    x = data.test_images[:SAMPLES].float()
    target = model(x).argmax(dim=1)
    attributions = gradient_attribution(model, x, target)
    features = x[0].numel()
    subsets = _replayed_subsets(0, features)

    pixel_flipping = quantus.PixelFlipping(features_in_step=1, perturb_baseline="black",
                                           normalise=False, abs=False, disable_warnings=True)
    correlation = quantus.FaithfulnessCorrelation(nr_runs=RUNS, subset_size=SUBSET,
                                                  perturb_baseline="black", normalise=False,
                                                  abs=False, return_aggregate=False,
                                                  disable_warnings=True)
    quantus_args = {"model": model, "x_batch": x.numpy(), "y_batch": target.numpy(),
                    "a_batch": attributions.numpy(), "device": "cpu", "softmax": True}

    def ours_deletion():
        return perturbation_curve(model, x, attributions, target=target)[1]

    def quantus_deletion():
        return np.array(pixel_flipping(**quantus_args))

    def ours_correlation():
        return faithfulness_correlation(model, x, attributions, target=target,
                                        subset_indices=subsets)

    def quantus_correlation():
        np.random.seed(0)
        return np.array(correlation(**quantus_args))

    curves, theirs_curves = ours_deletion(), quantus_deletion()
    np.testing.assert_allclose(curves[:, 1:].numpy(), theirs_curves, rtol=1e-5, atol=1e-6)
    ours_auc = torch.trapezoid(curves[:, 1:], dx=1.0, dim=1).numpy()
    np.testing.assert_allclose(ours_auc, np.trapezoid(theirs_curves, dx=1, axis=1), rtol=1e-5)
    rho, theirs_rho = ours_correlation().numpy(), quantus_correlation()
    np.testing.assert_allclose(rho, theirs_rho, rtol=1e-4, atol=1e-5)
    print(f"equal values: {SAMPLES} deletion curves of {features + 1} points (max abs diff "
          f"{np.abs(curves[:, 1:].numpy() - theirs_curves).max():.1e}), {SAMPLES} faithfulness "
          f"correlations (max abs diff {np.abs(rho - theirs_rho).max():.1e})")

    nonzero = float((x != 0).double().mean())
    print(f"pixels that differ from the zero baseline: {nonzero:.0%}; ours runs the model only "
          f"at the steps that change the input (the rest reuse the previous score), Quantus at "
          f"every step")
    # Both sides run the same model on the same perturbed digits, so the torch thread count
    # changes both; each thread count is measured in turn.
    for threads in THREADS:
        torch.set_num_threads(threads)
        deletion = interleaved({"ours": ours_deletion, "quantus": quantus_deletion}, rounds=5)
        report(f"Deletion curve + AUC, {SAMPLES} digits x {features} steps", deletion,
               ours="ours")
        faithful = interleaved({"ours": ours_correlation, "quantus": quantus_correlation},
                               rounds=5)
        report(f"Faithfulness correlation, {SAMPLES} digits x {RUNS} subsets of {SUBSET}",
               faithful, ours="ours")


if __name__ == "__main__":
    main()

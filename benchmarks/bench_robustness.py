"""Robustness: our PGD against torchattacks, our Gaussian blur against scipy.ndimage.

PGD: both sides attack the same small CNN on 256 RGB 32x32 images, labelled with the model's
own predictions, with the same budget, step size and 10 steps and without random start, so
both are deterministic. Over 99% of the adversarial values must agree to 1e-5 and the robust
accuracies to 2 samples. Blur: ``gaussian_blur`` at severity 3 (sigma 3 pixels) against
``scipy.ndimage.gaussian_filter`` with ``mode="nearest"`` and ``truncate=4`` on the same float64
images, values checked equal to 1e-10. Runs interleave and the ratio of best times is printed.

Run: ``cd benchmarks && OMP_NUM_THREADS=1 ../.venv/bin/python bench_robustness.py``
"""

from __future__ import annotations

import numpy as np
import torch
import torchattacks
from scipy import ndimage
from torch import nn

from andante_metrics.robustness import corrupt, pgd

from harness import interleaved, report


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 10),
    ).eval()


def bench_pgd() -> None:
    model = _cnn()
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(256, 3, 32, 32, generator=gen)
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    for norm, eps, alpha in (("linf", 8 / 255, 2 / 255), ("l2", 0.5, 0.1)):
        if norm == "linf":
            peer = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=10, random_start=False)
        else:
            peer = torchattacks.PGDL2(model, eps=eps, alpha=alpha, steps=10, random_start=False)

        def run_ours(norm=norm, eps=eps, alpha=alpha):
            return pgd(model, images, labels, eps=eps, norm=norm, steps=10, step_size=alpha,
                       random_start=False)

        def run_peer(peer=peer):
            return peer(images, labels)

        timings = interleaved({"ours pgd": run_ours, "torchattacks": run_peer}, rounds=5)
        report(f"PGD {norm}, eps {eps:.4f}, 10 steps, 256x3x32x32, small CNN", timings,
               "ours pgd")
        ours, theirs = run_ours(), run_peer()
        difference = (ours - theirs).abs()
        close = float((difference <= 1e-5).double().mean())
        with torch.no_grad():
            accuracy = [float((model(x).argmax(1) == labels).double().mean())
                        for x in (ours, theirs)]
        print(f"  max |ours - torchattacks| {float(difference.max()):.2e}, fraction within 1e-5 "
              f"{close:.5f}, robust accuracy ours {accuracy[0]:.4f} vs {accuracy[1]:.4f}")
        # float32 rounding differs (torchattacks averages the loss over the batch, ours sums
        # it), and over 10 steps a few values land on the other side of a clip.
        assert close > 0.99
        assert abs(accuracy[0] - accuracy[1]) <= 2 / len(labels)


def bench_blur() -> None:
    images = torch.rand(256, 3, 32, 32, generator=torch.Generator().manual_seed(1)).double()
    array = images.numpy()

    def run_ours():
        return corrupt(images, "gaussian_blur", 3)

    def run_scipy():
        blurred = ndimage.gaussian_filter(array, sigma=(0, 0, 3, 3), mode="nearest", truncate=4.0)
        return np.clip(blurred, 0, 1)

    timings = interleaved({"ours gaussian_blur": run_ours, "scipy gaussian_filter": run_scipy},
                          rounds=7)
    report("Gaussian blur sigma 3, 256x3x32x32 float64", timings, "ours gaussian_blur")
    np.testing.assert_allclose(run_ours().numpy(), run_scipy(), atol=1e-10)
    print("  values equal to 1e-10")


if __name__ == "__main__":
    bench_pgd()
    bench_blur()

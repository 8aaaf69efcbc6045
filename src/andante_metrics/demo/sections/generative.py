"""Generative section of the demo card: how far sets of digits are from the real test digits.

Every set is compared with the real test digits in the 64-d penultimate feature space of the
trained demo CNN (``model.features``), the usual choice for MNIST-like data where the ImageNet
Inception network does not fit. The sets are: the train digits (a second real sample, the
baseline), the train digits with growing Gaussian pixel noise, and a deliberately poor
generator that draws each digit as its class's mean train image plus noise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from andante_metrics.data import DigitsSplit
from andante_metrics.demo.runner import DemoContext
from andante_metrics.generative import FID, KID, KDELogLikelihood, KLDivergence
from andante_metrics.report import KPICard

NOISE_SIGMAS = (0.1, 0.25, 0.5)
GENERATOR_NOISE = 0.25
KL_NEIGHBOURS = 5
KID_SUBSET_SIZE = 100


def kid_subsets(quick: bool) -> int:
    """Return the number of KID subsets of the demo run."""
    return 10 if quick else 50
METRICS = ("FID", "KID", "KL", "KDE log-likelihood")
HIGHER_IS_BETTER = {"FID": False, "KID": False, "KL": False, "KDE log-likelihood": True}


def noised(images: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Return ``images`` plus Gaussian noise of standard deviation ``sigma``, clipped to [0, 1]."""
    noise = torch.randn(images.shape, generator=generator) * sigma
    return (images + noise).clamp(0.0, 1.0)


def class_mean_generator(
    images: torch.Tensor, labels: torch.Tensor, count: int, num_classes: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Draw ``count`` digits as the mean image of a uniformly drawn class plus pixel noise."""
    means = torch.stack([images[labels == c].mean(dim=0) for c in range(num_classes)])
    classes = torch.randint(0, num_classes, (count,), generator=generator)
    return noised(means[classes], GENERATOR_NOISE, generator)


def candidate_sets(data: DigitsSplit, seed: int) -> dict[str, torch.Tensor]:
    """Return the image sets compared with the test digits, from closest to farthest by design."""
    generator = torch.Generator().manual_seed(seed)
    sets = {"train digits": data.train_images}
    for sigma in NOISE_SIGMAS:
        sets[f"train + noise {sigma}"] = noised(data.train_images, sigma, generator)
    sets["class-mean generator"] = class_mean_generator(
        data.train_images, data.train_labels, len(data.train_images), data.num_classes, generator
    )
    return sets


def generative_table(
    features: Callable[[torch.Tensor], torch.Tensor], data: DigitsSplit, *, seed: int = 0,
    quick: bool = False,
) -> tuple[dict[str, dict[str, float]], float]:
    """Return ``{set: {metric: value}}`` against the test digits and the KDE bandwidth factor.

    ``features`` maps ``(N, 1, 8, 8)`` images to ``(N, d)`` features.
    """
    with torch.no_grad():
        real = features(data.test_images).double()
    dim = real.shape[1]
    subset_size = min(KID_SUBSET_SIZE, len(real))
    rows: dict[str, dict[str, float]] = {}
    bandwidth = float("nan")
    for name, images in candidate_sets(data, seed).items():
        with torch.no_grad():
            fake = features(images).double()
        fid = FID(None, num_features=dim)
        kid = KID(None, num_features=dim, subsets=kid_subsets(quick), subset_size=subset_size,
                  seed=seed)
        kl = KLDivergence(num_features=dim, k=KL_NEIGHBOURS)
        # The test digits are the reference the KDE is fitted on; the candidate set is scored.
        kde = KDELogLikelihood(num_features=dim, covariance="isotropic")
        for metric in (fid, kid, kl, kde):
            metric.update(real, fake)
        rows[name] = {
            "FID": float(fid.compute()),
            "KID": float(kid.compute()["mean"]),
            "KL": float(kl.compute()),
            "KDE log-likelihood": float(kde.compute()),
        }
        bandwidth = kde.bandwidth_factor
    return rows, bandwidth


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Compare train, noised and generated digits with the test digits; add the table."""
    model = ctx.model
    rows, bandwidth = generative_table(model.features, ctx.data, seed=ctx.config.seed,
                                       quick=ctx.config.quick)
    baseline = rows["train digits"]
    subset_size = min(KID_SUBSET_SIZE, len(ctx.data.test_images))
    card.add_kpi("generative", "fid_train_vs_test_digits", baseline["FID"],
                 unit=FID.unit, higher_is_better=False,
                 description="FID between train and test digits in the CNN's 64-d features")
    card.add_kpi("generative", "fid_class_mean_generator", rows["class-mean generator"]["FID"],
                 unit=FID.unit, higher_is_better=False,
                 description="FID of the class-mean-plus-noise generator against test digits")
    card.add_table(
        "generative",
        "distance of each set of digits from the real test digits",
        ["set", *METRICS],
        [[name, *(round(values[m], 4) for m in METRICS)] for name, values in rows.items()],
        note=(
            f"Features: the demo CNN's 64-d penultimate layer. KID: mean unbiased MMD² over "
            f"{kid_subsets(ctx.config.quick)} subsets of {subset_size} samples per side. "
            f"KL: kNN estimate of D(test || set), k={KL_NEIGHBOURS}; in 64 dimensions with a few "
            f"hundred samples it is biased and can be negative, so compare rows, not zero. "
            f"KDE: mean log-likelihood "
            f"(nats) of the set under an isotropic Gaussian KDE of the test digits, Scott "
            f"bandwidth factor {bandwidth:.3f} times the mean feature standard deviation. "
            f"Noise: Gaussian pixel noise of the stated standard deviation on [0, 1] pixels."
        ),
    )
    noise_levels = [0.0, *NOISE_SIGMAS]
    noise_rows = [rows["train digits"], *(rows[f"train + noise {s}"] for s in NOISE_SIGMAS)]
    card.add_figure("generative", "FID of noised train digits against the test digits", "line", {
        "x_label": "Gaussian pixel noise, standard deviation (pixels in [0, 1])",
        "y_label": "FID (CNN features)",
        "series": [{"label": "FID", "x": noise_levels, "y": [r["FID"] for r in noise_rows]}],
    })

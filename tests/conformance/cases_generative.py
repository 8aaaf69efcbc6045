"""Conformance cases of the generative area, on small features and a small extractor."""

from __future__ import annotations

import torch
from torch import nn

from andante_metrics import FID, KID, KDELogLikelihood, KLDivergence

from conformance.harness import BadInput, MetricCase, factory, register

D = 3


def _feature_batches(dim: int, sizes=(6, 9, 4, 11)):
    """Return a ``make_batches`` of ``(real, fake)`` feature pairs, the fake side shifted."""

    def make(gen: torch.Generator):
        out = []
        for size in sizes:
            real = torch.randn(size, dim, generator=gen)
            fake = torch.randn(size, dim, generator=gen) * 1.5 + 0.5
            out.append((real, fake))
        return out

    return make


def _image_batches(gen: torch.Generator):
    out = []
    for size in (5, 8, 3, 7):
        real = torch.rand(size, 1, 4, 4, generator=gen)
        out.append((real, (real + 0.3 * torch.rand(size, 1, 4, 4, generator=gen)).clamp(max=1)))
    return out


def _small_extractor() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, D), nn.Tanh())


_x = torch.randn(5, D)


def _feature_bad_inputs() -> list[BadInput]:
    return [
        BadInput(
            "wrong_columns",
            (torch.randn(5, D + 1), _x),
            ValueError,
            r"`real` features must have num_features=3 columns, got shape \(5, 4\)",
        ),
        BadInput(
            "int_features",
            (torch.zeros(5, D, dtype=torch.long), _x),
            TypeError,
            r"`real` must be a floating-point tensor.*torch.int64",
        ),
        BadInput(
            "nan_features",
            (_x, torch.full((5, D), float("nan"))),
            ValueError,
            r"`fake` contains 15 NaN or infinite",
        ),
        BadInput(
            "one_dim_features",
            (torch.randn(5), _x),
            ValueError,
            r"`real` must have 2 dimensions, got shape \(5,\)",
        ),
        BadInput(
            "not_a_tensor",
            ([[0.0] * D] * 5, _x),
            TypeError,
            r"`real` must be a torch.Tensor, got \[\[",
        ),
        BadInput(
            "zero_features",
            construct={"num_features": 0},
            error=ValueError,
            match=r"`num_features` must be at least 1, got 0",
        ),
    ]


register(
    MetricCase(
        "fid_features",
        factory(FID, feature_extractor=None, num_features=D),
        _feature_batches(D),
        _feature_bad_inputs()
        + [
            BadInput(
                "unknown_extractor",
                construct={"feature_extractor": "vgg"},
                error=ValueError,
                match=r"`feature_extractor` must be 'inception'.*'vgg'",
            ),
        ],
        rtol=1e-8,
    ),
    MetricCase(
        "fid_small_extractor",
        factory(FID, feature_extractor=_small_extractor(), num_features=D),
        _image_batches,
        [
            BadInput(
                "nan_images",
                (torch.full((2, 1, 4, 4), float("nan")), None),
                ValueError,
                r"`features of real` contains 6 NaN",
            ),
            # The float32 extractor's output changes in the last bits with the batch size.
        ],
        rtol=1e-5,
        atol=1e-8,
    ),
    MetricCase(
        "fid_reference_statistics",
        factory(
            FID,
            feature_extractor=None,
            num_features=D,
            reference_statistics=(torch.zeros(D), torch.eye(D)),
        ),
        lambda gen: [(None, fake) for _, fake in _feature_batches(D)(gen)],
        [
            BadInput(
                "real_with_reference",
                (_x, _x),
                ValueError,
                r"`real` must be None when `reference_statistics`",
            ),
            BadInput(
                "reference_wrong_shape",
                construct={"reference_statistics": (torch.zeros(2), torch.eye(2))},
                error=ValueError,
                match=r"must have mu \(3,\) and sigma \(3, 3\)",
            ),
        ],
        splittable=False,
        rtol=1e-8,
        reason="the real side of each batch is None, which cannot be re-split",
    ),
    MetricCase(
        "kid_features",
        factory(KID, feature_extractor=None, num_features=D, subsets=4, subset_size=4),
        _feature_batches(D),
        _feature_bad_inputs()
        + [
            BadInput(
                "subset_size_one",
                construct={"subset_size": 1},
                error=ValueError,
                match=r"`subset_size` must be at least 2, got 1",
            ),
            BadInput(
                "zero_subsets",
                construct={"subsets": 0},
                error=ValueError,
                match=r"`subsets` must be at least 1, got 0",
            ),
        ],
    ),
    MetricCase(
        "kde_log_likelihood_full",
        factory(KDELogLikelihood, num_features=D),
        _feature_batches(D),
        _feature_bad_inputs()
        + [
            BadInput(
                "bad_bandwidth",
                construct={"bandwidth": "wide"},
                error=ValueError,
                match=r"`bandwidth` must be one of 'scott', 'silverman', got 'wide'",
            ),
            BadInput(
                "negative_bandwidth",
                construct={"bandwidth": -1.0},
                error=ValueError,
                match=r"`bandwidth` must be a finite number greater than 0, got -1.0",
            ),
            BadInput(
                "bad_covariance",
                construct={"covariance": "spherical"},
                error=ValueError,
                match=r"`covariance` must be one of 'full'",
            ),
        ],
    ),
    MetricCase(
        "kde_log_likelihood_isotropic",
        factory(KDELogLikelihood, num_features=D, bandwidth=0.5, covariance="isotropic"),
        _feature_batches(D),
        _feature_bad_inputs(),
    ),
    MetricCase(
        "kl_divergence_k2",
        factory(KLDivergence, num_features=D, k=2),
        _feature_batches(D),
        _feature_bad_inputs()
        + [
            BadInput(
                "zero_k",
                construct={"k": 0},
                error=ValueError,
                match=r"`k` must be at least 1, got 0",
            ),
        ],
    ),
)

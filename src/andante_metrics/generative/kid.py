r"""Kernel Inception Distance: unbiased MMD² with a cubic polynomial kernel, over subsets.

With :math:`k(x, y) = (x^\top y / d + 1)^3` and subsets :math:`X` (real) and :math:`Y`
(generated) of :math:`m` samples each,

.. math::
    \widehat{\mathrm{MMD}}^2_u = \frac{1}{m(m-1)} \sum_{i \ne j}
        \bigl(k(x_i, x_j) + k(y_i, y_j)\bigr) - \frac{2}{m^2} \sum_{i, j} k(x_i, y_j).

KID (Binkowski et al., ICLR 2018) is the mean of this estimate over random subsets; the
standard deviation over subsets comes with it. torch-fidelity 0.4 computes the same quantity
(``kid_subsets``, ``kid_subset_size``, ``kid_degree=3``, ``kid_gamma=1/d``, ``kid_coef0=1``).
"""

from __future__ import annotations

from typing import Any

import torch

from andante_metrics.base import KPIMetric
from andante_metrics.generative.frechet import FeatureExtractor, _extract, _resolve_extractor
from andante_metrics.utilities.checks import check_int_range
from andante_metrics.utilities.logging import warn_once


def _polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.mT / x.shape[1] + 1.0) ** 3


def _unbiased_mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    m = x.shape[0]
    k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    off_diagonal = k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()
    within = off_diagonal / (m * (m - 1))
    return within - 2.0 * k_xy.sum() / (m * m)


def _canonical_order(features: torch.Tensor) -> torch.Tensor:
    """Return the rows sorted by a fixed random projection.

    The subsets are drawn from this order, so the value depends on the set of samples only,
    not on batch order or on how processes split the data. Rows with equal projections are
    equal rows (up to a measure-zero event), so their order does not matter.
    """
    projection = torch.randn(
        features.shape[1], generator=torch.Generator().manual_seed(12345), dtype=torch.float64
    ).to(features.device)
    return features[torch.argsort(features @ projection, stable=True)]


def _kid_compute(
    real: torch.Tensor, fake: torch.Tensor, *, subsets: int, subset_size: int, seed: int
) -> dict[str, torch.Tensor]:
    n_real, n_fake = real.shape[0], fake.shape[0]
    if min(n_real, n_fake) < 2:
        raise ValueError(
            f"KID needs at least 2 real and 2 generated samples, got {n_real} and {n_fake}."
        )
    size = subset_size
    if size > min(n_real, n_fake):
        size = min(n_real, n_fake)
        warn_once(
            "kid_subset_size",
            f"KID `subset_size`={subset_size} exceeds the samples available ({n_real} real, "
            f"{n_fake} generated); using subsets of {size} samples instead.",
        )
    real, fake = _canonical_order(real), _canonical_order(fake)
    gen = torch.Generator().manual_seed(seed)
    values = torch.empty(subsets, dtype=torch.float64)
    for i in range(subsets):
        pick_real = torch.randperm(n_real, generator=gen)[:size].to(real.device)
        pick_fake = torch.randperm(n_fake, generator=gen)[:size].to(fake.device)
        values[i] = _unbiased_mmd2(real[pick_real], fake[pick_fake])
    std = values.std(unbiased=False) if subsets > 1 else torch.zeros((), dtype=torch.float64)
    return {"mean": values.mean(), "std": std}


def _check_kid_options(subsets: int, subset_size: int, seed: int) -> None:
    check_int_range(subsets, "subsets", low=1)
    check_int_range(subset_size, "subset_size", low=2)
    check_int_range(seed, "seed", low=0)


def kernel_inception_distance(
    real_features: torch.Tensor,
    fake_features: torch.Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    r"""Compute KID between two feature sets: mean and standard deviation of MMD² over subsets.

    Each of ``subsets`` draws takes ``subset_size`` real and ``subset_size`` generated samples
    without replacement and computes the unbiased :math:`\mathrm{MMD}^2` (module docstring).
    When a side has fewer samples than ``subset_size``, the subset size drops to
    ``min(n_real, n_fake)`` and a warning is issued once. The draws are seeded
    by ``seed`` and made from the samples in a canonical order, so the value does not depend
    on the order of the rows.

    Args:
        real_features: ``(N, d)`` float features of real samples.
        fake_features: ``(M, d)`` float features of generated samples.
        subsets: number of subsets.
        subset_size: samples per subset and side, at least 2.
        seed: seed of the subset draws.

    Returns:
        ``{"mean": ..., "std": ...}``, float64 scalars; ``std`` is the population standard
        deviation over subsets (as torch-fidelity 0.4), 0 for one subset. The unbiased mean
        can be slightly negative when the two sets come from the same distribution. Fewer than
        2 samples on a side raise ``ValueError``.

    Source: Binkowski et al., "Demystifying MMD GANs", ICLR 2018.

    Example:
        >>> import torch
        >>> x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
        >>> kid = kernel_inception_distance(x, x + 1.0, subsets=5, subset_size=20)
        >>> bool(kid["mean"] > 0)
        True
    """
    _check_kid_options(subsets, subset_size, seed)
    real = _extract(None, real_features, "real_features")
    fake = _extract(None, fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"`real_features` and `fake_features` must have the same number of columns, got "
            f"{tuple(real.shape)} and {tuple(fake.shape)}."
        )
    return _kid_compute(real, fake, subsets=subsets, subset_size=subset_size, seed=seed)


class _SampleMetric(KPIMetric):
    """Shared state of the two-sample KPIs (KID, KDE, KL): real and generated feature vectors."""

    kpi_area = "generative"

    def __init__(self, feature_extractor: Any, num_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_samples(feature_extractor, num_features)

    def _init_samples(self, feature_extractor: Any, num_features: int) -> None:
        if feature_extractor is not None and not callable(feature_extractor):
            raise TypeError(
                f"`feature_extractor` must be an nn.Module, a callable or None, got "
                f"{type(feature_extractor).__name__}."
            )
        check_int_range(num_features, "num_features", low=1)
        self._extractor = [feature_extractor]
        self.num_features = num_features
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, real: torch.Tensor | None = None, fake: torch.Tensor | None = None) -> None:
        """Add a batch of real and/or generated samples."""
        for side, batch in (("real", real), ("fake", fake)):
            if batch is None:
                continue
            features = _extract(self._extractor[0], batch, side)
            if features.shape[1] != self.num_features:
                raise ValueError(
                    f"`{side}` features must have num_features={self.num_features} columns, "
                    f"got shape {tuple(features.shape)}."
                )
            getattr(self, f"{side}_features").append(features)

    def _samples(self) -> tuple[torch.Tensor, torch.Tensor]:
        real = _concat(self.real_features, self.num_features)
        fake = _concat(self.fake_features, self.num_features)
        self._check_not_empty(real.shape[0] + fake.shape[0])
        return real, fake


class KID(_SampleMetric):
    """Stateful Kernel Inception Distance; see :func:`kernel_inception_distance`.

    Args:
        feature_extractor, num_features, weights_path, quantize, resize: as for
            :class:`~andante_metrics.generative.FID` (default: the FID Inception network).
        subsets, subset_size, seed: as for :func:`kernel_inception_distance`.

    State: the float64 features of both sides (concatenated across processes), because the
    subsets need the samples themselves. Memory grows with N, 8 d bytes per sample.
    ``compute()`` returns ``{"mean", "std"}`` and raises ``ValueError`` without samples.

    Example:
        >>> import torch
        >>> gen = torch.Generator().manual_seed(0)
        >>> metric = KID(None, num_features=4, subsets=10, subset_size=30)
        >>> metric.update(torch.randn(40, 4, generator=gen), torch.randn(40, 4, generator=gen))
        >>> bool(metric.compute()["mean"].abs() < 0.1)
        True
    """

    kpi_area = "generative"
    unit = "MMD²"
    higher_is_better = False

    def __init__(
        self,
        feature_extractor: FeatureExtractor | str | None = "inception",
        *,
        num_features: int | None = None,
        subsets: int = 100,
        subset_size: int = 1000,
        seed: int = 0,
        weights_path: Any = None,
        quantize: bool = True,
        resize: str = "bilinear",
        **kwargs: Any,
    ) -> None:
        # The Inception extractor is resolved before the shared sample state is set up, so the
        # base initialiser runs here and _init_samples below.
        KPIMetric.__init__(self, **kwargs)
        _check_kid_options(subsets, subset_size, seed)
        extractor, num_features = _resolve_extractor(
            feature_extractor,
            num_features,
            weights_path=weights_path,
            quantize=quantize,
            resize=resize,
        )
        self._init_samples(extractor, num_features)
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed

    def compute(self) -> dict[str, torch.Tensor]:
        """Return ``{"mean", "std"}`` of the unbiased MMD² over the subsets."""
        real, fake = self._samples()
        return _kid_compute(
            real, fake, subsets=self.subsets, subset_size=self.subset_size, seed=self.seed
        )


def _concat(state: list[torch.Tensor] | torch.Tensor, num_features: int) -> torch.Tensor:
    """Return a list state (or its already concatenated, synchronised form) as one tensor."""
    if isinstance(state, torch.Tensor):
        return state.reshape(-1, num_features)
    if not state:
        return torch.zeros(0, num_features, dtype=torch.float64)
    return torch.cat(state)

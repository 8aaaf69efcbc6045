r"""Frechet distance between Gaussians and the streaming FID metric.

The Frechet (2-Wasserstein) distance between :math:`\mathcal N(\mu_1, \Sigma_1)` and
:math:`\mathcal N(\mu_2, \Sigma_2)` is

.. math::
    d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
          - 2 \operatorname{tr}\bigl(\Sigma_1 \Sigma_2\bigr)^{1/2}.

:math:`\Sigma_1 \Sigma_2` is similar to the symmetric positive semi-definite matrix
:math:`M = F^\top \Sigma_2 F` for any factor :math:`F F^\top = \Sigma_1`, so the trace term is
:math:`\sum_i \sqrt{\lambda_i(M)}`: one Cholesky factorisation and one symmetric eigenvalue
problem (values only), with no matrix square root. FID (Heusel et al., NeurIPS 2017) is this
distance between Gaussians fitted to Inception features of real and generated images.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import check_finite, check_tensor

FeatureExtractor = nn.Module | Callable[[torch.Tensor], torch.Tensor]


def _as_float64(value: Any, name: str, ndim: int) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    check_tensor(value, name, ndim=ndim, dtype="number")
    check_finite(value.double(), name)
    return value.detach().to(torch.float64)


def _check_gaussians(mu1, sigma1, mu2, sigma2) -> tuple[torch.Tensor, ...]:
    mu1, mu2 = _as_float64(mu1, "mu1", 1), _as_float64(mu2, "mu2", 1)
    sigma1, sigma2 = _as_float64(sigma1, "sigma1", 2), _as_float64(sigma2, "sigma2", 2)
    d = mu1.shape[0]
    if d == 0:
        raise ValueError(
            "`mu1` is empty (shape (0,)); pass the mean and covariance of at least one feature."
        )
    for name, shape, expected in (("mu2", tuple(mu2.shape), (d,)),
                                  ("sigma1", tuple(sigma1.shape), (d, d)),
                                  ("sigma2", tuple(sigma2.shape), (d, d))):
        if shape != expected:
            raise ValueError(
                f"`{name}` must have shape {expected} to match `mu1` of shape ({d},), got {shape}."
            )
    return mu1, sigma1, mu2.to(mu1.device), sigma2.to(mu1.device)


def _covariance_factor(sigma: torch.Tensor) -> torch.Tensor:
    """Return ``F`` with ``F F^T = sigma``: Cholesky, or ``V sqrt(w)`` if ``sigma`` is singular.

    ``sigma`` counts as singular when the Cholesky factorisation fails or a squared pivot is
    below ``d * eps`` times the largest. Its eigenvalues below ``d * eps * max|w|`` are then
    set to 0, so its null space adds exactly 0 to the trace instead of square roots of
    rounding errors (about 1e-8 each in float64).
    """
    d = sigma.shape[0]
    tolerance = d * torch.finfo(torch.float64).eps
    factor, info = torch.linalg.cholesky_ex(sigma)
    pivots = factor.diagonal().square()
    if int(info) == 0 and bool(pivots.min() > tolerance * pivots.max()):
        return factor
    # Singular or slightly indefinite (fewer samples than dimensions, constant features).
    eigenvalues, eigenvectors = torch.linalg.eigh(sigma)
    cutoff = tolerance * eigenvalues.abs().max()
    eigenvalues = torch.where(eigenvalues > cutoff, eigenvalues, torch.zeros_like(eigenvalues))
    return eigenvectors * eigenvalues.sqrt()


def _trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """Return ``tr sqrt(sigma1 sigma2)`` from the eigenvalues of ``F^T sigma2 F``."""
    factor = _covariance_factor(sigma1)
    similar = factor.mT @ sigma2 @ factor
    similar = 0.5 * (similar + similar.mT)
    eigenvalues = torch.linalg.eigvalsh(similar)
    # The matrix is positive semi-definite, so eigenvalues at rounding level (either sign) are
    # 0; dropping them keeps a singular sigma2 from adding sqrt(rounding) terms.
    cutoff = similar.shape[0] * torch.finfo(torch.float64).eps * eigenvalues.abs().max()
    return eigenvalues[eigenvalues > cutoff].sqrt().sum()


def frechet_distance(
    mu1: torch.Tensor | np.ndarray,
    sigma1: torch.Tensor | np.ndarray,
    mu2: torch.Tensor | np.ndarray,
    sigma2: torch.Tensor | np.ndarray,
) -> torch.Tensor:
    r"""Compute the squared Frechet distance between two Gaussians, in float64.

    .. math::
        d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
              - 2 \sum_i \sqrt{\lambda_i(F^\top \Sigma_2 F)}, \qquad F F^\top = \Sigma_1

    ``F`` is the Cholesky factor of :math:`\Sigma_1`. When :math:`\Sigma_1` is singular
    (fewer samples than dimensions, constant features), ``F`` comes from its eigendecomposition
    with eigenvalues below :math:`d \epsilon \max|\lambda|` set to 0. Eigenvalues of
    :math:`F^\top \Sigma_2 F` below the same relative cutoff, negative ones included (only
    rounding produces those for positive semi-definite inputs), count as 0. A final value
    below 0 (rounding when both Gaussians are equal) is returned as 0.

    Args:
        mu1, mu2: ``(d,)`` means (tensors or numpy arrays).
        sigma1, sigma2: ``(d, d)`` symmetric positive semi-definite covariances.

    Returns:
        A float64 scalar tensor on the device of ``mu1``, at least 0.

    Source: the formula of pytorch-fid 0.3 ``calculate_frechet_distance``, which computes the
    same value with ``scipy.linalg.sqrtm`` of the product.

    Example:
        >>> import torch
        >>> eye = torch.eye(2)
        >>> frechet_distance(torch.zeros(2), eye, torch.ones(2), 4 * eye)  # 2 + 2 + 8 - 2 * 4
        tensor(4., dtype=torch.float64)
    """
    mu1, sigma1, mu2, sigma2 = _check_gaussians(mu1, sigma1, mu2, sigma2)
    mean_term = (mu1 - mu2).square().sum()
    trace_term = torch.trace(sigma1) + torch.trace(sigma2) - 2 * _trace_sqrt_product(sigma1, sigma2)
    return (mean_term + trace_term).clamp(min=0)


def _gaussian_from_sums(
    total: torch.Tensor, outer: torch.Tensor, count: torch.Tensor, side: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the mean and the unbiased covariance (divisor ``n - 1``) from running sums."""
    n = int(count)
    if n < 2:
        raise ValueError(
            f"FID needs at least 2 {side} samples to estimate a covariance, got {n}; "
            f"update with more {side} images."
        )
    mu = total / n
    sigma = (outer - n * torch.outer(mu, mu)) / (n - 1)
    return mu, 0.5 * (sigma + sigma.mT)


def save_fid_statistics(path: str | os.PathLike, mu: Any, sigma: Any) -> Path:
    """Save a mean and covariance as a ``.npz`` file with arrays ``mu`` and ``sigma``.

    pytorch-fid reads this layout as precomputed statistics (``np.load(path)["mu"]``).
    """
    mu_t = _as_float64(mu, "mu", 1).cpu().numpy()
    sigma_t = _as_float64(sigma, "sigma", 2).cpu().numpy()
    path = Path(path)
    np.savez(path, mu=mu_t, sigma=sigma_t)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def load_fid_statistics(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``mu`` and ``sigma`` (float64 tensors) from a ``.npz`` file such as pytorch-fid's."""
    with np.load(path, allow_pickle=False) as data:
        missing = [key for key in ("mu", "sigma") if key not in data.files]
        if missing:
            raise ValueError(
                f"{str(path)!r} must contain arrays 'mu' and 'sigma', it lacks {missing} "
                f"(found {data.files})."
            )
        mu, sigma = torch.from_numpy(data["mu"]), torch.from_numpy(data["sigma"])
    mu, sigma = _as_float64(mu, "mu", 1), _as_float64(sigma, "sigma", 2)
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(
            f"'sigma' in {str(path)!r} must have shape ({mu.shape[0]}, {mu.shape[0]}) to match "
            f"'mu', got {tuple(sigma.shape)}."
        )
    return mu, sigma


def _extract(extractor: FeatureExtractor | None, images: torch.Tensor, name: str) -> torch.Tensor:
    """Run the extractor (no gradient) and check that it returns finite ``(N, d)`` features."""
    if extractor is None:
        features = images
        check_tensor(features, name, ndim=2, dtype="float")
    else:
        check_tensor(images, name)
        with torch.no_grad():
            features = extractor(images)
        if not isinstance(features, torch.Tensor) or features.ndim != 2:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
            raise ValueError(
                f"the feature extractor must return an (N, d) tensor, got {shape} for `{name}` "
                f"of shape {tuple(images.shape)}; flatten its output."
            )
        if features.shape[0] != images.shape[0]:
            raise ValueError(
                f"the feature extractor returned {features.shape[0]} rows for {images.shape[0]} "
                f"`{name}` samples."
            )
    check_finite(features, name if extractor is None else f"features of {name}")
    return features.detach().to(torch.float64)


class FID(KPIMetric):
    r"""Frechet Inception Distance with running float64 sums, O(d²) memory for any N.

    The features of every real and generated batch go into running sums
    :math:`\sum x`, :math:`\sum x x^\top` and a count per side (float64, summed across
    processes); ``compute()`` turns them into means and unbiased covariances (divisor
    :math:`n - 1`, as ``numpy.cov``) and returns :func:`frechet_distance`.

    Args:
        feature_extractor: ``"inception"`` (default) builds :class:`FIDInceptionV3` from a local
            weights file. An ``nn.Module`` or callable maps a batch to ``(N, d)`` features.
            ``None`` means the inputs already are ``(N, d)`` features.
        num_features: ``d``. Required for a custom extractor or ``None``; 2048 for Inception.
        reference_statistics: a ``.npz`` path or a ``(mu, sigma)`` pair of the real data
            (for example a dataset's published statistics). Then only ``fake`` is passed to
            ``update``.
        weights_path, quantize, resize: passed to :class:`FIDInceptionV3`.

    The extractor is kept out of the metric's ``state_dict`` and is not moved by ``.to()``:
    put it on the device of the inputs (the Inception extractor moves its input itself).

    Shapes: ``update(real, fake)`` takes batches for the extractor, either may be ``None``.
    ``compute()`` returns a float64 scalar. Fewer than 2 samples on either side raises
    ``ValueError``.

    Example:
        >>> import torch
        >>> gen = torch.Generator().manual_seed(0)
        >>> metric = FID(None, num_features=2)
        >>> real = torch.randn(500, 2, generator=gen)
        >>> metric.update(real, torch.randn(500, 2, generator=gen) + 3)
        >>> round(float(metric.compute()), 1)  # |mu1 - mu2|^2 = 18, equal covariances
        18.0
    """

    kpi_area = "generative"
    unit = "squared feature distance"
    higher_is_better = False

    def __init__(
        self,
        feature_extractor: FeatureExtractor | str | None = "inception",
        *,
        num_features: int | None = None,
        reference_statistics: str | os.PathLike | tuple[Any, Any] | None = None,
        weights_path: str | os.PathLike | None = None,
        quantize: bool = True,
        resize: str = "bilinear",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        extractor, num_features = _resolve_extractor(
            feature_extractor, num_features, weights_path=weights_path, quantize=quantize,
            resize=resize,
        )
        self._extractor = [extractor]
        self.num_features = num_features
        self.reference: tuple[torch.Tensor, torch.Tensor] | None = None
        if reference_statistics is not None:
            self.reference = _load_reference(reference_statistics, num_features)
        d = num_features
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64),
                           dist_reduce_fx="sum")
            self.add_state(f"{side}_count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    @property
    def feature_extractor(self) -> FeatureExtractor | None:
        """The extractor applied to each batch (``None`` for feature inputs)."""
        return self._extractor[0]

    def _add(self, images: torch.Tensor, side: str) -> None:
        features = _extract(self._extractor[0], images, side)
        if features.shape[1] != self.num_features:
            raise ValueError(
                f"`{side}` features must have num_features={self.num_features} columns, got "
                f"shape {tuple(features.shape)}."
            )
        features = features.to(self.device)
        getattr(self, f"{side}_sum").add_(features.sum(dim=0))
        getattr(self, f"{side}_outer").add_(features.mT @ features)
        getattr(self, f"{side}_count").add_(features.shape[0])

    def update(self, real: torch.Tensor | None = None, fake: torch.Tensor | None = None) -> None:
        """Add a batch of real and/or generated samples."""
        if real is not None and self.reference is not None:
            raise ValueError(
                "`real` must be None when `reference_statistics` were given: the real side is "
                "fixed by them."
            )
        if real is not None:
            self._add(real, "real")
        if fake is not None:
            self._add(fake, "fake")

    def real_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the mean and covariance of the real side (the reference ones if given)."""
        if self.reference is not None:
            return self.reference
        return _gaussian_from_sums(self.real_sum, self.real_outer, self.real_count, "real")

    def fake_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the mean and covariance of the generated side."""
        return _gaussian_from_sums(self.fake_sum, self.fake_outer, self.fake_count, "fake")

    def save_real_statistics(self, path: str | os.PathLike) -> Path:
        """Save the real side's ``mu`` and ``sigma`` as ``.npz`` (pytorch-fid's layout)."""
        return save_fid_statistics(path, *self.real_statistics())

    def compute(self) -> torch.Tensor:
        """Return the Frechet distance between the real and generated feature Gaussians."""
        seen = self.fake_count + (0 if self.reference is not None else self.real_count)
        self._check_not_empty(seen)
        mu_real, sigma_real = self.real_statistics()
        mu_fake, sigma_fake = self.fake_statistics()
        return frechet_distance(mu_real, sigma_real, mu_fake, sigma_fake)


def _resolve_extractor(
    feature_extractor: FeatureExtractor | str | None,
    num_features: int | None,
    *,
    weights_path: str | os.PathLike | None = None,
    quantize: bool = True,
    resize: str = "bilinear",
) -> tuple[FeatureExtractor | None, int]:
    """Return the extractor and the feature dimension ``d`` after checking the options."""
    from andante_metrics.generative.inception import FIDInceptionV3
    from andante_metrics.utilities.checks import check_int_range

    if isinstance(feature_extractor, str):
        if feature_extractor != "inception":
            raise ValueError(
                f"`feature_extractor` must be 'inception', an nn.Module, a callable or None, "
                f"got {feature_extractor!r}."
            )
        if num_features not in (None, 2048):
            raise ValueError(f"`num_features` must be 2048 for Inception, got {num_features}.")
        return FIDInceptionV3(weights_path, quantize=quantize, resize=resize), 2048
    if feature_extractor is not None and not callable(feature_extractor):
        raise TypeError(
            f"`feature_extractor` must be 'inception', an nn.Module, a callable or None, got "
            f"{type(feature_extractor).__name__}."
        )
    if num_features is None:
        raise ValueError(
            "`num_features` must be given (the feature dimension d) for a custom feature "
            "extractor or feature inputs."
        )
    check_int_range(num_features, "num_features", low=1)
    return feature_extractor, num_features


def _load_reference(reference: Any, num_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(reference, (str, os.PathLike)):
        mu, sigma = load_fid_statistics(reference)
    else:
        if not isinstance(reference, (tuple, list)) or len(reference) != 2:
            raise TypeError(
                "`reference_statistics` must be a .npz path or a (mu, sigma) pair, got "
                f"{type(reference).__name__}."
            )
        mu = _as_float64(reference[0], "mu", 1)
        sigma = _as_float64(reference[1], "sigma", 2)
    if mu.shape != (num_features,) or sigma.shape != (num_features, num_features):
        raise ValueError(
            f"`reference_statistics` must have mu ({num_features},) and sigma ({num_features}, "
            f"{num_features}), got {tuple(mu.shape)} and {tuple(sigma.shape)}."
        )
    return mu, sigma

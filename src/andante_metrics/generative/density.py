"""Sample-based density KPIs: Gaussian-KDE log-likelihood and the kNN KL divergence estimate.

Both work on feature vectors (for images, the output of a feature extractor such as the demo
CNN's penultimate layer) and keep the samples themselves as state, because neither estimate
reduces to fixed-size sufficient statistics.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from andante_metrics.generative.frechet import _extract
from andante_metrics.generative.kid import _SampleMetric
from andante_metrics.utilities.checks import check_in_choices, check_int_range, check_positive

Bandwidth = Literal["scott", "silverman"]
KernelCovariance = Literal["full", "diagonal", "isotropic"]
_CHUNK = 1024


def _check_pair(reference: torch.Tensor, samples: torch.Tensor, names: tuple[str, str]):
    reference = _extract(None, reference, names[0])
    samples = _extract(None, samples, names[1])
    if reference.shape[1] != samples.shape[1]:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must have the same number of columns, got "
            f"{tuple(reference.shape)} and {tuple(samples.shape)}."
        )
    return reference, samples


def _check_bandwidth(bandwidth: Any) -> None:
    if isinstance(bandwidth, str):
        check_in_choices(bandwidth, "bandwidth", ("scott", "silverman"))
    else:
        check_positive(bandwidth, "bandwidth")


def _check_kde_options(bandwidth: Any, covariance: str) -> None:
    _check_bandwidth(bandwidth)
    check_in_choices(covariance, "covariance", ("full", "diagonal", "isotropic"))


def kde_bandwidth_factor(n: int, d: int, bandwidth: Bandwidth | float = "scott") -> float:
    """Return the factor that scales the data covariance into the kernel covariance (squared).

    Scott's rule :math:`n^{-1/(d+4)}` and Silverman's rule :math:`(n (d+2) / 4)^{-1/(d+4)}`
    are the rules of ``scipy.stats.gaussian_kde``; a number is returned as it is.
    ``n`` (samples) and ``d`` (dimensions) must be at least 1.
    """
    check_int_range(n, "n", low=1)
    check_int_range(d, "d", low=1)
    _check_bandwidth(bandwidth)
    if bandwidth == "scott":
        return n ** (-1.0 / (d + 4))
    if bandwidth == "silverman":
        return (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
    return float(bandwidth)


def _kernel_cholesky(reference: torch.Tensor, factor: float, covariance: str) -> torch.Tensor:
    """Return the lower Cholesky factor of the kernel covariance ``factor² · cov(reference)``."""
    data_cov = torch.cov(reference.mT).reshape(reference.shape[1], reference.shape[1])
    if covariance == "isotropic":
        data_cov = (
            torch.eye(reference.shape[1], dtype=torch.float64, device=reference.device)
            * data_cov.diagonal().mean()
        )
    elif covariance == "diagonal":
        data_cov = torch.diag(data_cov.diagonal())
    chol, info = torch.linalg.cholesky_ex(data_cov * factor**2)
    if int(info) != 0:
        raise ValueError(
            f"the covariance of the reference samples is singular (covariance={covariance!r}, "
            f"for example constant features or fewer samples than dimensions); use "
            f"covariance='isotropic' or drop the constant features."
        )
    return chol


def _kde_compute(
    reference: torch.Tensor, samples: torch.Tensor, bandwidth: Any, covariance: str
) -> tuple[torch.Tensor, float]:
    n, d = reference.shape
    if n < 2 or samples.shape[0] < 1:
        raise ValueError(
            f"the KDE needs at least 2 reference samples and 1 evaluated sample, got {n} and "
            f"{samples.shape[0]}."
        )
    factor = kde_bandwidth_factor(n, d, bandwidth)
    chol = _kernel_cholesky(reference, factor, covariance)
    # Whitening by the kernel's Cholesky factor turns every kernel into a standard normal.
    white_ref = torch.linalg.solve_triangular(chol, reference.mT, upper=False).mT
    white_samples = torch.linalg.solve_triangular(chol, samples.mT, upper=False).mT
    log_norm = math.log(n) + 0.5 * d * math.log(2 * math.pi) + chol.diagonal().log().sum()
    total = torch.zeros((), dtype=torch.float64, device=reference.device)
    for begin in range(0, samples.shape[0], _CHUNK):
        distance2 = torch.cdist(white_samples[begin : begin + _CHUNK], white_ref).square()
        total += torch.logsumexp(-0.5 * distance2, dim=1).sum()
    return total / samples.shape[0] - log_norm, factor


def kde_log_likelihood(
    reference: torch.Tensor,
    samples: torch.Tensor,
    *,
    bandwidth: Bandwidth | float = "scott",
    covariance: KernelCovariance = "full",
) -> torch.Tensor:
    r"""Compute the mean log-likelihood of ``samples`` under a Gaussian KDE of ``reference``.

    .. math::
        \bar\ell = \frac{1}{M}\sum_{j=1}^{M} \log \frac{1}{N}\sum_{i=1}^{N}
            \mathcal N(y_j;\, x_i,\, h^2 \Sigma)

    with :math:`\Sigma` the unbiased covariance of the reference samples :math:`x_i` (full,
    its diagonal, or its mean variance times the identity, by ``covariance``). The bandwidth
    factor :math:`h` comes from the reference set alone, by Scott's or Silverman's rule
    (:func:`kde_bandwidth_factor`), or is given as a number.

    Args:
        reference: ``(N, d)`` samples the KDE is fitted on, ``N >= 2``.
        samples: ``(M, d)`` held-out samples to evaluate.
        bandwidth: ``"scott"``, ``"silverman"`` or a positive factor ``h``.
        covariance: ``"full"`` (as ``scipy.stats.gaussian_kde``), ``"diagonal"`` or
            ``"isotropic"`` (for features with singular covariance).

    Returns:
        A float64 scalar in nats per sample (a log-density, so its scale depends on the units
        of the features). A singular kernel covariance raises ``ValueError``.

    Source: ``scipy.stats.gaussian_kde(reference.T).logpdf(samples.T).mean()`` for
    ``covariance="full"``; Parzen-window evaluation of generative models as in Goodfellow et
    al., NeurIPS 2014.

    Example:
        >>> import torch
        >>> reference = torch.randn(400, 1, generator=torch.Generator().manual_seed(0))
        >>> value = kde_log_likelihood(reference, torch.zeros(1, 1))
        >>> round(float(value), 1)  # log N(0; 0, 1) = -0.92 for a standard normal
        -0.9
    """
    _check_kde_options(bandwidth, covariance)
    reference, samples = _check_pair(reference, samples, ("reference", "samples"))
    return _kde_compute(reference, samples, bandwidth, covariance)[0]


def _kth_neighbour_distance(
    queries: torch.Tensor, points: torch.Tensor, k: int, *, exclude_self: bool
) -> torch.Tensor:
    """Return the distance from each query to its k-th nearest point (self left out if asked)."""
    out = []
    for begin in range(0, queries.shape[0], _CHUNK):
        distance = torch.cdist(queries[begin : begin + _CHUNK], points)
        if exclude_self:
            rows = torch.arange(distance.shape[0], device=distance.device)
            distance[rows, rows + begin] = float("inf")
        out.append(distance.topk(k, dim=1, largest=False).values[:, -1])
    return torch.cat(out)


def _kl_compute(p: torch.Tensor, q: torch.Tensor, k: int) -> torch.Tensor:
    n, d = p.shape
    m = q.shape[0]
    if n < k + 1 or m < k:
        raise ValueError(
            f"the kNN KL estimate with k={k} needs at least {k + 1} samples of P and {k} of Q, "
            f"got {n} and {m}."
        )
    rho = _kth_neighbour_distance(p, p, k, exclude_self=True)
    nu = _kth_neighbour_distance(p, q, k, exclude_self=False)
    zero = int((rho == 0).sum() + (nu == 0).sum())
    if zero:
        raise ValueError(
            f"{zero} k-th nearest-neighbour distance(s) are 0 (duplicate samples), which makes "
            f"the kNN KL estimate infinite; remove duplicates or raise `k`."
        )
    return d * (nu.log() - rho.log()).mean() + math.log(m / (n - 1))


def kl_divergence_knn(
    p_samples: torch.Tensor, q_samples: torch.Tensor, *, k: int = 1
) -> torch.Tensor:
    r"""Estimate :math:`D_{KL}(P \,\|\, Q)` from samples with k-nearest-neighbour distances.

    .. math::
        \hat D = \frac{d}{n}\sum_{i=1}^{n} \log\frac{\nu_k(i)}{\rho_k(i)} + \log\frac{m}{n-1}

    with :math:`\rho_k(i)` the Euclidean distance from :math:`x_i` to its k-th nearest
    neighbour among the other samples of P, and :math:`\nu_k(i)` to its k-th nearest sample
    of Q. The estimate is consistent for continuous densities; at finite n it is biased and
    can be slightly negative.

    Args:
        p_samples: ``(n, d)`` samples of P, ``n >= k + 1``.
        q_samples: ``(m, d)`` samples of Q, ``m >= k``.
        k: the neighbour rank.

    Returns:
        A float64 scalar in nats. A zero neighbour distance (duplicate samples) raises
        ``ValueError``.

    Source: Wang, Kulkarni and Verdu, "Divergence estimation for multidimensional densities
    via k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009.

    Example:
        >>> import torch
        >>> gen = torch.Generator().manual_seed(0)
        >>> p = torch.randn(2000, 1, generator=gen)
        >>> q = torch.randn(2000, 1, generator=gen) + 1.0
        >>> round(float(kl_divergence_knn(p, q)), 1)  # closed form: 1 / 2
        0.5
    """
    check_int_range(k, "k", low=1)
    p, q = _check_pair(p_samples, q_samples, ("p_samples", "q_samples"))
    return _kl_compute(p, q, k)


class KDELogLikelihood(_SampleMetric):
    """Mean log-likelihood of generated samples under a Gaussian KDE of the real samples.

    See :func:`kde_log_likelihood`: ``real`` is the reference set the KDE is fitted on (its
    bandwidth is chosen from it), ``fake`` the evaluated set. After ``compute()``,
    ``bandwidth_factor`` is the factor ``h`` that was used.

    Args:
        feature_extractor: an ``nn.Module`` or callable mapping a batch to ``(N, d)``, or
            ``None`` (default) for feature inputs.
        num_features: ``d``.
        bandwidth, covariance: as for :func:`kde_log_likelihood`.

    State: the float64 features of both sides (concatenated across processes).
    ``compute()`` without samples raises ``ValueError``.

    Example:
        >>> import torch
        >>> gen = torch.Generator().manual_seed(0)
        >>> metric = KDELogLikelihood(num_features=1)
        >>> metric.update(torch.randn(400, 1, generator=gen), torch.zeros(1, 1))
        >>> round(float(metric.compute()), 1)
        -0.9
    """

    unit = "nats"
    higher_is_better = True

    def __init__(
        self,
        feature_extractor: Any = None,
        *,
        num_features: int,
        bandwidth: Bandwidth | float = "scott",
        covariance: KernelCovariance = "full",
        **kwargs: Any,
    ) -> None:
        _check_kde_options(bandwidth, covariance)
        super().__init__(feature_extractor, num_features, **kwargs)
        self.bandwidth, self.covariance = bandwidth, covariance
        self.bandwidth_factor: float | None = None

    def compute(self) -> torch.Tensor:
        """Return the mean log-likelihood (nats) of the generated samples."""
        real, fake = self._samples()
        value, self.bandwidth_factor = _kde_compute(real, fake, self.bandwidth, self.covariance)
        return value


class KLDivergence(_SampleMetric):
    """kNN estimate of the KL divergence D(real || generated); see :func:`kl_divergence_knn`.

    Args:
        feature_extractor: an ``nn.Module`` or callable mapping a batch to ``(N, d)``, or
            ``None`` (default) for feature inputs.
        num_features: ``d``.
        k: the neighbour rank.

    State: the float64 features of both sides (concatenated across processes).
    ``compute()`` without samples raises ``ValueError``.

    Example:
        >>> import torch
        >>> gen = torch.Generator().manual_seed(0)
        >>> metric = KLDivergence(num_features=1, k=1)
        >>> metric.update(torch.randn(2000, 1, generator=gen), torch.randn(2000, 1, generator=gen))
        >>> bool(metric.compute().abs() < 0.1)
        True
    """

    unit = "nats"
    higher_is_better = False

    def __init__(
        self, feature_extractor: Any = None, *, num_features: int, k: int = 1, **kwargs: Any
    ) -> None:
        check_int_range(k, "k", low=1)
        super().__init__(feature_extractor, num_features, **kwargs)
        self.k = k

    def compute(self) -> torch.Tensor:
        """Return the estimated D(real || generated) in nats."""
        real, fake = self._samples()
        return _kl_compute(real, fake, self.k)

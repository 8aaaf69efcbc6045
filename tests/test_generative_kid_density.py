"""KID, the Gaussian-KDE log-likelihood and the kNN KL divergence against peers and closed forms.

References: torch-fidelity 0.4 ``kid_features_to_metric`` (KID), ``scipy.stats.gaussian_kde``
(full-covariance KDE), scikit-learn ``KernelDensity`` (isotropic KDE), ``scipy.spatial.cKDTree``
neighbour distances in the estimator of Wang, Kulkarni and Verdu 2009 (KL), and the closed form
of the KL divergence between Gaussians.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.stats import gaussian_kde
from sklearn.neighbors import KernelDensity
from torch_fidelity.metric_kid import kid_features_to_metric

from andante_metrics.generative import (
    KID,
    KDELogLikelihood,
    KLDivergence,
    kde_bandwidth_factor,
    kde_log_likelihood,
    kernel_inception_distance,
    kl_divergence_knn,
)
from andante_metrics.utilities.logging import reset_warnings


def _pair(seed: int, n: int = 40, m: int = 40, dim: int = 5, shift: float = 0.3):
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    fake = torch.randn(m, dim, generator=gen, dtype=torch.float64) * 1.2 + shift
    return real, fake


def test_kid_equals_torch_fidelity_on_full_subsets():
    """With subsets of all samples, every draw is the same set, so the RNGs do not matter."""
    real, fake = _pair(0)
    expected = kid_features_to_metric(
        real, fake, kid_subsets=3, kid_subset_size=40, verbose=False, rng_seed=0
    )
    actual = kernel_inception_distance(real, fake, subsets=3, subset_size=40)
    assert float(actual["mean"]) == pytest.approx(
        expected["kernel_inception_distance_mean"], rel=1e-10
    )
    assert float(actual["std"]) == pytest.approx(0.0, abs=1e-12)


def test_kid_definition_by_loops():
    """The unbiased MMD^2 written as explicit sums over pairs (Binkowski et al., ICLR 2018)."""
    real, fake = _pair(1, n=7, m=7, dim=3)

    def kernel(a, b):
        return (float(a @ b) / 3 + 1) ** 3

    m = 7
    within = sum(
        kernel(real[i], real[j]) + kernel(fake[i], fake[j])
        for i in range(m)
        for j in range(m)
        if i != j
    )
    across = sum(kernel(real[i], fake[j]) for i in range(m) for j in range(m))
    expected = within / (m * (m - 1)) - 2 * across / m**2
    actual = kernel_inception_distance(real, fake, subsets=1, subset_size=7)
    assert float(actual["mean"]) == pytest.approx(expected, rel=1e-10)


def test_kid_subsets_seeded_and_order_free():
    real, fake = _pair(2, n=60, m=50)
    first = kernel_inception_distance(real, fake, subsets=20, subset_size=10, seed=3)
    again = kernel_inception_distance(
        real.flip(0), fake[torch.randperm(50)], subsets=20, subset_size=10, seed=3
    )
    other_seed = kernel_inception_distance(real, fake, subsets=20, subset_size=10, seed=4)
    assert float(again["mean"]) == pytest.approx(float(first["mean"]), rel=1e-12)
    assert float(first["std"]) > 0
    assert float(other_seed["mean"]) != float(first["mean"])


def test_kid_mean_near_full_set_value():
    """Averaging many subset estimates approaches the estimate on all samples."""
    real, fake = _pair(3, n=200, m=200, shift=0.5)
    full = kernel_inception_distance(real, fake, subsets=1, subset_size=200)
    subsets = kernel_inception_distance(real, fake, subsets=200, subset_size=50)
    assert float(subsets["mean"]) == pytest.approx(float(full["mean"]), rel=0.1)


def test_kid_small_sets_adapt_with_warning():
    reset_warnings()
    real, fake = _pair(4, n=6, m=6)
    with pytest.warns(UserWarning, match=r"`subset_size`=1000 exceeds.*subsets of 6 samples"):
        value = kernel_inception_distance(real, fake)
    # Every subset then contains all samples, so the draws agree and the spread is 0.
    assert float(value["std"]) == pytest.approx(0.0, abs=1e-12)
    full = kernel_inception_distance(real, fake, subsets=1, subset_size=6)
    assert float(value["mean"]) == pytest.approx(float(full["mean"]), rel=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda r, f: kernel_inception_distance(r[:1], f),
            ValueError,
            r"KID needs at least 2 real and 2 generated samples, got 1 and 40",
        ),
        (
            lambda r, f: kernel_inception_distance(r, f[:, :2]),
            ValueError,
            r"must have the same number of columns, got \(40, 5\) and \(40, 2\)",
        ),
        (
            lambda r, f: kernel_inception_distance(r, f, subset_size=1),
            ValueError,
            r"`subset_size` must be at least 2, got 1",
        ),
        (
            lambda r, f: KID(None, num_features=5, seed=-1),
            ValueError,
            r"`seed` must be at least 0, got -1",
        ),
    ],
)
def test_kid_rejects_bad_inputs(call, error, match):
    real, fake = _pair(5)
    with pytest.raises(error, match=match):
        call(real, fake)


def test_kid_metric_matches_function():
    real, fake = _pair(6, n=30, m=30)
    metric = KID(None, num_features=5, subsets=5, subset_size=10)
    metric.update(real[:12], fake[:20])
    metric.update(real[12:], fake[20:])
    expected = kernel_inception_distance(real, fake, subsets=5, subset_size=10)
    assert float(metric.compute()["mean"]) == pytest.approx(float(expected["mean"]), rel=1e-12)


@pytest.mark.parametrize("bandwidth", ["scott", "silverman", 0.4])
def test_kde_equals_scipy(bandwidth):
    reference, samples = _pair(7, n=300, m=50, dim=3)
    kde = gaussian_kde(reference.numpy().T, bw_method=bandwidth)
    expected = kde.logpdf(samples.numpy().T).mean()
    actual = kde_log_likelihood(reference, samples, bandwidth=bandwidth)
    assert float(actual) == pytest.approx(expected, rel=1e-9)
    assert kde_bandwidth_factor(300, 3, bandwidth) == pytest.approx(kde.factor, rel=1e-12)


def test_kde_isotropic_equals_scikit_learn():
    reference, samples = _pair(8, n=200, m=40, dim=4)
    factor = kde_bandwidth_factor(200, 4, "scott")
    width = factor * math.sqrt(float(reference.var(dim=0).mean()))
    kde = KernelDensity(kernel="gaussian", bandwidth=width).fit(reference.numpy())
    expected = kde.score_samples(samples.numpy()).mean()
    actual = kde_log_likelihood(reference, samples, covariance="isotropic")
    assert float(actual) == pytest.approx(expected, rel=1e-9)


def test_kde_diagonal_equals_written_out_sum():
    """A diagonal kernel: the product of 1-d normals with widths h * std, summed directly."""
    reference, samples = _pair(9, n=150, m=30, dim=2)
    reference[:, 0] *= 5.0
    widths = kde_bandwidth_factor(150, 2, "scott") * reference.std(dim=0)
    diff = (samples[:, None, :] - reference[None, :, :]) / widths
    log_kernel = -0.5 * diff.square().sum(-1) - torch.log(2 * math.pi * widths.prod())
    expected = float((torch.logsumexp(log_kernel, dim=1) - math.log(150)).mean())
    actual = kde_log_likelihood(reference, samples, covariance="diagonal")
    assert float(actual) == pytest.approx(expected, rel=1e-10)


def test_kde_bandwidth_factor_rejects_bad_sizes():
    with pytest.raises(ValueError, match=r"`n` must be at least 1, got 0"):
        kde_bandwidth_factor(0, 2)
    with pytest.raises(ValueError, match=r"`d` must be at least 1, got 0"):
        kde_bandwidth_factor(10, 0)
    with pytest.raises(ValueError, match=r"`bandwidth` must be one of 'scott', 'silverman'"):
        kde_bandwidth_factor(10, 2, "sott")


def test_kde_singular_covariance_error():
    reference, samples = _pair(10, n=20, m=5, dim=3)
    reference[:, 2] = 1.0
    with pytest.raises(
        ValueError,
        match=r"covariance of the reference samples is singular.*"
        r"use covariance='isotropic'",
    ):
        kde_log_likelihood(reference, samples)
    assert torch.isfinite(kde_log_likelihood(reference, samples, covariance="isotropic"))


def test_kde_metric_states_bandwidth():
    reference, samples = _pair(11, n=100, m=20, dim=2)
    metric = KDELogLikelihood(num_features=2, bandwidth="silverman")
    metric.update(reference[:50], samples[:10])
    metric.update(reference[50:], samples[10:])
    value = metric.compute()
    assert float(value) == pytest.approx(
        float(kde_log_likelihood(reference, samples, bandwidth="silverman")), rel=1e-12
    )
    assert metric.bandwidth_factor == pytest.approx((100 * 4 / 4) ** (-1 / 6))


def _kl_with_kdtree(p: np.ndarray, q: np.ndarray, k: int) -> float:
    """Wang, Kulkarni and Verdu (2009) estimator, with scipy's k-d tree for the neighbours."""
    n, d = p.shape
    rho = cKDTree(p).query(p, k=k + 1)[0][:, k]  # the query point itself comes first
    nu = cKDTree(q).query(p, k=k)[0]
    nu = nu[:, k - 1] if k > 1 else nu
    return d * float(np.mean(np.log(nu / rho))) + math.log(len(q) / (n - 1))


@pytest.mark.parametrize("k", [1, 3])
def test_kl_equals_kdtree_estimate(k):
    p, q = _pair(12, n=150, m=120, dim=3)
    expected = _kl_with_kdtree(p.numpy(), q.numpy(), k)
    assert float(kl_divergence_knn(p, q, k=k)) == pytest.approx(expected, rel=1e-10)


def test_kl_converges_to_gaussian_closed_form():
    """KL(N(0, I) || N(m, s^2 I)) = d/2 (1/s^2 - 1 + |m|^2/(d s^2) + 2 log s)."""
    gen = torch.Generator().manual_seed(13)
    d, s, shift = 2, 1.5, 1.0
    p = torch.randn(4000, d, generator=gen, dtype=torch.float64)
    q = torch.randn(4000, d, generator=gen, dtype=torch.float64) * s + shift
    expected = 0.5 * d * (1 / s**2 - 1 + d * shift**2 / (d * s**2) + 2 * math.log(s))
    assert float(kl_divergence_knn(p, q, k=5)) == pytest.approx(expected, abs=0.05)


def test_kl_rejects_duplicates_and_small_sets():
    p, q = _pair(14, n=10, m=10)
    with pytest.raises(ValueError, match=r"10 k-th nearest-neighbour distance\(s\) are 0"):
        kl_divergence_knn(p, p)
    with pytest.raises(ValueError, match=r"k=5 needs at least 6 samples of P and 5 of Q, got 4"):
        kl_divergence_knn(p[:4], q, k=5)
    with pytest.raises(ValueError, match=r"`k` must be at least 1, got 0"):
        kl_divergence_knn(p, q, k=0)


def test_kl_metric_direction_real_to_fake():
    p, q = _pair(15, n=80, m=60, dim=2, shift=1.0)
    metric = KLDivergence(num_features=2)
    metric.update(p[:30], q[:30])
    metric.update(p[30:], q[30:])
    assert float(metric.compute()) == pytest.approx(float(kl_divergence_knn(p, q)), rel=1e-12)
    with pytest.raises(TypeError, match=r"`feature_extractor` must be an nn.Module.*int"):
        KLDivergence(3, num_features=2)

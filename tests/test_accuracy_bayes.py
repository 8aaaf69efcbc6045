"""Closed-form tests of the Bayes-error estimators (k-NN, MST/GHP, soft labels) and gap to Bayes.

Every synthetic problem puts class ``k`` at ``N(mu_k, 1)`` along the first axis, with a second,
uninformative ``N(0, 1)`` axis. The posteriors depend only on the first coordinate, so the Bayes
error ``E[1 - max_k eta_k]`` and the Gini impurity ``G = 1 - E[sum_k eta_k^2]`` (the limit of the
leave-one-out 1-NN error and of the cross-class MST edge fraction) are one-dimensional integrals,
computed with ``scipy.integrate.quad``.

Tolerances: at N samples, the 1-NN error and the edge fraction are means of 0/1 values with a
spread close to the binomial one, ``sqrt(G (1 - G) / N)`` (the spread over 8 seeds matched it
within 25 percent). A test allows 4 of these standard errors plus 0.01 for the finite-sample
bias, which stayed below 0.007 over those seeds in two dimensions at N = 3000.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.sparse.csgraph import minimum_spanning_tree as scipy_mst
from scipy.spatial.distance import pdist, squareform
from sklearn.neighbors import NearestNeighbors

from andante_metrics import BayesErrorEstimator, BayesErrorResult, GapToBayes
from andante_metrics.accuracy.bayes import cover_hart_lower_bound
from andante_metrics.accuracy.bayes._distances import (
    leave_one_out_neighbors,
    minimum_spanning_tree,
)
from andante_metrics.functional import bayes_error, gap_to_bayes

N = 3000
HAS_FAISS = importlib.util.find_spec("faiss") is not None


def _truths(priors, means, rho=0.0):
    """Return (Bayes error, Gini impurity) by quadrature; labels replaced with prob. ``rho``."""
    priors, means = np.asarray(priors), np.asarray(means, dtype=float)
    num_classes = len(priors)

    def density_and_posterior(x):
        weighted = priors * stats.norm.pdf(x - means)
        total = weighted.sum()
        return total, (1 - rho) * weighted / total + rho / num_classes

    def bayes_integrand(x):
        total, post = density_and_posterior(x)
        return total * (1 - post.max())

    def gini_integrand(x):
        total, post = density_and_posterior(x)
        return total * (1 - (post**2).sum())

    span = (means.min() - 12, means.max() + 12)
    bayes = integrate.quad(bayes_integrand, *span, limit=200, points=list(means))[0]
    gini = integrate.quad(gini_integrand, *span, limit=200, points=list(means))[0]
    return bayes, gini


def _sample(priors, means, rho=0.0, n=N, seed=0):
    """Draw features, labels (noisy with prob. ``rho``) and the true (noisy) posteriors."""
    gen = torch.Generator().manual_seed(seed)
    priors_t = torch.tensor(priors, dtype=torch.float64)
    means_t = torch.tensor(means, dtype=torch.float64)
    num_classes = len(priors)
    labels = torch.multinomial(priors_t, n, replacement=True, generator=gen)
    features = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    features[:, 0] += means_t[labels]
    flip = torch.rand(n, generator=gen, dtype=torch.float64) < rho
    noisy = torch.where(flip, torch.randint(0, num_classes, (n,), generator=gen), labels)
    log_weighted = priors_t.log() - 0.5 * (features[:, :1] - means_t) ** 2
    posterior = (1 - rho) * log_weighted.softmax(dim=1) + rho / num_classes
    return features.float(), noisy, posterior


def _tolerance(gini, n=N):
    return 4 * math.sqrt(gini * (1 - gini) / n) + 0.01


PROBLEMS = {
    "equal_priors": ([0.5, 0.5], [0.0, 2.0], 0.0),
    "unequal_priors": ([0.8, 0.2], [0.0, 2.0], 0.0),
    "four_classes": ([0.25] * 4, [0.0, 2.5, 5.0, 7.5], 0.0),
    "label_noise": ([1 / 3] * 3, [0.0, 2.0, 4.0], 0.3),
}


def test_two_gaussians_closed_form():
    # Reference: Bayes error Phi(-Delta/2) for equal priors and Mahalanobis distance Delta = 2.
    bayes, _ = _truths([0.5, 0.5], [0.0, 2.0])
    assert bayes == pytest.approx(stats.norm.cdf(-1.0), abs=1e-9)


def test_unequal_priors_closed_form():
    # Reference: threshold t = Delta/2 + ln(p0/p1)/Delta on the projection, so the error is
    # p0 Phi(-t) + p1 Phi(t - Delta).
    p0, p1, delta = 0.8, 0.2, 2.0
    threshold = delta / 2 + math.log(p0 / p1) / delta
    expected = p0 * stats.norm.cdf(-threshold) + p1 * stats.norm.cdf(threshold - delta)
    bayes, _ = _truths([p0, p1], [0.0, delta])
    assert bayes == pytest.approx(expected, abs=1e-9)


def test_label_noise_identity():
    # Reference: uniform label noise of rate rho gives rho (K-1)/K + (1 - rho) * clean error.
    rho, num_classes = 0.3, 3
    clean, _ = _truths([1 / 3] * 3, [0.0, 2.0, 4.0])
    noisy, _ = _truths([1 / 3] * 3, [0.0, 2.0, 4.0], rho=rho)
    assert noisy == pytest.approx(rho * (num_classes - 1) / num_classes + (1 - rho) * clean,
                                  abs=1e-9)


@pytest.mark.parametrize("method", ["knn", "ghp"])
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_bound_methods_bracket_bayes(problem, method):
    priors, means, rho = PROBLEMS[problem]
    bayes, gini = _truths(priors, means, rho)
    features, labels, _ = _sample(priors, means, rho)
    result = bayes_error(features, labels, num_classes=len(priors), method=method,
                         n_bootstrap=200)
    assert result.upper == pytest.approx(gini, abs=_tolerance(gini))
    assert result.lower < bayes
    assert result.upper > bayes
    assert result.ci_low <= result.lower
    assert result.ci_high >= result.upper
    assert math.isnan(result.estimate)


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_soft_label_matches_bayes(problem):
    # Soft labels equal to the true posteriors make mean(1 - max c) unbiased; its standard
    # error is sd(1 - max c) / sqrt(N).
    priors, means, rho = PROBLEMS[problem]
    bayes, _ = _truths(priors, means, rho)
    _, labels, posterior = _sample(priors, means, rho)
    result = bayes_error(posterior, labels, num_classes=len(priors), method="soft_label",
                         n_bootstrap=200)
    spread = float((1 - posterior.max(dim=1).values).std()) / math.sqrt(N)
    assert result.estimate == pytest.approx(bayes, abs=4 * spread)
    assert result.ci_low < result.estimate < result.ci_high
    assert math.isnan(result.lower)
    assert math.isnan(result.upper)


def test_soft_label_binary_form():
    # Reference: the binary form mean(min(c, 1 - c)) of Ishida et al. (ICLR 2023).
    positive = torch.rand(50, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    probs = torch.stack([1 - positive, positive], dim=1)
    result = bayes_error(probs, torch.zeros(50, dtype=torch.long), num_classes=2,
                         method="soft_label", n_bootstrap=0)
    assert result.estimate == pytest.approx(float(torch.minimum(positive, 1 - positive).mean()))


def test_cover_hart_bound_inverts_the_inequality():
    # Reference: Cover and Hart (1967), R <= e (2 - K e / (K - 1)); the bound solves it for e.
    for num_classes in (2, 3, 10):
        for error in (0.0, 0.05, 0.3, (num_classes - 1) / num_classes):
            bound = float(cover_hart_lower_bound(error, num_classes))
            assert bound * (2 - num_classes * bound / (num_classes - 1)) == pytest.approx(error)
            assert bound <= error + 1e-12


def test_knn_neighbors_match_sklearn_brute():
    # Reference: scikit-learn NearestNeighbors(algorithm="brute"), own point removed.
    features = torch.randn(700, 20, generator=torch.Generator().manual_seed(1))
    ours = leave_one_out_neighbors(features, 5, chunk_size=64)
    model = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(features.double().numpy())
    theirs = model.kneighbors(return_distance=False)
    np.testing.assert_array_equal(ours.numpy(), theirs[:, :5])


def test_knn_error_matches_sklearn_vote():
    # Reference: plurality vote over scikit-learn's leave-one-out neighbours, ties to the
    # smallest class, as KNeighborsClassifier does.
    features, labels, _ = _sample([0.5, 0.5], [0.0, 2.0], n=500)
    model = NearestNeighbors(n_neighbors=3, algorithm="brute").fit(features.double().numpy())
    neighbor_labels = labels.numpy()[model.kneighbors(return_distance=False)]
    votes = np.stack([np.bincount(row, minlength=2) for row in neighbor_labels])
    expected = float((votes.argmax(axis=1) != labels.numpy()).mean())
    result = bayes_error(features, labels, num_classes=2, k=3, n_bootstrap=0)
    assert result.upper == pytest.approx(expected)


def test_knn_point_never_own_neighbor_with_duplicates():
    features = torch.randn(40, 3, generator=torch.Generator().manual_seed(2))
    features = torch.cat([features, features[:10]])
    neighbors = leave_one_out_neighbors(features, 2)
    assert not bool((neighbors == torch.arange(50)[:, None]).any())
    # The first neighbour of a duplicated point is its copy at distance 0.
    assert neighbors[:10, 0].tolist() == list(range(40, 50))
    assert neighbors[40:, 0].tolist() == list(range(10))


def test_chunk_size_does_not_change_result():
    features, labels, _ = _sample([0.5, 0.5], [0.0, 2.0], n=400)
    for method in ("knn", "ghp"):
        whole = bayes_error(features, labels, num_classes=2, method=method, n_bootstrap=50)
        chunked = bayes_error(features, labels, num_classes=2, method=method, n_bootstrap=50,
                              chunk_size=64)
        assert chunked == whole


def test_mst_length_matches_scipy():
    # Reference: scipy.sparse.csgraph.minimum_spanning_tree on the dense distance matrix
    # (no duplicate points, so no zero-length edge is lost there).
    points = np.random.default_rng(4).normal(size=(300, 5))
    edges = minimum_spanning_tree(torch.from_numpy(points), chunk_size=50).numpy()
    ours = np.linalg.norm(points[edges[:, 0]] - points[edges[:, 1]], axis=1).sum()
    theirs = scipy_mst(squareform(pdist(points))).sum()
    assert len(edges) == 299
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_mst_duplicates_stay_connected():
    points = np.random.default_rng(5).normal(size=(60, 2))
    points = np.concatenate([points, points[:20], points[:5]])
    edges = minimum_spanning_tree(torch.from_numpy(points)).numpy()
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(85, 85))
    assert len(edges) == 84
    assert connected_components(graph, directed=False)[0] == 1
    # Each of the 25 copies hangs on its original by a zero-length edge. scipy reads a zero in
    # a dense matrix as a missing edge, so its tree must use longer edges instead.
    lengths = np.linalg.norm(points[edges[:, 0]] - points[edges[:, 1]], axis=1)
    assert int((lengths == 0).sum()) == 25
    assert lengths.sum() < scipy_mst(squareform(pdist(points))).sum()


def test_result_invariant_to_sample_order():
    features, labels, posterior = _sample([0.5, 0.5], [0.0, 2.0], n=500)
    order = torch.randperm(500, generator=torch.Generator().manual_seed(9))
    for method, inputs in (("knn", features), ("ghp", features), ("soft_label", posterior)):
        first = bayes_error(inputs, labels, num_classes=2, method=method, n_bootstrap=100)
        second = bayes_error(inputs[order], labels[order], num_classes=2, method=method,
                             n_bootstrap=100)
        assert second.upper == first.upper or math.isnan(first.upper)
        assert second.ci_high == pytest.approx(first.ci_high, abs=1e-12)
        assert second.estimate == pytest.approx(first.estimate, abs=1e-12, nan_ok=True)


def test_metric_matches_function_over_batches():
    features, labels, _ = _sample([0.25] * 4, [0.0, 2.5, 5.0, 7.5], n=600)
    metric = BayesErrorEstimator(num_classes=4, method="ghp", n_bootstrap=100)
    for begin in range(0, 600, 128):
        metric.update(features[begin : begin + 128], labels[begin : begin + 128])
    result = metric.compute()
    assert isinstance(result, BayesErrorResult)
    assert result == bayes_error(features, labels, num_classes=4, method="ghp", n_bootstrap=100)


@pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed (optional backend)")
def test_faiss_backend_matches_torch():
    features = torch.randn(500, 16, generator=torch.Generator().manual_seed(6))
    np.testing.assert_array_equal(leave_one_out_neighbors(features, 3, backend="faiss").numpy(),
                                  leave_one_out_neighbors(features, 3).numpy())


@pytest.mark.skipif(HAS_FAISS, reason="faiss is installed")
def test_faiss_backend_missing_raises():
    with pytest.raises(ModuleNotFoundError, match=r"backend='faiss' needs the faiss package"):
        BayesErrorEstimator(num_classes=2, backend="faiss")


def test_gap_to_bayes_values():
    assert float(gap_to_bayes(0.2, 0.05)) == pytest.approx(0.15)
    result = BayesErrorResult("knn", math.nan, 0.1, 0.18, 0.08, 0.2, 0.95, 100, 2)
    assert float(gap_to_bayes(0.3, result, reference="upper")) == pytest.approx(0.12)
    assert float(gap_to_bayes(0.3, result, reference="lower")) == pytest.approx(0.2)


def test_gap_metric_matches_function():
    gen = torch.Generator().manual_seed(8)
    logits = torch.randn(200, 3, generator=gen)
    labels = torch.randint(0, 3, (200,), generator=gen)
    metric = GapToBayes(num_classes=3, bayes_error=0.1)
    metric.update(logits[:120], labels[:120])
    metric.update(logits[120:], labels[120:])
    error = float((logits.argmax(dim=1) != labels).double().mean())
    assert float(metric.compute()) == pytest.approx(error - 0.1)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: gap_to_bayes(0.2, BayesErrorResult("knn", math.nan, 0.1, 0.2, 0.1, 0.2, 0.95,
                                                     10, 2)),
         ValueError, r"method='knn' has no 'estimate' \(NaN\); pass reference='upper'"),
        (lambda: gap_to_bayes(1.5, 0.1), ValueError, r"`model_error` must be one value in"),
        (lambda: gap_to_bayes(0.2, 1.2), ValueError, r"`bayes_error` must lie in \[0, 1\]"),
        (lambda: gap_to_bayes(0.2, "0.1"), TypeError, r"`bayes_error` must be a float"),
        (lambda: gap_to_bayes(0.2, 0.1, reference="mid"), ValueError,
         r"`reference` must be one of 'estimate', 'lower', 'upper', got 'mid'"),
        (lambda: bayes_error(torch.randn(5, 2), torch.zeros(5, dtype=torch.long), num_classes=2,
                             method="bayes"), ValueError, r"`method` must be one of 'knn'"),
        (lambda: bayes_error(torch.randn(5, 2), torch.zeros(5, dtype=torch.long), num_classes=2,
                             confidence=95), ValueError, r"`confidence` must be a float strictly"),
        (lambda: bayes_error(torch.randn(5, 2), torch.zeros(5, dtype=torch.long), num_classes=2,
                             backend="annoy"), ValueError, r"`backend` must be one of 'torch'"),
        (lambda: bayes_error(torch.randn(3, 2), torch.zeros(3, dtype=torch.long), num_classes=2,
                             k=3), ValueError, r"method='knn' needs at least 4 samples, got 3"),
        (lambda: bayes_error(torch.randn(1, 2), torch.zeros(1, dtype=torch.long), num_classes=2,
                             method="ghp"), ValueError, r"method='ghp' needs at least 2 samples"),
        (lambda: bayes_error(torch.full((2, 3), 1 / 3), torch.zeros(2, dtype=torch.long),
                             num_classes=2, method="soft_label"), ValueError,
         r"`features` must hold \(N, num_classes=2\) class probabilities"),
        (lambda: bayes_error(torch.tensor([[1.5, -0.5]]), torch.zeros(1, dtype=torch.long),
                             num_classes=2, method="soft_label"), ValueError,
         r"`features` must hold probabilities in \[0, 1\]"),
        (lambda: bayes_error(torch.tensor([[0.5, 0.1]]), torch.zeros(1, dtype=torch.long),
                             num_classes=2, method="soft_label"), ValueError,
         r"`features` rows must sum to 1.*off by 0.4"),
        (lambda: cover_hart_lower_bound(float("nan"), 3), ValueError,
         r"`error` must contain error rates in \[0, 1\] \(NaN is rejected\), got nan"),
        (lambda: cover_hart_lower_bound(1.5, 3), ValueError,
         r"`error` must contain error rates in \[0, 1\].*got 1.5"),
        (lambda: cover_hart_lower_bound(0.1, 1), ValueError, r"`num_classes` must be at least 2"),
    ],
)
def test_error_paths(call, error, match):
    with pytest.raises(error, match=match):
        call()

"""Frechet distance and the streaming FID metric on feature inputs.

References: pytorch-fid 0.3 ``calculate_frechet_distance`` (scipy ``sqrtm``) on random
covariances, and the closed form for covariances with a common eigenbasis,
``|mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2`` with ``a``, ``b`` their eigenvalues.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance, compute_statistics_of_path

from andante_metrics.generative import (
    FID,
    frechet_distance,
    load_fid_statistics,
    save_fid_statistics,
)


def _random_gaussian(dim: int, samples: int, gen: torch.Generator):
    features = torch.randn(samples, dim, generator=gen, dtype=torch.float64)
    features = features @ torch.randn(dim, dim, generator=gen, dtype=torch.float64)
    return features.mean(0), torch.cov(features.mT)


def _common_basis(eigen1: torch.Tensor, eigen2: torch.Tensor, seed: int = 0):
    dim = eigen1.shape[0]
    gen = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    return basis @ torch.diag(eigen1) @ basis.mT, basis @ torch.diag(eigen2) @ basis.mT


@pytest.mark.parametrize(("dim", "samples", "seed"), [(8, 50, 0), (64, 200, 1), (128, 300, 2)])
def test_frechet_equals_pytorch_fid(dim, samples, seed):
    gen = torch.Generator().manual_seed(seed)
    mu1, sigma1 = _random_gaussian(dim, samples, gen)
    mu2, sigma2 = _random_gaussian(dim, samples, gen)
    expected = calculate_frechet_distance(mu1.numpy(), sigma1.numpy(), mu2.numpy(), sigma2.numpy())
    actual = frechet_distance(mu1, sigma1, mu2, sigma2)
    assert actual.dtype == torch.float64
    assert float(actual) == pytest.approx(expected, rel=1e-6)


def test_frechet_closed_form_common_eigenbasis():
    eigen1 = torch.linspace(0.5, 3.0, 16, dtype=torch.float64)
    eigen2 = torch.linspace(2.0, 0.1, 16, dtype=torch.float64)
    sigma1, sigma2 = _common_basis(eigen1, eigen2)
    mu1, mu2 = torch.zeros(16, dtype=torch.float64), torch.full((16,), 0.5, dtype=torch.float64)
    expected = 16 * 0.25 + float((eigen1.sqrt() - eigen2.sqrt()).square().sum())
    assert float(frechet_distance(mu1, sigma1, mu2, sigma2)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("singular_side", [1, 2])
def test_frechet_singular_covariance_closed_form(singular_side):
    """Rank-deficient covariances (fewer samples than dimensions) take the eigh path."""
    eigen_singular = torch.cat([torch.linspace(1.0, 2.0, 5), torch.zeros(11)]).double()
    eigen_full = torch.linspace(0.5, 1.5, 16, dtype=torch.float64)
    pair = (eigen_singular, eigen_full) if singular_side == 1 else (eigen_full, eigen_singular)
    sigma1, sigma2 = _common_basis(*pair, seed=3)
    mu = torch.zeros(16, dtype=torch.float64)
    expected = float((pair[0].sqrt() - pair[1].sqrt()).square().sum())
    assert float(frechet_distance(mu, sigma1, mu, sigma2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_of_gaussian_with_itself_is_zero():
    gen = torch.Generator().manual_seed(4)
    mu, sigma = _random_gaussian(200, 100, gen)  # singular: 100 samples in 200 dimensions
    value = frechet_distance(mu, sigma, mu, sigma)
    assert float(value) >= 0.0
    assert float(value) < 1e-9 * float(torch.trace(sigma))


def test_frechet_accepts_numpy_and_float32():
    eye = np.eye(3)
    value = frechet_distance(np.zeros(3), eye, torch.ones(3), torch.eye(3) * 4)
    assert float(value) == pytest.approx(3 + 3 + 12 - 2 * 6)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (
            (torch.zeros(3), torch.eye(3), torch.zeros(2), torch.eye(3)),
            ValueError,
            r"`mu2` must have shape \(3,\) to match `mu1` of shape \(3,\), got \(2,\)",
        ),
        (
            (torch.zeros(3), torch.eye(2), torch.zeros(3), torch.eye(3)),
            ValueError,
            r"`sigma1` must have shape \(3, 3\).*got \(2, 2\)",
        ),
        (
            (torch.zeros(3), torch.eye(3), torch.zeros(3), torch.full((3, 3), float("nan"))),
            ValueError,
            r"`sigma2` contains 9 NaN or infinite",
        ),
        (
            (torch.zeros(3, 1), torch.eye(3), torch.zeros(3), torch.eye(3)),
            ValueError,
            r"`mu1` must have 1 dimensions",
        ),
        (
            ([0.0, 0.0], torch.eye(2), torch.zeros(2), torch.eye(2)),
            TypeError,
            r"`mu1` must be a torch.Tensor",
        ),
        (
            (torch.zeros(0), torch.zeros(0, 0), torch.zeros(0), torch.zeros(0, 0)),
            ValueError,
            r"`mu1` is empty \(shape \(0,\)\); pass the mean and covariance of at least one",
        ),
    ],
)
def test_frechet_rejects_bad_inputs(args, error, match):
    with pytest.raises(error, match=match):
        frechet_distance(*args)


def _feature_sets(gen: torch.Generator, dim: int = 6):
    real = torch.randn(300, dim, generator=gen, dtype=torch.float64)
    fake = torch.randn(250, dim, generator=gen, dtype=torch.float64) * 1.3 + 0.2
    return real, fake


def test_fid_metric_equals_pytorch_fid_on_features():
    """Streamed sums against numpy mean/cov of all features and pytorch-fid's distance."""
    real, fake = _feature_sets(torch.Generator().manual_seed(5))
    metric = FID(None, num_features=6)
    for begin in range(0, 300, 70):
        metric.update(real[begin : begin + 70].float(), fake[begin : begin + 70].float())
    real_np, fake_np = real.float().double().numpy(), fake.float().double().numpy()
    expected = calculate_frechet_distance(
        real_np.mean(0),
        np.cov(real_np, rowvar=False),
        fake_np.mean(0),
        np.cov(fake_np, rowvar=False),
    )
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-6)


def test_fid_custom_extractor_callable():
    gen = torch.Generator().manual_seed(6)
    images = torch.rand(20, 1, 4, 4, generator=gen)
    metric = FID(lambda x: x.flatten(1)[:, :3] * 2, num_features=3)
    metric.update(images[:10], images[10:])
    features = images.flatten(1)[:, :3].double() * 2
    expected = frechet_distance(
        features[:10].mean(0),
        torch.cov(features[:10].mT),
        features[10:].mean(0),
        torch.cov(features[10:].mT),
    )
    assert float(metric.compute()) == pytest.approx(float(expected), rel=1e-9)


def test_fid_rejects_extractor_output():
    metric = FID(lambda x: x, num_features=3)
    with pytest.raises(ValueError, match=r"feature extractor must return an \(N, d\) tensor"):
        metric.update(torch.rand(2, 1, 4, 4))
    metric = FID(lambda x: x.flatten(1), num_features=3)
    with pytest.raises(ValueError, match=r"`real` features must have num_features=3 columns"):
        metric.update(torch.rand(2, 1, 4, 4))


def test_fid_needs_two_samples_per_side():
    metric = FID(None, num_features=2)
    metric.update(torch.randn(5, 2), torch.randn(1, 2))
    with pytest.raises(ValueError, match=r"FID needs at least 2 fake samples.*got 1"):
        metric.compute()


def test_fid_options_rejected():
    with pytest.raises(ValueError, match=r"`num_features` must be given"):
        FID(None)
    with pytest.raises(TypeError, match=r"`feature_extractor` must be 'inception'.*int"):
        FID(3, num_features=2)
    with pytest.raises(ValueError, match=r"`num_features` must be 2048 for Inception, got 64"):
        FID(num_features=64)


def test_statistics_round_trip_with_pytorch_fid(tmp_path):
    """Saved .npz files load in pytorch-fid, and reference statistics give the same FID."""
    real, fake = _feature_sets(torch.Generator().manual_seed(7))
    streamed = FID(None, num_features=6)
    streamed.update(real, fake)
    path = streamed.save_real_statistics(tmp_path / "real_stats.npz")

    mu_theirs, sigma_theirs = compute_statistics_of_path(str(path), None, 1, 6, "cpu")
    mu, sigma = streamed.real_statistics()
    np.testing.assert_array_equal(mu_theirs, mu.numpy())
    np.testing.assert_array_equal(sigma_theirs, sigma.numpy())

    from_file = FID(None, num_features=6, reference_statistics=path)
    from_file.update(fake=fake)
    assert float(from_file.compute()) == pytest.approx(float(streamed.compute()), rel=1e-12)


def test_statistics_file_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, mean=np.zeros(2))
    with pytest.raises(
        ValueError, match=r"must contain arrays 'mu' and 'sigma'.*\['mu', 'sigma'\]"
    ):
        load_fid_statistics(bad)
    mismatched = tmp_path / "mismatched.npz"
    np.savez(mismatched, mu=np.zeros(2), sigma=np.eye(3))
    with pytest.raises(ValueError, match=r"'sigma' in .* must have shape \(2, 2\).*\(3, 3\)"):
        load_fid_statistics(mismatched)
    saved = save_fid_statistics(tmp_path / "plain", np.zeros(2), np.eye(2))
    assert saved.name == "plain.npz"
    with pytest.raises(TypeError, match=r"`reference_statistics` must be a .npz path or a"):
        FID(None, num_features=2, reference_statistics=np.zeros(2))


def test_fid_state_size_constant_in_samples():
    metric = FID(None, num_features=16)
    sizes = []
    for _ in range(3):
        metric.update(torch.randn(500, 16), torch.randn(500, 16))
        sizes.append(sum(t.numel() * t.element_size() for t in metric.metric_state.values()))
    assert sizes == [sizes[0]] * 3
    assert sizes[0] == 2 * (16 + 16 * 16) * 8 + 2 * 8


def test_extract_features_from_loader():
    """Features of a DataLoader of (images, labels) pairs, in loader order, as float64."""
    from torch.utils.data import DataLoader, TensorDataset

    from andante_metrics.generative import extract_features

    images = torch.rand(10, 1, 4, 4, generator=torch.Generator().manual_seed(8))
    loader = DataLoader(TensorDataset(images, torch.zeros(10)), batch_size=4)
    features = extract_features(lambda x: x.flatten(1)[:, :2], loader, progress=False)
    assert features.dtype == torch.float64
    torch.testing.assert_close(features, images.flatten(1)[:, :2].double())
    with pytest.raises(ValueError, match=r"`loader` yielded no batches"):
        extract_features(lambda x: x, [], progress=False)
    with pytest.raises(ValueError, match=r"must return an \(N, d\) tensor per batch"):
        extract_features(lambda x: x, [images], progress=False)

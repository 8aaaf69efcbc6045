"""FID Inception v3: equal to pytorch-fid 0.3 given the same (random) weights file, offline.

No real weights are needed: a randomly initialised checkpoint with the layout of
``pt_inception-2015-12-05-6726825d.pth`` is written into a temporary torch hub folder, where
both pytorch-fid and andante_metrics look for it. pytorch-fid is the reference for the
features and, through its ``calculate_frechet_distance``, for the FID value.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from pytorch_fid.inception import InceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from andante_metrics.generative import FID, FIDInceptionV3, find_inception_weights
from andante_metrics.generative.inception import (
    WEIGHTS_ENV_VAR,
    WEIGHTS_FILENAME,
    _InceptionNetwork,
    preprocess_images,
)


def _random_checkpoint(seed: int = 0) -> dict[str, torch.Tensor]:
    """Return a random state dict in pytorch-fid's layout that keeps the input's signal.

    He-normal convolutions and batch norm close to the identity keep the activations' scale
    through the 94 layers, so different images give different features.
    """
    torch.manual_seed(seed)
    state = _InceptionNetwork().state_dict()
    gen = torch.Generator().manual_seed(seed)
    for key, value in state.items():
        if key.endswith("conv.weight"):
            fan_in = value[0].numel()
            value.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=gen)
        elif key.endswith("running_var"):
            value.uniform_(0.8, 1.2, generator=gen)
        elif key.endswith(("running_mean", "bn.bias")):
            value.uniform_(-0.01, 0.01, generator=gen)
        elif key.endswith("bn.weight"):
            value.uniform_(0.9, 1.1, generator=gen)
    state["fc.weight"] = torch.randn(1008, 2048, generator=gen) * 0.01
    state["fc.bias"] = torch.zeros(1008)
    return state


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory):
    """A temporary $TORCH_HOME whose hub checkpoint folder contains the random weights file."""
    home = tmp_path_factory.mktemp("torch_home")
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(_random_checkpoint(), folder / WEIGHTS_FILENAME)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(home))
        patch.delenv(WEIGHTS_ENV_VAR, raising=False)
        yield home


@pytest.fixture(scope="module")
def networks(torch_home):
    """pytorch-fid's network and ours, both loaded from the file in the temporary hub folder."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return InceptionV3([3]).eval(), FIDInceptionV3()


def _reference_features(model: InceptionV3, images: torch.Tensor) -> torch.Tensor:
    """pytorch-fid's pipeline: uint8 / 255 (as its ToTensor), its model, the pool output."""
    with torch.no_grad():
        return model(images.float() / 255.0)[0].squeeze(3).squeeze(2)


def _images(count: int, size: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=gen)


@pytest.mark.parametrize("size", [299, 32])
def test_features_equal_pytorch_fid(networks, size):
    reference_model, ours = networks
    images = _images(2, size, seed=size)
    expected = _reference_features(reference_model, images)
    with torch.no_grad():
        actual = ours(images)
    assert actual.shape == (2, 2048)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    # The two images must give clearly different features, or the comparison proves little.
    assert (expected[0] - expected[1]).abs().max() > 100 * 1e-5 * expected.abs().max()


def test_float_images_quantized_like_uint8(networks):
    _, ours = networks
    images = _images(1, 32, seed=1)
    # Up to 0.4 grey levels of noise round back to the uint8 value.
    noise = (torch.rand(images.shape, generator=torch.Generator().manual_seed(0)) - 0.5) * 0.8
    as_float = ((images.double() + noise) / 255).clamp(0, 1).float()
    with torch.no_grad():
        torch.testing.assert_close(ours(as_float), ours(images), rtol=1e-5, atol=1e-5)


def test_features_independent_of_batch_size(networks):
    _, ours = networks
    images = _images(2, 32, seed=2)
    with torch.no_grad():
        together = ours(images)
        apart = torch.cat([ours(images[:1]), ours(images[1:])])
    torch.testing.assert_close(together, apart, rtol=1e-5, atol=1e-5)


def _fid_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    real, fake = _images(3, 32, seed=3), _images(3, 32, seed=4)
    fake[:, 0] = fake[:, 0] // 2  # a colour shift, so the two sets differ in the mean
    return real, fake


def _streamed_fid(ours: FIDInceptionV3, real: torch.Tensor, fake: torch.Tensor) -> FID:
    metric = FID()
    metric.feature_extractor.load_state_dict(ours.state_dict())
    metric.update(real[:1], fake[:2])
    metric.update(real[1:], fake[2:])
    return metric


def test_fid_statistics_equal_pytorch_fid(networks):
    """Means and covariances of the streamed FID state against pytorch-fid's features + numpy."""
    reference_model, ours = networks
    real, fake = _fid_inputs()
    metric = _streamed_fid(ours, real, fake)
    for images, (mu, sigma) in ((real, metric.real_statistics()), (fake, metric.fake_statistics())):
        features = _reference_features(reference_model, images).double().numpy()
        np.testing.assert_allclose(mu.numpy(), features.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            sigma.numpy(), np.cov(features, rowvar=False), rtol=1e-5, atol=1e-6
        )


@pytest.mark.slow
def test_fid_equals_pytorch_fid(networks):
    """FID against pytorch-fid's features, numpy statistics and sqrtm (about a minute)."""
    reference_model, ours = networks
    real, fake = _fid_inputs()
    stats = []
    for images in (real, fake):
        features = _reference_features(reference_model, images).double().numpy()
        stats += [features.mean(axis=0), np.cov(features, rowvar=False)]
    expected = calculate_frechet_distance(*stats)
    metric = _streamed_fid(ours, real, fake)
    # 3 samples in 2048 dimensions give singular covariances, where scipy's sqrtm is accurate
    # to about 1e-6 relative.
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-5)


def test_preprocess_matches_reference_resize():
    """Bilinear resize with align_corners=False, as pytorch-fid 0.3, then 2 x - 1."""
    images = _images(1, 32, seed=5)
    expected = torch.nn.functional.interpolate(
        images.float() / 255, size=(299, 299), mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(preprocess_images(images), 2 * expected - 1)
    assert preprocess_images(images, resize="none").shape == (1, 3, 32, 32)
    gray = preprocess_images(images[:, :1])
    torch.testing.assert_close(gray[:, 1], gray[:, 0])


@pytest.mark.parametrize(
    ("images", "error", "match"),
    [
        (torch.rand(1, 3, 8, 8) * 2, ValueError, r"float `images` must hold values in \[0, 1\]"),
        (
            torch.zeros(1, 2, 8, 8),
            ValueError,
            r"`images` must have 1 or 3 channels.*\(1, 2, 8, 8\)",
        ),
        (torch.zeros(1, 3, 8, 8, dtype=torch.int32), TypeError, r"uint8 in \[0, 255\].*int32"),
        (torch.zeros(3, 8, 8), ValueError, r"`images` must have 4 dimensions"),
    ],
)
def test_preprocess_rejects_bad_images(images, error, match):
    with pytest.raises(error, match=match):
        preprocess_images(images)


def test_preprocess_rejects_bad_resize():
    match = r"`resize` must be one of 'bilinear', 'tf1-bilinear', 'none', got 'tf'"
    with pytest.raises(ValueError, match=match):
        preprocess_images(_images(1, 8, 0), resize="tf")


@pytest.mark.parametrize("size", [32, 400])
def test_tf1_resize_equals_torch_fidelity(size):
    """The TensorFlow 1 sampling grid against torch-fidelity 0.4's port of it (up and down)."""
    images = _images(2, size, seed=6)
    expected = interpolate_bilinear_2d_like_tensorflow1x(
        images.float() / 255, size=(299, 299), align_corners=False
    )
    actual = preprocess_images(images, resize="tf1-bilinear")
    torch.testing.assert_close(actual, 2 * expected - 1, rtol=1e-5, atol=1e-5)
    reference_grid = preprocess_images(images, resize="bilinear")
    assert (actual - reference_grid).abs().max() > 1e-3  # the two grids differ


def test_missing_weights_error_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(WEIGHTS_ENV_VAR, raising=False)
    folder = tmp_path / "hub" / "checkpoints"
    with pytest.raises(FileNotFoundError, match=WEIGHTS_FILENAME) as info:
        FIDInceptionV3()
    assert str(folder / WEIGHTS_FILENAME) in str(info.value)
    assert WEIGHTS_ENV_VAR in str(info.value)


def test_weights_from_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "inception.pth"
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(path))
    with pytest.raises(FileNotFoundError, match=r"ANDANTE_FID_WEIGHTS points to .*inception.pth"):
        find_inception_weights()
    path.write_bytes(b"")
    assert find_inception_weights() == path
    with pytest.raises(FileNotFoundError, match=r"`weights_path` .*missing.pth' does not exist"):
        find_inception_weights(tmp_path / "missing.pth")


def test_wrong_checkpoint_rejected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    match = r"is not an FID Inception v3 checkpoint: \d+ missing.*1 unexpected"
    with pytest.raises(ValueError, match=match):
        FIDInceptionV3(path)

"""SSIM and MS-SSIM against pytorch-msssim 1.0, scikit-image 0.26 and closed forms."""

from __future__ import annotations

import pytest
import pytorch_msssim
import torch
from skimage.metrics import structural_similarity

from andante_metrics import SSIM, MultiScaleSSIM
from andante_metrics.functional import ms_ssim, ssim


def _pair(shape, seed=0, noise=0.2, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=gen, dtype=dtype)
    preds = (target + noise * torch.randn(shape, generator=gen, dtype=dtype)).clamp(0, 1)
    return preds, target


def _skimage_ssim(preds, target, sigma=1.5, data_range=1.0):
    """scikit-image's SSIM with the Gaussian, population-covariance convention, per image."""
    return torch.tensor([
        structural_similarity(p.numpy(), t.numpy(), data_range=data_range, channel_axis=0,
                              gaussian_weights=True, sigma=sigma, use_sample_covariance=False)
        for p, t in zip(preds, target, strict=True)
    ], dtype=torch.float64)


def test_ssim_matches_pytorch_msssim():
    preds, target = _pair((3, 3, 40, 52))
    expected = pytorch_msssim.ssim(preds, target, data_range=1.0, size_average=False)
    actual = ssim(preds, target, data_range=1.0, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def test_ssim_matches_skimage():
    preds, target = _pair((2, 3, 37, 45), seed=1)
    expected = _skimage_ssim(preds, target)
    actual = ssim(preds, target, data_range=1.0, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-10)


def test_ssim_kernel_size_honoured():
    # scikit-image derives its window from sigma: sigma 0.8 and truncate 3.5 give 7 taps.
    preds, target = _pair((2, 1, 30, 30), seed=2)
    actual = ssim(preds, target, data_range=1.0, kernel_size=7, sigma=0.8, reduction="none")
    torch.testing.assert_close(actual, _skimage_ssim(preds, target, sigma=0.8),
                               rtol=0, atol=1e-10)
    peer = pytorch_msssim.ssim(preds, target, data_range=1.0, size_average=False, win_size=7,
                               win_sigma=0.8)
    torch.testing.assert_close(actual, peer, rtol=0, atol=1e-5)
    default = ssim(preds, target, data_range=1.0, reduction="none")
    assert not torch.allclose(actual, default)


def test_ssim_float32_matches_peer():
    preds, target = _pair((2, 3, 64, 64), seed=3, dtype=torch.float32)
    expected = pytorch_msssim.ssim(preds, target, data_range=1.0)
    assert float(ssim(preds, target, data_range=1.0)) == pytest.approx(float(expected), abs=1e-5)


def test_ssim_uint8_matches_float():
    preds, target = _pair((2, 3, 32, 32), seed=4)
    preds8, target8 = (preds * 255).round().to(torch.uint8), (target * 255).round().to(torch.uint8)
    expected = pytorch_msssim.ssim(preds8.double(), target8.double(), data_range=255,
                                   size_average=False)
    actual = ssim(preds8, target8, data_range=255, reduction="none")
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual.double(), expected, rtol=0, atol=1e-5)


def test_ssim_constant_images_closed_form():
    # Constant images have zero variance, so SSIM is the luminance term alone:
    # (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 L)^2.
    a, b, c1 = 0.2, 0.7, 0.01**2
    preds = torch.full((1, 1, 16, 16), a, dtype=torch.float64)
    target = torch.full((1, 1, 16, 16), b, dtype=torch.float64)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert float(ssim(preds, target, data_range=1.0)) == pytest.approx(expected, rel=1e-12)


def test_ssim_identical_is_one():
    preds, _ = _pair((2, 3, 20, 20), dtype=torch.float32)
    assert float(ssim(preds, preds, data_range=1.0)) == pytest.approx(1.0, abs=1e-6)
    assert float(ms_ssim(preds, preds, data_range=1.0, kernel_size=3, weights=(0.5, 0.5))) == (
        pytest.approx(1.0, abs=1e-6)
    )


def test_ssim_signed_range_not_fooled_by_negation():
    preds, _ = _pair((1, 1, 24, 24), seed=5)
    signed = preds * 2 - 1
    with pytest.raises(ValueError, match=r"`target` has values in \[-1, .*outside the data range"):
        ssim(signed.abs(), -signed.abs(), data_range=1.0)
    value = ssim(signed, -signed, data_range=(-1.0, 1.0))
    assert float(value) < 0.0


def test_ms_ssim_matches_pytorch_msssim():
    # 170 pixels halve to 85, an odd side, so the padded downsampling path runs too.
    preds, target = _pair((2, 3, 176, 170), seed=6, noise=0.1)
    expected = pytorch_msssim.ms_ssim(preds, target, data_range=1.0, size_average=False)
    actual = ms_ssim(preds, target, data_range=1.0, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def test_ms_ssim_custom_scales_match_peer():
    # pytorch-msssim asserts room for 4 downsamplings whatever the weights, hence 72x70.
    preds, target = _pair((2, 1, 72, 70), seed=7, noise=0.1)
    weights = (0.3, 0.3, 0.4)
    expected = pytorch_msssim.ms_ssim(preds, target, data_range=1.0, size_average=False,
                                      win_size=5, weights=list(weights))
    actual = ms_ssim(preds, target, data_range=1.0, kernel_size=5, weights=weights,
                     reduction="none")
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def test_ms_ssim_anticorrelated_is_finite():
    preds, _ = _pair((1, 1, 161, 161), seed=8)
    value = ms_ssim(preds, 1.0 - preds, data_range=1.0)
    expected = pytorch_msssim.ms_ssim(preds, 1.0 - preds, data_range=1.0)
    assert torch.isfinite(value)
    assert float(value) == pytest.approx(float(expected), abs=1e-5)


def test_ms_ssim_too_small_raises():
    preds, target = _pair((1, 1, 160, 200))
    with pytest.raises(ValueError, match=r"160x200 .* at least 161 pixels.*fewer `weights`"):
        ms_ssim(preds, target, data_range=1.0)
    with pytest.raises(ValueError, match=r"at least 11 pixels.*smaller odd `kernel_size`"):
        ssim(preds[..., :10, :10], target[..., :10, :10], data_range=1.0)


def test_ssim_gradcheck():
    preds, target = _pair((1, 2, 8, 9), seed=9)
    preds = (preds * 0.6 + 0.2).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p: ssim(p, target, data_range=1.0, kernel_size=3), (preds,)
    )


def test_ms_ssim_gradcheck():
    gen = torch.Generator().manual_seed(10)
    target = torch.rand(1, 1, 12, 12, generator=gen, dtype=torch.float64)
    preds = (0.7 * target + 0.3 * torch.rand(1, 1, 12, 12, generator=gen, dtype=torch.float64))
    preds.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p: ms_ssim(p, target, data_range=1.0, kernel_size=3, weights=(0.4, 0.6)),
        (preds,),
    )


def test_ssim_class_matches_function():
    preds, target = _pair((5, 3, 24, 24), seed=11)
    metric = SSIM(data_range=1.0, kernel_size=7)
    metric.update(preds[:2], target[:2])
    metric.update(preds[2:], target[2:])
    expected = ssim(preds, target, data_range=1.0, kernel_size=7)
    assert float(metric.compute()) == pytest.approx(float(expected), rel=1e-12)
    ms = MultiScaleSSIM(data_range=1.0, kernel_size=3, weights=(0.5, 0.5))
    ms.update(preds, target)
    expected_ms = ms_ssim(preds, target, data_range=1.0, kernel_size=3, weights=(0.5, 0.5))
    assert float(ms.compute()) == pytest.approx(float(expected_ms), rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel_size": 4}, ValueError, r"`kernel_size` must be odd.*got 4"),
        ({"kernel_size": 0}, ValueError, r"`kernel_size` must be at least 1, got 0"),
        ({"sigma": -1.0}, ValueError, r"`sigma` must be a finite number greater than 0"),
        ({"k1": 0.0}, ValueError, r"`k1` must be a number greater than 0, got 0.0"),
        ({"reduction": "sum"}, ValueError, r"`reduction` must be one of 'mean', 'none'"),
        ({"data_range": (1.0, 0.0)}, ValueError, r"`data_range` must span a finite range"),
        ({"data_range": "1"}, TypeError, r"`data_range` must be a positive number"),
    ],
)
def test_ssim_bad_options(kwargs, error, match):
    preds, target = _pair((1, 1, 16, 16))
    with pytest.raises(error, match=match):
        ssim(preds, target, **{"data_range": 1.0, **kwargs})


def test_ms_ssim_bad_weights():
    preds, target = _pair((1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"`weights` must be a non-empty sequence.*\(\)"):
        ms_ssim(preds, target, data_range=1.0, weights=())

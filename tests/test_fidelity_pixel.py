"""MSE, L1, PSNR, GMSD, FSIM and IW-SSIM against scikit-image 0.26, piq 0.8 and closed forms."""

from __future__ import annotations

import math

import piq
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

import andante_metrics.functional as functional
from andante_metrics import FSIM, GMSD, IWSSIM, L1, MSE, PSNR
from andante_metrics.functional import fsim, gmsd, iw_ssim, l1, mse, psnr


def _pair(shape, seed=0, noise=0.1, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=gen, dtype=dtype)
    preds = (target + noise * torch.randn(shape, generator=gen, dtype=dtype)).clamp(0, 1)
    return preds, target


def test_mse_matches_skimage():
    preds, target = _pair((3, 2, 9, 11))
    expected = mean_squared_error(preds.numpy(), target.numpy())
    assert float(mse(preds, target, data_range=1.0)) == pytest.approx(expected, rel=1e-12)


def test_mse_l1_hand_made_images():
    # Two 2x2 images differing by 0.5 in one pixel: MSE = 0.25 / 4, L1 = 0.5 / 4.
    target = torch.zeros(1, 1, 2, 2)
    preds = target.clone()
    preds[0, 0, 1, 1] = 0.5
    assert float(mse(preds, target, data_range=1.0)) == pytest.approx(0.0625)
    assert float(l1(preds, target, data_range=1.0)) == pytest.approx(0.125)


def test_uint8_difference_does_not_wrap():
    preds = torch.tensor([[[[10, 250]]]], dtype=torch.uint8)
    target = torch.tensor([[[[20, 240]]]], dtype=torch.uint8)
    # uint8 arithmetic would give 10 - 20 = 246; the float difference is -10.
    assert float(mse(preds, target, data_range=255)) == pytest.approx(100.0)
    assert float(l1(preds, target, data_range=255)) == pytest.approx(10.0)


def test_psnr_per_image_matches_skimage():
    preds, target = _pair((3, 3, 16, 16), seed=1)
    per_image = [peak_signal_noise_ratio(t.numpy(), p.numpy(), data_range=1.0)
                 for p, t in zip(preds, target, strict=True)]
    expected = sum(per_image) / len(per_image)
    actual = psnr(preds, target, data_range=1.0)
    assert float(actual) == pytest.approx(expected, rel=1e-12)


def test_psnr_pooled_matches_skimage():
    preds, target = _pair((3, 3, 16, 16), seed=2)
    expected = peak_signal_noise_ratio(target.numpy(), preds.numpy(), data_range=1.0)
    actual = psnr(preds, target, data_range=1.0, average="pooled")
    assert float(actual) == pytest.approx(expected, rel=1e-12)


def test_psnr_averages_differ():
    # MSE 0.01 and 0.0001 give 20 dB and 40 dB: mean 30 dB, pooled 10 log10(1 / 0.00505).
    target = torch.zeros(2, 1, 1, 1)
    preds = torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)
    assert float(psnr(preds, target, data_range=1.0)) == pytest.approx(30.0, rel=1e-5)
    pooled = psnr(preds, target, data_range=1.0, average="pooled")
    assert float(pooled) == pytest.approx(10 * math.log10(1 / 0.00505), rel=1e-5)


def test_psnr_identical_is_inf():
    preds, _ = _pair((2, 1, 4, 4))
    assert math.isinf(float(psnr(preds, preds, data_range=1.0)))
    metric = PSNR(data_range=1.0)
    metric.update(preds, preds)
    assert float(metric.compute()) == math.inf


def test_psnr_class_matches_function():
    preds, target = _pair((5, 3, 8, 8), seed=3)
    for average in ("per_image", "pooled"):
        metric = PSNR(data_range=1.0, average=average)
        metric.update(preds[:2], target[:2])
        metric.update(preds[2:], target[2:])
        expected = psnr(preds, target, data_range=1.0, average=average)
        assert float(metric.compute()) == pytest.approx(float(expected), rel=1e-12)


def test_mse_l1_classes_match_functions():
    preds, target = _pair((4, 2, 5, 5), seed=4)
    for cls, fn in ((MSE, mse), (L1, l1)):
        metric = cls(data_range=1.0)
        metric.update(preds[:1], target[:1])
        metric.update(preds[1:], target[1:])
        assert float(metric.compute()) == pytest.approx(float(fn(preds, target, data_range=1.0)))


@pytest.mark.parametrize("channels", [1, 3])
def test_gmsd_matches_piq(channels):
    # 33x30: the odd height exercises the zero padding before the 2x2 averaging.
    preds, target = _pair((2, channels, 33, 30), seed=5)
    expected = piq.gmsd(preds, target, data_range=1.0, reduction="none")
    actual = gmsd(preds, target, data_range=1.0, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-10)


def test_gmsd_data_range_255_matches_piq():
    preds, target = _pair((2, 3, 16, 16), seed=6)
    expected = piq.gmsd(preds * 255, target * 255, data_range=255, reduction="none")
    actual = gmsd(preds * 255, target * 255, data_range=255, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-10)


def test_gmsd_class_and_identical():
    preds, target = _pair((3, 1, 12, 12), seed=7)
    metric = GMSD(data_range=1.0)
    metric.update(preds, target)
    expected = gmsd(preds, target, data_range=1.0)
    assert float(metric.compute()) == pytest.approx(float(expected), rel=1e-12)
    assert float(gmsd(preds, preds, data_range=1.0)) == 0.0


@pytest.mark.parametrize(
    ("preds", "target", "kwargs", "error", "match"),
    [
        (torch.zeros(1, 1, 4), torch.zeros(1, 1, 4), {}, ValueError,
         r"`preds` must have 4 dimensions, got shape \(1, 1, 4\)"),
        (torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5), {}, ValueError,
         r"`preds` and `target` must have the same shape"),
        (torch.full((1, 1, 2, 2), float("nan")), torch.zeros(1, 1, 2, 2), {}, ValueError,
         r"`preds` contains 4 NaN or infinite"),
        (torch.full((1, 1, 2, 2), 2.0), torch.zeros(1, 1, 2, 2), {}, ValueError,
         r"`preds` has values in \[2, 2\], outside the data range \[0, 1\]"),
        (torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), {"average": "median"}, ValueError,
         r"`average` must be one of 'per_image', 'pooled', got 'median'"),
        (torch.zeros(1, 1, 2, 2, dtype=torch.complex64), torch.zeros(1, 1, 2, 2), {},
         TypeError, r"`preds` must be a real tensor"),
    ],
)
def test_psnr_bad_inputs(preds, target, kwargs, error, match):
    with pytest.raises(error, match=match):
        psnr(preds, target, data_range=1.0, **kwargs)


def test_gmsd_rejects_two_channels():
    preds, target = _pair((1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"1 \(grey\) or 3 \(RGB\) channels.*\(1, 2, 8, 8\)"):
        gmsd(preds, target, data_range=1.0)


@pytest.mark.parametrize(("channels", "chromatic"), [(3, True), (3, False), (1, False)])
def test_fsim_matches_piq(channels, chromatic):
    # 33x40: odd and even sides take the two branches of the frequency grid.
    preds, target = _pair((2, channels, 33, 40), seed=8, noise=0.05)
    expected = piq.fsim(preds, target, data_range=1.0, chromatic=chromatic, reduction="none")
    actual = fsim(preds, target, data_range=1.0, chromatic=chromatic, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-10)


def test_fsim_block_averaging_matches_piq():
    # 600x520 is averaged over 2x2 blocks first (round(520 / 256) = 2).
    preds, target = _pair((1, 3, 600, 520), seed=9, noise=0.05)
    expected = piq.fsim(preds * 255, target * 255, data_range=255.0, reduction="none")
    actual = fsim(preds * 255, target * 255, data_range=255.0, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-10)


def test_fsim_class_identical_and_grey_chromatic():
    preds, target = _pair((3, 3, 24, 24), seed=10)
    metric = FSIM(data_range=1.0)
    metric.update(preds[:1], target[:1])
    metric.update(preds[1:], target[1:])
    expected = fsim(preds, target, data_range=1.0)
    assert float(metric.compute()) == pytest.approx(float(expected), rel=1e-12)
    assert float(fsim(preds, preds, data_range=1.0)) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"3 \(RGB\) channels for FSIMc.*chromatic=False"):
        fsim(preds[:, :1], target[:, :1], data_range=1.0)


@pytest.mark.parametrize(("shape", "parent"), [((2, 3, 161, 170), True), ((1, 1, 200, 181), False)])
def test_iw_ssim_matches_piq(shape, parent):
    preds, target = _pair(shape, seed=11, noise=0.05)
    expected = piq.information_weighted_ssim(preds, target, data_range=1.0, parent=parent,
                                             reduction="none")
    actual = iw_ssim(preds, target, data_range=1.0, parent=parent, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-10)


def test_iw_ssim_class_and_too_small():
    preds, target = _pair((3, 1, 40, 40), seed=12)
    metric = IWSSIM(data_range=1.0, weights=(0.3, 0.7))
    metric.update(preds[:1], target[:1])
    metric.update(preds[1:], target[1:])
    expected = iw_ssim(preds, target, data_range=1.0, weights=(0.3, 0.7))
    assert float(metric.compute()) == pytest.approx(float(expected), rel=1e-12)
    assert float(iw_ssim(preds, preds, data_range=1.0, weights=(0.3, 0.7))) == (
        pytest.approx(1.0, abs=1e-9)
    )
    with pytest.raises(ValueError, match=r"40x40 pixels are too small for 5 scale\(s\).*fewer `w"):
        iw_ssim(preds, target, data_range=1.0)


@pytest.mark.parametrize(
    "name", ["mse", "l1", "psnr", "ssim", "ms_ssim", "gmsd", "fsim", "iw_ssim"]
)
def test_empty_batch_raises(name):
    # An empty batch has no defined value (0 / 0): the function raises instead of a NaN.
    empty = torch.zeros(0, 3, 170, 170)
    with pytest.raises(ValueError, match=r"`preds` holds no image \(shape \(0, 3, 170, 170\)\)"):
        getattr(functional, name)(empty, empty, data_range=1.0)

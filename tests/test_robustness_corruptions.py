"""Tests of the corruption suite and of CorruptionRobustness (mCE, relative mCE)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage.color import hsv2rgb, rgb2hsv
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from andante_metrics.accuracy import TopKAccuracy
from andante_metrics.data import load_digits_split
from andante_metrics.robustness import (
    CORRUPTIONS,
    CorruptionRobustness,
    corrupt,
    corruption_error_summary,
    corruption_robustness,
)
from andante_metrics.robustness.corruptions import (
    BRIGHTNESS_SHIFT,
    CONTRAST_FACTOR,
    GAUSSIAN_BLUR_SIGMA,
    GAUSSIAN_NOISE_STD,
    IMPULSE_NOISE_AMOUNT,
    JPEG_QUALITY,
    SHOT_NOISE_PHOTONS,
)

NAMES = list(CORRUPTIONS)
RANDOM_NAMES = ["gaussian_noise", "shot_noise", "impulse_noise"]


def _images(shape=(3, 3, 12, 12), seed=0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- the corruptions


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8])
def test_severity_zero_returns_input(name, dtype):
    images = _images()
    images = (images * 255).round().to(torch.uint8) if dtype == torch.uint8 else images.to(dtype)
    out = corrupt(images, name, 0, generator=_seeded(1))
    assert torch.equal(out, images)
    assert out.data_ptr() != images.data_ptr()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.uint8])
@pytest.mark.parametrize("shape", [(2, 1, 8, 8), (2, 3, 9, 13), (1, 4, 16, 16), (3, 10, 10)])
def test_shape_and_dtype_preserved(name, dtype, shape):
    images = _images(shape)
    images = (images * 255).round().to(torch.uint8) if dtype == torch.uint8 else images.to(dtype)
    out = corrupt(images, name, 3, generator=_seeded(1))
    assert out.shape == images.shape
    assert out.dtype == images.dtype
    if dtype != torch.uint8:
        assert float(out.min()) >= 0.0
        assert float(out.max()) <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_every_severity_changes_images(name):
    images = _images()
    for severity in range(1, 6):
        assert not torch.equal(corrupt(images, name, severity, generator=_seeded(1)), images)


@pytest.mark.parametrize("name", RANDOM_NAMES)
def test_noise_deterministic_under_seed(name):
    images = _images()
    first = corrupt(images, name, 4, generator=_seeded(7))
    second = corrupt(images, name, 4, generator=_seeded(7))
    other = corrupt(images, name, 4, generator=_seeded(8))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("name", RANDOM_NAMES)
def test_per_sample_generators_independent_of_batch(name):
    images = _images((4, 2, 6, 6))
    batch = corrupt(images, name, 2, generator=[_seeded(i) for i in range(4)])
    alone = torch.cat(
        [corrupt(images[i : i + 1], name, 2, generator=[_seeded(i)]) for i in range(4)]
    )
    assert torch.equal(batch, alone)


def test_per_sample_generator_count_checked():
    with pytest.raises(ValueError, match=r"one generator per sample, got 2 for 3 samples"):
        corrupt(_images(), "gaussian_noise", 1, generator=[_seeded(0), _seeded(1)])


def test_gaussian_noise_std_matches_table():
    # Reference: the added noise is N(0, sigma^2) with sigma from the ImageNet-C table. Far from
    # the [0, 1] edges nothing is clipped, so the sample std estimates sigma.
    images = torch.full((4, 1, 64, 64), 0.5)
    noise = corrupt(images, "gaussian_noise", 1, generator=_seeded(0)) - images
    assert abs(float(noise.std()) - GAUSSIAN_NOISE_STD[0]) < 0.003
    assert abs(float(noise.mean())) < 0.003


def test_shot_noise_is_poisson():
    # Reference: Poisson(lambda x) / lambda has mean x and variance x / lambda.
    photons = SHOT_NOISE_PHOTONS[2]
    images = torch.full((4, 1, 64, 64), 0.3)
    out = corrupt(images, "shot_noise", 3, generator=_seeded(0))
    counts = out * photons
    assert torch.allclose(counts, counts.round(), atol=1e-4)
    assert abs(float(out.mean()) - 0.3) < 0.01
    assert abs(float(out.var()) - 0.3 / photons) < 0.003


def test_impulse_noise_fraction_and_values():
    # Reference: a fraction `amount` of the values is set to 0 or 1, half each.
    amount = IMPULSE_NOISE_AMOUNT[4]
    images = torch.full((4, 3, 64, 64), 0.5)
    out = corrupt(images, "impulse_noise", 5, generator=_seeded(0))
    assert abs(float((out == 0).double().mean()) - amount / 2) < 0.01
    assert abs(float((out == 1).double().mean()) - amount / 2) < 0.01
    assert bool(((out == 0) | (out == 1) | (out == 0.5)).all())


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_gaussian_blur_matches_scipy(severity):
    # Reference: scipy.ndimage.gaussian_filter per channel with mode="nearest", truncate=4.
    images = _images((2, 3, 20, 17), seed=3).double()
    out = corrupt(images, "gaussian_blur", severity)
    sigma = GAUSSIAN_BLUR_SIGMA[severity - 1]
    expected = ndimage.gaussian_filter(images.numpy(), sigma=(0, 0, sigma, sigma),
                                       mode="nearest", truncate=4.0)
    np.testing.assert_allclose(out.numpy(), np.clip(expected, 0, 1), atol=1e-10)


def test_pixel_scale_shrinks_blur():
    images = _images((1, 1, 32, 32), seed=2).double()
    sharp = corrupt(images, "defocus_blur", 5, pixel_scale=0.1)
    blurred = corrupt(images, "defocus_blur", 5)
    assert (sharp - images).abs().mean() < (blurred - images).abs().mean()


def test_defocus_blur_keeps_constant_image_and_mean():
    constant = torch.full((1, 2, 16, 16), 0.25, dtype=torch.float64)
    torch.testing.assert_close(corrupt(constant, "defocus_blur", 5), constant)


@pytest.mark.parametrize("severity", [1, 5])
def test_contrast_closed_form(severity):
    # Reference: (x - channel mean) * a + channel mean with a from the ImageNet-C table.
    images = _images((2, 3, 8, 8)).double()
    mean = images.mean(dim=(2, 3), keepdim=True)
    expected = (images - mean) * CONTRAST_FACTOR[severity - 1] + mean
    torch.testing.assert_close(corrupt(images, "contrast", severity), expected)


def test_brightness_grayscale_closed_form():
    images = _images((2, 1, 8, 8)).double()
    expected = (images + BRIGHTNESS_SHIFT[2]).clamp(max=1.0)
    torch.testing.assert_close(corrupt(images, "brightness", 3), expected)


@pytest.mark.parametrize("severity", [1, 4])
def test_brightness_rgb_matches_skimage_hsv(severity):
    # Reference: scikit-image rgb2hsv, V + b clipped to [0, 1], hsv2rgb (ImageNet-C's recipe).
    images = _images((1, 3, 10, 10), seed=5).double()
    images[0, :, 0, 0] = 0.0
    hsv = rgb2hsv(images[0].permute(1, 2, 0).numpy())
    hsv[..., 2] = np.clip(hsv[..., 2] + BRIGHTNESS_SHIFT[severity - 1], 0, 1)
    expected = torch.from_numpy(hsv2rgb(hsv)).permute(2, 0, 1)[None]
    torch.testing.assert_close(corrupt(images, "brightness", severity), expected,
                               atol=1e-12, rtol=1e-9)


def test_pixelate_block_means():
    # Reference: at severity 2 (factor 0.5) an 8x8 image becomes 4x4 blocks of 2x2 means.
    images = _images((2, 1, 8, 8)).double()
    blocks = images.reshape(2, 1, 4, 2, 4, 2).mean(dim=(3, 5))
    expected = blocks.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(corrupt(images, "pixelate", 2), expected)


@pytest.mark.parametrize(("size", "severity"), [(13, 1), (10, 3), (17, 5)])
def test_pixelate_matches_pillow_box(size, severity):
    # Reference: Pillow's BOX resize down to int(f * size) and back up, on a float image.
    factor = (0.6, 0.5, 0.4, 0.3, 0.25)[severity - 1]
    images = _images((1, 1, size, size), seed=6)
    small = int(factor * size)
    pil = Image.fromarray(images[0, 0].numpy(), mode="F")
    pil = pil.resize((small, small), Image.BOX).resize((size, size), Image.BOX)
    expected = torch.from_numpy(np.asarray(pil, dtype=np.float32).copy())[None, None]
    torch.testing.assert_close(corrupt(images, "pixelate", severity), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_matches_pillow(channels):
    # Reference: Pillow's own JPEG round trip at the same quality, written out independently.
    images = _images((1, channels, 32, 32), seed=4)
    images = torch.nn.functional.interpolate(images, scale_factor=0.25)
    images = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear")
    out = corrupt(images, "jpeg_compression", 2)
    pixels = (images[0] * 255).round().to(torch.uint8).permute(1, 2, 0).squeeze(-1).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY[1])
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float64) / 255
    expected = torch.from_numpy(decoded.reshape(32, 32, channels)).permute(2, 0, 1)
    torch.testing.assert_close(out[0].double(), expected.to(torch.float32).double())
    assert float((out - images).abs().mean()) > 0.005


def test_jpeg_any_channel_count():
    images = _images((2, 2, 16, 16))
    per_channel = torch.cat([corrupt(images[:, c : c + 1], "jpeg_compression", 4) for c in (0, 1)],
                            dim=1)
    torch.testing.assert_close(corrupt(images, "jpeg_compression", 4), per_channel)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: corrupt(_images(), "fog", 1), ValueError, r"`corruption` must be one of.*'fog'"),
        (lambda: corrupt(_images(), "contrast", 6), ValueError,
         r"`severity` must be at most 5, got 6"),
        (lambda: corrupt(_images(), "contrast", -1), ValueError, r"`severity` must be at least 0"),
        (lambda: corrupt(_images(), "contrast", 1.0), TypeError, r"`severity` must be an int"),
        (lambda: corrupt(_images((8, 8)), "contrast", 1), ValueError,
         r"`images` must have shape \(N, C, H, W\) or \(C, H, W\), got \(8, 8\)"),
        (lambda: corrupt(torch.zeros(1, 1, 4, 4, dtype=torch.long), "contrast", 1), TypeError,
         r"`images` must be floating point.*torch.int64"),
        (lambda: corrupt([[0.0]], "contrast", 1), TypeError, r"`images` must be a torch.Tensor"),
        (lambda: corrupt(_images(), "gaussian_blur", 1, pixel_scale=0.0), ValueError,
         r"`pixel_scale` must be a finite number greater than 0, got 0.0"),
    ],
)
def test_corrupt_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- the metric


class _TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(8 * 16, 10),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


@pytest.fixture(scope="module")
def digits_model():
    """Return a small CNN trained on the digits (8 epochs, batches of 64, fixed seed), data."""
    data = load_digits_split(seed=0)
    torch.manual_seed(0)
    model = _TinyCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    order_gen = torch.Generator().manual_seed(0)
    for _ in range(8):
        order = torch.randperm(len(data.train_labels), generator=order_gen)
        for begin in range(0, len(order), 64):
            index = order[begin : begin + 64]
            loss = nn.functional.cross_entropy(model(data.train_images[index]),
                                               data.train_labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model, data


def test_digits_cnn_error_grows_with_severity(digits_model):
    model, data = digits_model
    metric = CorruptionRobustness(model, TopKAccuracy(num_classes=10), progress=False)
    metric.update(data.test_images, data.test_labels)
    result = metric.compute()
    assert float(result["clean_error"]) < 0.1
    for row, name in enumerate(CORRUPTIONS):
        errors = result["errors"][row]
        # Each step up in severity may not lower the error by more than sampling noise (360
        # test digits), and severity 5 is clearly worse than both severity 1 and clean.
        steps = errors[1:] - errors[:-1]
        assert bool((steps >= -0.03).all()), f"{name}: {errors.tolist()}"
        assert float(errors[-1]) > float(errors[0]), f"{name}: {errors.tolist()}"
        assert float(errors[-1]) > float(result["clean_error"]) + 0.05, name


def test_cell_errors_match_direct_evaluation(digits_model):
    model, data = digits_model
    images, labels = data.test_images[:100], data.test_labels[:100]
    result = corruption_robustness(model, images, labels, metric=TopKAccuracy(num_classes=10),
                                   corruptions=["contrast", "pixelate"], severities=[2, 5])
    with torch.no_grad():
        for row, name in enumerate(["contrast", "pixelate"]):
            for column, severity in enumerate([2, 5]):
                preds = model(corrupt(images, name, severity)).argmax(dim=1)
                expected = float((preds != labels).double().mean())
                assert float(result["errors"][row, column]) == pytest.approx(expected)
        clean = float((model(images).argmax(dim=1) != labels).double().mean())
    assert float(result["clean_error"]) == pytest.approx(clean)


def test_baseline_self_gives_unit_mce(digits_model):
    model, data = digits_model
    metric = CorruptionRobustness(model, TopKAccuracy(num_classes=10), baseline_model=model,
                                  corruptions=["gaussian_noise", "defocus_blur"], progress=False)
    metric.update(data.test_images[:120], data.test_labels[:120])
    result = metric.compute()
    torch.testing.assert_close(result["baseline_errors"], result["errors"])
    assert float(result["mce"]) == pytest.approx(1.0)
    assert float(result["relative_mce"]) == pytest.approx(1.0)


def test_torchmetrics_accuracy_wrapped(digits_model):
    # Any accuracy-like torchmetrics metric works: micro MulticlassAccuracy equals TopKAccuracy.
    model, data = digits_model
    kwargs = {"corruptions": ["shot_noise", "brightness"], "severities": [1, 4], "progress": False}
    ours = CorruptionRobustness(model, TopKAccuracy(num_classes=10), **kwargs)
    peer = CorruptionRobustness(model, MulticlassAccuracy(num_classes=10, average="micro"),
                                **kwargs)
    template = MulticlassAccuracy(num_classes=10, average="micro")
    wrapped = CorruptionRobustness(model, template, **kwargs)
    for begin in range(0, 200, 50):
        batch = (data.test_images[begin : begin + 50], data.test_labels[begin : begin + 50])
        ours.update(*batch)
        peer.update(*batch)
        wrapped.update(*batch)
    torch.testing.assert_close(peer.compute()["errors"], ours.compute()["errors"])
    assert int(template.tp.sum()) == 0, "the template metric must stay untouched"


def test_error_like_metric_used_directly(digits_model):
    model, data = digits_model

    class _ErrorRate(TopKAccuracy):
        higher_is_better = False

        def compute(self):
            return 1.0 - super().compute()

    kwargs = {"corruptions": ["contrast"], "severities": [3], "progress": False}
    errors = corruption_robustness(model, data.test_images[:64], data.test_labels[:64],
                                   metric=_ErrorRate(num_classes=10), **kwargs)
    accuracy = corruption_robustness(model, data.test_images[:64], data.test_labels[:64],
                                     metric=TopKAccuracy(num_classes=10), **kwargs)
    torch.testing.assert_close(errors["errors"], accuracy["errors"])


def test_model_mode_restored(digits_model):
    model, data = digits_model
    model.train()
    try:
        corruption_robustness(model, data.test_images[:8], data.test_labels[:8],
                              metric=TopKAccuracy(num_classes=10), corruptions=["contrast"])
        assert model.training
        assert all(module.training for module in model.modules())
    finally:
        model.eval()


def test_summary_closed_form():
    # Reference values computed by hand from the mCE definitions (Hendrycks and Dietterich 2019):
    # CE = (0.3 + 0.5) / (0.4 + 0.8) = 2/3 and (0.2 + 0.2) / (0.5 + 0.3) = 1/2;
    # rCE = (0.2 + 0.4) / (0.2 + 0.6) = 3/4 and (0.1 + 0.1) / (0.3 + 0.1) = 1/2.
    errors = torch.tensor([[0.3, 0.5], [0.2, 0.2]])
    baseline = torch.tensor([[0.4, 0.8], [0.5, 0.3]])
    summary = corruption_error_summary(errors, 0.1, baseline, 0.2)
    torch.testing.assert_close(summary["corruption_error"],
                               torch.tensor([2 / 3, 1 / 2], dtype=torch.float64))
    torch.testing.assert_close(summary["relative_corruption_error"],
                               torch.tensor([3 / 4, 1 / 2], dtype=torch.float64))
    assert float(summary["mce"]) == pytest.approx(7 / 12)
    assert float(summary["relative_mce"]) == pytest.approx(5 / 8)
    torch.testing.assert_close(summary["mean_error"],
                               torch.tensor([0.4, 0.2], dtype=torch.float64))


def test_summary_zero_baseline_warns():
    from andante_metrics.utilities.logging import reset_warnings

    reset_warnings()
    with pytest.warns(UserWarning, match="zero error or zero degradation"):
        summary = corruption_error_summary(torch.tensor([[0.5]]), 0.0, torch.tensor([[0.25]]), 0.25)
    assert summary["relative_mce"].isinf()


def test_summary_bad_inputs():
    with pytest.raises(ValueError, match=r"`errors` contains 2 NaN or infinite value\(s\)"):
        corruption_error_summary(torch.tensor([[0.1, float("nan")], [float("inf"), 0.2]]), 0.0)
    with pytest.raises(ValueError, match=r"`baseline_clean_error` contains 1 NaN"):
        corruption_error_summary(torch.zeros(1, 2), 0.0, torch.ones(1, 2), float("nan"))
    with pytest.raises(ValueError, match=r"`errors` must have shape \(K, S\), got \(3,\)"):
        corruption_error_summary(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="`baseline_clean_error` is missing"):
        corruption_error_summary(torch.zeros(1, 2), 0.0, torch.zeros(1, 2))
    expected = r"`baseline_errors` must have the shape.*\(1, 2\).*\(2, 2\)"
    with pytest.raises(ValueError, match=expected):
        corruption_error_summary(torch.zeros(1, 2), 0.0, torch.zeros(2, 2), 0.0)


def test_wrong_image_shape_names_images():
    # The model expects 16 features per image; (1, 3, 3) images give 9 and fail inside nn.Linear.
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    match = r"`images` of shape \(2, 1, 3, 3\) \(mat1 and mat2 shapes cannot be multiplied"
    with pytest.raises(ValueError, match=match):
        corruption_robustness(model, _images((2, 1, 3, 3)), torch.tensor([0, 1]),
                              metric=TopKAccuracy(num_classes=3), corruptions=["contrast"],
                              severities=[1])


def test_non_scalar_metric_rejected():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    metric = CorruptionRobustness(model, MulticlassAccuracy(num_classes=3, average="none"),
                                  corruptions=["contrast"], severities=[1], progress=False)
    metric.update(_images((6, 1, 4, 4)), torch.tensor([0, 1, 2, 0, 1, 2]))
    with pytest.raises(ValueError, match=r"`metric` must compute a scalar, got shape \(3,\)"):
        metric.compute()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"corruptions": "contrast"}, ValueError, r"`corruptions` must be a non-empty sequence"),
        ({"corruptions": ["contrast", "contrast"]}, ValueError, r"must not repeat a name"),
        ({"severities": [0, 1]}, ValueError, r"`severities` must be at least 1, got 0"),
        ({"severities": []}, ValueError, r"`severities` must be a non-empty sequence"),
        ({"severities": [2, 2]}, ValueError, r"`severities` must not repeat a value"),
        ({"seed": -1}, ValueError, r"`seed` must be at least 0, got -1"),
        ({"baseline_model": "alexnet"}, TypeError, r"`baseline_model` must be a torch.nn.Module"),
    ],
)
def test_metric_bad_options(kwargs, error, match):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with pytest.raises(error, match=match):
        CorruptionRobustness(model, TopKAccuracy(num_classes=3), **kwargs)


def test_corrupt_rejects_float_images_outside_unit_range():
    from andante_metrics import corrupt

    images = torch.rand(2, 1, 8, 8) * 255
    with pytest.raises(ValueError, match=r"`images` must hold floating-point pixels in \[0, 1\]"):
        corrupt(images, "contrast", 3)

"""Conformance cases of the fidelity area."""

from __future__ import annotations

import torch

from andante_metrics import FSIM, GMSD, IWSSIM, L1, MSE, PSNR, SSIM, MultiScaleSSIM

from conformance.harness import BadInput, MetricCase, factory, register

_ok = torch.rand(2, 3, 16, 16)


def _image_batches(channels: int = 3, side: int = 16, sizes=(3, 1, 4, 2)):
    def make(gen: torch.Generator):
        out = []
        for size in sizes:
            target = torch.rand(size, channels, side, side, generator=gen, dtype=torch.float64)
            noise = 0.1 * torch.randn(size, channels, side, side, generator=gen,
                                      dtype=torch.float64)
            out.append(((target + noise).clamp(0, 1), target))
        return out

    return make


def _bad_inputs(side: int = 16) -> list[BadInput]:
    ok = _ok[..., :side, :side]
    nan = ok.clone()
    nan[0, 0, 0, 0] = float("nan")
    return [
        BadInput("shape_mismatch", (ok, ok[:, :, :-1]), ValueError,
                 r"`preds` and `target` must have the same shape"),
        BadInput("not_4d", (ok[0], ok[0]), ValueError,
                 rf"`preds` must have 4 dimensions, got shape \(3, {side}, {side}\)"),
        BadInput("nan", (nan, ok), ValueError, r"`preds` contains 1 NaN or infinite"),
        BadInput("out_of_range", (ok * 2 + 0.5, ok), ValueError,
                 r"`preds` has values in .* outside the data range \[0, 1\]"),
        BadInput("not_a_tensor", (ok.tolist(), ok), TypeError,
                 r"`preds` must be a torch.Tensor"),
        BadInput("bad_data_range", construct={"data_range": -1.0}, error=ValueError,
                 match=r"`data_range` must span a finite range.*-1.0"),
    ]


register(
    MetricCase("fidelity_mse", factory(MSE, data_range=1.0), _image_batches(),
               bad_inputs=_bad_inputs()),
    MetricCase("fidelity_l1", factory(L1, data_range=1.0), _image_batches(),
               bad_inputs=_bad_inputs()),
    MetricCase("fidelity_psnr_per_image", factory(PSNR, data_range=1.0), _image_batches(),
               bad_inputs=[*_bad_inputs(),
                           BadInput("bad_average", construct={"average": "max"},
                                    match=r"`average` must be one of 'per_image', 'pooled'")]),
    MetricCase("fidelity_psnr_pooled", factory(PSNR, data_range=1.0, average="pooled"),
               _image_batches(), bad_inputs=_bad_inputs()),
    MetricCase(
        "fidelity_ssim",
        factory(SSIM, data_range=1.0, kernel_size=7),
        _image_batches(),
        bad_inputs=[
            *_bad_inputs(),
            BadInput("too_small", (_ok[..., :6, :6], _ok[..., :6, :6]), ValueError,
                     r"6x6 pixels are too small.*at least 7 pixels"),
            BadInput("even_kernel", construct={"kernel_size": 8},
                     match=r"`kernel_size` must be odd.*got 8"),
        ],
    ),
    MetricCase(
        "fidelity_ms_ssim",
        factory(MultiScaleSSIM, data_range=1.0, kernel_size=3, weights=(0.2, 0.3, 0.5)),
        _image_batches(side=20),
        bad_inputs=[
            *_bad_inputs(),
            BadInput("too_small", (_ok[..., :8, :8], _ok[..., :8, :8]), ValueError,
                     r"8x8 pixels are too small for 3 scale\(s\).*at least 9 pixels"),
            BadInput("empty_weights", construct={"weights": ()},
                     match=r"`weights` must be a non-empty sequence"),
        ],
    ),
    MetricCase(
        "fidelity_gmsd",
        factory(GMSD, data_range=1.0),
        _image_batches(),
        bad_inputs=[
            *_bad_inputs(),
            BadInput("two_channels", (_ok[:, :2], _ok[:, :2]), ValueError,
                     r"1 \(grey\) or 3 \(RGB\) channels"),
            BadInput("bad_t", construct={"t": 0.0}, match=r"`t` must be a finite number"),
        ],
    ),
    MetricCase(
        "fidelity_fsim",
        factory(FSIM, data_range=1.0),
        _image_batches(),
        bad_inputs=[
            *_bad_inputs(),
            BadInput("grey_chromatic", (_ok[:, :1], _ok[:, :1]), ValueError,
                     r"3 \(RGB\) channels for FSIMc"),
            BadInput("bad_chromatic", construct={"chromatic": "yes"},
                     match=r"`chromatic` must be one of True, False, got 'yes'"),
        ],
    ),
    MetricCase(
        "fidelity_iw_ssim",
        factory(IWSSIM, data_range=1.0, weights=(0.5, 0.5)),
        _image_batches(side=24),
        bad_inputs=[
            *_bad_inputs(side=16),
            BadInput("too_small", (_ok[..., :12, :12], _ok[..., :12, :12]), ValueError,
                     r"12x12 pixels are too small for 2 scale\(s\).*at least 21 pixels"),
            BadInput("bad_parent", construct={"parent": None},
                     match=r"`parent` must be one of True, False, got None"),
        ],
    ),
)

"""Characterization section of the demo card: KITTI-style stereo table and per-class digits.

Stereo: a block-matching baseline runs on scikit-image's Middlebury motorcycle pair at half
resolution (each image averaged over 2 x 2 blocks). Its disparity is doubled, upsampled by pixel
repetition to the shipped 500 x 741 resolution less the last, odd column, and scored there
against the shipped ground truth, so the 3 px threshold of D1 is in pixels of the shipped
images. The table follows the KITTI 2015 layout: rows all / non-occluded, columns D1-bg, D1-fg,
D1-all and EPE.

* valid: ground truth is finite (about 93 % of the pixels);
* non-occluded: valid and visible in the right image, derived from the ground truth with
  :func:`~andante_metrics.data.stereo.occlusion_from_disparity`;
* foreground: valid with ground-truth disparity above Otsu's threshold of the valid disparities
  (the near motorcycle), background: the other valid pixels. KITTI instead takes foreground
  from car annotations, which this scene does not have.

Digits: top-1 accuracy per true class with :class:`SubsetMetric`, its difference to the overall
accuracy and a 95 % Poisson-bootstrap percentile interval.
"""

from __future__ import annotations

import torch
from skimage.filters import threshold_otsu

from andante_metrics.accuracy import TopKAccuracy
from andante_metrics.characterization import D1OutlierRate, EndPointError, SubsetMetric
from andante_metrics.data.stereo import load_stereo_motorcycle, occlusion_from_disparity
from andante_metrics.demo.block_matching import block_matching_disparity
from andante_metrics.demo.runner import DemoContext, predict_logits
from andante_metrics.report import KPICard

AREA = "characterization"
STEREO_DOWNSCALE = 2
# Largest disparity searched at full resolution; the shipped ground truth peaks near 60 px.
STEREO_MAX_DISPARITY = 64
STEREO_WINDOW = 9
BOOTSTRAPS = 200
BOOTSTRAPS_QUICK = 50


def _stereo_masks(disparity: torch.Tensor) -> tuple[dict[str, torch.Tensor], float]:
    """Return the ``(1, H, W)`` masks of the KITTI-style table and the fg/bg threshold in px."""
    valid = torch.isfinite(disparity)
    threshold = float(threshold_otsu(disparity[valid].numpy()))
    foreground = valid & (disparity > threshold)
    background = valid & ~foreground
    visible = valid & ~occlusion_from_disparity(disparity)
    masks = {
        "bg": background,
        "fg": foreground,
        "noc": visible,
        "noc_bg": visible & background,
        "noc_fg": visible & foreground,
    }
    return {name: mask.unsqueeze(0) for name, mask in masks.items()}, threshold


def _predict_stereo() -> tuple[torch.Tensor, torch.Tensor]:
    """Return the baseline disparity and the ground truth, both ``(1, H, W)`` at full size."""
    full = load_stereo_motorcycle()
    small = full.downscaled(STEREO_DOWNSCALE)
    predicted = block_matching_disparity(
        small.left, small.right, max_disparity=STEREO_MAX_DISPARITY // STEREO_DOWNSCALE,
        window=STEREO_WINDOW,
    )
    predicted = predicted.repeat_interleave(STEREO_DOWNSCALE, 0)
    predicted = predicted.repeat_interleave(STEREO_DOWNSCALE, 1) * STEREO_DOWNSCALE
    height, width = predicted.shape
    return predicted.unsqueeze(0), full.disparity[:height, :width].unsqueeze(0)


def _add_stereo_table(card: KPICard) -> None:
    predicted, truth = _predict_stereo()
    masks, threshold = _stereo_masks(truth[0])

    d1 = SubsetMetric(D1OutlierRate(), subsets=list(masks), by="element")
    epe = SubsetMetric(EndPointError(), subsets=list(masks), by="element")
    d1.update(predicted, truth, groups=masks)
    epe.update(predicted, truth, groups=masks)
    d1_values, epe_values = d1.compute(), epe.compute()

    rows = [
        ["all", d1_values["bg"]["value"], d1_values["fg"]["value"], d1_values["overall"]["value"],
         epe_values["overall"]["value"]],
        ["non-occluded", d1_values["noc_bg"]["value"], d1_values["noc_fg"]["value"],
         d1_values["noc"]["value"], epe_values["noc"]["value"]],
    ]
    valid = int(torch.isfinite(truth).sum())
    sizes = {name: int(mask.sum()) for name, mask in masks.items()}

    card.add_table(
        AREA, "Stereo, Middlebury motorcycle, block-matching baseline (KITTI 2015 layout)",
        ["pixels", "D1-bg", "D1-fg", "D1-all", "EPE (px)"], rows,
        note=(
            f"D1: fraction of pixels with error > 3 px and > 5 % of the true disparity; EPE: "
            f"mean absolute disparity error. Baseline: SAD over {STEREO_WINDOW}x"
            f"{STEREO_WINDOW} windows, winner takes all, searched at 1/{STEREO_DOWNSCALE} "
            f"resolution and scored at the shipped resolution. all = {valid} pixels with finite "
            f"ground truth; non-occluded = {sizes['noc']} of them visible in the right image "
            f"(from the ground truth); fg = disparity > {threshold:.1f} px (Otsu) with "
            f"{sizes['fg']} pixels, bg = the other {sizes['bg']}."
        ),
    )
    card.add_metric("stereo_d1_all", d1.copies[0], d1_values["overall"]["value"],
                    description="KITTI D1-all of the block-matching baseline, all valid pixels")
    card.add_metric("stereo_epe_all", epe.copies[0], epe_values["overall"]["value"],
                    description="mean end-point error of the block-matching baseline, px")


def _add_digits_table(ctx: DemoContext, card: KPICard) -> None:
    classes = ctx.data.num_classes
    names = [str(label) for label in range(classes)]
    per_class = SubsetMetric(
        TopKAccuracy(num_classes=classes), subsets=names,
        num_bootstraps=BOOTSTRAPS_QUICK if ctx.config.quick else BOOTSTRAPS,
        seed=ctx.config.seed,
    )
    logits = predict_logits(ctx.model, ctx.data.test_images)
    labels = ctx.data.test_labels
    for begin in range(0, len(labels), 128):
        batch = slice(begin, begin + 128)
        per_class.update(logits[batch], labels[batch], groups=labels[batch])
    result = per_class.compute()
    rows = []
    for name in ("overall", *names):
        entry = result[name]
        difference = entry.get("difference", "")
        rows.append([name, entry["value"], entry["size"], difference,
                     f"[{float(entry['ci_low']):.3f}, {float(entry['ci_high']):.3f}]"])
    card.add_table(
        AREA, "Digits: top-1 accuracy per true class",
        ["class", "accuracy", "samples", "difference to overall", "95% CI"], rows,
        note=(
            f"Accuracy of the test digits of each class (the recall of that class). CI: "
            f"percentile interval of {per_class.num_bootstraps} Poisson-bootstrap replicates "
            f"over test samples, seed {per_class.seed}."
        ),
    )
    card.add_figure(AREA, "Digits: top-1 accuracy per true class", "bar", {
        "x_label": "top-1 accuracy (recall of the class)",
        "y_label": "true class",
        "labels": names,
        "values": [result[name]["value"] for name in names],
    })


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Add the KITTI-style stereo table and the per-class digits table."""
    _add_stereo_table(card)
    _add_digits_table(ctx, card)

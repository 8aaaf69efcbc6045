"""Tests of the characterization area: stereo errors, the sub-set wrapper, the stereo baseline."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.image import PeakSignalNoiseRatio

from andante_metrics import D1OutlierRate, EndPointError, IoU, SubsetMetric, TopKAccuracy
from andante_metrics.data.stereo import (
    downscale_disparity,
    load_stereo_motorcycle,
    occlusion_from_disparity,
)
from andante_metrics.demo.block_matching import block_matching_disparity
from andante_metrics.functional import d1_outlier_rate, end_point_error, iou, topk_accuracy

try:
    from andante_metrics.fidelity import PSNR
except ImportError:  # the fidelity area is optional for these tests
    PSNR = None

INF = math.inf


# ---- stereo errors -------------------------------------------------------------------------


def test_d1_hand_made_outlier_count():
    # Ground truth 40 px except one infinite and one 0 (invalid_value) position, so 7 are valid.
    # Errors: 2 px and 2.5 px (inliers, not > 3), 4 px (outlier: > 3 and > 2 = 5% of 40),
    # 10 px (outlier), 3 px exactly (inlier: the rule is strict) and two exact pixels.
    target = torch.tensor([[[40.0, 40.0, 40.0], [40.0, 40.0, INF], [0.0, 40.0, 40.0]]])
    preds = torch.tensor([[[42.0, 37.5, 44.0], [30.0, 43.0, 1.0], [9.0, 40.0, 40.0]]])
    rate = d1_outlier_rate(preds, target, invalid_value=0.0)
    assert float(rate) == pytest.approx(2 / 7)


def test_d1_relative_threshold_protects_large_disparity():
    # 4 px error on 100 px is 4%, below 5%, so not an outlier; on 50 px it is 8%, an outlier.
    target = torch.tensor([[100.0, 50.0]])
    preds = torch.tensor([[104.0, 54.0]])
    assert float(d1_outlier_rate(preds, target)) == pytest.approx(0.5)


def test_d1_flow_uses_vector_norm():
    # Flow error (3, 4) has norm 5 > 3 and > 5% of |(10, 0)| = 0.5: an outlier; (1, 1) is not.
    target = torch.tensor([[[[10.0, 10.0]], [[0.0, 0.0]]]])
    preds = torch.tensor([[[[13.0, 11.0]], [[4.0, 1.0]]]])
    assert float(d1_outlier_rate(preds, target, field="flow")) == pytest.approx(0.5)
    epe = end_point_error(preds, target, field="flow")
    assert float(epe) == pytest.approx((5 + math.sqrt(2)) / 2)


def test_epe_masks_invalid_ground_truth():
    target = torch.tensor([[1.0, INF, math.nan, 4.0]])
    preds = torch.tensor([[2.0, 0.0, 0.0, 1.0]])
    assert float(end_point_error(preds, target)) == pytest.approx(2.0)


def test_stateful_stereo_equal_functional():
    gen = torch.Generator().manual_seed(2)
    target = torch.rand(4, 6, 7, generator=gen) * 60
    target[0, 0, :3] = INF
    preds = target.nan_to_num(posinf=0.0) + torch.randn(target.shape, generator=gen) * 4
    d1, epe = D1OutlierRate(), EndPointError()
    for begin in range(4):
        d1.update(preds[begin : begin + 1], target[begin : begin + 1])
        epe.update(preds[begin : begin + 1], target[begin : begin + 1])
    torch.testing.assert_close(d1.compute(), d1_outlier_rate(preds, target))
    torch.testing.assert_close(epe.compute(), end_point_error(preds, target))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (
            (torch.zeros(2), torch.zeros(3)),
            {},
            ValueError,
            r"`preds` and `target` must have the same shape",
        ),
        (
            (torch.zeros(2, dtype=torch.long), torch.zeros(2)),
            {},
            TypeError,
            r"`preds` must be a floating-point",
        ),
        (
            (torch.tensor([INF]), torch.zeros(1)),
            {},
            ValueError,
            r"`preds` contains 1 NaN or infinite",
        ),
        (
            (torch.zeros(1, 3, 2), torch.zeros(1, 3, 2)),
            {"field": "flow"},
            ValueError,
            r"must have shape \(N, 2, \*\) for field='flow'",
        ),
        (
            (torch.zeros(2), torch.full((2,), INF)),
            {},
            ValueError,
            r"`target` contains no valid ground truth",
        ),
        (
            (torch.zeros(1, 2, 1), torch.zeros(1, 2, 1)),
            {"field": "flow", "invalid_value": 0.0},
            ValueError,
            r"`invalid_value` applies to disparity only",
        ),
        (
            (torch.zeros(2), torch.zeros(2)),
            {"field": "depth"},
            ValueError,
            r"`field` must be one of 'disparity', 'flow', got 'depth'",
        ),
    ],
)
def test_stereo_bad_inputs_raise(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        d1_outlier_rate(*args, **kwargs)
    with pytest.raises(error, match=match):
        end_point_error(*args, **kwargs)


def test_d1_bad_threshold_raises():
    with pytest.raises(ValueError, match=r"`abs_threshold` must be a finite number"):
        D1OutlierRate(abs_threshold=-1.0)


# ---- sub-set wrapper -----------------------------------------------------------------------


@pytest.fixture
def classified():
    gen = torch.Generator().manual_seed(4)
    labels = torch.randint(0, 4, (90,), generator=gen)
    logits = torch.randn(90, 4, generator=gen)
    logits[torch.arange(90), labels] += 1.0
    groups = torch.randint(0, 3, (90,), generator=gen)
    return logits, labels, groups


def _feed(metric, batches):
    for batch, kwargs in batches:
        metric.update(*batch, **kwargs)
    return metric.compute()


def test_subsets_of_accuracy_equal_metric_alone(classified):
    logits, labels, groups = classified
    sliced = SubsetMetric(TopKAccuracy(num_classes=4), subsets=["a", "b", "c"])
    for begin in range(0, 90, 25):
        part = slice(begin, begin + 25)
        sliced.update(logits[part], labels[part], groups=groups[part])
    result = sliced.compute()
    overall = topk_accuracy(logits, labels, num_classes=4)
    torch.testing.assert_close(result["overall"]["value"], overall)
    assert int(result["overall"]["size"]) == 90
    for index, name in enumerate(["a", "b", "c"]):
        member = groups == index
        alone = topk_accuracy(logits[member], labels[member], num_classes=4)
        torch.testing.assert_close(result[name]["value"], alone)
        torch.testing.assert_close(result[name]["difference"], alone - overall)
        assert int(result[name]["size"]) == int(member.sum())


def test_overlapping_masks_by_sample(classified):
    logits, labels, _ = classified
    masks = {"confident": logits.max(dim=1).values > 1.0, "all": torch.ones(90, dtype=torch.bool)}
    sliced = SubsetMetric(TopKAccuracy(num_classes=4), subsets=["confident", "all"])
    sliced.update(logits, labels, groups=masks)
    result = sliced.compute()
    torch.testing.assert_close(result["all"]["value"], result["overall"]["value"])
    mask = masks["confident"]
    alone = topk_accuracy(logits[mask], labels[mask], num_classes=4)
    torch.testing.assert_close(result["confident"]["value"], alone)


def test_element_subsets_of_iou_equal_metric_alone():
    gen = torch.Generator().manual_seed(8)
    target = torch.randint(0, 3, (4, 10, 10), generator=gen)
    preds = torch.where(torch.rand(target.shape, generator=gen) < 0.7, target, 2 - target)
    border = torch.zeros(4, 10, 10, dtype=torch.bool)
    border[:, :2] = True
    sliced = SubsetMetric(IoU(num_classes=3), subsets=["border", "inner"], by="element")
    sliced.update(preds, target, groups={"border": border, "inner": ~border})
    result = sliced.compute()
    torch.testing.assert_close(result["overall"]["value"], iou(preds, target, num_classes=3))
    for name, mask in (("border", border), ("inner", ~border)):
        alone = iou(preds[mask].unsqueeze(0), target[mask].unsqueeze(0), num_classes=3)
        torch.testing.assert_close(result[name]["value"], alone)
        assert int(result[name]["size"]) == int(mask.sum())


def test_element_subsets_of_iou_logits_select_channels():
    gen = torch.Generator().manual_seed(9)
    target = torch.randint(0, 3, (2, 5, 5), generator=gen)
    logits = torch.randn(2, 3, 5, 5, generator=gen)
    mask = torch.rand(2, 5, 5, generator=gen) < 0.5
    sliced = SubsetMetric(IoU(num_classes=3, input="logits"), subsets=["half"], by="element")
    sliced.update(logits, target, groups={"half": mask})
    expected = iou(logits.argmax(dim=1)[mask], target[mask], num_classes=3)
    torch.testing.assert_close(sliced.compute()["half"]["value"], expected)


def test_element_subsets_of_d1_equal_metric_alone():
    gen = torch.Generator().manual_seed(6)
    target = torch.rand(2, 8, 8, generator=gen) * 50 + 1
    target[0, 0] = INF
    preds = target.nan_to_num(posinf=5.0) + torch.randn(target.shape, generator=gen) * 5
    near = target > 25
    sliced = SubsetMetric(D1OutlierRate(), subsets=["near", "far"], by="element")
    sliced.update(preds, target, groups={"near": near, "far": ~near})
    result = sliced.compute()
    torch.testing.assert_close(result["overall"]["value"], d1_outlier_rate(preds, target))
    torch.testing.assert_close(result["near"]["value"], d1_outlier_rate(preds[near], target[near]))
    torch.testing.assert_close(result["far"]["value"], d1_outlier_rate(preds[~near], target[~near]))


@pytest.mark.parametrize("source", ["andante", "torchmetrics"])
def test_subsets_of_psnr_equal_metric_alone(source):
    if source == "andante" and PSNR is None:
        pytest.skip("andante_metrics.fidelity.PSNR is not available in this tree")
    gen = torch.Generator().manual_seed(11)
    target = torch.rand(12, 1, 8, 8, generator=gen)
    preds = (target + torch.randn(target.shape, generator=gen) * 0.1).clamp(0, 1)
    groups = torch.arange(12) % 2

    def make():
        if source == "andante":
            return PSNR(data_range=1.0)
        return PeakSignalNoiseRatio(data_range=1.0)

    sliced = SubsetMetric(make(), subsets=["even", "odd"])
    sliced.update(preds, target, groups=groups)
    result = sliced.compute()
    for index, name in enumerate(["even", "odd"]):
        alone = make()
        alone.update(preds[groups == index], target[groups == index])
        torch.testing.assert_close(result[name]["value"], alone.compute())


def test_empty_subset_is_nan_with_size_zero(classified):
    logits, labels, _ = classified
    sliced = SubsetMetric(TopKAccuracy(num_classes=4), subsets=["a", "b"])
    sliced.update(logits, labels, groups=torch.zeros(90, dtype=torch.long))
    result = sliced.compute()
    assert math.isnan(float(result["b"]["value"]))
    assert int(result["b"]["size"]) == 0


def test_bootstrap_interval_is_seeded_and_covers_value(classified):
    logits, labels, groups = classified

    def run(seed):
        sliced = SubsetMetric(
            TopKAccuracy(num_classes=4), subsets=["a", "b", "c"], num_bootstraps=64, seed=seed
        )
        sliced.update(logits, labels, groups=groups)
        return sliced.compute()

    first, again, other = run(0), run(0), run(1)
    torch.testing.assert_close(first["a"]["ci_low"], again["a"]["ci_low"])
    assert float(first["overall"]["ci_low"]) != float(other["overall"]["ci_low"]) or float(
        first["a"]["ci_high"]
    ) != float(other["a"]["ci_high"])
    for name in ("overall", "a", "b", "c"):
        assert (
            float(first[name]["ci_low"])
            <= float(first[name]["value"])
            <= float(first[name]["ci_high"])
        )
    assert float(first["a"]["difference_ci_low"]) <= float(first["a"]["difference_ci_high"])


def test_bootstrap_interval_width_shrinks_with_data():
    # The standard error of an accuracy falls as 1/sqrt(n): 16 times the data, a narrower CI.
    gen = torch.Generator().manual_seed(12)

    def width(n):
        labels = torch.randint(0, 2, (n,), generator=gen)
        logits = torch.randn(n, 2, generator=gen)
        sliced = SubsetMetric(TopKAccuracy(num_classes=2), subsets=["x"], num_bootstraps=200)
        sliced.update(logits, labels, groups=torch.zeros(n, dtype=torch.long))
        result = sliced.compute()["overall"]
        return float(result["ci_high"] - result["ci_low"])

    assert width(1600) < width(100)


def test_forward_returns_batch_result(classified):
    logits, labels, groups = classified
    sliced = SubsetMetric(TopKAccuracy(num_classes=4), subsets=["a", "b", "c"])
    batch = sliced(logits[:30], labels[:30], groups=groups[:30])
    alone = topk_accuracy(logits[:30], labels[:30], num_classes=4)
    torch.testing.assert_close(batch["overall"]["value"], alone)
    sliced(logits[30:], labels[30:], groups=groups[30:])
    torch.testing.assert_close(
        sliced.compute()["overall"]["value"], topk_accuracy(logits, labels, num_classes=4)
    )


@pytest.mark.parametrize(
    ("groups", "error", "match"),
    [
        (
            torch.tensor([0, 3]),
            ValueError,
            r"`groups` must hold sub-set indices in \[0, 1\] for the sub-sets \['a', 'b'\], got 3",
        ),
        (
            torch.tensor([0, 1, 1]),
            ValueError,
            r"`groups` must hold one sub-set index per sample \(2\)",
        ),
        (torch.tensor([0.0, 1.0]), TypeError, r"`groups` must be an integer tensor"),
        (
            {"a": torch.tensor([True, False])},
            ValueError,
            r"`groups` must have exactly the keys \['a', 'b'\]",
        ),
        (
            {"a": torch.tensor([1, 0]), "b": torch.tensor([0, 1])},
            TypeError,
            r"`groups\['a'\]` must be a boolean mask, got dtype torch.int64",
        ),
        ([0, 1], TypeError, r"`groups` must be a \(N,\) tensor of sub-set indices or a mapping"),
    ],
)
def test_bad_groups_raise(groups, error, match):
    sliced = SubsetMetric(TopKAccuracy(num_classes=2), subsets=["a", "b"])
    with pytest.raises(error, match=match):
        sliced.update(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), groups=groups)


def test_bad_element_mask_shape_raises_before_update():
    sliced = SubsetMetric(D1OutlierRate(), subsets=["a"], by="element")
    with pytest.raises(ValueError, match=r"`groups\['a'\]` of shape \(1, 3\) does not fit"):
        sliced.update(
            torch.zeros(1, 4), torch.ones(1, 4), groups={"a": torch.ones(1, 3, dtype=torch.bool)}
        )
    assert int(sliced.sizes[0]) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"subsets": ["a", "a"]}, ValueError, r"`subsets` names must be unique"),
        ({"subsets": ["overall"]}, ValueError, r"must not be 'overall'"),
        ({"subsets": "ab"}, TypeError, r"`subsets` must be a non-empty sequence of names"),
        ({"subsets": ["a"], "by": "pixel"}, ValueError, r"`by` must be one of 'sample', 'element'"),
        (
            {"subsets": ["a"], "num_bootstraps": -1},
            ValueError,
            r"`num_bootstraps` must be at least 0",
        ),
        (
            {"subsets": ["a"], "confidence": 1.0},
            ValueError,
            r"`confidence` must be a float in \(0, 1\)",
        ),
    ],
)
def test_bad_wrapper_options_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        SubsetMetric(TopKAccuracy(num_classes=2), **kwargs)


def test_wrapper_rejects_non_metric():
    with pytest.raises(
        TypeError,
        match=r"`metric` must be a torchmetrics.Metric instance, got the class TopKAccuracy",
    ):
        SubsetMetric(TopKAccuracy, subsets=["a"])


# ---- stereo data and baseline --------------------------------------------------------------


def test_occlusion_from_disparity_hand_case():
    # Row: columns 0..5 with disparity [0, 0, 0, 2, 2, 0]. Columns 3 and 4 land at 1 and 2 of
    # the right image, so columns 1 and 2 (landing at 1 and 2, farther) are hidden. Column 5
    # lands at 5, to the right of everything, so it is visible.
    disparity = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0, 0.0]])
    hidden = occlusion_from_disparity(disparity)
    assert hidden.tolist() == [[False, True, True, False, False, False]]


def test_occlusion_left_border_and_unknown():
    disparity = torch.tensor([[1.0, INF, 1.0]])
    assert occlusion_from_disparity(disparity).tolist() == [[True, False, False]]


def test_downscale_disparity_halves_and_keeps_unknown():
    disparity = torch.tensor([[4.0, 6.0, 8.0, 8.0], [4.0, 6.0, INF, 8.0]])
    small = downscale_disparity(disparity, 2)
    assert small[0, 0].item() == pytest.approx(2.5)
    assert math.isinf(small[0, 1].item())


def test_block_matching_recovers_a_known_shift():
    # A random texture shifted by 5 px: away from the left border every pixel matches at 5.
    gen = torch.Generator().manual_seed(13)
    scene = torch.rand(3, 20, 60, generator=gen)
    # The right camera sees scene column c at column c - 5, so the disparity is 5 px.
    left, right = scene[:, :, 0:40], scene[:, :, 5:45]
    disparity = block_matching_disparity(left, right, max_disparity=8, window=5)
    assert torch.all(disparity[:, 8:] == 5.0)


def test_block_matching_rejects_even_window():
    with pytest.raises(ValueError, match=r"`window` must be odd, got 4"):
        block_matching_disparity(
            torch.zeros(1, 4, 8), torch.zeros(1, 4, 8), max_disparity=2, window=4
        )


def test_motorcycle_pair_shapes():
    pair = load_stereo_motorcycle(downscale=2)
    assert pair.left.shape == (3, 250, 370)
    assert pair.disparity.shape == (250, 370)
    finite = torch.isfinite(pair.disparity)
    # The shipped ground truth lies between about 7 and 60 px; halved here.
    assert 3.0 < float(pair.disparity[finite].min()) < float(pair.disparity[finite].max()) < 31.0


def test_wrapper_routes_groups_in_collection(classified):
    from andante_metrics import KPICollection

    logits, labels, groups = classified
    kpis = KPICollection(
        {"per_group": SubsetMetric(TopKAccuracy(num_classes=4), subsets=["a", "b", "c"])}
    )
    kpis.update(logits, labels, groups=groups)
    result = kpis.compute()["characterization"]["per_group"]
    member = groups == 1
    expected = topk_accuracy(logits[member], labels[member], num_classes=4)
    torch.testing.assert_close(result["b"]["value"], expected)

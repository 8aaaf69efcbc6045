"""Reference and rule tests of the segmentation overlap scores IoU and Dice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, jaccard_score

from andante_metrics import Dice, IoU
from andante_metrics.functional import dice, iou

C = 5


@pytest.fixture
def maps():
    gen = torch.Generator().manual_seed(3)
    target = torch.randint(0, C, (6, 12, 12), generator=gen)
    noise = torch.randint(0, C, target.shape, generator=gen)
    keep = torch.rand(target.shape, generator=gen) < 0.6
    preds = torch.where(keep, target, noise)
    return preds, target


def _present(preds: torch.Tensor, target: torch.Tensor, drop: tuple[int, ...] = ()) -> list[int]:
    labels = set(preds.unique().tolist()) | set(target.unique().tolist())
    return sorted(labels - set(drop))


def test_iou_macro_matches_sklearn(maps):
    # Reference: scikit-learn jaccard_score(average="macro") over the present labels.
    preds, target = maps
    expected = jaccard_score(
        target.flatten(), preds.flatten(), labels=_present(preds, target), average="macro"
    )
    assert float(iou(preds, target, num_classes=C)) == pytest.approx(expected, abs=1e-12)


def test_iou_per_class_matches_sklearn(maps):
    # Reference: scikit-learn jaccard_score(average=None) for each class.
    preds, target = maps
    expected = jaccard_score(target.flatten(), preds.flatten(), labels=list(range(C)), average=None)
    actual = iou(preds, target, num_classes=C, average="none")
    np.testing.assert_allclose(actual.numpy(), expected, atol=1e-12)


def test_dice_per_class_matches_sklearn_f1(maps):
    # Reference: the Dice coefficient of a class is its F1 score (scikit-learn f1_score).
    preds, target = maps
    expected = f1_score(target.flatten(), preds.flatten(), labels=list(range(C)), average=None)
    actual = dice(preds, target, num_classes=C, average="none")
    np.testing.assert_allclose(actual.numpy(), expected, atol=1e-12)


def test_iou_binary_matches_sklearn():
    # Reference: scikit-learn jaccard_score(average="binary") scores class 1 alone.
    gen = torch.Generator().manual_seed(5)
    target = torch.randint(0, 2, (4, 9, 9), generator=gen)
    preds = torch.where(torch.rand(target.shape, generator=gen) < 0.7, target, 1 - target)
    expected = jaccard_score(target.flatten(), preds.flatten(), average="binary")
    actual = iou(preds, target, num_classes=2, average="binary")
    assert float(actual) == pytest.approx(expected, abs=1e-12)


def test_iou_ignore_index_matches_sklearn_on_kept_positions(maps):
    # Reference: scikit-learn on the positions whose target is not 255, present labels only.
    preds, target = maps
    target = target.clone()
    target[:, :3] = 255
    keep = target != 255
    labels = _present(preds[keep], target[keep])
    expected = jaccard_score(target[keep], preds[keep], labels=labels, average="macro")
    actual = iou(preds, target, num_classes=C, ignore_index=255)
    assert float(actual) == pytest.approx(expected, abs=1e-12)


def test_logits_equal_their_argmax(maps):
    preds, target = maps
    logits = torch.nn.functional.one_hot(preds, C).permute(0, 3, 1, 2).float() * 3.0
    logits += torch.rand(logits.shape, generator=torch.Generator().manual_seed(1))
    for fn in (iou, dice):
        by_logits = fn(logits, target, num_classes=C, input="logits", average="none")
        by_index = fn(preds, target, num_classes=C, average="none")
        torch.testing.assert_close(by_logits, by_index)


def test_binary_single_logit_thresholds_at_zero():
    # Hand case: logits > 0 are class 1, so preds are [1, 0, 1, 0] against target [1, 1, 0, 0]:
    # class 1 has I = 1, P = 2, T = 2, so IoU = 1 / 3.
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0]])
    target = torch.tensor([[1, 1, 0, 0]])
    actual = iou(logits, target, num_classes=2, input="logits", average="binary")
    assert float(actual) == pytest.approx(1 / 3)


def test_absent_class_is_nan_and_left_out():
    # Hand case: class 2 is in neither map, so it is NaN and the mean is over classes 0 and 1.
    target = torch.tensor([[0, 0, 1, 1]])
    preds = torch.tensor([[0, 1, 1, 1]])
    per_class = iou(preds, target, num_classes=3, average="none")
    assert math.isnan(float(per_class[2]))
    assert float(iou(preds, target, num_classes=3)) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_absent_score_enters_the_mean():
    # Hand case: with absent_score=1 the absent class 2 scores 1 and counts in the mean.
    target = torch.tensor([[0, 0, 1, 1]])
    preds = torch.tensor([[0, 1, 1, 1]])
    per_class = iou(preds, target, num_classes=3, average="none", absent_score=1.0)
    assert float(per_class[2]) == 1.0
    mean = iou(preds, target, num_classes=3, absent_score=1.0)
    assert float(mean) == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)


def test_absent_over_whole_evaluation_not_per_batch():
    # Class 1 is absent from the first batch only, so the dataset-level state still scores it.
    metric = IoU(num_classes=2, average="none")
    metric.update(torch.tensor([[0, 0]]), torch.tensor([[0, 0]]))
    metric.update(torch.tensor([[1, 0]]), torch.tensor([[1, 1]]))
    torch.testing.assert_close(metric.compute(), torch.tensor([2 / 3, 1 / 2], dtype=torch.float64))


def test_empty_target_with_prediction_scores_zero():
    # Hand case: class 2 is predicted once but never in the target, so I = 0 and IoU = 0.
    target = torch.tensor([[0, 0, 1, 1]])
    preds = torch.tensor([[0, 0, 1, 2]])
    per_class = iou(preds, target, num_classes=3, average="none")
    assert float(per_class[2]) == 0.0
    assert float(dice(preds, target, num_classes=3, average="none")[2]) == 0.0
    assert float(iou(preds, target, num_classes=3)) == pytest.approx((1 + 1 / 2 + 0) / 3)


def test_ignore_index_inside_range_drops_class_and_positions():
    # Hand case: class 1 is ignored, so its positions go and it is NaN even with absent_score.
    # Kept positions: target [0, 0, 2], preds [0, 1, 2]: class 0 has I = 1, P = 1, T = 2.
    target = torch.tensor([[0, 0, 1, 2]])
    preds = torch.tensor([[0, 1, 1, 2]])
    per_class = iou(preds, target, num_classes=3, ignore_index=1, average="none", absent_score=1.0)
    assert per_class[0] == pytest.approx(1 / 2)
    assert math.isnan(float(per_class[1]))
    assert per_class[2] == pytest.approx(1.0)
    assert float(iou(preds, target, num_classes=3, ignore_index=1)) == pytest.approx(3 / 4)


def test_ignore_index_outside_range_only_masks_positions():
    # Hand case: 255 marks void; without those positions the maps agree, so every class scores 1.
    target = torch.tensor([[0, 255, 1, 255]])
    preds = torch.tensor([[0, 1, 1, 0]])
    per_class = iou(preds, target, num_classes=2, ignore_index=255, average="none")
    torch.testing.assert_close(per_class, torch.tensor([1.0, 1.0], dtype=torch.float64))


def test_ignore_index_negative_is_valid():
    target = torch.tensor([[0, -1, 1]])
    preds = torch.tensor([[0, 0, 1]])
    assert float(iou(preds, target, num_classes=2, ignore_index=-1)) == 1.0


def test_per_image_differs_from_dataset():
    # Hand case: image 1 is all class 0 and predicted right; image 2 swaps two positions.
    target = torch.tensor([[0, 0, 0], [1, 1, 0]])
    preds = torch.tensor([[0, 0, 0], [1, 0, 1]])
    per_image = iou(preds, target, num_classes=2, aggregate="per_image")
    # Image 1: class 1 absent, mean 1. Image 2: class 0 I = 0, U = 2 -> 0; class 1 1/3.
    assert float(per_image) == pytest.approx((1 + (0 + 1 / 3) / 2) / 2)
    dataset = iou(preds, target, num_classes=2)
    # Dataset: class 0 I = 3, P = 4, T = 4 -> 3/5; class 1 I = 1, P = 2, T = 2 -> 1/3.
    assert float(dataset) == pytest.approx((3 / 5 + 1 / 3) / 2)


def test_per_image_per_class_averages_counted_images():
    target = torch.tensor([[0, 0, 0], [1, 1, 0]])
    preds = torch.tensor([[0, 0, 0], [1, 0, 1]])
    per_class = iou(preds, target, num_classes=2, aggregate="per_image", average="none")
    # Class 0 counted in both images (1 and 0); class 1 only in image 2 (1/3).
    torch.testing.assert_close(per_class, torch.tensor([0.5, 1 / 3], dtype=torch.float64))


def test_stateful_equals_functional(maps):
    preds, target = maps
    for cls, fn in ((IoU, iou), (Dice, dice)):
        for aggregate in ("dataset", "per_image"):
            metric = cls(num_classes=C, aggregate=aggregate, ignore_index=0)
            for begin in range(0, len(target), 4):
                metric.update(preds[begin : begin + 4], target[begin : begin + 4])
            expected = fn(preds, target, num_classes=C, aggregate=aggregate, ignore_index=0)
            torch.testing.assert_close(metric.compute(), expected)


def test_dice_relates_to_iou(maps):
    # Per class, Dice = 2 IoU / (1 + IoU) follows from the two definitions.
    preds, target = maps
    jac = iou(preds, target, num_classes=C, average="none")
    torch.testing.assert_close(
        dice(preds, target, num_classes=C, average="none"), 2 * jac / (1 + jac)
    )


@pytest.mark.parametrize(
    ("kwargs", "args", "error", "match"),
    [
        (
            {},
            (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long)),
            ValueError,
            r"`preds` and `target` must have the same shape",
        ),
        (
            {},
            (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long)),
            TypeError,
            r"`preds` must be an integer tensor.*float32",
        ),
        (
            {},
            (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)),
            TypeError,
            r"`target` must be an integer tensor",
        ),
        (
            {},
            (torch.full((1, 2), 3), torch.zeros(1, 2, dtype=torch.long)),
            ValueError,
            r"`preds` must hold class indices in \[0, 2\].*got 3",
        ),
        (
            {},
            (torch.zeros(1, 2, dtype=torch.long), torch.tensor([[0, 255]])),
            ValueError,
            r"`target` must hold class indices in \[0, 2\].*got 255",
        ),
        (
            {"input": "logits"},
            (torch.zeros(1, 4, 2), torch.zeros(1, 2, dtype=torch.long)),
            ValueError,
            r"`preds` logits must have shape \(N, C, \*\) = \(1, 3, 2\)",
        ),
        (
            {"input": "logits"},
            (torch.full((1, 3, 2), math.nan), torch.zeros(1, 2, dtype=torch.long)),
            ValueError,
            r"`preds` contains 6 NaN",
        ),
        (
            {"aggregate": "per_image"},
            (torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long)),
            ValueError,
            r"`target` must have at least 2 dimension",
        ),
        (
            {"ignore_index": 0},
            (torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long)),
            ValueError,
            r"`target` contains no position to score",
        ),
        (
            {},
            (torch.zeros(0, 4, 4, dtype=torch.long), torch.zeros(0, 4, 4, dtype=torch.long)),
            ValueError,
            r"`target` contains no position to score \(it is empty",
        ),
        (
            {"aggregate": "per_image"},
            (torch.zeros(0, 4, 4, dtype=torch.long), torch.zeros(0, 4, 4, dtype=torch.long)),
            ValueError,
            r"`target` contains no position to score \(it is empty",
        ),
    ],
)
def test_bad_inputs_raise(kwargs, args, error, match):
    with pytest.raises(error, match=match):
        iou(*args, num_classes=3, **kwargs)


def test_empty_batch_adds_nothing():
    # An update with zero images leaves the state as it was: the IoU of the one identical map is 1.
    metric = IoU(num_classes=3)
    metric.update(torch.zeros(0, 4, 4, dtype=torch.long), torch.zeros(0, 4, 4, dtype=torch.long))
    labels = torch.tensor([[[0, 1], [2, 2]]])
    metric.update(labels, labels)
    assert float(metric.compute()) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_classes": 1}, ValueError, r"`num_classes` must be at least 2, got 1"),
        (
            {"num_classes": 3, "average": "binary"},
            ValueError,
            r"`average='binary'` needs num_classes=2",
        ),
        (
            {"num_classes": 2, "average": "binary", "ignore_index": 1},
            ValueError,
            r"`ignore_index` must not be 1 with average='binary'",
        ),
        (
            {"num_classes": 2, "ignore_index": 1.5},
            TypeError,
            r"`ignore_index` must be an int, got 1.5",
        ),
        (
            {"num_classes": 2, "absent_score": 2.0},
            ValueError,
            r"`absent_score` must lie in \[0, 1\]",
        ),
        ({"num_classes": 2, "absent_score": "one"}, TypeError, r"`absent_score` must be a number"),
        (
            {"num_classes": 2, "aggregate": "batch"},
            ValueError,
            r"`aggregate` must be one of 'dataset', 'per_image', got 'batch'",
        ),
        ({"num_classes": 2, "average": "micro"}, ValueError, r"`average` must be one of"),
        (
            {"num_classes": 2, "input": "probs"},
            ValueError,
            r"`input` must be one of 'index', 'logits'",
        ),
    ],
)
def test_bad_options_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        IoU(**kwargs)
    with pytest.raises(error, match=match):
        Dice(**kwargs)

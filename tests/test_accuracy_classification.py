"""Reference tests of the classification accuracy KPIs: top-k, AUROC, calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, top_k_accuracy_score

from andante_metrics import (
    AUROC,
    ExpectedCalibrationError,
    MaxCalibrationError,
    ReliabilityDiagram,
    TopKAccuracy,
)
from andante_metrics.functional import (
    auroc,
    brier_score,
    expected_calibration_error,
    max_calibration_error,
    negative_log_likelihood,
    topk_accuracy,
)

NUM_CLASSES = 6


@pytest.fixture
def scores():
    gen = torch.Generator().manual_seed(7)
    labels = torch.randint(0, NUM_CLASSES, (400,), generator=gen)
    logits = torch.randn(400, NUM_CLASSES, generator=gen, dtype=torch.float64)
    logits[torch.arange(400), labels] += 1.0
    return logits, labels


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_topk_micro_matches_sklearn(scores, k):
    # Reference: scikit-learn top_k_accuracy_score (untied continuous scores).
    logits, labels = scores
    expected = top_k_accuracy_score(labels.numpy(), logits.numpy(), k=k, labels=range(NUM_CLASSES))
    actual = topk_accuracy(logits, labels, num_classes=NUM_CLASSES, top_k=k)
    assert float(actual) == pytest.approx(expected, abs=1e-12)


def test_topk_macro_is_mean_of_per_class_recall(scores):
    # Reference: the definition, computed with numpy from per-class top-k hits.
    logits, labels = scores
    top2 = np.argsort(-logits.numpy(), axis=1)[:, :2]
    hit = (top2 == labels.numpy()[:, None]).any(axis=1)
    expected = np.mean([hit[labels.numpy() == c].mean() for c in range(NUM_CLASSES)])
    actual = topk_accuracy(logits, labels, num_classes=NUM_CLASSES, top_k=2, average="macro")
    assert float(actual) == pytest.approx(expected, abs=1e-12)


def test_topk_never_decreases_in_k_with_ties():
    # Every score tied: by the definition (ties go to the true class) every k hits.
    preds = torch.zeros(5, 4)
    labels = torch.tensor([0, 1, 2, 3, 3])
    values = [float(topk_accuracy(preds, labels, num_classes=4, top_k=k)) for k in range(1, 5)]
    assert values == [1.0, 1.0, 1.0, 1.0]


def test_topk_monotone_in_k_on_random_scores(scores):
    logits, labels = scores
    rounded = (logits * 2).round()  # many ties
    values = [
        float(topk_accuracy(rounded, labels, num_classes=NUM_CLASSES, top_k=k))
        for k in range(1, NUM_CLASSES + 1)
    ]
    assert values == sorted(values)
    assert values[-1] == 1.0


def test_topk_macro_leaves_out_absent_classes():
    # Hand case: class 2 never appears; macro = mean(recall of class 0, recall of class 1).
    preds = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.7, 0.3, 0.0]])
    labels = torch.tensor([0, 1, 1])
    actual = topk_accuracy(preds, labels, num_classes=3, average="macro")
    assert float(actual) == pytest.approx((1.0 + 0.5) / 2)


def test_multiclass_auroc_matches_sklearn_ovr(scores):
    # Reference: scikit-learn roc_auc_score(multi_class="ovr"), macro and weighted.
    logits, labels = scores
    probs = logits.softmax(dim=1).numpy()
    for average in ("macro", "weighted"):
        expected = roc_auc_score(labels.numpy(), probs, multi_class="ovr", average=average)
        actual = auroc(logits, labels, num_classes=NUM_CLASSES, input="logits", average=average)
        assert float(actual) == pytest.approx(expected, abs=1e-12)


def test_binary_auroc_with_ties_matches_sklearn():
    # Reference: scikit-learn roc_auc_score, which counts a tied pair as one half.
    gen = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 2, (300,), generator=gen)
    preds = (torch.rand(300, generator=gen) * 5).floor() / 5 + 0.1 * labels
    expected = roc_auc_score(labels.numpy(), preds.numpy())
    assert float(auroc(preds, labels, input="probs")) == pytest.approx(expected, abs=1e-12)


def test_auroc_input_kind_changes_nothing_for_monotone_transform(scores):
    # Softmax keeps the order within a class column only up to the normaliser, so compare the
    # binary case, where sigmoid is monotone: AUROC from logits equals AUROC from probabilities.
    logits, labels = scores
    binary = (labels > 2).long()
    from_logits = auroc(logits[:, 0], binary, input="logits")
    from_probs = auroc(logits[:, 0].sigmoid(), binary, input="probs")
    assert float(from_logits) == pytest.approx(float(from_probs), abs=1e-12)


def test_auroc_single_class_raises():
    with pytest.raises(
        ValueError, match="AUROC is undefined because `target` contains only one class"
    ):
        auroc(torch.tensor([0.1, 0.5]), torch.tensor([1, 1]), input="probs")


def test_auroc_empty_inputs_raise():
    match = r"`preds` and `target` contain no samples \(`target` has shape \(0,\)\)"
    with pytest.raises(ValueError, match=match):
        auroc(torch.zeros(0), torch.zeros(0, dtype=torch.long), input="probs")
    with pytest.raises(ValueError, match=match):
        auroc(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), num_classes=3, input="logits")


def test_auroc_absent_class_left_out_with_warning():
    preds = torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    labels = torch.tensor([0, 1, 0, 1])
    with pytest.warns(UserWarning, match=r"AUROC leaves out classes \[2\]"):
        value = AUROC(num_classes=3, input="probs")(preds, labels)
    per_class = auroc(preds, labels, num_classes=3, input="probs", average="none")
    assert torch.isnan(per_class[2])
    assert float(value) == pytest.approx(float(per_class[:2].mean()))


def _netcal_probs(logits: torch.Tensor) -> np.ndarray:
    return logits.softmax(dim=1).numpy()


def test_ece_matches_netcal(scores):
    # Reference: netcal.metrics.ECE with 15 equal-width bins on the top-label confidence.
    from netcal.metrics import ECE

    logits, labels = scores
    expected = ECE(bins=15).measure(_netcal_probs(logits), labels.numpy())
    actual = expected_calibration_error(logits, labels, num_classes=NUM_CLASSES, input="logits")
    assert float(actual) == pytest.approx(expected, abs=1e-9)


def test_mce_matches_netcal(scores):
    # Reference: netcal.metrics.MCE with 15 equal-width bins.
    from netcal.metrics import MCE

    logits, labels = scores
    expected = MCE(bins=15).measure(_netcal_probs(logits), labels.numpy())
    actual = max_calibration_error(logits, labels, num_classes=NUM_CLASSES, input="logits")
    assert float(actual) == pytest.approx(expected, abs=1e-9)


def test_ece_counts_confidence_one_in_last_bin():
    # Derived from the definition: one sample at confidence exactly 1.0 and right has gap 0;
    # one at 0.55 and wrong has gap 0.55, so ECE = 0.55 / 2 and the last bin contains one sample.
    probs = torch.tensor([[1.0, 0.0], [0.55, 0.45]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    ece = expected_calibration_error(probs, labels, num_classes=2, input="probs")
    assert float(ece) == pytest.approx(0.275)
    diagram = ReliabilityDiagram(num_classes=2, input="probs")
    diagram.update(probs, labels)
    counts = diagram.compute()["count"]
    assert float(counts[-1]) == 1.0
    assert float(counts.sum()) == 2.0


def test_ece_hand_computed_example():
    # Derived from the definition with 2 bins: bin [0.5, 1] contains 0.9 (right), 0.6 (wrong) and
    # 0.7 (right): accuracy 2/3, mean confidence 0.7333, gap 0.0667; weight 1.
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 1])
    ece = expected_calibration_error(probs, labels, num_classes=2, input="probs", n_bins=2)
    assert float(ece) == pytest.approx(abs(2 / 3 - (0.9 + 0.6 + 0.7) / 3))


def test_reliability_diagram_empty_bins_are_nan_not_zero(scores):
    logits, labels = scores
    diagram = ReliabilityDiagram(num_classes=NUM_CLASSES, input="logits")
    diagram.update(logits, labels)
    data = diagram.compute()
    empty = data["count"] == 0
    assert bool(empty.any())
    assert bool(torch.isnan(data["accuracy"][empty]).all())
    assert bool((~torch.isnan(data["accuracy"][~empty])).all())


def test_brier_matches_sklearn_multiclass(scores):
    # Reference: scikit-learn brier_score_loss (multiclass, scale_by_half=False): sum over classes.
    logits, labels = scores
    expected = brier_score_loss(
        labels.numpy(), _netcal_probs(logits), scale_by_half=False, labels=list(range(NUM_CLASSES))
    )
    actual = brier_score(logits, labels, num_classes=NUM_CLASSES, input="logits")
    assert float(actual) == pytest.approx(expected, abs=1e-12)


def test_nll_matches_sklearn_log_loss(scores):
    # Reference: scikit-learn log_loss on the softmax probabilities.
    logits, labels = scores
    expected = log_loss(labels.numpy(), _netcal_probs(logits), labels=list(range(NUM_CLASSES)))
    actual = negative_log_likelihood(logits, labels, num_classes=NUM_CLASSES, input="logits")
    assert float(actual) == pytest.approx(expected, abs=1e-10)


def test_nll_of_zero_probability_is_inf_not_nan():
    probs = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    value = negative_log_likelihood(probs, torch.tensor([1]), num_classes=2, input="probs")
    assert value == float("inf")


def test_calibration_metrics_share_state_shape():
    ece = ExpectedCalibrationError(num_classes=3, input="logits")
    mce = MaxCalibrationError(num_classes=3, input="logits")
    assert set(ece._defaults) == set(mce._defaults) == {"bin_sums"}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: topk_accuracy(
                torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), num_classes=3
            ),
            "empty",
        ),
        (lambda: TopKAccuracy(num_classes=3, top_k=0), r"`top_k` must be at least 1, got 0"),
        (lambda: TopKAccuracy(num_classes=3.0), r"`num_classes` must be an int, got 3.0"),
        (
            lambda: AUROC(input="logits", average="micro"),
            r"`average` must be one of 'macro', 'weighted', 'none', got 'micro'",
        ),
        (lambda: TopKAccuracy(num_classes=3, typo_option=1), "typo_option"),
    ],
)
def test_functional_and_constructor_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_probabilities_are_accepted(scores, dtype):
    # Rows of rounded probabilities sum to 1 only within the dtype's rounding error.
    logits, labels = scores
    probs = logits.softmax(dim=1).to(dtype)
    # Reference: the definition, -mean(log p_true), on the rounded probabilities.
    reference = -probs.double()[torch.arange(len(labels)), labels].log().mean()
    value = negative_log_likelihood(probs, labels, num_classes=NUM_CLASSES, input="probs")
    assert float(value) == pytest.approx(float(reference))

"""KPICollection: routing by input name, nested results, declared state sharing."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from andante_metrics import (
    AUROC,
    BrierScore,
    ExpectedCalibrationError,
    KPICollection,
    KPIMetric,
    Latency,
    MaxCalibrationError,
    NegativeLogLikelihood,
    TopKAccuracy,
)
from andante_metrics.functional import expected_calibration_error, max_calibration_error

C = 5


def _batches(n=4, size=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, C, generator=gen), torch.randint(0, C, (size,), generator=gen))
        for _ in range(n)
    ]


class _MinValue(KPIMetric):
    kpi_area = "convergence"
    unit = "value"
    higher_is_better = False

    def __init__(self):
        super().__init__()
        self.add_state("best", torch.tensor(float("inf")), dist_reduce_fx="min")

    def update(self, value: torch.Tensor) -> None:
        self.best = torch.minimum(self.best, value.min())

    def compute(self):
        return self.best


class _MaxValue(_MinValue):
    higher_is_better = True

    def __init__(self):
        KPIMetric.__init__(self)
        self.add_state("best", torch.tensor(float("-inf")), dist_reduce_fx="max")

    def update(self, value: torch.Tensor) -> None:
        self.best = torch.maximum(self.best, value.max())


def test_nested_result_by_area_equals_each_metric_alone():
    kpis = KPICollection(
        {
            "top1": TopKAccuracy(num_classes=C),
            "nll": NegativeLogLikelihood(num_classes=C, input="logits"),
        }
    )
    alone = TopKAccuracy(num_classes=C)
    for preds, target in _batches():
        kpis.update(preds, target)
        alone.update(preds, target)
    result = kpis.compute()
    assert set(result) == {"accuracy"}
    assert torch.equal(result["accuracy"]["top1"], alone.compute())


def test_min_and_max_metrics_never_merge_their_state():
    # torchmetrics infers compute groups from equal states after the first update, which can
    # merge a min and a max metric whose first values coincide; sharing here is declared only.
    kpis = KPICollection({"low": _MinValue(), "high": _MaxValue()})
    kpis.update(value=torch.tensor([3.0]))
    kpis.update(value=torch.tensor([1.0, 5.0]))
    result = kpis.compute()["convergence"]
    assert float(result["low"]) == 1.0
    assert float(result["high"]) == 5.0


def test_routing_skips_metrics_whose_inputs_are_absent():
    model = nn.Linear(3, C)
    kpis = KPICollection({"top1": TopKAccuracy(num_classes=C), "latency": Latency(model, warmup=0)})
    preds, target = _batches(1)[0]
    kpis.update(preds, target)
    assert kpis["latency"].update_count == 0
    kpis.update(inputs=torch.randn(2, 3))
    assert kpis["latency"].update_count == 1
    assert kpis["top1"].update_count == 1
    result = kpis.compute()
    assert set(result) == {"accuracy", "efficiency"}


def test_unknown_keyword_raises():
    kpis = KPICollection({"top1": TopKAccuracy(num_classes=C)})
    preds, target = _batches(1)[0]
    with pytest.raises(TypeError, match=r"input\(s\) \['targets'\] that no metric takes"):
        kpis.update(preds=preds, targets=target)


def test_input_map_renames_inputs():
    kpis = KPICollection(
        {"top1": TopKAccuracy(num_classes=C)},
        input_map={"top1": {"preds": "logits", "target": "labels"}},
    )
    preds, target = _batches(1)[0]
    kpis.update(logits=preds, labels=target)
    assert float(kpis.compute()["accuracy"]["top1"]) == float(
        TopKAccuracy(num_classes=C)(preds, target)
    )


def test_shared_state_values_per_metric():
    kpis = KPICollection(
        {
            "ece": ExpectedCalibrationError(num_classes=C, input="logits"),
            "mce": MaxCalibrationError(num_classes=C, input="logits"),
        },
        shared_state=[["ece", "mce"]],
    )
    batches = _batches()
    for preds, target in batches:
        kpis.update(preds, target)
    assert kpis["mce"].update_count == 0  # only the group leader is updated
    preds = torch.cat([b[0] for b in batches])
    target = torch.cat([b[1] for b in batches])
    result = kpis.compute()["accuracy"]
    assert float(result["ece"]) == pytest.approx(
        float(expected_calibration_error(preds, target, num_classes=C, input="logits"))
    )
    assert float(result["mce"]) == pytest.approx(
        float(max_calibration_error(preds, target, num_classes=C, input="logits"))
    )


@pytest.mark.parametrize(
    ("metrics", "shared", "match"),
    [
        (
            {
                "ece": ExpectedCalibrationError(num_classes=C, input="logits"),
                "brier": BrierScore(num_classes=C, input="logits"),
            },
            [["ece", "brier"]],
            "whose states or inputs differ",
        ),
        (
            {
                "ece": ExpectedCalibrationError(num_classes=C, input="logits"),
                "mce": MaxCalibrationError(num_classes=C, input="probs"),
            },
            [["ece", "mce"]],
            "whose states or inputs differ",
        ),
        (
            {"ece": ExpectedCalibrationError(num_classes=C, input="logits")},
            [["ece", "nope"]],
            "names metric 'nope'",
        ),
    ],
)
def test_invalid_shared_state_raises(metrics, shared, match):
    with pytest.raises(ValueError, match=match):
        KPICollection(metrics, shared_state=shared)


def test_forward_returns_batch_values_and_accumulates():
    kpis = KPICollection({"top1": TopKAccuracy(num_classes=C)})
    batches = _batches()
    for preds, target in batches:
        batch_value = kpis(preds, target)["accuracy"]["top1"]
        assert torch.equal(batch_value, TopKAccuracy(num_classes=C)(preds, target))
    total = TopKAccuracy(num_classes=C)
    for preds, target in batches:
        total.update(preds, target)
    assert torch.equal(kpis.compute()["accuracy"]["top1"], total.compute())


def test_reset_and_flat_names():
    kpis = KPICollection({"top1": TopKAccuracy(num_classes=C)})
    kpis.update(*_batches(1)[0])
    assert list(kpis.compute_flat()) == ["accuracy/top1"]
    kpis.reset()
    assert kpis.compute() == {}


def test_rejects_plain_torchmetrics_metric():
    with pytest.raises(TypeError, match=r"`metrics\['acc'\]` must be an andante_metrics KPIMetric"):
        KPICollection({"acc": MulticlassAccuracy(num_classes=C)})


def test_same_values_as_metric_collection():
    # Reference: torchmetrics' MetricCollection over the same metric objects.
    ours = KPICollection(
        {
            "top1": TopKAccuracy(num_classes=C),
            "nll": NegativeLogLikelihood(num_classes=C, input="logits"),
        }
    )
    theirs = MetricCollection(
        {
            "top1": TopKAccuracy(num_classes=C),
            "nll": NegativeLogLikelihood(num_classes=C, input="logits"),
        },
        compute_groups=False,
    )
    for preds, target in _batches():
        ours.update(preds, target)
        theirs.update(preds, target)
    flat = ours.compute_flat()
    expected = theirs.compute()
    assert torch.equal(flat["accuracy/top1"], expected["top1"])
    assert torch.equal(flat["accuracy/nll"], expected["nll"])


def test_state_dict_round_trip_of_collection():
    kpis = KPICollection({"top1": TopKAccuracy(num_classes=C)})
    batches = _batches()
    kpis.update(*batches[0])
    resumed = KPICollection({"top1": TopKAccuracy(num_classes=C)})
    resumed.load_state_dict(kpis.state_dict())
    for batch in batches[1:]:
        kpis.update(*batch)
        resumed.update(*batch)
    assert torch.equal(resumed.compute()["accuracy"]["top1"], kpis.compute()["accuracy"]["top1"])


def test_failed_forward_keeps_accumulated_state():
    kpis = KPICollection({"auroc": AUROC(num_classes=3, input="logits")})
    gen = torch.Generator().manual_seed(0)
    preds = torch.randn(30, 3, generator=gen)
    target = torch.arange(30) % 3
    kpis(preds, target)
    before = kpis.compute()["accuracy"]["auroc"]
    with pytest.raises(ValueError, match="AUROC is undefined"):
        kpis(preds[:2], torch.tensor([1, 1]))  # a batch of one class has no AUROC
    assert torch.equal(kpis.compute()["accuracy"]["auroc"], before)


def test_update_that_feeds_no_metric_raises():
    kpis = KPICollection({"top1": TopKAccuracy(num_classes=C)})
    preds, _ = _batches(1)[0]
    with pytest.raises(
        TypeError, match=r"complete no metric's inputs: top1 needs \['preds', 'target'\]"
    ):
        kpis.update(preds)


def test_forward_reports_every_shared_state_member():
    kpis = KPICollection(
        {
            "ece": ExpectedCalibrationError(num_classes=C, input="logits"),
            "mce": MaxCalibrationError(num_classes=C, input="logits"),
        },
        shared_state=[["ece", "mce"]],
    )
    preds, target = _batches(1)[0]
    values = kpis(preds, target)["accuracy"]
    assert set(values) == {"ece", "mce"}
    assert float(values["mce"]) == pytest.approx(
        float(max_calibration_error(preds, target, num_classes=C, input="logits"))
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_map": [("top1", {"preds": "x"})]}, r"`input_map` must be a dict"),
        ({"input_map": {"top1": {"preds": 3}}}, r"`input_map\['top1'\]` must be a dict of input"),
        (
            {"shared_state": ["top1", "top1b"]},
            r"got the group 'top1'; write shared_state=\[\[...\]\]",
        ),
    ],
)
def test_invalid_collection_options_raise_type_error(kwargs, match):
    metrics = {"top1": TopKAccuracy(num_classes=C), "top1b": TopKAccuracy(num_classes=C)}
    with pytest.raises(TypeError, match=match):
        KPICollection(metrics, **kwargs)


def test_state_dict_of_other_num_classes_is_rejected():
    saved = TopKAccuracy(num_classes=3)
    saved.update(torch.eye(3), torch.tensor([0, 1, 2]))
    with pytest.raises(
        ValueError,
        match=r"State `hits` of TopKAccuracy has shape \(5,\), but the "
        r"state_dict holds shape \(3,\)",
    ):
        TopKAccuracy(num_classes=5).load_state_dict(saved.state_dict())


def test_state_dict_dtype_and_missing_keys():
    saved = TopKAccuracy(num_classes=3)
    saved.update(torch.eye(3), torch.tensor([0, 1, 2]))
    state = {key: value.float() for key, value in saved.state_dict().items()}
    loaded = TopKAccuracy(num_classes=3)
    loaded.load_state_dict(state)
    assert loaded.hits.dtype == torch.long
    with pytest.raises(RuntimeError, match="Missing key"):
        TopKAccuracy(num_classes=3).load_state_dict({}, strict=True)


def test_metric_without_area_cannot_be_instantiated():
    class _NoArea(KPIMetric):
        def update(self, x):
            pass

        def compute(self):
            return 0

    with pytest.raises(TypeError, match="must set the class attributes `kpi_area`"):
        _NoArea()

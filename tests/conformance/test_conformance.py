"""Conformance checks run on every registered metric case (see ``harness.py``)."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch

from conformance.distributed import run_distributed
from conformance.harness import MetricCase, assert_close, rebatch, run_stream
from conformance.registry import load_cases

CASES = load_cases()
IDS = sorted(CASES)


def _case(name: str) -> MetricCase:
    return CASES[name]


def _reference(case: MetricCase):
    return run_stream(case.make_metric(), case.batches())


@pytest.fixture(params=IDS)
def case(request) -> MetricCase:
    return _case(request.param)


def test_batch_split_invariance(case: MetricCase):
    if not case.splittable:
        pytest.skip(f"{case.name}: batches cannot be re-split ({case.reason})")
    expected = _reference(case)
    batches = case.batches()
    total = sum(len(b[0]) for b in batches)
    for sizes in ([total], [1, 2, 3, 5, 8, 13, 21], [total // 2 + 1]):
        actual = run_stream(case.make_metric(), rebatch(batches, sizes))
        assert_close(actual, expected, rtol=case.rtol, atol=case.atol)


def test_batch_order_invariance(case: MetricCase):
    if not case.order_invariant:
        pytest.skip(f"{case.name}: order matters by design ({case.reason})")
    expected = _reference(case)
    actual = run_stream(case.make_metric(), list(reversed(case.batches())))
    assert_close(actual, expected, rtol=case.rtol, atol=case.atol)


def test_forward_returns_batch_value_and_accumulates(case: MetricCase):
    batches = case.batches()
    metric = case.make_metric()
    for batch in batches:
        batch_value = metric(*batch)
        if case.forward_is_batch_value:
            alone = run_stream(case.make_metric(), [batch])
            assert_close(batch_value, alone, rtol=case.rtol, atol=case.atol)
    assert_close(metric.compute(), _reference(case), rtol=case.rtol, atol=case.atol)


def test_compute_twice_is_stable(case: MetricCase):
    metric = case.make_metric()
    first = run_stream(metric, case.batches())
    second = metric.compute()
    assert_close(second, first, rtol=0, atol=0)


def test_reset_returns_to_empty(case: MetricCase):
    metric = case.make_metric()
    run_stream(metric, case.batches())
    metric.reset()
    actual = run_stream(metric, case.batches()[:1])
    assert_close(
        actual, run_stream(case.make_metric(), case.batches()[:1]), rtol=case.rtol, atol=case.atol
    )


def test_state_dict_round_trip_mid_stream(case: MetricCase):
    batches = case.batches()
    half = max(1, len(batches) // 2)
    metric = case.make_metric()
    for batch in batches[:half]:
        metric.update(*batch)
    buffer = io.BytesIO()
    torch.save(metric.state_dict(), buffer)
    buffer.seek(0)
    resumed = case.make_metric()
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    actual = run_stream(resumed, batches[half:])
    assert_close(actual, _reference(case), rtol=case.rtol, atol=case.atol)


def test_metric_pickles_and_deepcopies(case: MetricCase):
    metric = case.make_metric()
    metric.update(*case.batches()[0])
    for clone in (copy.deepcopy(metric), pickle.loads(pickle.dumps(metric))):
        assert_close(clone.compute(), metric.compute(), rtol=case.rtol, atol=case.atol)


def test_compute_without_data(case: MetricCase):
    metric = case.make_metric()
    if case.empty == "raise":
        with (
            pytest.warns(UserWarning, match="before the ``update``"),
            pytest.raises(ValueError, match="update"),
        ):
            metric.compute()
    else:
        with pytest.warns(UserWarning, match="before the ``update``"):
            case.empty(metric.compute())


BAD = [(name, bad.label) for name in IDS for bad in CASES[name].bad_inputs]


@pytest.mark.parametrize(("name", "label"), BAD, ids=[f"{n}-{lbl}" for n, lbl in BAD])
def test_bad_input_raises(name: str, label: str):
    case = _case(name)
    bad = next(b for b in case.bad_inputs if b.label == label)
    assert bad.error in (ValueError, TypeError), "bad inputs must raise ValueError or TypeError"
    with pytest.raises(bad.error, match=bad.match):
        if bad.construct is not None:
            case.make_metric(**bad.construct)
        else:
            case.make_metric().update(*bad.args)


def test_every_case_lists_bad_inputs():
    missing = [name for name, case in CASES.items() if not case.bad_inputs]
    assert not missing, f"cases without bad-input checks: {missing}"


@pytest.fixture(scope="module")
def distributed_results(tmp_path_factory):
    names = [name for name in IDS if CASES[name].distributed]
    return run_distributed(names, tmp_path_factory.mktemp("ddp"))


def test_two_processes_match_one(case: MetricCase, request):
    if not case.distributed:
        pytest.skip(f"{case.name}: not run over processes ({case.reason})")
    distributed_results = request.getfixturevalue("distributed_results")
    status, value = distributed_results[case.name]
    assert status == "ok", f"{case.name} failed on 2 processes:\n{value}"
    assert_close(value, _reference(case), rtol=max(case.rtol, 1e-9), atol=max(case.atol, 1e-12))

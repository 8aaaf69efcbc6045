"""Lightning callback over two processes, checkpoint resume, and the torchrun example."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning", reason="the Lightning integration needs the lightning extra")

from andante_metrics import (  # noqa: E402
    ExpectedCalibrationError,
    KPICollection,
    NegativeLogLikelihood,
    TopKAccuracy,
)
from andante_metrics.data import load_digits_split  # noqa: E402
from andante_metrics.demo.model import DigitsCNN  # noqa: E402

EXAMPLES = Path(__file__).parents[1] / "examples"


def _run(args: list[str], cwd: Path) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"rank"')]


def _card_values(folder: Path) -> dict[str, float]:
    card = json.loads((folder / "kpi_card.json").read_text())
    return {
        name: entry["value"]
        for area in card["areas"].values()
        for name, entry in area["metrics"].items()
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_lightning_ddp_two_processes_match_one_process_evaluation(tmp_path):
    out, weights = tmp_path / "card", tmp_path / "weights.pt"
    env_port = str(_free_port())
    os.environ["MASTER_PORT"] = env_port
    try:
        ranks = _run(
            [
                str(EXAMPLES / "lightning_digits.py"),
                "--devices",
                "2",
                "--out",
                str(out),
                "--save-weights",
                str(weights),
            ],
            tmp_path,
        )
    finally:
        os.environ.pop("MASTER_PORT", None)
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    written = {r["rank"]: r["cards_written"] for r in ranks}
    assert written[1] == 0, "only rank zero writes the card"
    assert written[0] >= 1

    # Reference: the same KPIs computed in this single process over the whole test split with
    # the weights the two-process run ended with.
    model = DigitsCNN()
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    data = load_digits_split(seed=0)
    kpis = KPICollection(
        {
            "top1_accuracy": TopKAccuracy(num_classes=10),
            "nll": NegativeLogLikelihood(num_classes=10, input="logits"),
            "ece_top_label_15_bins": ExpectedCalibrationError(num_classes=10, input="logits"),
        }
    )
    with torch.no_grad():
        kpis.update(model(data.test_images), data.test_labels)
    expected = kpis.compute()["accuracy"]
    carded = _card_values(out)
    for name, value in expected.items():
        assert carded[f"test_{name}"] == pytest.approx(float(value), rel=1e-9, abs=1e-12), name

    # The values logged through Lightning's logger equal the card's.
    metrics_csv = next(out.glob("logs/version_*/metrics.csv")).read_text().splitlines()
    header = metrics_csv[0].split(",")
    logged = {}
    for line in metrics_csv[1:]:
        for key, cell in zip(header, line.split(","), strict=True):
            if cell and key.startswith("test/"):
                logged[key] = float(cell)
    for name in expected:
        assert logged[f"test/accuracy/{name}"] == pytest.approx(carded[f"test_{name}"], rel=1e-6)


def test_lightning_kill_and_resume_matches_uninterrupted_run(tmp_path):
    full, resumed, checkpoints = tmp_path / "full", tmp_path / "resumed", tmp_path / "ckpt"
    _run([str(EXAMPLES / "lightning_digits.py"), "--out", str(full)], tmp_path)
    # Killed in the middle of the second epoch (43 steps per epoch), at a checkpoint.
    _run(
        [
            str(EXAMPLES / "lightning_digits.py"),
            "--out",
            str(tmp_path / "killed"),
            "--max-steps",
            "60",
            "--ckpt-dir",
            str(checkpoints),
        ],
        tmp_path,
    )
    checkpoint = checkpoints / "epoch=1-step=60.ckpt"
    assert checkpoint.exists(), sorted(p.name for p in checkpoints.iterdir())
    _run(
        [str(EXAMPLES / "lightning_digits.py"), "--out", str(resumed), "--resume", str(checkpoint)],
        tmp_path,
    )
    expected, actual = _card_values(full), _card_values(resumed)
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name


def test_torchrun_two_uneven_processes_write_the_single_process_card(tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    script = str(EXAMPLES / "torchrun_digits.py")
    _run([script, "--out", str(single)], tmp_path)
    _run(
        [
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(_free_port()),
            script,
            "--out",
            str(double),
        ],
        tmp_path,
    )
    expected, actual = _card_values(single), _card_values(double)
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, rel=1e-12), name
    card = json.loads((double / "kpi_card.json").read_text())
    assert card["dataset"]["world_size"] == 2


def test_callback_rejects_wrong_collection_type():
    from andante_metrics.integrations.lightning import KPICallback

    with pytest.raises(TypeError, match=r"`train` must be a KPICollection or None, got dict"):
        KPICallback(train={"top1": TopKAccuracy(num_classes=10)})
    with pytest.raises(ValueError, match="needs at least one of `train`, `val` or `test`"):
        KPICallback()


def test_callback_state_dict_round_trip():
    from andante_metrics.integrations.lightning import KPICallback

    callback = KPICallback(train=KPICollection({"top1": TopKAccuracy(num_classes=3)}))
    callback.collections["train"].update(torch.eye(3), torch.tensor([0, 1, 1]))
    restored = KPICallback(train=KPICollection({"top1": TopKAccuracy(num_classes=3)}))
    restored.load_state_dict(callback.state_dict())
    value = restored.collections["train"].compute()["accuracy"]["top1"]
    assert float(value) == pytest.approx(2 / 3)

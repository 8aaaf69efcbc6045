"""ONNX round trip: export with torch.onnx, run with onnxruntime, compare with PyTorch."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from andante_metrics.utilities.checks import check_tensor


@dataclass
class OnnxRoundTrip:
    """Agreement between a PyTorch model and its ONNX export run by onnxruntime.

    ``max_abs_difference`` is over every output element; ``class_agreement`` is the fraction of
    samples whose arg-max over the last dimension is the same in both runtimes.
    """

    max_abs_difference: float
    class_agreement: float
    samples: int
    opset: int | None
    onnxruntime_version: str


def _require_onnx():
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            "The ONNX round trip needs onnx, onnxscript and onnxruntime; install them with "
            "`pip install 'andante-metrics[onnx]'`."
        ) from err
    return onnxruntime


def onnx_round_trip(
    model: nn.Module, inputs: torch.Tensor, *, opset: int | None = None
) -> OnnxRoundTrip:
    """Export ``model`` to ONNX and compare onnxruntime's outputs with PyTorch's on ``inputs``.

    The model is exported in eval mode with torch.onnx's ``torch.export``-based exporter, with a
    dynamic batch dimension, to an in-memory file, then run on onnxruntime's CPU provider. The
    model's training mode is restored afterwards.

    Raises:
        ImportError: when onnxruntime or the exporter's dependencies are not installed, with the
            command that installs them.
    """
    ort = _require_onnx()
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    check_tensor(inputs, "inputs", dtype="float")
    if inputs.ndim == 0 or len(inputs) < 1:
        raise ValueError(
            f"`inputs` must hold at least one sample, got shape {tuple(inputs.shape)}."
        )
    was_training = model.training
    model.eval()
    batch = torch.export.Dim("batch", min=1)
    folder = tempfile.TemporaryDirectory(prefix="andante_onnx_")
    path = Path(folder.name) / "model.onnx"
    try:
        with torch.no_grad():
            expected = model(inputs)
        torch.onnx.export(
            model,
            (inputs,),
            path,
            dynamo=True,
            opset_version=opset,
            verbose=False,
            input_names=["inputs"],
            dynamic_shapes=({0: batch},),
        )
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    finally:
        model.train(was_training)
        folder.cleanup()
    actual = session.run(None, {session.get_inputs()[0].name: inputs.detach().cpu().numpy()})[0]
    actual = torch.from_numpy(actual)
    expected = expected.detach().cpu().to(actual.dtype)
    agreement = (actual.argmax(dim=-1) == expected.argmax(dim=-1)).double().mean()
    return OnnxRoundTrip(
        max_abs_difference=float((actual - expected).abs().max()),
        class_agreement=float(agreement),
        samples=len(inputs),
        opset=opset,
        onnxruntime_version=ort.__version__,
    )

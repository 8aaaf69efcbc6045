"""count_macs and MACsPerSample: closed-form counts, per-call attribution, no side effects.

Expected values are the closed forms of the counting convention: ``m k n`` MACs for a
``[m,k] x [k,n]`` product and ``N * prod(weight.shape) * prod(S)`` for a convolution, with ``S``
the output spatial size (input spatial size for a transposed convolution).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from andante_metrics import MACsPerSample, build_on_meta, count_macs
from andante_metrics.demo.model import DigitsCNN


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


CLOSED_FORMS = [
    # (label, module, input shapes, expected MACs, worked formula)
    ("conv2d", nn.Conv2d(3, 8, 3, padding=1), [(2, 3, 5, 5)], 2 * 8 * 3 * 9 * 25),
    ("conv_grouped", nn.Conv2d(8, 16, 3, padding=1, groups=4), [(2, 8, 5, 5)],
     2 * 16 * 2 * 9 * 25),
    ("conv_depthwise_strided", nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),
     [(1, 8, 6, 6)], 8 * 1 * 9 * 3 * 3),
    ("conv_dilated", nn.Conv2d(2, 4, 3, dilation=2), [(1, 2, 9, 9)], 4 * 2 * 9 * 5 * 5),
    ("conv_transposed", nn.ConvTranspose2d(4, 6, 3, stride=2), [(1, 4, 5, 5)],
     4 * 25 * 6 * 9),
    ("conv_transposed_grouped", nn.ConvTranspose2d(4, 6, 3, groups=2), [(2, 4, 5, 5)],
     2 * 4 * 25 * 3 * 9),
    ("conv1d", nn.Conv1d(3, 5, 4), [(2, 3, 10)], 2 * 5 * 3 * 4 * 7),
    ("conv3d", nn.Conv3d(2, 3, 2), [(1, 2, 3, 3, 3)], 3 * 2 * 8 * 8),
    ("linear_3d", nn.Linear(4, 3), [(2, 5, 4)], 2 * 5 * 4 * 3),
    ("linear_4d_no_bias", nn.Linear(4, 3, bias=False), [(2, 2, 5, 4)], 20 * 4 * 3),
    ("matmul_broadcast", Lambda(torch.matmul), [(2, 1, 3, 4), (5, 4, 6)], 2 * 5 * 3 * 4 * 6),
    ("matmul_vector", Lambda(torch.matmul), [(3, 4), (4,)], 3 * 4),
    ("einsum_batched", Lambda(lambda a, b: torch.einsum("bij,bjk->bik", a, b)),
     [(2, 3, 4), (2, 4, 5)], 2 * 3 * 4 * 5),
    ("einsum_heads", Lambda(lambda q, k: torch.einsum("bhqd,bhkd->bhqk", q, k)),
     [(2, 3, 7, 8), (2, 3, 9, 8)], 2 * 3 * 7 * 9 * 8),
    ("sdpa", Lambda(F.scaled_dot_product_attention), [(2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 10)],
     2 * 3 * 7 * 9 * (8 + 10)),
]


def _inputs(shapes, device="cpu"):
    gen = torch.Generator().manual_seed(0)
    return tuple(torch.randn(*shape, generator=gen).to(device) for shape in shapes)


@pytest.mark.parametrize("context", ["no_grad", "inference_mode", "grad", "meta"])
@pytest.mark.parametrize(("label", "module", "shapes", "expected"), CLOSED_FORMS,
                         ids=[case[0] for case in CLOSED_FORMS])
def test_closed_form_counts(label, module, shapes, expected, context):
    device = "meta" if context == "meta" else "cpu"
    model = module.to(device)
    inputs = _inputs(shapes, device)
    if context == "inference_mode":
        with torch.inference_mode():
            result = count_macs(model, inputs)
    elif context == "no_grad":
        with torch.no_grad():
            result = count_macs(model, inputs)
    else:
        result = count_macs(model, inputs)
    assert result.macs == expected
    assert result.flops == 2 * expected
    assert sum(op.macs for op in result.by_operator.values()) == expected


def test_multihead_attention_closed_form():
    """Fused nn.MultiheadAttention: 3 input projections, Q K^T, A V and the output projection."""
    batch, length, embed = 2, 5, 16
    mha = nn.MultiheadAttention(embed, 4, batch_first=True).eval()
    x = torch.randn(batch, length, embed)
    tokens = batch * length
    expected = 3 * tokens * embed * embed + 2 * batch * length * length * embed + tokens * embed**2
    with torch.inference_mode():
        fused = count_macs(mha, (x, x, x))
    on_meta = count_macs(mha.to("meta"), (x.to("meta"),) * 3)
    assert fused.macs == expected
    assert on_meta.macs == expected


def test_transformer_encoder_layer_closed_form():
    """Fused encoder layer: attention plus the two feed-forward products."""
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True).eval()
    x = torch.randn(2, 5, 16)
    tokens = 10
    attention = 4 * tokens * 16 * 16 + 2 * 2 * 5 * 5 * 16
    expected = attention + 2 * tokens * 16 * 32
    with torch.inference_mode():
        assert count_macs(layer, x).macs == expected
    assert count_macs(layer, x).macs == expected


class _Shared(nn.Module):
    """Two parents hold the same Linear; the root also calls one parent twice."""

    def __init__(self):
        super().__init__()
        shared = nn.Linear(4, 4, bias=False)
        self.left = nn.Sequential(shared, nn.ReLU())
        self.right = nn.Sequential(shared)

    def forward(self, x):
        return self.right(self.left(self.left(x)))


def test_shared_module_counts_each_call():
    result = count_macs(_Shared(), torch.randn(3, 4))
    per_call = 3 * 4 * 4
    assert result.macs == 3 * per_call
    assert result.by_module["left"].calls == 2
    assert result.by_module["left"].macs == 2 * per_call
    assert result.by_module["left.0"].calls == 2
    assert result.by_module["right.0"].calls == 1
    assert result.by_module["right.0"].macs == per_call
    assert result.by_module[""].macs == result.macs


def test_module_called_in_loop_counts_each_call():
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.step = nn.Linear(2, 2)

        def forward(self, x):
            for _ in range(5):
                x = self.step(x)
            return x

    result = count_macs(Loop(), torch.randn(1, 2))
    assert result.by_module["step"].calls == 5
    assert result.macs == 5 * 4


def test_functional_call_attributed_to_enclosing_module():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(3, 4))
            self.inner = nn.Linear(3, 2)

        def forward(self, x):
            return self.inner(F.linear(x, self.weight))

    result = count_macs(Functional(), torch.randn(5, 4))
    assert result.by_module[""].macs == 5 * 4 * 3 + 5 * 3 * 2
    assert result.by_module["inner"].macs == 5 * 3 * 2


def test_model_unchanged_after_counting():
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    x = torch.randn(4, 1, 8, 8)
    before_state = {k: v.clone() for k, v in model.state_dict().items()}
    before_output = model(x)
    global_hooks = (len(nn.modules.module._global_forward_hooks),
                    len(nn.modules.module._global_forward_pre_hooks))

    count_macs(model, x)

    assert model.state_dict().keys() == before_state.keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, before_state[key]), key
    for module in model.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks
        assert not module._backward_hooks
    assert (len(nn.modules.module._global_forward_hooks),
            len(nn.modules.module._global_forward_pre_hooks)) == global_hooks
    assert not model.training
    assert set(vars(model)) == set(vars(DigitsCNN().eval()))
    assert torch.equal(model(x), before_output)


def test_training_mode_buffers_restored():
    """A training-mode pass updates batch norm's running statistics; counting undoes that."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)).train()
    before = {name: buffer.clone() for name, buffer in model.named_buffers()}

    result = count_macs(model, torch.randn(2, 1, 6, 6))

    assert result.macs == 2 * 4 * 9 * 16
    assert model.training
    for name, buffer in model.named_buffers():
        assert torch.equal(buffer, before[name]), name


def test_hooks_removed_when_forward_raises():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("broken forward")

    hooks = len(nn.modules.module._global_forward_hooks)
    # count_macs reports the model's RuntimeError as a ValueError about `inputs`, chained.
    with pytest.raises(ValueError, match=r"`inputs` of shape \(1,\) \(broken forward\)"):
        count_macs(Broken(), torch.zeros(1))
    assert len(nn.modules.module._global_forward_hooks) == hooks
    assert count_macs(nn.Linear(2, 2), torch.zeros(1, 2)).macs == 4


def test_digits_cnn_closed_form_and_table():
    result = count_macs(DigitsCNN(), torch.zeros(1, 1, 8, 8))
    conv1 = 16 * 1 * 9 * 64
    conv2 = 32 * 16 * 9 * 64
    linears = 512 * 64 + 64 * 10
    assert result.macs == conv1 + conv2 + linears
    assert result.by_module["body.0"].macs == conv1
    assert result.by_module["head"].macs == 640
    assert result.by_operator["aten.convolution"].calls == 2
    assert result.other_operators["aten.relu"] == 3
    assert "aten.max_pool2d_with_indices" in result.other_operators
    table = result.table(max_depth=1)
    assert "body" in table
    assert "head" in table
    assert "other" in table
    assert "body.0" not in table.split("operator")[0]
    assert str(result) == result.table()


def test_count_macs_errors():
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got str"):
        count_macs("resnet18", torch.zeros(1))
    with pytest.raises(TypeError, match=r"`inputs` must be a tensor, a tuple .* got int"):
        count_macs(nn.Linear(2, 2), 3)



@pytest.mark.parametrize(("factory", "size"), [("resnet18", 64), ("mobilenet_v2", 64)])
def test_cross_check_fvcore_cnn(factory, size):
    """fvcore (a jit-trace counter) counts one fused multiply-add as one "flop", i.e. MACs.

    Both count convolutions and linear layers the same way. fvcore also gives batch norm and
    pooling a cost, so only its ``conv`` and ``linear``/``addmm`` entries are compared.
    """
    fvcore_nn = pytest.importorskip("fvcore.nn")
    from torchvision import models

    model = getattr(models, factory)(weights=None).eval()
    x = torch.randn(1, 3, size, size)
    ours = count_macs(model, x)
    analysis = fvcore_nn.FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = analysis.by_operator()
    theirs = by_op.get("conv", 0) + by_op.get("linear", 0) + by_op.get("addmm", 0)
    ours_same_ops = ours.by_operator["aten.convolution"].macs + ours.by_operator["aten.addmm"].macs
    assert ours_same_ops == theirs
    assert ours.macs == ours_same_ops


def test_cross_check_fvcore_digits_cnn():
    fvcore_nn = pytest.importorskip("fvcore.nn")
    model = DigitsCNN().eval()
    x = torch.randn(3, 1, 8, 8)
    analysis = fvcore_nn.FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    by_op = analysis.by_operator()
    assert count_macs(model, x).macs == by_op["conv"] + by_op["linear"]


def test_cross_check_torch_flop_counter():
    """torch.utils.flop_counter counts 2 FLOPs per MAC on the same operators."""
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision import models

    model = build_on_meta(models.vit_b_32, weights=None, image_size=64).eval()
    x = torch.empty(1, 3, 64, 64, device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    assert count_macs(model, x).flops == counter.get_total_flops()


class _EarlyExit(nn.Module):
    """Dynamic per-batch model: the second stage runs only when the batch mean is positive."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(4, 4, bias=False)
        self.second = nn.Linear(4, 4, bias=False)

    def forward(self, x):
        x = self.first(x)
        if x.mean() > 0:
            x = self.second(x)
        return x


def test_macs_per_sample_dynamic_model():
    torch.manual_seed(0)
    model = _EarlyExit()
    samples = torch.randn(10, 4)
    metric = MACsPerSample(model)
    took_second = 0
    for sample in samples:
        metric.update(sample[None])
        took_second += int(model.first(sample[None]).mean() > 0)
    expected = 16 + 16 * took_second / 10
    assert 0 < took_second < 10
    assert metric.compute().item() == pytest.approx(expected)


def test_macs_per_sample_errors():
    metric = MACsPerSample(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="found no samples"):
        metric.compute()
    with pytest.raises(ValueError, match=r"`inputs` must hold at least one sample.*\(0, 4\)"):
        metric.update(torch.zeros(0, 4))
    with pytest.raises(TypeError, match=r"`inputs` must be a torch.Tensor, got list"):
        metric.update([1.0])
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module, got str"):
        MACsPerSample("model")


def test_dict_inputs():
    result = count_macs(nn.Linear(3, 2), {"input": torch.zeros(4, 3)})
    assert result.macs == 4 * 3 * 2


def test_recurrent_operators_without_formula_warn():
    from andante_metrics.utilities.logging import reset_warnings

    reset_warnings()
    with pytest.warns(UserWarning, match=r"no MAC formula for the recurrent operators"):
        result = count_macs(nn.LSTM(4, 8), torch.rand(5, 1, 4))
    assert any("rnn" in op or "lstm" in op for op in result.other_operators)

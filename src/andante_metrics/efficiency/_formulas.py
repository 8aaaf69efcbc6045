"""Multiply-accumulate (MAC) formulas of the ATen operators that do matrix or convolution work.

Counting convention (the one ``count_macs`` documents and the tests check):

* One MAC is one multiplication followed by one addition into an accumulator. ``FLOPs`` are
  ``2 * MACs`` of the same operators, as in ``torch.utils.flop_counter``. A number called MACs is
  never a number of FLOPs.
* Counted operators, as they reach PyTorch's dispatcher (after composite operators such as
  ``linear``, ``matmul`` and ``einsum`` are decomposed into the ones below):

  - ``mm``, ``addmm`` (``linear`` on any number of leading dimensions), ``bmm``, ``baddbmm``
    (``matmul`` with broadcasting, ``einsum``), ``mv``, ``addmv``, ``dot``, ``vdot``;
  - ``convolution`` / ``_convolution``, including grouped, depthwise, dilated and transposed
    convolutions, any number of spatial dimensions;
  - scaled-dot-product attention kernels: ``Q K^T`` and ``A V`` products, softmax not counted;
  - the fused ``_native_multi_head_attention`` and ``_transformer_encoder_layer_fwd`` kernels
    that ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` use in inference: their
    projections and attention products.

* Everything else is "other": bias additions (including the bias of ``addmm`` and
  ``convolution``), normalization, activations, pooling, upsampling, element-wise arithmetic,
  softmax. Such operators are listed with their call counts and contribute no MACs. Views and
  other aliasing operators are not listed.

Formulas, with ``prod`` over a shape:

* ``mm(A[m,k], B[k,n])``: ``m k n``; ``bmm(A[b,m,k], B[b,k,n])``: ``b m k n``;
* ``convolution``: ``N * prod(weight.shape) * prod(S)`` with ``S`` the output spatial size, or
  the input spatial size for a transposed convolution (each input element is scattered over
  ``C_out/groups * prod(kernel)`` outputs). The weight shape already carries ``C/groups``.
* attention with ``Q[..., L, E]``, ``K[..., S, E]``, ``V[..., S, E_v]``:
  ``prod(batch dims) * L * S * (E + E_v)``.

These are the formulas of ``torch.utils.flop_counter`` (PyTorch 2.x) divided by two, and they
reproduce the ``_ops`` figures that torchvision 0.29 publishes in its weights' metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod
from typing import Any

import torch

aten = torch.ops.aten

Formula = Callable[..., int]


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in value.shape)


def _mm(a: torch.Tensor, b: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    m, k = _shape(a)
    n = _shape(b)[-1]
    return m * k * n


def _addmm(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    return _mm(a, b)


def _bmm(a: torch.Tensor, b: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    batch, m, k = _shape(a)
    n = _shape(b)[-1]
    return batch * m * k * n


def _baddbmm(
    bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *args: Any, **kwargs: Any
) -> int:
    return _bmm(a, b)


def _mv(a: torch.Tensor, v: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    return prod(_shape(a))


def _addmv(bias: torch.Tensor, a: torch.Tensor, v: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    return prod(_shape(a))


def _dot(a: torch.Tensor, b: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    return a.numel()


def convolution_macs(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    transposed: bool,
) -> int:
    """Return the MACs of one convolution from its input, weight and output shapes."""
    spatial = input_shape[2:] if transposed else output_shape[2:]
    batch = input_shape[0] if len(input_shape) == len(weight_shape) else 1
    return batch * prod(weight_shape) * prod(spatial)


def _convolution(
    x: torch.Tensor, weight: torch.Tensor, bias: Any, stride: Any, padding: Any, dilation: Any,
    transposed: bool, *args: Any, out: Any = None, **kwargs: Any,
) -> int:
    return convolution_macs(_shape(x), _shape(weight), _shape(out), bool(transposed))


def attention_macs(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> int:
    """Return the MACs of ``softmax(Q K^T) V``: ``prod(batch) * L * S * (E + E_v)``."""
    *batch, length, embed = _shape(query)
    source = _shape(key)[-2]
    value_embed = _shape(value)[-1]
    return prod(batch) * length * source * (embed + value_embed)


def _sdpa(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any, **kwargs: Any
) -> int:
    return attention_macs(query, key, value)


def _multi_head_attention_macs(
    query_shape: tuple[int, ...], key_shape: tuple[int, ...], embed_dim: int
) -> int:
    """MACs of a fused multi-head attention on ``(B, L, E)`` queries and ``(B, S, E)`` keys."""
    *batch, length, _ = query_shape
    source = key_shape[-2]
    tokens_q, tokens_kv = prod(batch) * length, prod(batch) * source
    projections = tokens_q * embed_dim * embed_dim + 2 * tokens_kv * embed_dim * embed_dim
    products = 2 * prod(batch) * length * source * embed_dim
    output_projection = tokens_q * embed_dim * embed_dim
    return projections + products + output_projection


def _native_mha(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, embed_dim: int, *args: Any,
    **kwargs: Any,
) -> int:
    return _multi_head_attention_macs(_shape(query), _shape(key), int(embed_dim))


def _encoder_layer(
    src: torch.Tensor, embed_dim: int, num_heads: int, *args: Any, **kwargs: Any
) -> int:
    # Positional layout of aten._transformer_encoder_layer_fwd: ffn_weight_1 is argument 14 of
    # the schema, i.e. index 11 of ``args`` after src, embed_dim and num_heads.
    ffn_weight_1 = args[11] if len(args) > 11 else kwargs["ffn_weight_1"]
    hidden = int(ffn_weight_1.shape[0])
    shape = _shape(src)
    tokens = prod(shape[:-1])
    attention = _multi_head_attention_macs(shape, shape, int(embed_dim))
    return attention + 2 * tokens * int(embed_dim) * hidden


def _overloads(packet: Any) -> list[Any]:
    return [getattr(packet, name) for name in packet.overloads()]


def _build_table() -> dict[Any, Formula]:
    by_packet: list[tuple[str, Formula]] = [
        ("mm", _mm),
        ("addmm", _addmm),
        ("bmm", _bmm),
        ("baddbmm", _baddbmm),
        ("mv", _mv),
        ("addmv", _addmv),
        ("dot", _dot),
        ("vdot", _dot),
        ("convolution", _convolution),
        ("_convolution", _convolution),
        ("_scaled_dot_product_flash_attention", _sdpa),
        ("_scaled_dot_product_flash_attention_for_cpu", _sdpa),
        ("_scaled_dot_product_efficient_attention", _sdpa),
        ("_scaled_dot_product_cudnn_attention", _sdpa),
        ("_scaled_dot_product_fused_attention_overrideable", _sdpa),
        ("_native_multi_head_attention", _native_mha),
        ("_transformer_encoder_layer_fwd", _encoder_layer),
    ]
    table: dict[Any, Formula] = {}
    for name, formula in by_packet:
        packet = getattr(aten, name, None)
        if packet is None:
            continue
        for overload in _overloads(packet):
            table[overload] = formula
    return table


MAC_FORMULAS: dict[Any, Formula] = _build_table()

# Operators that need the output shape (convolution: the output spatial size).
NEEDS_OUTPUT = frozenset(
    overload
    for name in ("convolution", "_convolution")
    for overload in _overloads(getattr(aten, name))
)

"""Multiply-accumulates (MACs) of one graph node, for torch and ONNX captures alike.

Convention: MACs are `torch.utils.flop_counter.FlopCounterMode`'s FLOPs divided by 2, so
only matmul- and convolution-like work counts:

- convolutions (grouped and depthwise included: output elements x weight[1:]) and
  transposed convolutions (input elements x weight[1:]);
- linear layers, matmul, mm, bmm, addmm, baddbmm, einsum (two operands: the product of
  every index size, reduced-away indices excepted), Gemm, MatMul;
- attention: its two matmuls, Q·Kᵀ and weights·V (`scaled_dot_product_attention`,
  ONNX `Attention`); the projections count as the linear layers they are;
- recurrent layers (steps x weights).

Everything else counts 0: normalization layers (BatchNorm, LayerNorm, GroupNorm), softmax,
activations, element-wise arithmetic, pooling, and data movement (reshape, transpose,
split, concat; so a channel shuffle costs nothing), exactly as FlopCounterMode does.

`flop_counter_macs` is that reference. On CPU, plain FlopCounterMode misses attention
(torch's CPU flash kernel and `nn.MultiheadAttention`'s fused fast path have no FLOP
formula), so it runs attention through the math backend, whose matmuls it does count.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from workbench.core.graph.layergraph import Node

_MATMULS = ("linear", "matmul", "mm", "bmm", "addmm", "baddbmm")
_CONVS = ("conv1d", "conv2d", "conv3d", "convolution", "_convolution")
_CONV_TRANSPOSES = ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


def _prod(dims: Any) -> int:
    return math.prod(int(d) for d in dims)


def _static(shape: Any) -> TypeGuard[tuple[int, ...]]:
    """A known shape whose every dimension is a number."""
    return bool(shape) and all(isinstance(d, int) for d in shape)


def einsum_macs(equation: str, shapes: list[Any]) -> int:
    """MACs of an einsum contracting `shapes` left to right (0 for one operand)."""
    if len(shapes) < 2 or not all(_static(s) for s in shapes) or "..." in equation:
        return 0
    lhs, _, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        return 0
    if not _:
        rhs = "".join(sorted(c for c in set(lhs) - {","} if lhs.count(c) == 1))
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes, strict=True):
        if len(term) != len(shape):
            return 0
        for c, d in zip(term, shape, strict=True):
            sizes[c] = max(sizes.get(c, 1), int(d))
    total = 0
    left = terms[0]
    for i, right in enumerate(terms[1:], start=1):
        later = set(rhs).union(*terms[i + 1:])
        # indices only one operand has, and nothing later needs, are summed away first
        kept = [c for c in dict.fromkeys(left + right)
                if c in later or (c in left and c in right)]
        total += _prod(sizes[c] for c in kept)
        left = "".join(c for c in kept if c in later)
    return total


def torch_op_macs(op: str, node: Node) -> int:
    """MACs of an aten op (short name, such as `conv2d`) from its shapes (0 if unknown)."""
    out = node.output_shape
    if not _static(out) or not node.inputs:
        return 0
    name = op.lower()
    if name in _CONVS + _CONV_TRANSPOSES and len(node.inputs) > 1:
        w, x = node.inputs[1].shape, node.inputs[0].shape
        transposed = name in _CONV_TRANSPOSES or (
            name in ("convolution", "_convolution")
            and node.attributes.get("transposed", node.attributes.get("arg6")) is True)
        if transposed:
            return _prod(x) * _prod(w[1:]) if _static(w) and _static(x) else 0
        return _prod(out) * _prod(w[1:]) if _static(w) else 0
    if name in _MATMULS:
        a = node.inputs[1 if name in ("addmm", "baddbmm") else 0].shape
        if a and isinstance(a[-1], int):
            return _prod(out) * int(a[-1])
    if name == "einsum":
        equation = node.attributes.get("equation", node.attributes.get("arg0"))
        if isinstance(equation, str):
            return einsum_macs(equation, [t.shape for t in node.inputs])
    if name in ("gru", "lstm", "rnn_tanh", "rnn_relu"):
        seq = node.inputs[0].shape
        if _static(seq):
            return _prod(seq[:-1]) * node.params
    if name == "scaled_dot_product_attention" and len(node.inputs) >= 3:
        q, v = node.inputs[0].shape, node.inputs[2].shape
        if _static(q) and _static(v):
            return (_prod(q) + _prod(out)) * int(v[-2])
    return 0


def torch_module_macs(module: Any, node: Node) -> int:
    """MACs of a leaf module called in a torch.fx graph (0 if unknown)."""
    from torch import nn

    if isinstance(module, nn.MultiheadAttention) and node.inputs:
        # its output is a tuple, so fx records no output shape; the inputs suffice
        shapes = [t.shape for t in node.inputs[:3]]
        return _mha_macs(module, (shapes * 3)[:3] if len(shapes) == 1 else shapes)
    out = node.output_shape
    if module is None or not _static(out):
        return 0
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return _prod(out) * _prod(module.weight.shape[1:])
    if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        x = node.inputs[0].shape if node.inputs else None
        return _prod(x) * _prod(module.weight.shape[1:]) if _static(x) else 0
    if isinstance(module, nn.Linear):
        return _prod(out) * module.in_features
    return 0


def _mha_macs(module: Any, shapes: list[Any]) -> int:
    """nn.MultiheadAttention: the q, k, v and output projections and attention's matmuls.

    fx lists a tensor passed twice once, so self-attention arrives with one input shape.
    """
    if len(shapes) != 3 or not all(_static(s) and len(s) in (2, 3) for s in shapes):
        return 0
    q, k, _ = shapes
    axis = 1 if module.batch_first and len(q) == 3 else 0
    lq, lk = int(q[axis]), int(k[axis])
    batch = _prod(q) // (lq * int(q[-1]))
    e = module.embed_dim
    proj = lq * e * e + lk * module.kdim * e + lk * module.vdim * e + lq * e * e
    return batch * (proj + 2 * lq * lk * e)


# every ONNX op type `onnx_node_macs` counts; any other counts 0
ONNX_MAC_OPS = frozenset({
    "Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "Gemm", "MatMul", "MatMulInteger",
    "QLinearMatMul", "FusedMatMul", "Einsum", "Attention", "LSTM", "GRU", "RNN"})


def onnx_node_macs(node: Node) -> int:
    """Multiply-accumulates of one ONNX node, from its shapes (0 where unknown or free)."""
    op = node.op.rsplit(".", 1)[-1]
    out = node.outputs[0].shape if node.outputs else None
    if op in ("Conv", "ConvInteger", "QLinearConv", "ConvTranspose"):
        w_index = 3 if op == "QLinearConv" else 1
        w = node.inputs[w_index].shape if len(node.inputs) > w_index else None
        if not _static(w) or not out:
            return 0
        if op == "ConvTranspose":
            x = node.inputs[0].shape
            return _prod(x) * _prod(w[1:]) if _static(x) else 0
        return _prod(out) * _prod(w[1:]) if _static(out) else 0
    if op in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul"):
        a = node.inputs[0].shape if node.inputs else None
        if not a or not _static(out) or not isinstance(a[-1], int):
            return 0
        k = int(a[-1])
        if op == "Gemm" and node.attributes.get("transA"):
            k = int(a[0]) if isinstance(a[0], int) else 0
        return _prod(out) * k
    if op == "Einsum":
        equation = node.attributes.get("equation")
        if isinstance(equation, str):
            return einsum_macs(equation, [t.shape for t in node.inputs])
    if op == "Attention" and len(node.inputs) >= 3 and _static(out):
        q_shape, k_shape = node.inputs[0].shape, node.inputs[1].shape
        if _static(q_shape) and _static(k_shape):
            keys = k_shape[-2] if len(k_shape) == 4 else k_shape[1]
            return (_prod(q_shape) + _prod(out)) * int(keys)
    if op in ("LSTM", "GRU", "RNN"):
        w = node.inputs[1].shape if len(node.inputs) > 1 else None
        r = node.inputs[2].shape if len(node.inputs) > 2 else None
        x = node.inputs[0].shape
        if not (_static(w) and _static(r) and _static(x)):
            return 0
        return int(x[0]) * int(x[1]) * (_prod(w) + _prod(r))
    return 0


def flop_counter_macs(model: Any, args: tuple[Any, ...]) -> int:
    """FlopCounterMode's FLOPs / 2 for `model(*args)`, attention's matmuls included."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            model(*args)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return int(counter.get_total_flops()) // 2

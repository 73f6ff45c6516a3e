"""Quantized ONNX weights read back as floats, under the names of the layers they came from.

ONNX Runtime's quantizers replace a float initializer `W` by `W_quantized` (int8/uint8, or
int32 for biases) with `W_scale` and `W_zero_point` beside it, consumed by DequantizeLinear
(QDQ format), QLinearConv / QLinearMatMul / QGemm (QOperator format), or ConvInteger /
MatMulInteger (dynamic int8). A MatMul weight exported from a torch Linear may be stored
transposed (`fc.weight_Transposed`). `quantized_weights` finds every such triple in a
graph; `dequantize` turns one into `scale × (value − zero point)` in the original layout;
`match_to_parent` pairs a child's weight names with its parent's, by name and then by shape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

QUANT_SUFFIX = "_quantized"
TRANSPOSED_SUFFIX = "_Transposed"
# op type -> (weight input, scale input or None (named by convention), zero point input,
# the axis a per-channel scale runs along)
_WEIGHT_INPUTS: dict[str, tuple[int, int | None, int, int]] = {
    "QLinearConv": (3, 4, 5, 0),
    "QLinearMatMul": (3, 4, 5, -1),
    "QGemm": (3, 4, 5, -1),
    "ConvInteger": (1, None, 3, 0),
    "MatMulInteger": (1, None, 3, -1),
}


@dataclass(frozen=True)
class QuantizedWeight:
    """One quantized initializer and what dequantizes it."""

    initializer: str  # its name in the graph, e.g. "stem.0.weight_quantized"
    name: str  # the float weight it stands for, e.g. "stem.0.weight"
    scale: str
    zero_point: str | None
    axis: int | None  # the per-channel axis (None: one scale for the whole tensor)
    transposed: bool = False  # stored transposed ("fc.weight_Transposed"): shown untransposed

    @property
    def helpers(self) -> tuple[str, ...]:
        """The scale and zero-point initializers, which are not weights of their own."""
        return (self.scale, self.zero_point) if self.zero_point else (self.scale,)


def original_name(initializer: str) -> tuple[str, bool]:
    """The float weight's name behind a quantized initializer's, and whether it is stored
    transposed: 'fc.weight_Transposed_quantized' -> ('fc.weight', True)."""
    base = initializer.removesuffix(QUANT_SUFFIX)
    if base.endswith(TRANSPOSED_SUFFIX):
        return base.removesuffix(TRANSPOSED_SUFFIX), True
    return base, False


def quantized_weights(model: Any) -> dict[str, QuantizedWeight]:
    """Every quantized weight of an ONNX `model` with its scale and zero point, keyed by the
    quantized initializer's name (graph order)."""
    inits = {i.name: i for i in model.graph.initializer}
    found: dict[str, tuple[str, str | None, int | None, int]] = {}  # q -> scale, zp, axis
    for node in model.graph.node:
        ins = list(node.input)
        if node.op_type == "DequantizeLinear" and ins and ins[0] in inits:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if len(ins) > 1 and ins[1] in inits:
                zp = ins[2] if len(ins) > 2 and ins[2] in inits else None
                found.setdefault(ins[0], (ins[1], zp, axis, axis))
        elif node.op_type in _WEIGHT_INPUTS:
            w, s, z, default_axis = _WEIGHT_INPUTS[node.op_type]
            if len(ins) <= w or ins[w] not in inits:
                continue
            scale = ins[s] if s is not None and len(ins) > s else \
                ins[w].removesuffix(QUANT_SUFFIX) + "_scale"
            zp = ins[z] if len(ins) > z and ins[z] in inits else None
            if scale in inits:
                found.setdefault(ins[w], (scale, zp, None, default_axis))
    for name in inits:  # the naming convention alone (a weight no known node consumes)
        if name.endswith(QUANT_SUFFIX) and name not in found:
            base = name.removesuffix(QUANT_SUFFIX)
            if base + "_scale" in inits:
                zp_name = base + "_zero_point"
                found[name] = (base + "_scale", zp_name if zp_name in inits else None, None, 0)
    out: dict[str, QuantizedWeight] = {}
    for name in inits:
        if name not in found:
            continue
        scale, zp, axis, default_axis = found[name]
        shape = tuple(int(d) for d in inits[name].dims)
        size = int(np.prod(inits[scale].dims)) if inits[scale].dims else 1
        original, transposed = original_name(name)
        out[name] = QuantizedWeight(name, original, scale, zp,
                                    _axis(shape, size, axis, default_axis),
                                    transposed and len(shape) == 2)
    return out


def _axis(shape: tuple[int, ...], size: int, given: int | None, default: int) -> int | None:
    """The axis a scale of `size` values runs along (None when it is a single value)."""
    if size <= 1 or not shape:
        return None
    for axis in (given, default):
        if axis is not None and -len(shape) <= axis < len(shape) and shape[axis] == size:
            return axis % len(shape)
    return next((i for i, d in enumerate(shape) if d == size), None)


def dequantize(weight: QuantizedWeight, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """`scale × (value − zero point)` as float32, in the float weight's layout."""
    q = np.asarray(arrays[weight.initializer]).astype(np.float32)
    scale = np.asarray(arrays[weight.scale], dtype=np.float32)
    zp = np.asarray(arrays[weight.zero_point]).astype(np.float32) \
        if weight.zero_point else np.zeros_like(scale)
    if weight.axis is not None:
        view = [1] * q.ndim
        view[weight.axis] = -1
        scale, zp = scale.reshape(view), zp.reshape(view)
    values = (q - zp) * scale
    return np.ascontiguousarray(values.T if weight.transposed else values, dtype=np.float32)


def dequantized_initializers(model: Any) -> tuple[dict[str, np.ndarray], dict[str, str],
                                                  set[str]]:
    """(dequantized weights by original name, original name by quantized initializer, the
    scale and zero-point initializers used up) of an ONNX `model`."""
    from onnx import numpy_helper

    weights = quantized_weights(model)
    if not weights:
        return {}, {}, set()
    needed = {n for w in weights.values() for n in (w.initializer, *w.helpers)}
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer
              if i.name in needed}
    values: dict[str, np.ndarray] = {}
    aliases: dict[str, str] = {}
    for w in weights.values():
        try:
            values[w.name] = dequantize(w, arrays)
        except ValueError:  # a scale that does not broadcast: leave the raw integers
            log.debug("cannot dequantize %s", w.initializer, exc_info=True)
            continue
        aliases[w.initializer] = w.name
    used = {h for w in weights.values() if w.initializer in aliases for h in w.helpers}
    return values, aliases, used


def is_internal_name(name: str) -> bool:
    """A name an exporter made up ('val_171', 'onnx::MatMul_12', '/fc/Constant'), not one
    of the model's own."""
    return name.startswith(("onnx::", "val_", "_v_", "/")) or "::" in name or \
        name.replace("_", "").isdigit()


def match_to_parent(child: Mapping[str, tuple[int, ...]],
                    parent: Mapping[str, tuple[int, ...]]) -> dict[str, str]:
    """The parent's weight name for each child weight (name -> shape maps): the same name
    first; then each name an exporter made up gets the next unmatched parent weight of the
    same shape (or its transpose), in order. A real name is never renamed (a folded conv's
    new bias is no batch norm's weight, whatever its shape)."""
    out = {name: name for name in child if name in parent}
    free = [n for n in parent if n not in out.values()]
    for name, shape in child.items():
        if name in out or not is_internal_name(name):
            continue
        for candidate in free:
            if _same_shape(shape, parent[candidate]):
                out[name] = candidate
                free.remove(candidate)
                break
    return out


def _same_shape(a: Iterable[int], b: Iterable[int]) -> bool:
    a, b = tuple(a), tuple(b)
    return a == b or (len(a) == 2 and a[::-1] == b)


def node_layers(model: Any) -> dict[str, str]:
    """The layer each weighted node of an ONNX `model` computes, named after its weight
    ('node_Conv_223' -> 'layer1.0.conv1'): the first initializer input that is not an
    exporter's made-up name, quantized ones read through their float name."""
    inits = {i.name for i in model.graph.initializer}
    out: dict[str, str] = {}
    for node in model.graph.node:
        if not node.name:
            continue
        for name in node.input:
            if name not in inits:
                continue
            weight, _ = original_name(name)
            if is_internal_name(weight) or weight.endswith(("_scale", "_zero_point")):
                continue
            out[node.name] = weight.removesuffix(".weight")
            break
    return out

"""NaN and Inf in the weights, without their statistics: what `workbench inspect` warns about
when it is not asked for `--stats`.

An ONNX model's float initializers are checked straight from their raw bytes, many small
tensors at once (one min and one max over a joined buffer), so a 50,000-node graph costs a
few numpy calls rather than one statistics pass per tensor. When that quick check cannot
tell (quantized or exotic dtypes, values outside `raw_data`) or finds a non-finite value, the
exact per-tensor count of `stats.nonfinite_weights` runs instead, so the warnings are the
ones `weight_stats` gives.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from workbench.core.graph.stats import nonfinite_warnings, nonfinite_weights
from workbench.core.model.variant import Variant

# TensorProto FLOAT, FLOAT16, DOUBLE: little-endian in raw_data
_RAW_FLOATS: dict[int, np.dtype[Any]] = {
    1: np.dtype("<f4"), 10: np.dtype("<f2"), 11: np.dtype("<f8")}
_NEVER_WEIGHTS = frozenset({7, 8, 9})  # INT64, STRING, BOOL: never read as (or into) weights
_EXTERNAL = 1  # TensorProto.EXTERNAL
BATCH_BYTES = 1 << 24  # small tensors are joined up to this size, then checked at once


def weight_warnings(variant: Variant) -> list[str]:
    """The warnings `weight_stats(variant).warnings()` would give, without the statistics."""
    if variant.backend == "onnx" and onnx_floats_finite(variant.model):
        return []
    return nonfinite_warnings(nonfinite_weights(variant))


def onnx_floats_finite(model: Any) -> bool:
    """True when every initializer that could be read as a weight is a float tensor stored in
    `raw_data` without NaN or Inf; False when one is not, or when this check cannot tell
    (integer tensors that may be quantized weights, bfloat16/float8, values kept elsewhere)."""
    batches: dict[np.dtype[Any], list[bytes]] = {}
    batch_bytes: dict[np.dtype[Any], int] = {}
    for init in model.graph.initializer:
        dtype = _RAW_FLOATS.get(init.data_type)
        if dtype is None:
            if init.data_type in _NEVER_WEIGHTS:
                continue
            return False
        raw = init.raw_data
        if not raw:
            if init.data_location != _EXTERNAL and math.prod(init.dims) == 0:
                continue  # an empty tensor
            return False
        if init.data_location == _EXTERNAL or len(raw) % dtype.itemsize:
            return False
        if len(raw) >= BATCH_BYTES:
            if not _finite(raw, dtype):
                return False
            continue
        batches.setdefault(dtype, []).append(raw)
        batch_bytes[dtype] = batch_bytes.get(dtype, 0) + len(raw)
        if batch_bytes[dtype] >= BATCH_BYTES:
            if not _finite(b"".join(batches.pop(dtype)), dtype):
                return False
            batch_bytes[dtype] = 0
    return all(_finite(b"".join(chunks), dtype) for dtype, chunks in batches.items())


def _finite(raw: bytes, dtype: np.dtype[Any]) -> bool:
    """No NaN or Inf among the values in `raw` (a NaN or Inf survives the min or the max)."""
    arr = np.frombuffer(raw, dtype)
    return not arr.size or bool(np.isfinite(arr.min()) and np.isfinite(arr.max()))

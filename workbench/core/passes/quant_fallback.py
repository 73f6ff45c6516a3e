"""Accuracy-driven fallback for int8: which layers to keep in float when int8 hurts.

Intel Neural Compressor's "basic" tuning strategy quantizes everything, measures, and falls
back the most sensitive ops to float until an accuracy target holds. We rank layers once, by
a cheap estimate of the noise int8 adds to each: the relative error of quantizing its input
activation per tensor (as dynamic int8 does) plus that of its weight per output channel. Large
activation outliers, such as the GELU outputs feeding a transformer's first FFN down
projections, rank first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

QUANTIZABLE = ("MatMul", "Gemm", "Conv")
_RANK_SAMPLES = 8


def _relative_error(x: np.ndarray, q: np.ndarray) -> float:
    norm = float(np.linalg.norm(x))
    return float(np.linalg.norm(x - q)) / norm if norm > 0 else 0.0


def activation_error(x: np.ndarray) -> float:
    """Relative error of asymmetric uint8 quantization of `x` with one scale per tensor."""
    x = x.astype(np.float32, copy=False)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return 0.0
    lo, hi = min(float(finite.min()), 0.0), max(float(finite.max()), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero = np.round(-lo / scale)
    q = (np.clip(np.round(finite / scale) + zero, 0, 255) - zero) * scale
    return _relative_error(finite, q)


def weight_error(w: np.ndarray, axis: int, bits: int = 8) -> float:
    """Relative error of symmetric per-channel quantization of `w` along `axis`."""
    w = np.moveaxis(w.astype(np.float32, copy=False), axis, 0).reshape(w.shape[axis], -1)
    if w.size == 0 or not np.isfinite(w).all():
        return 0.0
    levels = 2 ** (bits - 1) - 1
    scale = np.abs(w).max(axis=1, keepdims=True) / levels
    scale[scale == 0] = 1.0
    q = np.clip(np.round(w / scale), -levels, levels) * scale
    return _relative_error(w, q)


def _weight_axis(node: Any) -> int:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return -1  # MatMul: B is (..., K, N), one scale per column


def rank_sensitive_nodes(model: Any, samples: Sequence[tuple[Any, ...]],
                         exclude: Sequence[str] = (), weight_bits: int = 8
                         ) -> list[tuple[str, float]]:
    """Quantizable nodes with constant weights, most sensitive to int8 first, with scores."""
    from onnx import numpy_helper

    from workbench.core.model.fidelity import _float_value_types, _with_outputs
    from workbench.core.model.runtime import ort_session, session_feed
    from workbench.core.model.sample_inputs import stack_inputs

    weights = {i.name: i for i in model.graph.initializer}
    graph_inputs = {i.name for i in model.graph.input}
    skip = set(exclude)
    nodes = [n for n in model.graph.node
             if n.op_type in QUANTIZABLE and n.name and n.name not in skip
             and len(n.input) > 1 and n.input[1] in weights]
    if not nodes:
        return []
    types = _float_value_types(model)
    probes = sorted({n.input[0] for n in nodes if n.input[0] in types
                     or n.input[0] in graph_inputs})
    probe = _with_outputs(model, [p for p in probes if p in types], types)
    session = ort_session(probe)
    names = [o.name for o in session.get_outputs()]
    batch = stack_inputs(list(samples[:_RANK_SAMPLES]))
    feed = session_feed(session, batch)
    values = dict(zip(names, session.run(None, feed), strict=True))
    values.update({k: v for k, v in feed.items() if k not in values})
    scores = []
    for node in nodes:
        x = values.get(node.input[0])
        act = activation_error(np.asarray(x)) if x is not None else 0.0
        w = numpy_helper.to_array(weights[node.input[1]])
        wt = weight_error(w, _weight_axis(node) % max(w.ndim, 1), weight_bits) if w.ndim else 0.0
        scores.append((node.name, act + wt))
    return sorted(scores, key=lambda kv: -kv[1])

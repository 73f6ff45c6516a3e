"""How closely a child variant reproduces its parent's outputs on the same inputs.

`fidelity` compares final outputs (max/mean absolute difference, mean cosine similarity,
argmax agreement) and, where it can, each layer's output as SQNR in dB:

* torch parent and torch child: forward hooks on same-named weight layers (Linear, Conv,
  RNN, Embedding, ...; a dynamic-quantized Linear keeps its name, so it matches).
* ONNX parent and ONNX child: the outputs of the parent's MatMul/Gemm/Conv/... nodes whose
  tensor names survive in the child (ONNX Runtime's quantizers keep them) are exposed as
  extra graph outputs of both and compared. Best effort: unmatched names are skipped.
* torch against ONNX: no per-layer figures (names do not correspond); `per_layer` is {}.

Per-layer SQNR compares each layer's output in a full run of each model, so it measures
the error accumulated up to that layer, not the layer's own contribution alone. A layer whose
parent output is all zero or either output not finite has no SQNR and is left out.

When either final output is all zero, constant or not finite, cosine and SQNR are undefined
(None) and the reason is kept under "undefined"; `fidelity_report` warns and names the
measures that stay defined (absolute differences, top-1 agreement on the real inputs).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.core.model.runtime import (
    first_tensor,
    output_to_numpy,
    run_samples,
    run_variant,
    torch_inputs,
)
from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)

SQNR_CAP_DB = 150.0  # reported when a layer's output is unchanged (no noise at all)
_TORCH_LAYERS = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
                 "ConvTranspose2d", "ConvTranspose3d", "GRU", "LSTM", "RNN", "Embedding")
_ONNX_LAYERS = {"MatMul", "Gemm", "Conv", "ConvTranspose", "GRU", "LSTM", "RNN", "Gather",
                "Attention", "MatMulInteger", "ConvInteger"}
_ELEMENTWISE = {"Relu", "Clip", "Add", "Mul", "Sigmoid", "Tanh", "Gelu", "LeakyRelu",
                "BatchNormalization", "HardSigmoid", "HardSwish"}
_MAX_ONNX_LAYERS = 256
_ONNX_LAYER_SAMPLES = 4  # per-layer ONNX figures use the first few samples only


def fidelity(parent: Variant, child: Variant, inputs: Sequence[tuple[Any, ...]],
             per_layer: bool = True) -> dict[str, Any]:
    """Compare `child` with `parent` on `inputs` (a list of batch-1 input tuples)."""
    if not inputs:
        raise ValueError("fidelity needs at least one input sample")
    if per_layer and parent.backend == "torch" and child.backend == "torch":
        try:  # outputs and per-layer figures from one hooked forward pass per model
            ref, out, layers = _torch_hooked(parent, child, inputs)
            return _drop_argmax(parent, {**output_metrics(ref, out), "per_layer": layers})
        except Exception:  # e.g. a batch the model rejects: fall back to one by one
            log.debug("hooked fidelity pass failed; comparing outputs one by one", exc_info=True)
    from workbench.core.model.reference_outputs import reference_outputs

    ref = reference_outputs(parent, inputs)  # the same for every trial of this parent
    out = _outputs(child, inputs)
    result = output_metrics(ref, out)
    result["per_layer"] = layer_sqnr(parent, child, inputs) if per_layer else {}
    return _drop_argmax(parent, result)


def _drop_argmax(variant: Variant, result: dict[str, Any]) -> dict[str, Any]:
    if (variant.metadata or {}).get("task") == "embedding":
        result.pop("argmax_agreement", None)  # meaningless for embeddings
    return result


def output_metrics(ref: np.ndarray, out: np.ndarray) -> dict[str, Any]:
    """Difference figures between two (samples, ...) output arrays.

    Cosine and SQNR are undefined (None, with the reason under "undefined") when either
    output is all zero, constant or not finite: two zero vectors are not a perfect match.
    The absolute differences (over the positions finite in both) and the top-1 agreement
    (over the samples whose top class is unique in both) stay defined.
    """
    a = ref.reshape(ref.shape[0], -1).astype(np.float64)
    b = out.reshape(out.shape[0], -1).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"output shapes differ: {ref.shape} vs {out.shape}")
    finite = np.isfinite(a) & np.isfinite(b)
    diff = np.abs(a - b)[finite]
    metrics: dict[str, Any] = {
        "samples": int(a.shape[0]),
        "max_abs_diff": float(diff.max()) if diff.size else (None if a.size else 0.0),
        "mean_abs_diff": float(diff.mean()) if diff.size else (None if a.size else 0.0),
    }
    reason = undefined_reason(a, b)
    if reason is None:
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        dots = (a * b).sum(axis=1)
        cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0),
                       np.where(np.abs(a - b).sum(axis=1) == 0, 1.0, 0.0))
        metrics.update(cosine=float(cos.mean()),
                       cosine_min=float(cos.min()) if cos.size else 1.0,
                       output_sqnr_db=sqnr_db(float((a ** 2).sum()),
                                              float(((a - b) ** 2).sum())))
    else:
        metrics.update(cosine=None, cosine_min=None, output_sqnr_db=None, undefined=reason)
    if ref.ndim == 2 and ref.shape[1] > 1:
        metrics["argmax_agreement"] = _top1_agreement(a, b)
    return metrics


def undefined_reason(a: np.ndarray, b: np.ndarray) -> str | None:
    """Why cosine and SQNR mean nothing for outputs `a` (parent) and `b` (child), or None."""
    reasons = []
    for who, x in (("the parent's", a), ("the child's", b)):
        if not x.size:
            continue
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).sum())
            reasons.append(f"{who} outputs hold {bad:,} NaN or Inf values")
        elif not x.any():
            reasons.append(f"{who} outputs are all exactly 0")
        elif (x == x.flat[0]).all():
            reasons.append(f"{who} outputs are all the same value ({x.flat[0]:.4g})")
    return " and ".join(reasons) or None


def _top1_agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """Share of samples with the same top class, over the samples whose top class is
    unique and finite in both outputs; None when there is none (e.g. all-zero outputs)."""
    def unique_top(x: np.ndarray) -> np.ndarray:
        top = x.max(axis=1, keepdims=True)
        return np.isfinite(x).all(axis=1) & ((x == top).sum(axis=1) == 1)

    rows = unique_top(a) & unique_top(b)
    if not rows.any():
        return None
    return float((a[rows].argmax(1) == b[rows].argmax(1)).mean())


def undefined_warning(fid: dict[str, Any]) -> str | None:
    """The report's sentence for an undefined cosine and SQNR, naming the fallback."""
    reason = fid.get("undefined")
    if not reason:
        return None
    parts = [f"max |Δ| {_fmt(fid.get('max_abs_diff'))}",
             f"mean |Δ| {_fmt(fid.get('mean_abs_diff'))}"]
    if fid.get("argmax_agreement") is not None:
        parts.append(f"same top class {fid['argmax_agreement']:.1%}")
    return (f"Fidelity: cosine and SQNR are undefined because {reason}; compare with "
            f"{', '.join(parts)} instead.")


def fidelity_text(fid: dict[str, Any]) -> str:
    """One line for a terminal: cosine (or "undefined"), max |diff|, top-1 when known."""
    cos = fid.get("cosine")
    text = (f"cosine {'undefined' if cos is None else format(cos, '.5f')}  "
            f"max |diff| {_fmt(fid.get('max_abs_diff'))}")
    if fid.get("undefined"):
        text += f"  mean |diff| {_fmt(fid.get('mean_abs_diff'))}"
        if fid.get("argmax_agreement") is not None:
            text += f"  same top class {fid['argmax_agreement']:.1%}"
    return text


def _fmt(value: Any) -> str:
    return "undefined" if value is None else f"{value:.4g}"


def sqnr_db(signal: float, noise: float) -> float:
    """10·log10(signal/noise), capped at SQNR_CAP_DB (also for zero noise)."""
    if noise <= 0 or not math.isfinite(noise):
        return SQNR_CAP_DB if noise == 0 else -SQNR_CAP_DB
    if signal <= 0:
        return -SQNR_CAP_DB
    return float(min(10.0 * math.log10(signal / noise), SQNR_CAP_DB))


def layer_sqnr(parent: Variant, child: Variant, inputs: Sequence[tuple[Any, ...]]
               ) -> dict[str, float]:
    """Per-layer output SQNR (dB) by layer name; {} when layers cannot be matched."""
    try:
        if parent.backend == "torch" and child.backend == "torch":
            return _torch_layer_sqnr(parent, child, inputs)
        if parent.backend == "onnx" and child.backend == "onnx":
            return _onnx_layer_sqnr(parent.model, child.model, inputs)
    except Exception:  # per-layer figures are a bonus; never fail the comparison on them
        log.debug("per-layer SQNR unavailable", exc_info=True)
        return {}
    return {}


def _outputs(variant: Variant, inputs: Sequence[tuple[Any, ...]]) -> np.ndarray:
    return run_samples(lambda batch: run_variant(variant, batch), inputs)


# torch ------------------------------------------------------------------------------------
def _torch_layer_sqnr(parent: Variant, child: Variant, inputs: Sequence[tuple[Any, ...]]
                      ) -> dict[str, float]:
    return _torch_hooked(parent, child, inputs)[2]


def _torch_hooked(parent: Variant, child: Variant, inputs: Sequence[tuple[Any, ...]]
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Both models' outputs on the stacked inputs, and per-layer SQNR from forward hooks on
    same-named weight layers."""
    import torch

    from workbench.core.model.sample_inputs import stack_inputs

    child_modules = dict(child.model.named_modules())
    names = [n for n, m in parent.model.named_modules()
             if n and type(m).__name__ in _TORCH_LAYERS and n in child_modules]
    batch = stack_inputs(inputs)
    captured: dict[str, list[Any]] = {}
    outputs = []
    for variant in (parent, child):
        modules = dict(variant.model.named_modules())
        outs: dict[str, Any] = {}
        handles = [modules[n].register_forward_hook(_capture(outs, n)) for n in names]
        try:
            with torch.no_grad():
                outputs.append(output_to_numpy(first_tensor(
                    variant.model(*torch_inputs(variant, batch)))))
        finally:
            for h in handles:
                h.remove()
        for n, value in outs.items():
            captured.setdefault(n, []).append(value)
    if outputs[0].shape[:1] != (len(inputs),):
        raise ValueError("the model does not keep the batch axis")
    result = {}
    for n in names:
        pair = captured.get(n, [])
        if len(pair) == 2 and pair[0].shape == pair[1].shape:
            a, b = pair[0].astype(np.float64), pair[1].astype(np.float64)
            if _defined(a, b):
                result[n] = round(sqnr_db(float((a ** 2).sum()), float(((a - b) ** 2).sum())),
                                  3)
    return outputs[0], outputs[1], result


def _defined(a: np.ndarray, b: np.ndarray) -> bool:
    """A layer's SQNR means something: its outputs are finite and the parent's not all 0."""
    return bool(a.any()) and bool(np.isfinite(a).all()) and bool(np.isfinite(b).all())


def _capture(store: dict[str, Any], name: str) -> Any:
    def hook(module: Any, args: Any, output: Any) -> None:
        t = first_tensor(output)
        if t is not None and name not in store:  # first call only (shared modules)
            store[name] = output_to_numpy(t)

    return hook


# ONNX -------------------------------------------------------------------------------------
def _onnx_layer_sqnr(parent: Any, child: Any, inputs: Sequence[tuple[Any, ...]]
                     ) -> dict[str, float]:
    from workbench.core.model.runtime import ort_session, session_feed
    from workbench.core.model.sample_inputs import stack_inputs

    float_types = _float_value_types(parent)
    child_types = _float_value_types(child)
    produced = {o for node in child.graph.node for o in node.output} & set(child_types)
    consumers: dict[str, list[Any]] = {}
    for node in parent.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    layers: dict[str, str] = {}  # tensor name -> layer (node) name
    for node in parent.graph.node:
        if node.op_type not in _ONNX_LAYERS or not node.output:
            continue
        t = node.output[0]
        for _ in range(3):  # a quantizer may fold the activation after a layer into it
            if t in produced:
                break
            nxt = consumers.get(t, [])
            if len(nxt) != 1 or nxt[0].op_type not in _ELEMENTWISE or not nxt[0].output:
                break
            t = nxt[0].output[0]
        if t in produced and t in float_types and t not in layers:
            layers[t] = node.name or t
        if len(layers) >= _MAX_ONNX_LAYERS:
            break
    if not layers:
        return {}
    batch = stack_inputs(inputs[:_ONNX_LAYER_SAMPLES])
    values = []
    for model, types in ((parent, float_types), (child, child_types)):
        probe = _with_outputs(model, list(layers), types)
        session = ort_session(probe)
        names = [o.name for o in session.get_outputs()]
        outs = session.run(None, session_feed(session, batch))
        values.append(dict(zip(names, outs, strict=True)))
    result = {}
    for tensor, layer in layers.items():
        a, b = values[0].get(tensor), values[1].get(tensor)
        if a is not None and b is not None and a.shape == b.shape:
            a = a.astype(np.float32, copy=False).ravel()
            d = a - b.astype(np.float32, copy=False).ravel()
            if _defined(a, b):
                result[layer] = round(sqnr_db(float(np.dot(a, a)), float(np.dot(d, d))), 3)
    return result


def _float_value_types(model: Any) -> dict[str, int]:
    """Element types of the model's floating tensors (after ONNX shape inference)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}
    types = {}
    for vi in (*inferred.graph.value_info, *inferred.graph.output):
        elem = vi.type.tensor_type.elem_type
        if elem in floats:
            types[vi.name] = elem
    return types


def _with_outputs(model: Any, names: list[str], types: dict[str, int]) -> Any:
    """A copy of `model` that also outputs the tensors `names`."""
    import onnx
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    for n in names:
        if n not in existing:
            probe.graph.output.append(helper.make_tensor_value_info(n, types[n], None))
    return probe


def fidelity_report(parent: Variant, child: Variant, samples: int = 16, seed: int = 1,
                    inputs: Sequence[tuple[Any, ...]] | None = None, per_layer: bool = True,
                    ) -> tuple[dict[str, Any], list[str]]:
    """Fidelity of `child` against `parent` on real sample inputs, for a pass's details.

    Returns the fidelity dict and warnings; never raises (a failure is reported as
    `{"error": ...}` with a warning, so a pass still returns its model).
    """
    from workbench.core.model.sample_inputs import sample_inputs

    warnings: list[str] = []
    try:
        if inputs is None:
            inputs = sample_inputs(parent, samples, seed)
            if getattr(inputs, "warning", None):
                warnings.append(f"Fidelity: {inputs.warning}")
        result = fidelity(parent, child, inputs, per_layer)
        result["inputs"] = getattr(inputs, "source", "given")
        undefined = undefined_warning(result)
        if undefined:
            warnings.append(undefined)
        return result, warnings
    except Exception as exc:
        log.debug("fidelity of %s against %s failed", child.name, parent.name, exc_info=True)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        warnings.append(f"Fidelity could not be measured: {type(exc).__name__}: {first}")
        return {"error": f"{type(exc).__name__}: {first}"}, warnings

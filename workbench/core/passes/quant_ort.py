"""quantize.ort_dynamic and quantize.ort_static: int8 quantization with ONNX Runtime.

Torch variants are exported to ONNX first (`onnx_export` with `fast=True`: the TorchScript
exporter when its graph checks out against torch, else dynamo; a cached export is reused,
and the report says which exporter made it and how long it took). Every model then goes
through `quant_pre_process` (shape inference and graph optimisation; symbolic shape inference is
skipped for transformer-like graphs, or when it fails) in a temporary folder (its result is
cached on disk by the float model's bytes, `quant_preprocess`), and then
through `quantize_dynamic` or `quantize_static` (QDQ or QOperator format, calibrated on
real sample inputs). Node names in `exclude` are kept in float32.

With `measure_latency` (the default) the result is timed against the parent's float ONNX
model on one real input, interleaved, with the same ONNX Runtime threads
(`workbench.core.model.latency`); `details["latency"]` holds the figures, and a warning says
in words when int8 is not faster (dynamic int8 runs convolutions through ConvInteger, which
is slow on CPUs without VNNI).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import InvalidParameterError
from workbench.core.fileio import temp_dir
from workbench.core.graph.dequant import node_layers
from workbench.core.job_scope import in_job_scope, request_threads
from workbench.core.model.cpu import resolve_reduce_range
from workbench.core.model.latency import LatencyProbe, compare_latency, slower_warning
from workbench.core.model.variant import Variant
from workbench.core.passes.base import Pass, PassContext, PassError, PassOutput, param
from workbench.core.passes.pass_steps import Steps
from workbench.core.passes.quant_graph import is_transformer, node_names, quiet
from workbench.core.passes.quant_preprocess import preprocess

log = logging.getLogger(__name__)

QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
             "ConvInteger", "QLinearConv", "QLinearMatMul", "QGemm", "QAttention",
             "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QLinearAdd", "QLinearMul",
             "QLinearSigmoid", "QLinearLeakyRelu", "QLinearConcat", "QLinearAveragePool",
             "QLinearGlobalAveragePool", "QLinearSoftmax", "DynamicQuantizeLSTM")
_TYPES = {"int8": "QInt8", "uint8": "QUInt8"}
_CALIBRATION = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
_CALIB_CHUNK = 16
FIDELITY_SAMPLES = 32  # every bundled sentence, for text models
LOW_COSINE = 0.98  # below this a warning names the layers that suffer most
TRANSFORMER_STATIC_OPS = ("MatMul", "Gemm", "Gather")
REDUCE_RANGE_CHOICES = ("auto", "on", "off")
TARGET_HELP = ("Keep the layers most sensitive to int8 in float until the lowest cosine "
               "against the parent reaches this (0: quantize everything asked)")
LATENCY_HELP = ("Time the result against the parent in ONNX Runtime (a few hundred ms) and "
                "warn when int8 is not faster")
REDUCE_RANGE_HELP = ("7-bit weights: auto turns them on for x86 CPUs without VNNI, where full "
                     "8-bit int8 saturates")


class UnknownNodeError(PassError, InvalidParameterError):
    """`exclude` names nodes that the graph does not have."""


class _OrtQuantize(Pass):
    """Shared steps: export, pre-process, quantize, then measure."""

    category = "quantize"
    backends = ("onnx", "torch")
    # what times the result against the parent (None: `latency.time_models`); tests inject
    latency_probe: LatencyProbe | None = None
    slower_advice = ""

    def requires(self, variant: Variant, params: Any) -> None:
        if variant.backend == "onnx":
            _check_exclude(self.name, params.exclude, node_names(variant.model))

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        import onnx

        from workbench.core.model.fidelity import layer_sqnr, undefined_warning
        from workbench.core.model.sample_inputs import sample_inputs

        notes: list[str] = []
        details: dict[str, Any] = {}
        steps = Steps(ctx)
        fp32, inputs, reference = self._fp32(variant, params, steps, details, notes)
        details["reduce_range"], details["reduce_range_reason"] = resolve_reduce_range(
            params.reduce_range)
        with temp_dir("quant") as tmp:
            steps.start("preprocess", 0.3, "Pre-processing (shape inference, graph "
                        "optimisation)…")
            pre_path, pre_info = preprocess(fp32, tmp, params.exclude)
            details["preprocess"] = pre_info
            steps.start("quantize", 0.4, "Quantizing the weights to int8…")
            model = self._quantize_file(pre_path, list(params.exclude), params, variant,
                                        inputs, ctx, details, notes)
            pre = onnx.load(pre_path)
        steps.start("verify", 0.5, "Checking the int8 model against the float one on real "
                    "inputs (fidelity)…")
        samples = sample_inputs(variant, FIDELITY_SAMPLES, seed=1)
        warns = [f"Fidelity: {samples.warning}"] if samples.warning else []
        fid = self._fidelity(reference, model, inputs, samples)
        exclude = list(params.exclude)
        undefined = undefined_warning(fid)
        if undefined:  # no cosine to aim at: the fallback cannot rank its attempts
            warns.append(undefined)
        elif params.target_cosine > 0 and fid["cosine_min"] < params.target_cosine:
            model, fid, exclude = self._fall_back(pre, model, fid, params, variant, reference,
                                                  inputs, samples, ctx, details, notes)
            if not details["fallback"]["reached"]:
                warns.append(
                    f"Int8 stays below the target cosine {params.target_cosine} (minimum "
                    f"{fid['cosine_min']:.4f}) even with {len(details['fallback']['kept_float'])}"
                    " sensitive layer(s) kept in float.")
        ctx.cancel.check()
        ctx.progress(0.85, "Measuring the error per layer…")
        child = Variant(variant.name, "onnx", model, "onnx", inputs)
        fid["per_layer"] = layer_sqnr(Variant("fp32", "onnx", pre, "onnx", inputs), child,
                                      samples)
        layers = node_layers(pre)  # node -> the layer it computes, named after its weight
        details["layer_names"] = {n: layers[n] for n in fid["per_layer"] if n in layers}
        if fid["cosine"] is not None and fid["cosine"] < LOW_COSINE:
            worst = sorted(fid["per_layer"].items(), key=lambda kv: kv[1])[:3]
            warns.append(
                f"Int8 changed the outputs noticeably (cosine {fid['cosine']:.3f} against the "
                "parent); lowest per-layer SQNR (error accumulated up to the layer): "
                + (", ".join(f"{layers.get(n, n)} {db:.1f} dB" for n, db in worst) or "n/a")
                + "."
                + (" quantize.ort_dynamic usually keeps transformers closer."
                   if self.name == "quantize.ort_static" else ""))
        details.update(_graph_figures(pre, model, exclude))
        if params.measure_latency:
            steps.start("measure", 0.9, "Timing int8 against float in ONNX Runtime…")
            warning = self._latency(fp32, model, samples, details)
            if warning:
                warns.append(warning)
        details["size_bytes_before"] = fp32.ByteSize()
        details["size_bytes_after"] = model.ByteSize()
        details["size_ratio"] = round(model.ByteSize() / max(fp32.ByteSize(), 1), 4)
        details["fidelity"] = fid
        details["step_seconds"] = steps.seconds()
        ctx.progress(1.0, "Done")
        return PassOutput(model, backend="onnx", format="onnx", details=details,
                          warnings=notes + warns, inputs=inputs)

    def ensures(self, before: Variant, after: Variant, params: Any, output: PassOutput
                ) -> None:
        if not output.details.get("excluded_honoured", True):
            raise PassError(f"{self.name}: excluded nodes were quantized anyway: "
                            f"{', '.join(output.details.get('excluded_missing', []))}.")
        if not output.details.get("quantized_nodes"):
            raise PassError(f"{self.name}: nothing in {before.name} could be quantized "
                            "(no MatMul, Gemm or Conv with constant weights).")

    # steps ----------------------------------------------------------------------------------
    def _latency(self, fp32: Any, model: Any, samples: Any, details: dict[str, Any]
                 ) -> str | None:
        """Time `model` against the float `fp32` on the first sample; a warning if slower."""
        lat = compare_latency(fp32, model, samples[0], self.latency_probe)
        details["latency"] = lat.to_json()
        return slower_warning(lat.speedup, {n.op_type for n in model.graph.node},
                              self.slower_advice)

    def _quantize_file(self, pre_path: str, exclude: list[str], params: Any, variant: Variant,
                       inputs: tuple[Any, ...], ctx: PassContext, details: dict[str, Any],
                       notes: list[str]) -> Any:
        """Quantize the pre-processed model at `pre_path`, keeping `exclude` in float."""
        import onnx

        out = os.path.join(os.path.dirname(pre_path), "quantized.onnx")
        try:
            with quiet():
                self._quantize(pre_path, out, exclude, params, variant, inputs, ctx, details,
                               notes)
        except Exception as exc:
            if "ShapeInferenceError" not in str(exc):
                raise
            # Stale shapes left by pre-processing trip the quantizer's strict shape
            # inference (seen on transformer-tiny); drop them and let it infer afresh.
            _strip_value_info(pre_path)
            details["preprocess"]["value_info_dropped"] = True
            with quiet():
                self._quantize(pre_path, out, exclude, params, variant, inputs, ctx, details,
                               notes)
        return onnx.load(out)

    def _fidelity(self, reference: Variant, model: Any, inputs: tuple[Any, ...],
                  samples: Any) -> dict[str, Any]:
        """Output fidelity of the int8 `model` against `reference` (the parent, or its
        float ONNX export when that was checked against torch)."""
        from workbench.core.model.fidelity import fidelity_report

        child = Variant(reference.name, "onnx", model, "onnx", inputs)
        fid, _ = fidelity_report(reference, child, inputs=samples, per_layer=False)
        if "error" in fid:
            raise PassError(f"{self.name}: the quantized model does not run in ONNX Runtime: "
                            f"{fid['error']}")
        return fid

    def _fall_back(self, pre: Any, model: Any, fid: dict[str, Any], params: Any,
                   variant: Variant, reference: Variant, inputs: tuple[Any, ...],
                   samples: Any, ctx: PassContext, details: dict[str, Any], notes: list[str]
                   ) -> tuple[Any, dict[str, Any], list[str]]:
        """Keep the most sensitive layers in float (1, 2, 4, ... of them) until the minimum
        cosine reaches `params.target_cosine`; returns the best model found."""
        import onnx

        from workbench.core.passes.quant_fallback import rank_sensitive_nodes

        ctx.progress(0.55, "Int8 is below the target: ranking layers by sensitivity…")
        bits = 7 if details["reduce_range"] else 8
        ranked = rank_sensitive_nodes(pre, samples, params.exclude, bits)
        attempts = [{"kept_float": 0, "cosine_min": round(fid["cosine_min"], 5)}]
        best = (fid["cosine_min"], model, fid, list(params.exclude))
        undefined = -2.0  # below any cosine: an attempt whose outputs are degenerate
        limit = max(1, len(ranked) // 4)
        k = 1
        with temp_dir("quant") as tmp:
            pre_path = os.path.join(tmp, "preprocessed.onnx")
            onnx.save(pre, pre_path)
            while k <= limit:
                ctx.cancel.check()
                ctx.progress(0.55 + 0.25 * k / limit,
                             f"Keeping the {k} most sensitive layer(s) in float…")
                exclude = list(params.exclude) + [name for name, _ in ranked[:k]]
                trial = self._quantize_file(pre_path, exclude, params, variant, inputs, ctx,
                                            details, notes)
                trial_fid = self._fidelity(reference, trial, inputs, samples)
                cos = trial_fid["cosine_min"]
                attempts.append({"kept_float": k,
                                 "cosine_min": None if cos is None else round(cos, 5)})
                cos = undefined if cos is None else cos
                if cos > best[0]:
                    best = (cos, trial, trial_fid, exclude)
                if cos >= params.target_cosine:
                    break
                k = k * 2 if k * 2 <= limit or k == limit else limit
        _, model, fid, exclude = best
        details["fallback"] = {
            "target_cosine": params.target_cosine,
            "kept_float": exclude[len(params.exclude):],
            "attempts": attempts, "reached": (fid["cosine_min"] or undefined)
            >= params.target_cosine,
            "ranking": [[n, round(score, 5)] for n, score in ranked[:8]]}
        return model, fid, exclude

    def _fp32(self, variant: Variant, params: Any, steps: Steps, details: dict[str, Any],
              notes: list[str]) -> tuple[Any, tuple[Any, ...], Variant]:
        """The float32 ONNX model to quantize, its input specs, and the reference for
        fidelity: torch is exported with the fastest exporter that gives a valid graph (or
        the cached export is reused), and that export is the reference when it was checked
        against torch (ONNX Runtime runs it several times quicker than eager torch)."""
        if variant.backend == "onnx":
            return variant.model, variant.inputs, variant
        if in_job_scope():
            # Torch only traces and runs a few small batches here, which a second intra-op
            # thread barely speeds up, while on a busy machine OpenMP's waiting threads
            # make them 4-8x slower (resnet-mini, batch 32: 0.15 s on one thread, 0.6-1.3 s
            # on two, at load 5 on two cores). The job scope restores the count afterwards.
            request_threads(1)
        from workbench.core.model.onnx_export import (
            OnnxExportError,
            export_onnx,
            exported_input_specs,
        )

        steps.start("export", 0.05, "Exporting to ONNX…")
        try:
            exported = export_onnx(variant, 18, True, steps.within(
                0.05, 0.28, "Exporting to ONNX: "), fast=True)
            if not set(params.exclude) <= node_names(exported.model):
                # node names picked in (or recorded from) convert.onnx's dynamo export
                exported = export_onnx(variant, 18, True, steps.within(
                    0.05, 0.28, "Exporting to ONNX with the node names of convert.onnx: "))
        except OnnxExportError as exc:
            raise PassError(f"{self.name}: {exc}") from exc
        details["exporter"] = exported.exporter
        details["export"] = exported.summary()
        details["export_seconds"] = round(exported.seconds, 3)
        details["export_cached"] = exported.cached or False
        notes.extend(exported.warnings)
        _check_exclude(self.name, params.exclude, node_names(exported.model))
        inputs = exported_input_specs(variant, exported.model)
        if exported.parity is None:
            details["fidelity_reference"] = "torch"
            return exported.model, inputs, variant
        details["fidelity_reference"] = (f"the float ONNX export (within {exported.parity:.2g} "
                                         "of torch)")
        # a stable id: the reference outputs are memoised per variant id
        return exported.model, inputs, Variant(
            variant.name, "onnx", exported.model, "onnx", inputs,
            metadata=dict(variant.metadata or {}),
            id=f"{variant.id}/onnx-float/{exported.exporter}")

    def _quantize(self, src: str, out: str, exclude: list[str], params: Any,
                  variant: Variant, inputs: tuple[Any, ...], ctx: PassContext,
                  details: dict[str, Any], notes: list[str]) -> None:
        raise NotImplementedError


class OrtDynamicQuantize(_OrtQuantize):
    name = "quantize.ort_dynamic"
    title = "Dynamic int8 (ONNX Runtime)"
    description = ("Int8 weights for MatMul/Gemm/Conv; activations quantized on the fly. "
                   "Torch models are exported to ONNX first.")

    @dataclass
    class Params:
        per_channel: bool = param(True, help="One scale per output channel (better accuracy)")
        weight_type: str = param("int8", help="Weight integer type", choices=("int8", "uint8"))
        exclude: list[str] = param([], help="ONNX node names to keep in float32",
                                   widget="nodes")
        reduce_range: str = param("auto", help=REDUCE_RANGE_HELP, choices=REDUCE_RANGE_CHOICES)
        target_cosine: float = param(0.99, help=TARGET_HELP, min=0.0, max=1.0)
        op_types: list[str] = param([], help="ONNX op types to quantize (empty: all that "
                                    "ONNX Runtime supports; MatMul, Gemm keeps convolutions "
                                    "in float)")
        measure_latency: bool = param(True, help=LATENCY_HELP)

    slower_advice = ("Try quantize.ort_static, or keep convolutions in float "
                     "(op_types MatMul, Gemm), or let quantize.auto choose.")

    def _quantize(self, src: str, out: str, exclude: list[str], params: Any,
                  variant: Variant, inputs: tuple[Any, ...], ctx: PassContext,
                  details: dict[str, Any], notes: list[str]) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(src, out, per_channel=params.per_channel,
                         reduce_range=details["reduce_range"],
                         weight_type=getattr(QuantType, _TYPES[params.weight_type]),
                         nodes_to_exclude=exclude or None,
                         op_types_to_quantize=list(params.op_types) or None,
                         extra_options={"MatMulConstBOnly": True})


class OrtStaticQuantize(_OrtQuantize):
    name = "quantize.ort_static"
    title = "Static int8 (ONNX Runtime)"
    description = ("Int8 weights and activations, with activation ranges calibrated on "
                   "sample inputs (QDQ or QOperator format).")

    @dataclass
    class Params:
        per_channel: bool = param(True, help="One scale per output channel (better accuracy)")
        weight_type: str = param("int8", help="Weight integer type", choices=("int8", "uint8"))
        activation_type: str = param("uint8", help="Activation integer type",
                                     choices=("uint8", "int8"))
        calibration: str = param("minmax", help="How activation ranges are chosen",
                                 choices=("minmax", "entropy", "percentile"))
        samples: int = param(64, help="Calibration samples", min=1, max=1000)
        op_types: list[str] = param([], help="ONNX op types to quantize (empty: all that ONNX "
                                    "Runtime supports; MatMul, Gemm, Gather for transformers)")
        format: str = param("qdq", help="QDQ (Quantize/DequantizeLinear pairs) or QOperator "
                            "(QLinearConv, ...)", choices=("qdq", "qoperator"))
        exclude: list[str] = param([], help="ONNX node names to keep in float32",
                                   widget="nodes")
        reduce_range: str = param("auto", help=REDUCE_RANGE_HELP, choices=REDUCE_RANGE_CHOICES)
        target_cosine: float = param(0.99, help=TARGET_HELP, min=0.0, max=1.0)
        measure_latency: bool = param(True, help=LATENCY_HELP)

    slower_advice = ("Try keeping the slowest layers in float (exclude), or let "
                     "quantize.auto choose.")

    def requires(self, variant: Variant, params: Any) -> None:
        if params.activation_type == "int8" and params.weight_type == "uint8":
            raise InvalidParameterError(
                f"{self.name}: ONNX Runtime has no kernels for int8 activations with uint8 "
                "weights; use int8 weights, or uint8 activations.")
        super().requires(variant, params)

    def _quantize(self, src: str, out: str, exclude: list[str], params: Any,
                  variant: Variant, inputs: tuple[Any, ...], ctx: PassContext,
                  details: dict[str, Any], notes: list[str]) -> None:
        import onnx
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        data, source = _calibration_samples(variant, params.samples, ctx)
        if source == "random":
            notes.append("Calibration used random inputs (no real data fits the inputs); "
                         "activation ranges may be off.")
        details["calibration_samples"] = len(data)
        details["calibration_inputs"] = source
        pre = onnx.load(src, load_external_data=False)
        reader = _make_reader(pre, data)
        op_types = list(params.op_types) or None
        if op_types is None and is_transformer(pre):
            # Quantizing every Add/Softmax/LayerNorm input of a transformer statically wrecks
            # it (MiniLM: cosine 0.40, against 0.94 with MatMul/Gemm/Gather only).
            op_types = list(TRANSFORMER_STATIC_OPS)
        details["op_types"] = op_types or "all"
        fmt = QuantFormat.QDQ if params.format == "qdq" else QuantFormat.QOperator
        extra = {"CalibPercentile": 99.99} if params.calibration == "percentile" else {}
        quantize_static(src, out, reader, quant_format=fmt, per_channel=params.per_channel,
                        reduce_range=details["reduce_range"],
                        activation_type=getattr(QuantType, _TYPES[params.activation_type]),
                        weight_type=getattr(QuantType, _TYPES[params.weight_type]),
                        nodes_to_exclude=exclude or None,
                        op_types_to_quantize=op_types,
                        calibrate_method=getattr(CalibrationMethod,
                                                 _CALIBRATION[params.calibration]),
                        extra_options=extra)


def _make_reader(model: Any, samples: Sequence[tuple[Any, ...]]) -> Any:
    """A `CalibrationDataReader` over `samples`, in chunks when the batch axis is free."""
    from onnx import helper
    from onnxruntime.quantization import CalibrationDataReader

    from workbench.core.model.runtime import to_numpy
    from workbench.core.model.sample_inputs import stack_inputs

    inits = {i.name for i in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in inits]
    names = [i.name for i in graph_inputs]
    types = [i.type.tensor_type.elem_type for i in graph_inputs]
    dim0 = [i.type.tensor_type.shape.dim[0] for i in graph_inputs
            if i.type.tensor_type.shape.dim]
    free = all(not (d.HasField("dim_value") and d.dim_value > 0) for d in dim0)
    step = _CALIB_CHUNK if free else 1
    feeds = []
    for k in range(0, len(samples), step):
        batch = stack_inputs(samples[k:k + step])
        feeds.append({name: to_numpy(value).astype(helper.tensor_dtype_to_np_dtype(elem),
                                                    copy=False) if elem else to_numpy(value)
                      for name, elem, value in zip(names, types, batch, strict=False)})

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.position = 0

        def get_next(self) -> dict[str, Any] | None:
            if self.position >= len(feeds):
                return None
            self.position += 1
            return feeds[self.position - 1]

        def rewind(self) -> None:
            self.position = 0

    return Reader()


def _calibration_samples(variant: Variant, n: int, ctx: PassContext
                         ) -> tuple[list[tuple[Any, ...]], str]:
    """Calibration inputs: `ctx.data` when it holds samples, else `sample_inputs`."""
    from workbench.core.model.sample_inputs import sample_inputs

    given = _context_samples(ctx.data, n)
    if given:
        return given, "context"
    samples = sample_inputs(variant, n, seed=0)
    return list(samples), samples.source


def _context_samples(data: Any, n: int) -> list[tuple[Any, ...]] | None:
    """Batch-1 input tuples from a context's data, if it holds any in a form we know:
    a list of tuples or tensors, a stacked tensor/array, or an object with `.samples(n)`
    or a `calibration` attribute holding one of those."""
    if data is None:
        return None
    if callable(getattr(data, "samples", None)):
        return _context_samples(data.samples(n), n)
    if getattr(data, "calibration", None) is not None:
        return _context_samples(data.calibration, n)
    if hasattr(data, "shape") and len(data.shape) >= 1:
        return [(data[k:k + 1],) for k in range(min(n, data.shape[0]))]
    if isinstance(data, (list, tuple)) and data:
        items = [d if isinstance(d, tuple) else (d,) for d in data[:n]]
        return [tuple(x if getattr(x, "ndim", 0) and x.shape[0] == 1 else x[None]
                      for x in item) for item in items]
    return None


# graph helpers -----------------------------------------------------------------------------
def _check_exclude(pass_name: str, exclude: Sequence[str], names: set[str]) -> None:
    unknown = [n for n in exclude if n not in names]
    if unknown:
        raise UnknownNodeError(f"{pass_name}: exclude names node(s) the graph does not have: "
                               f"{', '.join(map(repr, unknown))}.")


def _strip_value_info(path: str) -> None:
    import onnx

    model = onnx.load(path)
    del model.graph.value_info[:]
    onnx.save(model, path)


def _graph_figures(before: Any, after: Any, exclude: Sequence[str]) -> dict[str, Any]:
    """Inserted node counts, int8 initializers, and whether exclusions were honoured."""
    from onnx import TensorProto

    ops_before = Counter(n.op_type for n in before.graph.node)
    ops_after = Counter(n.op_type for n in after.graph.node)
    inserted = {op: ops_after[op] - ops_before.get(op, 0) for op in ops_after
                if ops_after[op] > ops_before.get(op, 0)}
    quant = {op: ops_after[op] for op in QUANT_OPS if ops_after.get(op)}
    int_types = (TensorProto.INT8, TensorProto.UINT8)
    int8_inits = sum(1 for i in after.graph.initializer if i.data_type in int_types)
    types_before = {n.name: n.op_type for n in before.graph.node if n.name}
    after_nodes = {n.name: n for n in after.graph.node if n.name}
    missing = [name for name in exclude
               if name not in after_nodes or after_nodes[name].op_type != types_before.get(name)]
    return {"inserted_nodes": inserted, "quant_nodes": quant,
            "quantized_nodes": sum(quant.values()), "int8_initializers": int8_inits,
            "excluded": list(exclude), "excluded_honoured": not missing,
            "excluded_missing": missing}


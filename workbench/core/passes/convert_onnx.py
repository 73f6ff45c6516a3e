"""convert.onnx: export a torch variant to ONNX and check it against torch on real inputs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from workbench.core.model.variant import Variant
from workbench.core.passes.base import Pass, PassContext, PassError, PassOutput, param

log = logging.getLogger(__name__)

PARITY_SAMPLES = 8
PARITY_RTOL = {"float16": 1e-2, "bfloat16": 5e-2}  # else 1e-3 of the output's scale


class ConvertOnnx(Pass):
    name = "convert.onnx"
    title = "Convert to ONNX"
    category = "convert"
    backends = ("torch",)
    description = ("Export to a single ONNX model (dynamo exporter, TorchScript fallback) with "
                   "a dynamic batch axis, checked against torch with ONNX Runtime.")

    @dataclass
    class Params:
        opset: int = param(18, help="ONNX opset version", min=13, max=21)
        dynamic_batch: bool = param(True, help="Let the batch axis vary at run time")

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        from workbench.core.model.onnx_export import (
            OnnxExportError,
            export_onnx,
            exported_input_specs,
            ort_parity,
        )
        from workbench.core.model.runtime import run_samples, run_variant
        from workbench.core.model.sample_inputs import sample_inputs

        ctx.progress(0.05, "Exporting to ONNX…")
        try:
            exported = export_onnx(variant, params.opset, params.dynamic_batch)
        except OnnxExportError as exc:
            raise PassError(str(exc)) from exc
        ctx.cancel.check()
        ctx.progress(0.7, "Checking ONNX Runtime against torch…")
        samples = sample_inputs(variant, PARITY_SAMPLES, seed=0)
        warnings = list(exported.warnings)
        if samples.warning:
            warnings.append(f"Parity check: {samples.warning}")
        diff = ort_parity(variant, exported.model, samples)
        ref = run_samples(lambda batch: run_variant(variant, batch), samples)
        scale = float(abs(ref).max()) if ref.size else 1.0
        rtol = PARITY_RTOL.get(_float_dtype(variant), 1e-3)
        tolerance = rtol * max(scale, 1e-6)
        opset = next((o.version for o in exported.model.opset_import
                      if o.domain in ("", "ai.onnx")), None)
        details = {"exporter": exported.exporter, "opset": opset,
                   "parity_max_abs_diff": diff, "parity_tolerance": tolerance,
                   "parity_samples": len(samples), "parity_inputs": samples.source,
                   "size_bytes": exported.model.ByteSize()}
        ctx.progress(1.0, "Done")
        return PassOutput(exported.model, backend="onnx", format="onnx", details=details,
                          warnings=warnings, inputs=exported_input_specs(variant,
                                                                         exported.model),
                          metadata={"exporter": exported.exporter})

    def ensures(self, before: Variant, after: Variant, params: Any, output: PassOutput
                ) -> None:
        diff = output.details["parity_max_abs_diff"]
        tolerance = output.details["parity_tolerance"]
        if not diff <= tolerance:
            raise PassError(f"convert.onnx: ONNX Runtime differs from torch by {diff:.3g} "
                            f"(tolerance {tolerance:.3g}); the export is not faithful.")


def _float_dtype(variant: Variant) -> str:
    from workbench.core.model.runtime import model_float_dtype

    dtype = model_float_dtype(variant.model)
    return str(dtype).removeprefix("torch.") if dtype is not None else "float32"

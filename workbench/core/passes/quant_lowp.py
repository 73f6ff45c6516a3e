"""quantize.fp16 and quantize.bf16: cast weights (and float inputs) to 16-bit floats.

ONNX models go through `onnxruntime.transformers.float16.convert_float_to_float16` with
float32 graph inputs and outputs (`keep_io_types`). ONNX Runtime's CPU provider lacks fp16
kernels for some ops; those op types are kept in float32 (found by building a session and
reading which node it could not place), and listed in the details.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from workbench.core.model.variant import InputSpec, Variant
from workbench.core.passes.base import Pass, PassContext, PassError, PassOutput, param

log = logging.getLogger(__name__)

_MAX_BLOCK_ROUNDS = 12
_NO_KERNEL = re.compile(r"Could not find an implementation for (\w+)\(")


class Fp16(Pass):
    name = "quantize.fp16"
    handles_nonfinite = True  # the cast keeps NaN and Inf as they are
    title = "Half precision (fp16)"
    category = "quantize"
    backends = ("torch", "onnx")
    description = ("Store weights in IEEE half precision (16-bit). Torch models run in fp16; "
                   "ONNX models keep float32 inputs and outputs.")

    @dataclass
    class Params:
        keep_io_types: bool = param(True, help="ONNX only: keep float32 graph inputs/outputs")

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        if variant.backend == "onnx":
            return _onnx_fp16(variant, params.keep_io_types, ctx)
        import torch

        return _torch_cast(variant, torch.float16, "float16", ctx)


class Bf16(Pass):
    name = "quantize.bf16"
    handles_nonfinite = True  # the cast keeps NaN and Inf as they are
    title = "bfloat16"
    category = "quantize"
    backends = ("torch",)
    description = "Store weights and run in bfloat16 (8-bit exponent, 7-bit mantissa)."

    @dataclass
    class Params:
        pass

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        import torch

        return _torch_cast(variant, torch.bfloat16, "bfloat16", ctx)


def _torch_cast(variant: Variant, dtype: Any, dtype_name: str, ctx: PassContext) -> PassOutput:
    from workbench.core.model.fidelity import fidelity_report

    if not any(p.is_floating_point() for p in variant.model.parameters()):
        raise PassError(f"quantize.{dtype_name[:4]}: {variant.name} has no floating-point "
                        "weights to cast.")
    ctx.progress(0.1, f"Casting to {dtype_name}…")
    model = Pass.clone_model(variant).to(dtype)
    inputs = tuple(InputSpec(s.name, s.shape, dtype_name if _is_float(s.dtype) else s.dtype,
                             s.low, s.high) for s in variant.inputs)
    child = Variant(variant.name, "torch", model, variant.format, inputs)
    ctx.progress(0.5, "Measuring fidelity…")
    fid, warns = fidelity_report(variant, child)
    if "error" in fid:
        warns.append(f"The {dtype_name} model does not run on this CPU ({fid['error']}); it was "
                     "converted anyway and may run on a GPU.")
    details = {"dtype": dtype_name, "fidelity": fid,
               "cast_parameters": sum(1 for p in model.parameters() if p.dtype == dtype)}
    return PassOutput(model, details=details, warnings=warns, inputs=inputs)


def _is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


def _onnx_fp16(variant: Variant, keep_io_types: bool, ctx: PassContext) -> PassOutput:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    from workbench.core.model.fidelity import fidelity_report
    from workbench.core.model.loaders import onnx_input_specs
    from workbench.core.model.runtime import ort_session

    ctx.progress(0.1, "Converting to fp16…")
    blocked: list[str] = []
    model = None
    for _ in range(_MAX_BLOCK_ROUNDS):
        model = _convert_fp16(variant.model, keep_io_types,
                              [*DEFAULT_OP_BLOCK_LIST, *blocked])
        try:
            ort_session(model)
            break
        except Exception as exc:
            match = _NO_KERNEL.search(str(exc))
            if match is None or match.group(1) in blocked:
                raise PassError(f"quantize.fp16: ONNX Runtime cannot load the fp16 model: "
                                f"{str(exc).strip().splitlines()[0]}") from exc
            blocked.append(match.group(1))
            ctx.cancel.check()
    assert model is not None
    warns: list[str] = []
    if blocked:
        warns.append("ONNX Runtime's CPU provider has no fp16 kernel for "
                      f"{', '.join(blocked)}; those ops stay in float32.")
    inputs = variant.inputs
    if not keep_io_types:
        by_name = {s.name: s for s in variant.inputs}
        inputs = tuple(InputSpec(s.name, by_name[s.name].shape if s.name in by_name else s.shape,
                                 s.dtype, s.low, s.high) for s in onnx_input_specs(model))
    child = Variant(variant.name, "onnx", model, "onnx", inputs)
    ctx.progress(0.6, "Measuring fidelity…")
    fid, more = fidelity_report(variant, child)
    fp16_inits = sum(1 for i in model.graph.initializer if i.data_type == 10)
    details = {"dtype": "float16", "fidelity": fid, "kept_float32_ops": blocked,
               "fp16_initializers": fp16_inits, "size_bytes_before": variant.model.ByteSize(),
               "size_bytes_after": model.ByteSize()}
    return PassOutput(model, format="onnx", details=details, warnings=warns + more,
                      inputs=inputs)


def _convert_fp16(model: Any, keep_io_types: bool, op_block_list: list[str]) -> Any:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    # its "value truncated to fp16 range" UserWarnings reach the silenced `py.warnings` logger
    return convert_float_to_float16(copy, keep_io_types=keep_io_types,
                                    op_block_list=op_block_list, disable_shape_infer=False)

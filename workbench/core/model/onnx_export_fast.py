"""The fast export order: the TorchScript exporter first, kept only when its graph checks out.

The TorchScript exporter (`torch.onnx.export(..., dynamo=False)`) traces one forward pass;
on the zoo's CNNs it takes a fraction of a second where the dynamo exporter takes 5-10 s
(torch.export, decompositions, onnxscript). A trace can be wrong where the dynamo capture
is not (Python control flow or sizes baked in as constants), so its graph is kept only when

* it passes `onnx.checker` and has the requested opset, and
* one ONNX Runtime run matches torch within the convert.onnx tolerance (1e-3 of the
  output's scale; looser for float16/bfloat16 weights) at a batch size it was not traced
  with (3, when the batch axis is dynamic), and, for 2-D integer inputs (token ids), at a
  shorter sequence when torch takes one.

Otherwise the dynamo exporter (without its own TorchScript fallback) makes the graph, and
the export's warnings say why. Either way `OnnxExport.parity` holds the largest difference
from torch seen, when the check passed: the int8 passes then take the float export, in ONNX
Runtime (several times quicker than eager torch on CNNs), as the reference for fidelity.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.errors import first_line
from workbench.core.model.onnx_export import (
    ExportStep,
    OnnxExport,
    OnnxExportError,
    _export_onnx,
    _export_torchscript,
    _opset,
    check_exportable,
    finish_export,
)
from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)

RTOL = {"float16": 1e-2, "bfloat16": 5e-2}  # else 1e-3 of the output's scale


@dataclass(frozen=True)
class ExportCheck:
    """What comparing an export with torch found: a problem in words (None when it is
    faithful) and the largest absolute difference seen."""

    problem: str | None
    max_abs_diff: float = float("nan")


def export_fast(variant: Variant, opset: int, dynamic_batch: bool, step: ExportStep
                ) -> OnnxExport:
    """The TorchScript export of `variant` if it is valid, else the dynamo export (also
    compared with torch, so `parity` is known either way)."""
    check_exportable(variant)
    step(0.05, "Tracing with the TorchScript exporter…")
    try:
        model = _export_torchscript(variant, opset, dynamic_batch)
        step(0.5, "Checking the TorchScript graph (onnx.checker, ONNX Runtime against torch)…")
        check = check_export(variant, model, opset, dynamic_batch, "torchscript")
    except Exception as exc:
        log.debug("TorchScript export of %s failed", variant.name, exc_info=True)
        check = ExportCheck(f"failed ({first_line(exc)})")
    if check.problem is None:
        return OnnxExport(model, "torchscript", parity=check.max_abs_diff)
    log.info("TorchScript export of %s rejected: %s", variant.name, check.problem)
    step(0.6, "The TorchScript export is not usable; exporting with the dynamo exporter…")
    try:
        export = _export_onnx(variant, opset, dynamic_batch,
                              lambda f, m: step(0.6 + 0.35 * f, m),
                              torchscript_fallback=False)
    except OnnxExportError as exc:
        raise OnnxExportError(f"{exc}; the TorchScript export {check.problem}") from exc
    export.warnings.insert(0, f"Used the dynamo exporter: the TorchScript export "
                              f"{check.problem}.")
    step(0.97, "Checking the dynamo graph against torch…")
    try:
        dynamo = check_export(variant, export.model, _opset(export.model), dynamic_batch,
                              None)
    except Exception:  # the dynamo export is kept as the default order keeps it
        log.debug("checking the dynamo export of %s failed", variant.name, exc_info=True)
        dynamo = ExportCheck("could not be checked")
    if dynamo.problem is None:
        export.parity = dynamo.max_abs_diff
    return export


def check_export(variant: Variant, model: Any, opset: int, dynamic_batch: bool,
                 exporter: str | None) -> ExportCheck:
    """Whether `model`, an export of torch `variant`, can be used in its place.

    With `exporter`, tidies `model` in place first (`finish_export`: IR version, output
    names, exporter tag, onnx.checker). Torch runs at the batch of 2 the trace used (its
    kernels are warm for that shape: a new shape costs a CNN a second of set-up); ONNX Runtime
    runs those rows and the first again, at batch 3, so a batch axis frozen by the trace is
    caught too.
    """
    if exporter is not None:
        try:
            finish_export(variant, model, exporter)
        except OnnxExportError as exc:
            return ExportCheck(f"does not pass onnx.checker ({first_line(exc.__cause__ or exc)})")
    if _opset(model) != opset:
        return ExportCheck(f"has opset {_opset(model)}, not {opset}")
    from workbench.core.model.runtime import model_float_dtype, ort_session, run_session, run_torch

    try:
        session = ort_session(model)
    except Exception as exc:
        return ExportCheck(f"does not load in ONNX Runtime ({first_line(exc)})")
    dtype = str(model_float_dtype(variant.model) or "").removeprefix("torch.")
    rtol = RTOL.get(dtype, 1e-3)
    worst = 0.0
    for label, args, rows in _check_inputs(variant, dynamic_batch):
        try:
            ref = run_torch(variant, args)
        except Exception:  # torch itself refuses this shape: nothing to compare
            log.debug("torch rejects the inputs %s", label, exc_info=True)
            continue
        feed = tuple(a[list(rows)] for a in args) if rows else args
        try:
            out = run_session(session, feed)
        except Exception as exc:
            return ExportCheck(f"does not run in ONNX Runtime {label} ({first_line(exc)})")
        if rows:
            ref = ref[list(rows)]
        if ref.shape != out.shape:
            return ExportCheck(f"gives shape {out.shape} where torch gives {ref.shape} {label}")
        diff = float(np.abs(ref.astype(np.float64) - out.astype(np.float64)).max(initial=0))
        tolerance = rtol * max(float(np.abs(ref).max(initial=0)), 1e-3) + 1e-6
        if not diff <= tolerance:
            return ExportCheck(f"differs from torch by {diff:.3g} {label} (tolerance "
                               f"{tolerance:.3g})", diff)
        worst = max(worst, diff)
    return ExportCheck(None, worst)


def _check_inputs(variant: Variant, dynamic_batch: bool
                  ) -> list[tuple[str, tuple[Any, ...], tuple[int, ...]]]:
    """(label, torch inputs, rows of them to feed ONNX Runtime) to compare on."""
    args = variant.example_inputs(seed=1, batch=2 if dynamic_batch else 1)
    rows: tuple[int, ...] = (0, 1, 0) if dynamic_batch else ()
    checks = [("at batch 3" if dynamic_batch else "at batch 1", args, rows)]
    seq = [i for i, s in enumerate(variant.inputs)
           if len(s.shape) == 2 and s.dtype.startswith(("int", "uint"))]
    length = min((int(args[i].shape[1]) for i in seq), default=0)
    if length > 2:
        short = length // 2
        checks.append((f"at sequence length {short}",
                       tuple(a[:, :short] if i in seq else a for i, a in enumerate(args)), ()))
    return checks

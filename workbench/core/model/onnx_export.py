"""Export a torch variant to one in-memory ONNX model, and check it against torch.

Two orders of exporters:

* the default (`fast=False`, convert.onnx and File > Export): the dynamo exporter
  (`torch.onnx.export(..., dynamo=True)`) first; if it fails, or cannot reach the requested
  opset (its version converter gives up quietly below 15), the TorchScript exporter
  (`dynamo=False`).
* `fast=True` (the int8 passes and the benchmark, which only need a faithful graph): the
  TorchScript exporter first, often ten times quicker, kept only when the graph passes
  `onnx.checker` and one ONNX Runtime run matches torch at a batch size it was not traced
  with (`onnx_export_fast`); otherwise the dynamo exporter.

The exporter used is recorded in the model's `metadata_props` under `workbench.exporter`
(read it with `exporter_of`); `OnnxExport` also says how long the export took and whether
it came from a cache (`summary()` puts both in words for reports).

Axes: the batch axis (0) of every input is dynamic when `dynamic_batch`; 2-D integer
inputs (token ids, attention masks) also get a dynamic `sequence` axis (1).
"""

from __future__ import annotations

import functools
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.job_scope import quiet_stdout
from workbench.core.model.variant import InputSpec, Variant

EXPORTER_KEY = "workbench.exporter"
log = logging.getLogger(__name__)
# progress of an export: (fraction of the export done, what it is doing now)
ExportStep = Callable[[float, str], None]


def _no_step(fraction: float, message: str) -> None:
    """No progress wanted."""


class OnnxExportError(WorkbenchError):
    """Neither exporter could turn the model into ONNX."""


@dataclass
class OnnxExport:
    """An exported model, the exporter that made it, and anything worth a warning."""

    model: Any
    exporter: str  # "dynamo" | "torchscript"
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0  # how long this export took (or reading it from the cache)
    cached: str = ""  # "" for a fresh export, else where it came from: "memory" | "disk"
    # largest |ONNX Runtime - torch| when the export was checked and found faithful, else None
    parity: float | None = None

    def summary(self) -> str:
        """One sentence for a report: the exporter, and how long it took or the cache hit."""
        made = f"the {self.exporter} exporter"
        if self.cached:
            return (f"Reused the cached ONNX export (from {self.cached} in "
                    f"{self.seconds:.2f} s; made by {made}).")
        return f"Exported to ONNX with {made} in {self.seconds:.1f} s."

    def to_json(self) -> dict[str, Any]:
        return {"exporter": self.exporter, "seconds": round(self.seconds, 3),
                "cached": self.cached or False, "parity_max_abs_diff": self.parity}


def torch_to_onnx(variant: Variant, opset: int = 18, dynamic_batch: bool = True,
                  step: ExportStep | None = None) -> Any:
    """`variant` (torch) as a single checked `onnx.ModelProto` with no external data."""
    return export_onnx(variant, opset, dynamic_batch, step or _no_step).model


def exporter_of(model: Any) -> str | None:
    """Which exporter made `model` ("dynamo" or "torchscript"), if Workbench exported it."""
    return next((p.value for p in model.metadata_props if p.key == EXPORTER_KEY), None)


EXPORT_REVISION = 1  # bump when a change here changes the exported bytes (disk cache key)
ORDERS = {False: "dynamo, then torchscript",  # the `exporter` entry of the disk cache key
          True: "torchscript checked against ONNX Runtime, then dynamo"}
_CACHE: OrderedDict[tuple[str, int, bool, bool], OnnxExport] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_BYTES = 1 << 30  # keep at most this much exported ONNX in memory


def export_onnx(variant: Variant, opset: int = 18, dynamic_batch: bool = True,
                step: ExportStep = _no_step, fast: bool = False) -> OnnxExport:
    """Export with the dynamo exporter, falling back to the TorchScript one; with `fast`,
    the TorchScript exporter first when its graph checks out (see the module docstring).

    Exports are cached in memory per (variant, opset, dynamic batch, order), and on disk by
    the variant's content (`artifact_cache`): variants never change, so a second benchmark,
    int8 pass or profile of the same variant, in this process or a later one, reuses the
    first export. A `fast` caller also takes a cached default-order export (it is just as
    valid, and already made). Each caller gets its own copy of the model.
    `step(fraction, message)` hears which stage the export is in (capture, fallback, check).
    """
    start = time.perf_counter()
    orders = (True, False) if fast else (False,)
    hit = None
    with _CACHE_LOCK:
        for order in orders:
            key = (variant.id, opset, dynamic_batch, order)
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                break
    if hit is not None:
        step(1.0, "Using the ONNX export made earlier in this session")
        return _copy(hit, "memory", start)
    found = _export_cached_on_disk(variant, opset, dynamic_batch, step, orders)
    with _CACHE_LOCK:
        _CACHE[(variant.id, opset, dynamic_batch, found.exporter_order)] = found.export
        while len(_CACHE) > 1 and sum(e.model.ByteSize() for e in _CACHE.values()) > \
                CACHE_BYTES:
            _CACHE.popitem(last=False)
    return _copy(found.export, found.export.cached, start)


def clear_export_cache() -> None:
    """Forget the exports held in memory (the disk cache stays)."""
    with _CACHE_LOCK:
        _CACHE.clear()


@dataclass
class _Found:
    export: OnnxExport
    exporter_order: bool  # the `fast` order it was made in (its cache key)


def _export_cached_on_disk(variant: Variant, opset: int, dynamic_batch: bool,
                           step: ExportStep, orders: tuple[bool, ...]) -> _Found:
    """The disk cache's entry for this export (in the first of `orders` found), or a fresh
    export in the order `orders[0]` (then stored)."""
    import json

    from workbench.core.model import artifact_cache

    cacheable = variant.backend == "torch" and bool(variant.inputs)
    if cacheable:
        step(0.0, "Looking for a cached ONNX export…")
        for order in orders:
            disk_key = artifact_key(variant, opset, dynamic_batch, order)
            found = artifact_cache.load_onnx(disk_key) if disk_key is not None else None
            if found is None:
                continue
            step(1.0, "Using the cached ONNX export")
            model, extra = found
            exporter = exporter_of(model) or "dynamo"
            try:
                notes = [str(n) for n in json.loads(extra.get("notes", "[]"))]
                parity = float(extra["parity"]) if extra.get("parity") else None
            except ValueError:
                notes, parity = [], None
            return _Found(OnnxExport(model, exporter, notes, 0.0, "disk", parity), order)
    if orders[0]:
        from workbench.core.model.onnx_export_fast import export_fast

        fresh = export_fast(variant, opset, dynamic_batch, step)
    else:
        fresh = _export_onnx(variant, opset, dynamic_batch, step)
    disk_key = artifact_key(variant, opset, dynamic_batch, orders[0]) if cacheable else None
    if disk_key is not None:
        step(0.97, "Storing the ONNX export in the cache…")
        extra = {"notes": json.dumps(fresh.warnings)}
        if fresh.parity is not None:  # two digits: the entry's bytes stay reproducible
            extra["parity"] = f"{fresh.parity:.2g}"
        artifact_cache.store_onnx(disk_key, fresh.model, extra)
    return _Found(fresh, orders[0])


def artifact_key(variant: Variant, opset: int, dynamic_batch: bool, fast: bool = False
                 ) -> Any:
    """The disk cache key of `variant`'s ONNX export (None when it cannot be cached)."""
    from workbench.core.model.artifact_cache import artifact_key as key_of

    return key_of(variant, "onnx", opset, dynamic_batch,
                  {**_versions(), "exporter": ORDERS[fast]})


@functools.cache
def _versions() -> dict[str, str]:
    """Versions of everything that changes the exported bytes."""
    from importlib import metadata

    import onnx
    import torch

    import workbench

    found = {"workbench": workbench.__version__, "export_revision": str(EXPORT_REVISION),
             "exporter": ORDERS[False], "torch": torch.__version__,
             "onnx": onnx.__version__}
    for dist in ("onnxscript", "onnx-ir"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "none"
    return found


def _copy(export: OnnxExport, cached: str, start: float) -> OnnxExport:
    """A copy for one caller, timed from `start` (when the caller asked)."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(export.model)
    return OnnxExport(model, export.exporter, list(export.warnings),
                      time.perf_counter() - start, cached, export.parity)


def check_exportable(variant: Variant) -> None:
    """OnnxExportError unless `variant` is a torch model with input shapes."""
    if variant.backend != "torch":
        raise OnnxExportError(f"{variant.name} is already {variant.backend}, not torch.")
    if not variant.inputs:
        raise OnnxExportError(f"{variant.name} declares no input shapes; ONNX export "
                              "needs them (give an input shape when loading).")


def _export_onnx(variant: Variant, opset: int, dynamic_batch: bool,
                 step: ExportStep = _no_step, torchscript_fallback: bool = True
                 ) -> OnnxExport:
    check_exportable(variant)
    notes: list[str] = []
    errors: list[str] = []
    model = fallback = None
    exporter = "dynamo"
    step(0.05, "Capturing the graph with torch.export and translating it to ONNX…")
    try:
        model = _export_program(variant, opset) or _export_dynamo(variant, opset,
                                                                   dynamic_batch)
        got = _opset(model)
        if got != opset:
            errors.append(f"the dynamo exporter produced opset {got}, not {opset}")
            model, fallback = None, model
    except Exception as exc:
        log.debug("dynamo export of %s failed", variant.name, exc_info=True)
        errors.append(f"dynamo exporter: {first_line(exc)}")
        if not torchscript_fallback:
            raise OnnxExportError(f"{variant.name} could not be exported to ONNX: "
                                  + "; ".join(errors)) from exc
    if model is None and torchscript_fallback:
        exporter = "torchscript"
        step(0.5, "The dynamo exporter failed; trying the TorchScript exporter…")
        try:
            model = _export_torchscript(variant, opset, dynamic_batch)
            notes.append("Used the TorchScript exporter (" + "; ".join(errors) + ").")
        except Exception as exc:
            log.debug("TorchScript export of %s failed", variant.name, exc_info=True)
            errors.append(f"TorchScript exporter: {first_line(exc)}")
            if fallback is None:
                raise OnnxExportError(f"{variant.name} could not be exported to ONNX: "
                                      + "; ".join(errors)) from exc
    if model is None:
        assert fallback is not None
        model, exporter = fallback, "dynamo"
        notes.append(f"Exported at opset {_opset(model)}: opset {opset} is out of reach ("
                     + "; ".join(errors) + ").")
    step(0.9, "Checking the exported ONNX model…")
    finish_export(variant, model, exporter)
    return OnnxExport(model, exporter, notes)


def finish_export(variant: Variant, model: Any, exporter: str) -> None:
    """Tidy a fresh export in place (IR version, output names, exporter tag) and run
    `onnx.checker` on it; OnnxExportError if it fails."""
    import onnx

    if model.ir_version > 10:
        model.ir_version = 10  # ONNX Runtime 1.31 reads IR version 10 at most
    _name_outputs(model)
    del model.metadata_props[:]
    model.metadata_props.add(key=EXPORTER_KEY, value=exporter)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise OnnxExportError(f"The exported ONNX model of {variant.name} does not pass "
                              f"onnx.checker: {first_line(exc)}") from exc


def exported_input_specs(variant: Variant, model: Any) -> tuple[InputSpec, ...]:
    """The ONNX graph's input specs, with free dims filled in from the torch variant's specs
    (so a dynamic `sequence` axis keeps its length of 128, say, rather than 1)."""
    from workbench.core.model.loaders import onnx_input_specs

    specs = []
    for i, spec in enumerate(onnx_input_specs(model)):
        src = variant.inputs[i] if i < len(variant.inputs) else None
        if src is not None and len(src.shape) == len(spec.shape):
            dims = tuple(s if _is_free(model, i, k) else d
                         for k, (d, s) in enumerate(zip(spec.shape, src.shape, strict=True)))
            spec = InputSpec(spec.name, dims, spec.dtype, src.low, src.high)
        specs.append(spec)
    return tuple(specs)


def ort_parity(variant: Variant, onnx_model: Any, inputs: Sequence[Any]) -> float:
    """Max absolute difference of torch `variant` and ONNX Runtime on `inputs`.

    `inputs` is a list of batch-1 input tuples (as `sample_inputs` gives) or one tuple.
    """
    from workbench.core.model.runtime import ort_session, run_samples, run_session, run_variant

    samples = _as_samples(inputs)
    session = ort_session(onnx_model)
    ref = run_samples(lambda batch: run_variant(variant, batch), samples)
    out = run_samples(lambda batch: run_session(session, batch), samples)
    if ref.shape != out.shape:
        raise ValueError(f"torch gives {ref.shape} but ONNX Runtime gives {out.shape}")
    return float(np.abs(ref.astype(np.float64) - out.astype(np.float64)).max())


# exporters --------------------------------------------------------------------------------
def _example_args(variant: Variant, dynamic_batch: bool) -> tuple[Any, ...]:
    # A batch of 2 stops torch.export from specialising the batch dimension to 1.
    return variant.example_inputs(seed=0, batch=2 if dynamic_batch else 1)


def _dynamic_axes(variant: Variant, dynamic_batch: bool) -> list[dict[int, str]]:
    axes = []
    for spec in variant.inputs:
        ax: dict[int, str] = {}
        if dynamic_batch:
            ax[0] = "batch"
        if len(spec.shape) == 2 and spec.dtype.startswith(("int", "uint")):
            ax[1] = "sequence"
        axes.append(ax)
    return axes


def _export_dynamo(variant: Variant, opset: int, dynamic_batch: bool) -> Any:
    import torch

    axes = _dynamic_axes(variant, dynamic_batch)
    dims: dict[str, Any] = {}
    shapes = []
    for ax in axes:
        shapes.append({k: dims.setdefault(name, torch.export.Dim(name, min=1)) for k, name
                       in ax.items()} or None)
    args = _example_args(variant, dynamic_batch)
    kwargs: dict[str, Any] = {"dynamo": True, "external_data": False, "opset_version": opset,
                              "input_names": [s.name for s in variant.inputs],
                              "verbose": False, "optimize": True}
    try:
        program = torch.onnx.export(variant.model, args, dynamic_shapes=tuple(shapes),
                                    **kwargs)
    except Exception:
        log.debug("named dynamic dims failed for %s; retrying with Dim.AUTO", variant.name,
                  exc_info=True)
        # Named dims are strict; AUTO lets torch.export keep what it can dynamic.
        auto = tuple({k: torch.export.Dim.AUTO for k in ax} or None for ax in axes)
        program = torch.onnx.export(variant.model, args, dynamic_shapes=auto, **kwargs)
        assert program is not None  # dynamo=True always returns an ONNXProgram
        _rename_dims(program.model_proto, variant, axes)
    assert program is not None
    return program.model_proto


def _export_program(variant: Variant, opset: int) -> Any:
    """A `.pt2` variant's own exported program to ONNX (its shapes as exported), or None."""
    import torch

    from workbench.core.model.loaders import exported_program_of

    program = exported_program_of(variant.model)
    if program is None:
        return None
    onnx_program = torch.onnx.export(program, dynamo=True, external_data=False,
                                     opset_version=opset, verbose=False, optimize=True)
    assert onnx_program is not None  # dynamo=True always returns an ONNXProgram
    return onnx_program.model_proto


def _export_torchscript(variant: Variant, opset: int, dynamic_batch: bool) -> Any:
    import onnx
    import torch

    names = [s.name for s in variant.inputs]
    dynamic = {n: ax for n, ax in zip(names, _dynamic_axes(variant, dynamic_batch),
                                      strict=True) if ax}
    if dynamic_batch:
        dynamic["output"] = {0: "batch"}
    buffer = io.BytesIO()
    # Its log switch is stuck on in torch 2.13: a failure dumps the whole IR graph on the
    # native stdout, which would corrupt `--json` output (see job_scope.quiet_stdout).
    with quiet_stdout():
        # The stub says a path, but the TorchScript exporter writes to a file object too.
        torch.onnx.export(variant.model, _example_args(variant, dynamic_batch),
                          buffer,  # type: ignore[arg-type]
                          dynamo=False, opset_version=opset, input_names=names,
                          output_names=["output"], dynamic_axes=dynamic or None,
                          do_constant_folding=True, verbose=False)
    return onnx.load_from_string(buffer.getvalue())


# ONNX tidying -----------------------------------------------------------------------------
def _opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _is_free(model: Any, index: int, axis: int) -> bool:
    inits = {i.name for i in model.graph.initializer}
    real = [i for i in model.graph.input if i.name not in inits]
    dim = real[index].type.tensor_type.shape.dim[axis]
    return not (dim.HasField("dim_value") and dim.dim_value > 0)


def _rename_dims(model: Any, variant: Variant, axes: list[dict[int, str]]) -> None:
    """Give AUTO dims the names "batch" / "sequence" everywhere they appear."""
    mapping: dict[str, str] = {}
    by_name = {i.name: i for i in model.graph.input}
    for spec, ax in zip(variant.inputs, axes, strict=True):
        inp = by_name.get(spec.name)
        if inp is None:
            continue
        for k, name in ax.items():
            dim = inp.type.tensor_type.shape.dim[k]
            if dim.dim_param:
                mapping.setdefault(dim.dim_param, name)
    for vi in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        for dim in vi.type.tensor_type.shape.dim:
            if dim.dim_param in mapping:
                dim.dim_param = mapping[dim.dim_param]


def _name_outputs(model: Any) -> None:
    """Rename graph outputs to "output", "output_1", ... where those names are free."""
    graph = model.graph
    if any(a.type in (5, 10) for node in graph.node for a in node.attribute):
        return  # subgraphs (If/Loop/Scan) may refer to an output by name: leave them
    used = {n for node in graph.node for n in (*node.input, *node.output)}
    used |= {i.name for i in graph.input} | {i.name for i in graph.initializer}
    for k, out in enumerate(graph.output):
        new = "output" if k == 0 else f"output_{k}"
        if out.name == new or new in used:
            continue
        old = out.name
        if any(i.name == old for i in graph.input):
            continue  # an input passed straight through: leave it
        for node in graph.node:
            for seq in (node.input, node.output):
                for j, name in enumerate(seq):
                    if name == old:
                        seq[j] = new
        for vi in graph.value_info:
            if vi.name == old:
                vi.name = new
        out.name = new
        used.add(new)


def _as_samples(inputs: Sequence[Any]) -> list[tuple[Any, ...]]:
    if inputs and isinstance(inputs[0], (tuple, list)):
        return [tuple(s) for s in inputs]
    return [tuple(inputs)]

"""Export a variant to ONNX, TorchScript, `.pt2` or safetensors. Every write is atomic."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core.errors import InvalidParameterError, WorkbenchError
from workbench.core.fileio import atomic_path, check_target
from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)

FORMATS = {".onnx": "onnx", ".pt2": "pt2", ".ts": "torchscript", ".pt": "torchscript",
           ".safetensors": "safetensors"}
EXPORT_FILTER = ("ONNX (*.onnx);;PyTorch export (*.pt2);;TorchScript (*.ts *.pt);;"
                 "State dict (*.safetensors)")


SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".ts", "safetensors": ".safetensors"}
_UNSAFE = '·:/\\<>|?*" .'


class ExportError(WorkbenchError):
    """The variant cannot be written in the asked format."""


def export_format(path: str | Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS.values():
            raise InvalidParameterError(
                f"Unknown export format '{fmt}': use {', '.join(sorted(set(FORMATS.values())))}.")
        return fmt
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise InvalidParameterError(
            f"Cannot tell the export format from '{ext or Path(path).name}': use "
            f"{', '.join(FORMATS)}.")
    return FORMATS[ext]


def suggested_filename(variant_name: str, fmt: str) -> str:
    """A file name for a variant in `fmt`: the name with dots, separators and spaces made
    underscores (so 'mlp·prune.structured' cannot pass for an extension), then the
    format's suffix: 'mlp_prune_structured.onnx'."""
    stem = "".join("_" if c in _UNSAFE else c for c in variant_name).strip("_") or "model"
    while "__" in stem:
        stem = stem.replace("__", "_")
    return stem + SUFFIXES[export_format("", fmt)]


def with_suffix_for(path: str, fmt: str) -> str:
    """`path` ending in `fmt`'s suffix: kept when it already names that format, else the
    suffix is appended (never replaced: 'a.b_c' becomes 'a.b_c.onnx')."""
    try:
        if export_format(path) == fmt:
            return path
    except InvalidParameterError:
        pass
    return path + SUFFIXES[export_format("", fmt)]


def export_variant(variant: Variant, path: str | Path, fmt: str | None = None,
                   opset: int = 18, step: Callable[[float, str], None] | None = None
                   ) -> dict[str, Any]:
    """Write `variant` to `path`; return {output, format, bytes, opset}, and for an ONNX
    export of a torch model also `export` (exporter, seconds, cached) and `note` (a sentence).

    An unusable `path` (a device, a folder, a file in place of its folder) is refused before
    any conversion starts (`UnsafeTargetError`, `WriteError`). `step(fraction, message)`
    hears the stages of a long conversion (ONNX export, check, write).
    """
    fmt = export_format(path, fmt)
    path = Path(path)
    check_target(path)
    step = step or (lambda fraction, message: None)
    made = None
    if fmt == "onnx":
        made = _write_onnx(variant, path, opset, step)
    elif variant.backend != "torch":
        raise ExportError(f"{variant.name} is an ONNX model; it exports to .onnx only.")
    elif fmt == "pt2":
        _write_pt2(variant, path)
    elif fmt == "torchscript":
        _write_torchscript(variant, path)
    else:
        _write_safetensors(variant, path)
    out: dict[str, Any] = {"output": str(path), "format": fmt, "bytes": path.stat().st_size}
    if fmt == "onnx" and variant.backend == "torch":
        out["opset"] = opset
    if made is not None:
        out["export"] = made.to_json()
        out["note"] = made.summary()
    return out


def _write_onnx(variant: Variant, path: Path, opset: int,
                step: Callable[[float, str], None]) -> Any:
    """Write the ONNX file; the `OnnxExport` when a torch model was exported (else None)."""
    import onnx

    made = None
    if variant.backend == "onnx":
        model = variant.model
    else:
        from workbench.core.model.onnx_export import export_onnx

        made = export_onnx(variant, opset, True, lambda f, m: step(0.9 * f, m))
        model = made.model
    step(0.9, f"Writing {path.name}…")
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return made


def _write_pt2(variant: Variant, path: Path) -> None:
    import torch

    # batch 2 examples with an automatic batch dimension: the program keeps a dynamic batch
    args = variant.example_inputs(batch=2)
    dynamic = tuple({0: torch.export.Dim.AUTO} for _ in args)
    try:
        program = torch.export.export(variant.model, args, dynamic_shapes=dynamic,
                                      strict=False)
    except Exception as exc:
        raise ExportError(f"torch.export cannot capture {variant.name}: "
                          f"{str(exc).splitlines()[0]}") from exc
    with atomic_path(path) as tmp:
        torch.export.save(program, str(tmp))


def _write_torchscript(variant: Variant, path: Path) -> None:
    import torch

    model = variant.model
    # TorchScript is deprecated upstream but still useful; its DeprecationWarnings are
    # Python's default-ignored kind, and the app routes warnings to a silenced logger.
    try:
        scripted = model if isinstance(model, torch.jit.ScriptModule) else torch.jit.trace(
            model, variant.example_inputs(), check_trace=False)
    except Exception as exc:
        raise ExportError(f"{variant.name} cannot be traced to TorchScript: "
                          f"{str(exc).splitlines()[0]}") from exc
    with atomic_path(path) as tmp:
        torch.jit.save(scripted, str(tmp))


def _write_safetensors(variant: Variant, path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    state = {}
    seen: dict[int, str] = {}
    for name, t in variant.model.state_dict().items():
        if not isinstance(t, torch.Tensor) or t.is_quantized:
            raise ExportError(f"{variant.name} holds packed or quantized weights ({name}); "
                              "export it to ONNX or TorchScript instead.")
        key = t.data_ptr()
        state[name] = t.detach().clone() if key in seen else t.detach().contiguous()
        seen[key] = name
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))

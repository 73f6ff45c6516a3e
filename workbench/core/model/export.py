"""Export a variant to ONNX, TorchScript, `.pt2` or safetensors. Every write is atomic."""

from __future__ import annotations

import logging
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


def export_variant(variant: Variant, path: str | Path, fmt: str | None = None,
                   opset: int = 18) -> dict[str, Any]:
    """Write `variant` to `path`; return {output, format, bytes}.

    An unusable `path` (a device, a folder, a file in place of its folder) is refused before
    any conversion starts (`UnsafeTargetError`, `WriteError`).
    """
    fmt = export_format(path, fmt)
    path = Path(path)
    check_target(path)
    if fmt == "onnx":
        _write_onnx(variant, path, opset)
    elif variant.backend != "torch":
        raise ExportError(f"{variant.name} is an ONNX model; it exports to .onnx only.")
    elif fmt == "pt2":
        _write_pt2(variant, path)
    elif fmt == "torchscript":
        _write_torchscript(variant, path)
    else:
        _write_safetensors(variant, path)
    return {"output": str(path), "format": fmt, "bytes": path.stat().st_size}


def _write_onnx(variant: Variant, path: Path, opset: int) -> None:
    import onnx

    if variant.backend == "onnx":
        model = variant.model
    else:
        from workbench.core.model.onnx_export import torch_to_onnx

        model = torch_to_onnx(variant, opset=opset)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


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

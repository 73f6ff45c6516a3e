"""Device names (cpu, cuda, cuda:N, mps) and mixed-precision settings, checked once."""

from __future__ import annotations

import re
from typing import Any

from workbench.core.errors import InvalidParameterError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def is_device_name(device: Any) -> bool:
    """Whether `device` reads as a device (cpu, cuda, cuda:N, mps), available or not."""
    return isinstance(device, str) and bool(_DEVICE.match(device))


def device_available(device: str) -> bool:
    """Whether torch can use `device` on this machine (patched in tests to fake a GPU)."""
    if device == "cpu":
        return True
    import torch

    if device == "mps":
        return bool(torch.backends.mps.is_available())
    if not torch.cuda.is_available():
        return False
    index = int(device.partition(":")[2] or 0)
    return index < torch.cuda.device_count()


def check_device(device: str) -> str:
    """`device` if it is a device name torch can use here; InvalidParameterError if not."""
    if not is_device_name(device):
        raise InvalidParameterError(f"Unknown device '{device}': use cpu, cuda, cuda:N or mps.")
    if not device_available(device):
        kind = "MPS" if device == "mps" else "CUDA"
        raise InvalidParameterError(f"No {kind} device '{device}' is available; use the CPU.")
    return device


def device_type(device: str) -> str:
    """`cuda:1` -> `cuda`: the kind torch.autocast and GradScaler take."""
    return device.partition(":")[0]


def autocast_dtype(precision: str, device: str) -> Any:
    """The autocast dtype for `precision` on `device` (None: full fp32).

    `auto` is fp16 on CUDA (with a GradScaler) and fp32 elsewhere; bf16 works on CUDA and the
    CPU; fp16 needs CUDA (or MPS).
    """
    import torch

    kind = device_type(device)
    if precision == "auto":
        return torch.float16 if kind == "cuda" else None
    if precision == "fp32":
        return None
    if precision == "bf16":
        if kind == "mps":
            raise InvalidParameterError("bf16 mixed precision runs on CUDA or the CPU.")
        return torch.bfloat16
    if precision == "fp16":
        if kind == "cpu":
            raise InvalidParameterError("fp16 mixed precision needs a GPU; use bf16 on the "
                                        "CPU.")
        return torch.float16
    raise InvalidParameterError(f"Unknown precision '{precision}': use one of "
                                f"{', '.join(PRECISIONS)}.")


def needs_scaler(precision: str, device: str) -> bool:
    """fp16 on CUDA trains with a GradScaler (bf16 has fp32's range and needs none)."""
    import torch

    return device_type(device) == "cuda" and autocast_dtype(precision, device) is torch.float16


def job_device(device: str) -> str:
    """The torch device a job (benchmark, profile, evaluate, sensitivity, a pass) computes
    on: `device`, checked. Every such job asks here once, so tests patch this to record the
    device each job receives (and run the work on the CPU)."""
    return check_device(device)


def on_device(model: Any, device: str) -> Any:
    """`model` itself on the CPU, else a copy moved to `device`: the workspace's variant
    stays on the CPU, where the graph view, export and every other job find it."""
    if device == "cpu":
        return model
    import copy

    return copy.deepcopy(model).to(device)


def synchronize(device: str) -> None:
    """Wait for the work queued on `device` (a GPU runs asynchronously); no-op on the CPU."""
    import torch

    kind = device_type(device)
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


def available_devices() -> list[tuple[str, str]]:
    """(name, label) of every device torch can use here: the CPU, each CUDA GPU
    (`cuda:0`, ...) with its name, and MPS on Apple silicon. Imports torch."""
    import torch

    found = [("cpu", "CPU")]
    if torch.cuda.is_available():
        found += [(f"cuda:{i}", f"cuda:{i} · {torch.cuda.get_device_name(i)}")
                  for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        found.append(("mps", "mps · Apple GPU (Metal)"))
    return found


def ort_providers(device: str, available: list[str] | None = None
                  ) -> tuple[list[Any], str | None]:
    """ONNX Runtime's execution providers for `device`, and a note when it cannot honour it.

    `cuda:N` takes the CUDA execution provider on GPU N (then the CPU one for any node it
    lacks) when this ONNX Runtime has it; otherwise, and for MPS, the CPU provider, said so.
    """
    kind = device_type(device)
    if kind == "cpu":
        return ["CPUExecutionProvider"], None
    if available is None:
        import onnxruntime as ort

        available = list(ort.get_available_providers())
    if kind == "cuda" and "CUDAExecutionProvider" in available:
        index = int(device.partition(":")[2] or 0)
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"], None
    why = ("this ONNX Runtime has no CUDA execution provider (install onnxruntime-gpu)"
           if kind == "cuda" else "ONNX Runtime has no MPS execution provider")
    return ["CPUExecutionProvider"], f"ONNX Runtime ran on the CPU: {why}."

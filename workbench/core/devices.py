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
    import torch

    if device == "cpu":
        return True
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

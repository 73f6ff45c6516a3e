"""The CPU features that change int8 results: read once from `/proc/cpuinfo`.

ONNX Runtime's u8s8 int8 kernels on x86 use `VPMADDUBSW`, whose 16-bit intermediate sums
saturate unless weights use 7 bits (`reduce_range=True`). CPUs with VNNI (`VPDPBUSD`)
accumulate in 32 bits and need no reduction. ONNX Runtime's quantization guide recommends
`reduce_range` on x86 without VNNI; `int8_reduce_range` makes that choice.
"""

from __future__ import annotations

import functools
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
REPORTED_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
                  "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16",
                  "asimd", "asimddp", "sve", "i8mm")
_X86 = ("x86_64", "amd64", "i386", "i686", "x86")


@dataclass(frozen=True)
class CpuFeatures:
    """What this CPU offers for int8 and low-precision kernels."""

    machine: str
    model: str = ""
    flags: frozenset[str] = field(default_factory=frozenset)
    known: bool = False  # False when the flags could not be read

    @property
    def is_x86(self) -> bool:
        return self.machine.lower() in _X86

    @property
    def vnni(self) -> bool:
        return any(f in self.flags for f in VNNI_FLAGS)

    def to_json(self) -> dict[str, object]:
        reduce, why = int8_reduce_range(self)
        return {"machine": self.machine, "model": self.model, "known": self.known,
                "flags": sorted(f for f in REPORTED_FLAGS if f in self.flags),
                "vnni": self.vnni, "int8_reduce_range": reduce, "int8_reason": why}


def parse_cpuinfo(text: str, machine: str) -> CpuFeatures:
    """Parse `/proc/cpuinfo` text: x86 `flags` or Arm `Features`, and the model name."""
    flags: set[str] = set()
    model = ""
    found = False
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("flags", "features") and not found:
            flags.update(value.split())
            found = True
        elif key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
    return CpuFeatures(machine, model, frozenset(flags), found)


@functools.cache
def cpu_features() -> CpuFeatures:
    """This machine's CPU features (cached: they do not change while running)."""
    machine = platform.machine() or "unknown"
    try:
        return parse_cpuinfo(CPUINFO.read_text(errors="replace"), machine)
    except OSError as exc:  # not Linux, or /proc not mounted
        log.debug("cannot read %s: %s", CPUINFO, exc)
        return CpuFeatures(machine, platform.processor())


def int8_reduce_range(cpu: CpuFeatures | None = None) -> tuple[bool, str]:
    """Whether int8 weights should use 7 bits on `cpu`, and a sentence saying why."""
    cpu = cpu or cpu_features()
    if not cpu.is_x86:
        return False, f"{cpu.machine} is not x86: full 8-bit weights do not saturate there"
    if not cpu.known:
        return True, ("the CPU's features could not be read: 7-bit weights are safe on every "
                      "x86 CPU")
    if cpu.vnni:
        names = ", ".join(f for f in VNNI_FLAGS if f in cpu.flags)
        return False, f"the CPU has VNNI ({names}): full 8-bit weights do not saturate"
    return True, ("x86 without VNNI: ONNX Runtime's u8s8 kernels saturate with full 8-bit "
                  "weights, so weights use 7 bits (ONNX Runtime's advice)")


def resolve_reduce_range(choice: str, cpu: CpuFeatures | None = None) -> tuple[bool, str]:
    """Turn a pass's `reduce_range` choice (auto, on, off) into a decision and its reason."""
    if choice == "on":
        return True, "asked for (reduce_range=on)"
    if choice == "off":
        return False, "asked for (reduce_range=off)"
    reduce, why = int8_reduce_range(cpu)
    return reduce, f"auto: {why}"

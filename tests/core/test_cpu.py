"""The CPU-feature helper: real /proc/cpuinfo flags decide int8's reduce_range."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from workbench.core.model import cpu
from workbench.core.model.cpu import (
    CpuFeatures,
    int8_reduce_range,
    parse_cpuinfo,
    resolve_reduce_range,
)

AVX2_ONLY = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2
"""
VNNI = AVX2_ONLY.replace("avx2 bmi2", "avx2 bmi2 avx512f avx512bw avx512_vnni")
ARM = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 asimddp
CPU implementer\t: 0x41
"""


@pytest.fixture
def real_cpuinfo() -> str:
    path = Path("/proc/cpuinfo")
    if not path.exists():
        pytest.skip("no /proc/cpuinfo on this system")
    return path.read_text()


def test_x86_without_vnni_reduces_the_range() -> None:
    features = parse_cpuinfo(AVX2_ONLY, "x86_64")
    assert features.known
    assert features.model == "AMD EPYC 7B12"
    assert "avx2" in features.flags
    assert not features.vnni
    reduce, why = int8_reduce_range(features)
    assert reduce
    assert "without VNNI" in why


@pytest.mark.parametrize("flag", ["avx512_vnni", "avx_vnni", "amx_int8"])
def test_any_vnni_keeps_full_8_bits(flag: str) -> None:
    features = parse_cpuinfo(AVX2_ONLY.replace("bmi2", f"bmi2 {flag}"), "x86_64")
    assert features.vnni
    reduce, why = int8_reduce_range(features)
    assert not reduce
    assert flag in why


def test_arm_and_unknown_cpus() -> None:
    arm = parse_cpuinfo(ARM, "aarch64")
    assert "asimddp" in arm.flags
    assert int8_reduce_range(arm)[0] is False
    unknown = CpuFeatures("x86_64")  # flags unreadable: 7 bits are safe everywhere
    assert int8_reduce_range(unknown)[0] is True


def test_explicit_choices_override_auto() -> None:
    vnni = parse_cpuinfo(VNNI, "x86_64")
    assert resolve_reduce_range("on", vnni)[0] is True
    assert resolve_reduce_range("off", parse_cpuinfo(AVX2_ONLY, "x86_64"))[0] is False
    reduce, why = resolve_reduce_range("auto", vnni)
    assert reduce is False
    assert why.startswith("auto: ")


def test_reads_the_real_proc_cpuinfo(real_cpuinfo: str) -> None:
    """The cached helper sees exactly the first `flags` line of this machine's cpuinfo."""
    cpu.cpu_features.cache_clear()
    try:
        features = cpu.cpu_features()
    finally:
        cpu.cpu_features.cache_clear()
    line = next((ln for ln in real_cpuinfo.splitlines()
                 if ln.split(":")[0].strip() in ("flags", "Features")), None)
    if line is None:
        pytest.skip("this cpuinfo lists no flags")
    assert features.known
    assert features.flags == frozenset(line.split(":", 1)[1].split())
    assert features.machine == platform.machine()
    if features.is_x86:
        has_vnni = bool({"avx512_vnni", "avx_vnni", "amx_int8"} & features.flags)
        assert int8_reduce_range(features)[0] is (not has_vnni)


def test_real_flags_with_vnni_removed_turn_reduce_range_on(
        real_cpuinfo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's own cpuinfo, with every VNNI flag struck out, reads as a CPU without
    VNNI; with avx512_vnni added, as one with it."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("x86 only")
    stripped = " ".join(w for w in real_cpuinfo.replace("\n", " \n ").split(" ")
                        if w not in ("avx512_vnni", "avx_vnni", "amx_int8"))
    fake = tmp_path / "cpuinfo"
    fake.write_text(stripped)
    monkeypatch.setattr(cpu, "CPUINFO", fake)
    cpu.cpu_features.cache_clear()
    try:
        assert cpu.int8_reduce_range()[0] is True
        fake.write_text(real_cpuinfo.replace("flags\t\t:", "flags\t\t: avx512_vnni", 1))
        cpu.cpu_features.cache_clear()
        assert cpu.int8_reduce_range()[0] is False
    finally:
        cpu.cpu_features.cache_clear()


def test_version_json_reports_the_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    assert main(["--version", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cpu"]["int8_reduce_range"] is int8_reduce_range()[0]
    assert data["cpu"]["machine"] == platform.machine()
    assert data["packages"]["onnxruntime"]
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("workbench ")

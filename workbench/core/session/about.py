"""What a bug report needs: versions, the commit, the machine, its int8-relevant CPU
features, the device, and where settings and projects live.

`about()` feeds `workbench --version --json`, `workbench doctor` and Help ▸ About;
`about_text()` is the plain text the About dialog shows and copies.
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import sys
from typing import Any

from workbench import __version__
from workbench.core.model.cpu import cpu_features
from workbench.core.session.build_info import build_info, short_commit
from workbench.core.session.settings import Settings, config_dir, runs_dir

log = logging.getLogger(__name__)

PACKAGES = ("torch", "onnx", "onnxruntime", "onnxscript", "torch-pruning", "PySide6-Essentials",
            "pyqtgraph", "numpy", "transformers")
INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the libraries results depend on (read from metadata, no import)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def torch_device() -> dict[str, Any]:
    """Torch's CPU kernel level (`torch.backends.cpu.get_cpu_capability()`, e.g. AVX2 or
    AVX512) and the CUDA devices; every field None when torch cannot be imported."""
    try:
        import torch
    except Exception as exc:  # a broken torch must still leave a bug report
        log.debug("torch does not import: %s", exc)
        return {"cpu_capability": None, "cuda": None, "cuda_devices": []}
    try:
        capability: str | None = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # older torch, or an exotic build
        capability = None
    cuda = bool(torch.cuda.is_available())
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if cuda else []
    return {"cpu_capability": capability, "cuda": cuda, "cuda_devices": names}


def folders() -> dict[str, Any]:
    """Where settings, runs, the artifact cache and third-party plugins live, and the
    projects opened lately (a project is a folder the user picks)."""
    from workbench.core.fileio import journal_dir
    from workbench.core.model.artifact_cache import default_cache_dir
    from workbench.core.passes.plugin_path import plugin_dirs

    settings_file = config_dir() / "settings.json"
    try:
        recent = Settings(settings_file).recent_projects
    except Exception as exc:  # unreadable settings must not hide the rest
        log.debug("settings unreadable: %s", exc)
        recent = []
    return {"config": str(config_dir()), "settings": str(settings_file),
            "data": str(journal_dir().parent), "runs": str(runs_dir()),
            "cache": str(default_cache_dir()),
            "plugins": [str(p) for p in plugin_dirs(existing_only=False)],
            "recent_projects": recent}


def about(device: str | None = None) -> dict[str, Any]:
    """Everything `workbench --version --json` prints. `device` is the chosen device
    (the GUI passes its setting; None reads the saved settings)."""
    if device is None:
        try:
            device = Settings(config_dir() / "settings.json").device
        except Exception:
            device = "cpu"
    cpu = cpu_features().to_json()
    torch_info = torch_device()
    int8 = {f: f in cpu["flags"] for f in INT8_FLAGS}  # type: ignore[operator]
    return {"workbench": __version__, "build": build_info(),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "frozen": bool(getattr(sys, "frozen", False)),
            "packages": package_versions(), "cpu": {**cpu, "int8_features": int8},
            "device": {"chosen": device, **torch_info},
            "folders": folders()}


def version_line(report: dict[str, Any] | None = None) -> str:
    """`workbench 0.1.0 (abc1234567)`: what plain `--version` prints."""
    info = report["build"] if report else build_info()
    return f"workbench {__version__} ({short_commit(info)})"


def about_text(report: dict[str, Any]) -> str:
    """The report as plain text for a bug report (what the About dialog's Copy copies)."""
    p, cpu, dev, f = report["packages"], report["cpu"], report["device"], report["folders"]
    lines = [version_line(report) + (" bundle" if report.get("frozen") else ""),
             f"Python {report['python']} on {report['platform']}"]
    for name, extra in (("torch", f" ({dev['cpu_capability']} kernels)"
                         if dev.get("cpu_capability") else ""),
                        ("onnxruntime", ""), ("onnx", ""), ("PySide6-Essentials", " (Qt)")):
        lines.append(f"{name} {p.get(name) or 'not installed'}{extra}")
    if report.get("qt_runtime"):
        lines.append(f"Qt runtime {report['qt_runtime']}")
    cuda = ", ".join(dev["cuda_devices"]) if dev.get("cuda") else "no CUDA device"
    lines.append(f"device {dev['chosen']} ({cuda})")
    have = [k for k, v in cpu["int8_features"].items() if v]
    lines.append(f"CPU {cpu['model'] or cpu['machine']}: {', '.join(have) or 'no AVX2/AVX-512'}")
    lines.append(f"int8 weights {'7-bit' if cpu['int8_reduce_range'] else '8-bit'}: "
                 f"{cpu['int8_reason']}")
    lines += [f"settings {f['settings']}", f"runs {f['runs']}", f"cache {f['cache']}",
              f"plugins {', '.join(f['plugins'])}"]
    lines.append("recent projects " + (", ".join(f["recent_projects"][:3]) or "none"))
    return "\n".join(lines)

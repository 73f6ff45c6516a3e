"""What `workbench.spec` leaves out of the bundle, and the licences it adds.

Used from the spec file (PyInstaller's TOC entries are `(dest_name, src_path, typecode)`).
Stripped: tests and test data, torch's C++ test programs and headers, Qt translations and
the Qt plugins a desktop app on Linux never loads (embedded EGL, evdev input, network
information, TLS, the GTK theme) together with the system libraries only those needed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.metadata
import os
import sys
from pathlib import Path

# dest-name patterns (fnmatch, '/' separators) that the app never imports or loads
STRIP = (
    "*/tests/*", "*/test/*", "*/testing/_internal/*",
    "torch/bin/*", "torch/include/*", "torch/share/*", "torch/lib/*.a",
    "torch/lib/libjitbackend_test.so", "torch/lib/libtorchbind_test.so",
    "torch/lib/libbackend_with_compiler.so", "torch/lib/libaoti_custom_ops.so",
    "torch/utils/benchmark/*", "torch/_inductor/codegen/*.cpp",
    "onnx/backend/test/*",
    "PySide6/Qt/translations/*",
    "PySide6/Qt/plugins/egldeviceintegrations/*", "PySide6/Qt/plugins/generic/*",
    "PySide6/Qt/plugins/networkinformation/*", "PySide6/Qt/plugins/tls/*",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    "PySide6/Qt/lib/libQt6EglFSDeviceIntegration.so*", "PySide6/Qt/lib/libQt6EglFsKmsSupport.so*",
    "libQt6EglFSDeviceIntegration.so*", "libQt6EglFsKmsSupport.so*",
    "*.pyi", "*/__pycache__/*",
)
# kept although a STRIP pattern matches: torch checks for it when it is imported
KEEP = ("torch/bin/torch_shm_manager",)
# dist-infos of the build tools: never shipped, so no licence either
BUILD_TOOLS = {"pyinstaller", "pyinstaller-hooks-contrib", "altgraph", "pip", "setuptools",
               "wheel", "packaging"}
LICENCE_NAMES = ("LICENSE*", "LICENCE*", "COPYING*", "NOTICE*", "AUTHORS*", "ThirdParty*")


def _norm(dest: str) -> str:
    return dest.replace(os.sep, "/")


def stripped(toc: list[tuple[str, str, str]]) -> tuple[list[tuple[str, str, str]], int]:
    """`toc` without the STRIP patterns, and the bytes left out."""
    kept, dropped = [], 0
    for entry in toc:
        dest = _norm(entry[0])
        if dest not in KEEP and any(fnmatch.fnmatch(dest, pattern) for pattern in STRIP):
            with contextlib.suppress(OSError):
                dropped += os.path.getsize(entry[1])
            continue
        kept.append(entry)
    return kept, dropped


def _is_system(src: str) -> bool:
    """A library PyInstaller copied from the system (not from a wheel or Python itself)."""
    return not (src.startswith(sys.base_prefix) or src.startswith(sys.prefix)
                or "site-packages" in src)


def drop_orphans(binaries: list[tuple[str, str, str]]) -> tuple[list[tuple[str, str, str]],
                                                                list[str]]:
    """Drop system libraries that no kept binary links to (those the stripped plugins
    pulled in, e.g. GTK for the GTK theme). Libraries from wheels are always kept: Python
    code may load them with ctypes."""
    from PyInstaller.depend.bindepend import get_imports

    kept = list(binaries)
    removed: list[str] = []
    while True:
        needed: set[str] = set()
        for _dest, src, _ in kept:
            if src.endswith((".so", ".dylib")) or ".so." in src:
                try:
                    needed.update(name for name, _ in get_imports(src))
                except Exception:  # unreadable: assume it needs everything it may
                    return kept, removed
        orphans = [e for e in kept if _is_system(e[1])
                   and os.path.basename(e[0]) not in needed
                   and os.path.basename(e[1]) not in needed]
        if not orphans:
            return kept, removed
        removed += [os.path.basename(e[0]) for e in orphans]
        kept = [e for e in kept if e not in orphans]


def _top_level(dest: str) -> str:
    first = _norm(dest).split("/")[0]
    return first.split(".")[0]


def shipped_distributions(pure: list[tuple[str, str, str]],
                          binaries: list[tuple[str, str, str]],
                          datas: list[tuple[str, str, str]]) -> list[str]:
    """The installed distributions whose modules or files the bundle carries."""
    tops = {name.split(".")[0] for name, _, _ in pure}
    tops |= {_top_level(dest) for dest, _, _ in binaries + datas}
    owners = importlib.metadata.packages_distributions()
    dists = {d for top in tops for d in owners.get(top, [])}
    return sorted(d for d in dists if d.lower() not in BUILD_TOOLS)


def _spdx_texts(expression: str) -> list[Path]:
    """Debian's copies of the licence texts an SPDX expression names (when present)."""
    names = {"LGPL-3.0": "LGPL-3", "GPL-3.0": "GPL-3", "GPL-2.0": "GPL-2",
             "LGPL-2.1": "LGPL-2.1", "Apache-2.0": "Apache-2.0", "MPL-2.0": "MPL-2.0"}
    return [Path("/usr/share/common-licenses") / deb for spdx, deb in names.items()
            if spdx in expression and (Path("/usr/share/common-licenses") / deb).is_file()]


def write_licences(target: Path, dists: list[str],
                   system_libs: list[tuple[str, str, str]]) -> dict[str, int]:
    """Copy into `target/NAME-VERSION/` the licence files of each distribution (from its
    dist-info), or, when a wheel ships none (PySide6), its metadata's licence and the
    licence texts it names; Python's licence; and for each system library the bundle
    carries, its Debian package's copyright file. Returns files written per source."""
    import shutil
    import subprocess

    target.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in dists:
        dist = importlib.metadata.distribution(name)
        folder = target / f"{dist.metadata['Name']}-{dist.version}"
        folder.mkdir(exist_ok=True)
        n = 0
        for f in dist.files or []:
            parts = Path(str(f)).parts
            if not parts or not parts[0].endswith(".dist-info") or not any(
                    fnmatch.fnmatch(parts[-1], p) for p in LICENCE_NAMES):
                continue
            src = Path(str(dist.locate_file(f)))
            inner = Path(*parts[1:])
            if inner.parts and inner.parts[0] == "licenses":
                inner = Path(*inner.parts[1:])
            dest = folder / inner
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_file():
                shutil.copyfile(src, dest)
                n += 1
        if n == 0:
            expression = dist.metadata.get("License-Expression") or \
                dist.metadata.get("License") or ""
            classifiers = [c for c in dist.metadata.get_all("Classifier") or []
                           if c.startswith("License")]
            (folder / "LICENSE-FROM-METADATA.txt").write_text(
                f"{dist.metadata['Name']} {dist.version}\nLicense: {expression}\n"
                + "".join(f"Classifier: {c}\n" for c in classifiers)
                + f"Home: {dist.metadata.get('Home-page') or ''}\n")
            n = 1
            for text in _spdx_texts(expression + " ".join(classifiers)):
                shutil.copyfile(text, folder / text.name)
                n += 1
        counts[f"{dist.metadata['Name']}-{dist.version}"] = n
    python_licence = Path(sys.base_prefix) / "lib" / \
        f"python{sys.version_info[0]}.{sys.version_info[1]}" / "LICENSE.txt"
    if python_licence.is_file():
        folder = target / f"Python-{sys.version.split()[0]}"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(python_licence, folder / "LICENSE.txt")
        counts[folder.name] = 1
    dpkg = shutil.which("dpkg-query")
    for _dest, src, _ in system_libs if dpkg else []:
        owner = ""
        real = os.path.realpath(src)
        for path in (real, real.replace("/usr/lib/", "/lib/", 1), src):
            try:
                owner = subprocess.run([dpkg, "-S", path], capture_output=True, text=True,
                                       timeout=10).stdout.split(":")[0].strip()
            except (OSError, subprocess.SubprocessError):
                break
            if owner:
                break
        copyright_file = Path("/usr/share/doc") / owner / "copyright"
        if owner and copyright_file.is_file():
            folder = target / "system-libraries" / owner
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(copyright_file, folder / "copyright")
            counts[f"system:{owner}"] = 1
    return counts


def system_libraries(binaries: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The bundled libraries copied from the system rather than from a wheel."""
    return [e for e in binaries if _is_system(e[1])]

"""Desktop integration on Linux: install-desktop.sh puts the menu entry, icons and file
types in the user's XDG folders, pointing at the executable; --uninstall removes them."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "packaging" / "install-desktop.sh"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _desktop(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser["Desktop Entry"]


def _run(*args: str, data: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(data), "XDG_CONFIG_HOME": str(tmp / "config"),
           "HOME": str(tmp / "home"), "WORKBENCH_NO_DEFAULT": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_mime_types_of_the_desktop_entry_are_defined() -> None:
    entry = _desktop(ROOT / "resources" / "workbench.desktop")
    declared = {t for t in entry["MimeType"].split(";") if t}
    tree = ET.parse(ROOT / "resources" / "workbench-mime.xml")
    defined = {m.get("type"): [g.get("pattern") for g in m.iter(f"{MIME_NS}glob")]
               for m in tree.getroot().iter(f"{MIME_NS}mime-type")}
    assert declared == set(defined)
    assert sorted(p for globs in defined.values() for p in globs) == ["*.onnx", "*.pt2"]
    assert entry["Exec"].endswith("%f")


def test_icons_exist_at_every_size() -> None:
    from PIL import Image

    for size in SIZES:
        with Image.open(ROOT / "resources" / "icons" / f"workbench-{size}.png") as image:
            assert image.size == (size, size)
            assert image.mode == "RGBA"
            assert image.getpixel((0, 0))[3] == 0  # a transparent corner: rounded tile


def test_install_and_uninstall_for_the_user(tmp_path: Path) -> None:
    exe = tmp_path / "bundle" / "workbench"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    data = tmp_path / "data"
    done = _run(str(exe), data=data, tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    entry = _desktop(data / "applications" / "workbench.desktop")
    assert entry["Exec"] == f'"{exe}" %f'
    assert entry["Icon"] == "workbench"
    assert (data / "mime" / "packages" / "workbench.xml").is_file()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "workbench.svg").is_file()
    for size in SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "workbench.png"
                ).is_file()
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "mimetypes"
                / "application-x-onnx.png").is_file()
    if shutil.which("update-mime-database"):  # the database now knows the globs
        globs = (data / "mime" / "globs2").read_text()
        assert "application/x-onnx:*.onnx" in globs
        assert "application/x-pytorch-exported-program:*.pt2" in globs
    done = _run("--uninstall", data=data, tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (data / "applications" / "workbench.desktop").exists()
    assert not (data / "mime" / "packages" / "workbench.xml").exists()
    assert not list((data / "icons").rglob("workbench.png"))


def test_no_executable_is_refused(tmp_path: Path) -> None:
    done = _run(str(tmp_path / "missing"), data=tmp_path / "data", tmp=tmp_path)
    assert done.returncode == 1
    assert "no workbench executable" in done.stderr
    assert not (tmp_path / "data" / "applications").exists()

"""The bug-report facts: version, commit (checkout, recorded, or none), device, CPU, folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import __version__
from workbench.core.session import build_info as bi
from workbench.core.session.about import about, about_text, version_line

REPO = Path(__file__).resolve().parents[2]


def test_version_json_has_what_a_bug_report_needs(capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    assert main(["--version", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workbench"] == __version__
    assert set(data["build"]) >= {"commit", "dirty", "source"}
    for name in ("torch", "onnxruntime", "PySide6-Essentials"):
        assert data["packages"][name]
    assert data["device"]["chosen"] == "cpu"
    assert data["device"]["cpu_capability"]  # torch names its kernel level (e.g. AVX2)
    assert set(data["cpu"]["int8_features"]) >= {"avx2", "avx512f", "avx512_vnni"}
    folders = data["folders"]
    assert folders["settings"].endswith("settings.json")
    assert folders["plugins"]
    assert folders["plugins"][-1].endswith("plugins")
    assert folders["recent_projects"] == []


def test_plain_version_names_the_commit(capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    assert main(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == version_line()
    assert out.startswith(f"workbench {__version__} (")


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_checkout_commit_comes_from_git() -> None:
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    info = bi.git_commit(REPO)
    assert info is not None
    assert info["commit"] == head


def test_recorded_commit_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed copy (no .git beside it) reads the record written at build time."""
    record = tmp_path / "_build_info.json"
    record.write_text(json.dumps({"commit": "0123456789abcdef", "dirty": False}))
    monkeypatch.setattr(bi, "PACKAGE_DIR", tmp_path / "site" / "workbench")
    monkeypatch.setattr(bi, "BUILD_INFO", record)
    bi.build_info.cache_clear()
    try:
        assert bi.build_info() == {"commit": "0123456789abcdef", "dirty": False,
                                   "source": "installed"}
        assert bi.short_commit() == "0123456789"
        record.write_text("not json")
        bi.build_info.cache_clear()
        assert bi.build_info()["commit"] is None
        assert bi.short_commit() == "unknown commit"
    finally:
        bi.build_info.cache_clear()


def test_no_git_program_never_crashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert bi.git_commit(tmp_path) is None
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no git here either
    assert bi.git_commit(tmp_path / "nowhere") is None


def test_broken_git_work_tree_gives_no_commit(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: /does/not/exist\n")
    assert bi.git_commit(tmp_path) is None


def test_write_build_info_records_the_checkout(tmp_path: Path) -> None:
    target = tmp_path / "_build_info.json"
    info = bi.write_build_info(target, REPO, "bundle")
    assert json.loads(target.read_text()) == info
    assert info["kind"] == "bundle"


def test_about_text_reads_like_a_bug_report() -> None:
    report = about("cuda")
    text = about_text(report)
    assert text.splitlines()[0] == version_line(report)
    assert f"torch {report['packages']['torch']}" in text
    assert f"onnxruntime {report['packages']['onnxruntime']}" in text
    assert "device cuda" in text
    assert report["folders"]["settings"] in text
    assert "int8 weights" in text

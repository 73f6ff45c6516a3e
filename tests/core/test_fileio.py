"""Atomic writes that respect the file system, and temporary files that survive no crash."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.core import fileio
from workbench.core.errors import WorkbenchError
from workbench.core.fileio import (
    UnsafeTargetError,
    WriteError,
    atomic_path,
    atomic_write_text,
    clean_stale_temp_files,
    journal_dir,
    temp_dir,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX modes, devices and signals")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`tempfile.gettempdir()` is a folder of this test: the real /tmp is never scanned."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text
    assert "\n" not in text
    assert "Traceback" not in text
    assert text.endswith(".")
    return text


def _write_then_fail(target: Path, exc: Exception) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise exc


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "workbench-tmp" in p.name)


# replacing, modes ------------------------------------------------------------------------------
@posix_only
def test_regular_file_is_replaced_atomically_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_text("old")
    os.chmod(target, 0o751)
    inode = target.stat().st_ino
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp != target
        tmp.write_text("new")
        assert target.read_text() == "old"  # untouched until the writer is done
    assert target.read_text() == "new"
    assert target.stat().st_ino != inode  # renamed over, not rewritten in place
    assert stat.S_IMODE(target.stat().st_mode) == 0o751
    assert _leftovers(tmp_path) == []


@posix_only
@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_new_file_follows_the_umask(tmp_path: Path, mask: int) -> None:
    os.umask(mask)
    target = tmp_path / "sub" / "new.txt"
    atomic_write_text(target, "hello")
    assert target.read_text() == "hello"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


@posix_only
@pytest.mark.usefixtures("umask")
def test_umask_fallback_without_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileio, "_PROC_STATUS", str(tmp_path / "missing"))
    os.umask(0o027)
    atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    assert os.umask(0o022) == 0o027  # restored by the fallback


def test_failed_write_leaves_target_untouched_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        _write_then_fail(target, RuntimeError("boom"))
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []
    assert list(journal_dir().glob("*")) == []


# targets that must not be replaced ------------------------------------------------------------
@posix_only
def test_character_device_is_refused_and_untouched() -> None:
    before = os.stat("/dev/null")
    assert stat.S_ISCHR(before.st_mode)
    with pytest.raises(UnsafeTargetError) as info, atomic_path("/dev/null") as tmp:
        tmp.write_text("must never happen")
    assert "/dev/null is a character device" in _one_line(info.value)
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "out.onnx"
    folder.mkdir()
    (folder / "inside").write_text("x")
    with pytest.raises(UnsafeTargetError) as info:
        atomic_write_text(folder, "data")
    assert "is a folder" in _one_line(info.value)
    assert folder.is_dir()
    assert [p.name for p in folder.iterdir()] == ["inside"]
    assert _leftovers(tmp_path) == []


@posix_only
def test_symlink_to_a_regular_file_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "data" / "real.json"
    real.parent.mkdir()
    real.write_text("old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert _leftovers(tmp_path) == []
    assert _leftovers(real.parent) == []


@posix_only
def test_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "out.onnx"
    link.symlink_to("/dev/null")
    with pytest.raises(UnsafeTargetError, match="which is a character device"):
        atomic_write_text(link, "x")
    assert link.is_symlink()


def test_parent_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    with pytest.raises(WorkbenchError) as info:
        atomic_write_text(blocker / "out" / "model.onnx", "data")
    assert "notes.txt is a file, not a folder" in _one_line(info.value)
    assert blocker.read_text() == "x"


@linux_only
@pytest.mark.parametrize("target", ["/proc/workbench-test.onnx", "/proc/self/fd/1",
                                    "/proc/no-such-folder/model.onnx"])
def test_proc_is_refused(target: str) -> None:
    with pytest.raises(WorkbenchError) as info:
        atomic_write_text(target, "data")
    assert "/proc" in _one_line(info.value)


def test_too_long_path(tmp_path: Path) -> None:
    target = tmp_path / ("abcd/" * 1000 + "model.onnx")
    assert len(str(target)) > 5000
    with pytest.raises(WriteError) as info:
        atomic_write_text(target, "data")
    text = _one_line(info.value)
    assert "too long" in text
    assert len(text) < 300
    assert not (tmp_path / "abcd").exists()
    with pytest.raises(WriteError, match="too long"):
        atomic_write_text(tmp_path / ("n" * 300 + ".onnx"), "data")


@posix_only
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_folder_we_cannot_write(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        with pytest.raises(WriteError, match="permission denied"):
            atomic_write_text(folder / "model.onnx", "data")
    finally:
        os.chmod(folder, 0o700)


def test_permission_denied_is_one_sentence(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def refuse(path: str | os.PathLike[str], *args: object, **kwargs: object) -> int:
        if ".workbench-tmp-" in os.fspath(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(WriteError) as info:
        atomic_write_text(tmp_path / "model.onnx", "data")
    assert "permission denied in the folder" in _one_line(info.value)
    assert not (tmp_path / "model.onnx").exists()
    assert _leftovers(tmp_path) == []
    assert list(journal_dir().iterdir()) == []


@pytest.mark.parametrize(("code", "words"), [(errno.ENOSPC, "the disk is full"),
                                             (errno.EROFS, "read-only")])
def test_disk_errors_from_the_writer(tmp_path: Path, code: int, words: str) -> None:
    target = tmp_path / "big.onnx"
    target.write_text("old")
    with pytest.raises(WriteError) as info:
        _write_then_fail(target, OSError(code, os.strerror(code)))
    assert words in _one_line(info.value)
    assert isinstance(info.value, OSError)
    assert info.value.errno == code
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_export_refuses_a_folder_or_device(onnx_mlp: Path) -> None:
    from workbench.core.model.export import export_variant
    from workbench.core.model.loaders import load_model

    variant = load_model(str(onnx_mlp))
    folder = onnx_mlp.parent / "exported.onnx"
    folder.mkdir()
    with pytest.raises(UnsafeTargetError, match="is a folder"):
        export_variant(variant, folder)
    if os.name == "posix":
        with pytest.raises(UnsafeTargetError, match="character device"):
            export_variant(variant, "/dev/null", fmt="onnx")
    assert folder.is_dir()
    assert _leftovers(onnx_mlp.parent) == []


# temporary names and the journal -------------------------------------------------------------
def test_temporary_names_carry_the_pid(tmp_path: Path, private_tempdir: Path) -> None:
    pid = os.getpid()
    with atomic_path(tmp_path / "model.onnx") as tmp:
        assert tmp.name.startswith(f".workbench-tmp-{pid}-model-")
        assert tmp.suffix == ".onnx"
        assert tmp.exists()
        records = [json.loads(p.read_text()) for p in journal_dir().iterdir()]
        assert [r["path"] for r in records] == [str(tmp)]
        assert all(p.name.startswith(f"{pid}-") for p in journal_dir().iterdir())
        tmp.write_text("x")
    assert list(journal_dir().iterdir()) == []
    with temp_dir("quant") as folder:
        assert Path(folder).parent == private_tempdir
        assert Path(folder).name.startswith(f"workbench-tmp-{pid}-quant-")
        (Path(folder) / "model.onnx").write_text("x")
        assert len(list(journal_dir().iterdir())) == 1
    assert not Path(folder).exists()
    assert list(journal_dir().iterdir()) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _record(pid: int, path: Path, host: str | None = None) -> Path:
    journal_dir().mkdir(parents=True, exist_ok=True)
    record = journal_dir() / f"{pid}-0123456789ab.json"
    record.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                  "path": str(path)}))
    return record


def test_clean_never_follows_a_record_without_the_prefix(tmp_path: Path) -> None:
    pid = _dead_pid()
    victim = tmp_path / "precious.onnx"
    victim.write_text("keep me")
    record = _record(pid, victim)
    assert clean_stale_temp_files() == []
    assert victim.read_text() == "keep me"
    assert not record.exists()
    # a prefix with another pid than the record's is not followed either
    other = tmp_path / f".workbench-tmp-{os.getpid()}-x-0000.onnx"
    other.write_text("live")
    _record(pid, other)
    clean_stale_temp_files()
    assert other.exists()


def test_clean_keeps_records_of_other_machines(tmp_path: Path) -> None:
    pid = _dead_pid()
    temp = tmp_path / f".workbench-tmp-{pid}-model-0000.onnx"
    temp.write_text("x")
    record = _record(pid, temp, host="another-machine.example")
    assert clean_stale_temp_files() == []
    assert temp.exists()
    assert record.exists()


def test_clean_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(not_a_folder))
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_folder))
    assert clean_stale_temp_files() == []
    atomic_write_text(tmp_path / "still-works.txt", "x")  # no journal: the write goes on
    assert (tmp_path / "still-works.txt").read_text() == "x"


_CHILD = """
import sys, time
from workbench.core.fileio import atomic_path, temp_dir
with temp_dir("export") as folder, atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"x" * (4 << 20))
    with open(folder + "/model.onnx", "wb") as f:
        f.write(b"y" * 1024)
    print(tmp, folder, flush=True)
    time.sleep(120)
"""


def _start_writer(target: Path, tmpdir: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(target)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline().split()
    assert len(line) == 2, "the child did not start its write"
    return child, Path(line[0]), Path(line[1])


@posix_only
def test_kill_9_leaves_nothing_after_clean_up(tmp_path: Path, private_tempdir: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.onnx").write_text("previous export")
    dead, dead_tmp, dead_dir = _start_writer(out / "model.onnx", private_tempdir)
    live, live_tmp, live_dir = _start_writer(out / "other.onnx", private_tempdir)
    try:
        assert dead_tmp.parent == out
        assert dead_tmp.name.startswith(f".workbench-tmp-{dead.pid}-")
        assert dead_dir.parent == private_tempdir
        assert dead_tmp.stat().st_size == 4 << 20
        assert dead_dir.is_dir()
        dead.send_signal(signal.SIGKILL)
        dead.wait(timeout=30)
        assert dead_tmp.exists()
        assert dead_dir.exists()

        removed = clean_stale_temp_files()
        assert sorted(removed) == sorted([dead_tmp, dead_dir])
        assert _leftovers(out) == [live_tmp.name]
        assert _leftovers(private_tempdir) == [live_dir.name]
        assert (out / "model.onnx").read_text() == "previous export"
        assert all(p.name.startswith(f"{live.pid}-") for p in journal_dir().iterdir())
        assert len(list(journal_dir().iterdir())) == 2  # the live writer's two records
        assert clean_stale_temp_files() == []  # idempotent
    finally:
        live.kill()
        live.wait(timeout=30)
    # another process cleans up after the second crash
    subprocess.run([sys.executable, "-c", "from workbench.core.fileio import "
                    "clean_stale_temp_files as c; c()"], check=True, timeout=60,
                   env={**os.environ, "TMPDIR": str(private_tempdir)})
    assert _leftovers(out) == []
    assert _leftovers(private_tempdir) == []
    assert list(journal_dir().iterdir()) == []

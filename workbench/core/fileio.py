"""Safe file writes and temporary files that never outlive a crash.

* `atomic_path(target)` yields a temporary path beside `target` and renames it over the
  target once the caller has written it. Only a regular file (or a symlink to one, which
  stays a link) is ever replaced; a replaced file keeps its mode, a new one follows the
  umask; OS failures become a `WriteError` or `UnsafeTargetError` with one clear sentence.
* `temp_dir(kind)` is a temporary folder in `tempfile.gettempdir()`.
* Temporary files and folders are named `.workbench-tmp-<pid>-<name>-XXXX` (beside a target)
  and `workbench-tmp-<pid>-<kind>-XXXX` (in the temp folder), and each is recorded in a small
  journal (`<data dir>/pending-temp/<pid>-<token>.json`) before it is created. After a crash
  (kill -9), `clean_stale_temp_files()` removes the ones whose process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from workbench.core.errors import WorkbenchError
from workbench.core.rank_probe import probe

log = logging.getLogger(__name__)

TEMP_PREFIX = "workbench-tmp-"
_TEMP_IN_TMPDIR = re.compile(r"^workbench-tmp-(\d+)-")
_RECORD = re.compile(r"^(\d+)-[0-9a-f]+\.json$")
_VIRTUAL_ROOTS = ("/proc", "/sys")  # Linux pseudo file systems: they cannot hold files
_UMASK_LOCK = threading.Lock()
_PROC_STATUS = "/proc/self/status"
_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class UnsafeTargetError(WorkbenchError, OSError):
    """The output path is not something Workbench may replace (a device, a folder, /proc)."""


class WriteError(WorkbenchError, OSError):
    """The file system refused the write (full disk, read-only, permissions, long path)."""


# paths and messages ------------------------------------------------------------------------
def _show(path: str | os.PathLike[str]) -> str:
    """`path` for a one-line message: control characters escaped, very long paths elided."""
    text = str(path).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= 160 else f"{text[:70]}…{text[-70:]}"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _blocker(path: Path) -> Path | None:
    """The nearest existing ancestor of `path` when it is not a folder (a file in the way)."""
    for parent in path.parents:
        if os.path.lexists(parent):
            return None if os.path.isdir(parent) else parent
    return None


def _with_errno(exc: WorkbenchError, code: int | None) -> WorkbenchError:
    if isinstance(exc, OSError):
        exc.errno = code
    return exc


def _reason(shown: Path, exc: OSError) -> str:
    """Why the OS refused to write `shown`, as the end of a sentence."""
    code = exc.errno
    if code in (errno.ENOTDIR, errno.EEXIST):
        blocker = _blocker(shown)
        return (f"{_show(blocker)} is a file, not a folder" if blocker is not None
                else "part of the path is not a folder")
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return "the disk is full"
    if code == errno.EROFS:
        return "the file system is read-only"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied in the folder {_show(shown.parent)}"
    if code == errno.ENAMETOOLONG:
        return "the path is too long"
    if code == errno.ENOENT:
        return f"the folder {_show(shown.parent)} does not exist and cannot be created"
    if code == errno.ELOOP:
        return "the path has a loop of symbolic links"
    if code == errno.EFBIG:
        return "the file is too large for the file system"
    return (exc.strerror or type(exc).__name__).strip().rstrip(".").lower()


def _write_error(shown: Path, exc: OSError) -> WorkbenchError:
    """Map an OSError met while writing `shown` to a one-sentence Workbench error."""
    if isinstance(exc, WorkbenchError):
        return exc
    if exc.errno == errno.EISDIR:
        return _with_errno(UnsafeTargetError(
            f"{_show(shown)} is a folder; Workbench writes only to regular files."), exc.errno)
    return _with_errno(WriteError(f"Cannot write {_show(shown)}: {_reason(shown, exc)}."),
                       exc.errno)


def _under_virtual_fs(path: str) -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    for root in _VIRTUAL_ROOTS:
        if path == root or path.startswith(root + "/"):
            return root
    return None


def check_target(target: str | os.PathLike[str]) -> Path:
    """Check that `target` may be written; return the path to write (a symlink resolved).

    Raises `UnsafeTargetError` when it is anything but a regular file, a symlink to one or a
    new path, or lies in /proc or /sys; `WriteError` when its path cannot be used (a file
    in place of a parent folder, too long, ...). Nothing is created.
    """
    shown = Path(target)
    dest = Path(os.path.realpath(shown))
    for candidate in (os.path.abspath(shown), str(dest)):
        root = _under_virtual_fs(candidate)
        if root:
            raise UnsafeTargetError(f"{_show(shown)} lies in {root}, a virtual file system "
                                    "that cannot hold files.")
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        return dest
    except OSError as exc:
        raise _write_error(shown, exc) from exc
    if not stat.S_ISREG(st.st_mode):
        what = _kind(st.st_mode)
        if os.path.islink(shown):
            raise UnsafeTargetError(f"{_show(shown)} links to {_show(dest)}, which is {what}; "
                                    "Workbench writes only to regular files.")
        raise UnsafeTargetError(f"{_show(shown)} is {what}; Workbench writes only to regular "
                                "files.")
    return dest


# umask -------------------------------------------------------------------------------------
def _umask() -> int:
    """The process umask, read from /proc on Linux (no window where it is changed)."""
    try:
        with open(_PROC_STATUS, encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        log.debug("cannot read the umask from %s", _PROC_STATUS, exc_info=True)
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode a new file gets: 0o666 minus the umask."""
    return 0o666 & ~_umask()


# journal -----------------------------------------------------------------------------------
def _data_dir() -> Path:
    override = os.environ.get("WORKBENCH_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("workbench", appauthor=False))


def journal_dir() -> Path:
    """Where temporary files are recorded before they are created."""
    return _data_dir() / "pending-temp"


def _journal_add(path: Path) -> Path | None:
    """Record `path` as a pending temporary; best effort (None when it cannot be written)."""
    try:
        folder = journal_dir()
        folder.mkdir(parents=True, exist_ok=True)
        record = folder / f"{os.getpid()}-{secrets.token_hex(6)}.json"
        with open(record, "x", encoding="utf-8") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                       "path": os.path.abspath(path)}, f)
        return record
    except Exception as exc:  # the journal is a safety net: never fail a write over it
        log.debug("cannot journal temporary %s: %s", path, exc)
        return None


def _journal_remove(record: Path | None) -> None:
    if record is not None:
        try:
            record.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.debug("cannot remove journal record %s: %s", record, exc)


def _remove(path: Path) -> bool:
    """Remove a file, link or folder (never following a link); True when something went."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
        if os.path.lexists(path):
            raise OSError(errno.ENOTEMPTY, "cannot remove the whole folder", str(path))
    else:
        os.unlink(path)
    return True


def _discard(path: Path, record: Path | None) -> None:
    """Remove our temporary and then its journal record (kept if the temporary stays)."""
    try:
        _remove(path)
    except OSError as exc:
        log.debug("cannot remove temporary %s: %s", path, exc)
        return
    _journal_remove(record)


# temporary files and folders ---------------------------------------------------------------
def _clip(text: str, limit: int) -> str:
    text = re.sub(r"[\x00-\x1f/\\]+", "-", text)
    return text[:limit]


def _create_temp(dest: Path, shown: Path) -> tuple[Path, Path | None]:
    """Create an empty temporary file (mode 0600) beside `dest`, journalled first."""
    pid = os.getpid()
    stem, suffix = _clip(dest.stem, 40), dest.suffix if len(dest.suffix) <= 16 else ""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = dest.parent / f".{TEMP_PREFIX}{pid}-{stem}-{secrets.token_hex(4)}{suffix}"
        record = _journal_add(tmp)
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            _journal_remove(record)
            continue
        except OSError as exc:
            _journal_remove(record)
            raise _write_error(shown, exc) from exc
        os.close(fd)
        return tmp, record
    raise WriteError(f"Cannot write {_show(shown)}: no free temporary name beside it.")


def _caused_by_full_disk(exc: BaseException, folder: Path) -> int | None:
    """The errno when `exc` (or its cause) is a full or read-only disk, or the disk is full."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in _DISK_ERRNOS:
            return seen.errno
        seen = seen.__cause__ or seen.__context__
    with contextlib.suppress(OSError, AttributeError):
        vfs = os.statvfs(folder)
        if vfs.f_bavail * vfs.f_frsize < 1 << 20:  # a writer that hides ENOSPC (torch, ...)
            return errno.ENOSPC
    return None


def _finish(tmp: Path, dest: Path, shown: Path) -> None:
    """Give `tmp` the target's mode (or the umask's), then rename it over `dest`."""
    try:
        previous: os.stat_result | None = os.stat(dest)
    except FileNotFoundError:
        previous = None
    if previous is not None and not stat.S_ISREG(previous.st_mode):  # changed meanwhile
        check_target(shown)
    if previous is None:
        os.chmod(tmp, new_file_mode())
    else:
        mine = os.stat(tmp)
        if hasattr(os, "chown") and (mine.st_uid, mine.st_gid) != (previous.st_uid,
                                                                   previous.st_gid):
            with contextlib.suppress(OSError):  # only root may give a file away
                os.chown(tmp, previous.st_uid, previous.st_gid)
        os.chmod(tmp, stat.S_IMODE(previous.st_mode) & 0o777)  # never copy setuid bits
    os.replace(tmp, dest)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it over `target`.

    A symlink is followed (the link stays, the file it points to is replaced). On failure
    the temporary file is removed and `target` is untouched. Raises `UnsafeTargetError` for
    a target that is not a regular file and `WriteError` when the file system refuses.
    """
    shown = Path(target)
    dest = check_target(shown)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(shown, exc) from exc
    tmp, record = _create_temp(dest, shown)
    try:
        try:
            yield tmp
        except WorkbenchError:
            raise
        except OSError as exc:
            if exc.errno in _DISK_ERRNOS:
                raise _write_error(shown, exc) from exc
            raise
        except Exception as exc:
            code = _caused_by_full_disk(exc, dest.parent)
            if code is not None:
                raise _write_error(shown, OSError(code, os.strerror(code))) from exc
            raise
        try:
            _finish(tmp, dest, shown)
        except WorkbenchError:
            raise
        except OSError as exc:
            raise _write_error(shown, exc) from exc
        probe("write", path=str(dest))
    finally:
        _discard(tmp, record)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def temp_dir(kind: str) -> Iterator[str]:
    """A temporary folder `workbench-tmp-<pid>-<kind>-XXXX` in the temp folder, removed on
    exit (and by `clean_stale_temp_files` if the process dies first)."""
    try:
        base = Path(tempfile.gettempdir())
    except OSError as exc:  # no usable temp folder at all
        raise WriteError("Cannot create a temporary folder: no temp folder is writable "
                         "(set TMPDIR to one).") from exc
    label = _clip(re.sub(r"[^A-Za-z0-9_.]+", "-", kind), 32) or "tmp"
    for _ in range(100):
        folder = base / f"{TEMP_PREFIX}{os.getpid()}-{label}-{secrets.token_hex(4)}"
        record = _journal_add(folder)
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            _journal_remove(record)
            continue
        except OSError as exc:
            _journal_remove(record)
            raise _with_errno(WriteError(f"Cannot create a temporary folder in {_show(base)}: "
                                         f"{_reason(folder, exc)}."), exc.errno) from exc
        break
    else:
        raise WriteError(f"Cannot create a temporary folder in {_show(base)}: no free name.")
    try:
        yield str(folder)
    finally:
        _discard(folder, record)


# clean-up after a crash --------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    """True unless process `pid` is certainly gone (unknown counts as alive)."""
    if pid <= 0:
        return True
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's live process
        return True
    try:  # a zombie has exited: it holds no files open and writes nothing more
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[:1] != ["Z"]
    except OSError:
        return True


def _pid_alive_windows(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return kernel32.GetLastError() != 87  # ERROR_INVALID_PARAMETER: no such process
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _is_our_temp(name: str, pid: int) -> bool:
    return name.startswith((f".{TEMP_PREFIX}{pid}-", f"{TEMP_PREFIX}{pid}-"))


def _clean_journal(removed: list[Path]) -> None:
    try:
        entries = list(os.scandir(journal_dir()))
    except OSError:
        return  # no journal yet
    host = socket.gethostname()
    for entry in entries:
        match = _RECORD.match(entry.name)
        if not match or _pid_alive(pid := int(match[1])):
            continue
        try:
            data = json.loads(Path(entry.path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None  # cut short by the crash: written before its temporary existed
        if isinstance(data, dict):
            if data.get("host") != host or data.get("pid") != pid:
                continue  # another machine's record (a shared home folder): not ours to judge
            path = data.get("path")
            if isinstance(path, str) and _is_our_temp(os.path.basename(path), pid):
                try:
                    if _remove(Path(path)):
                        removed.append(Path(path))
                except OSError as exc:
                    log.debug("cannot remove stale temporary %s: %s", path, exc)
                    continue  # keep the record: try again next time
        _journal_remove(Path(entry.path))


def _clean_temp_folder(removed: list[Path]) -> None:
    base = tempfile.gettempdir()
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    for entry in entries:
        match = _TEMP_IN_TMPDIR.match(entry.name)
        if not match or _pid_alive(int(match[1])):
            continue
        try:
            if _remove(Path(entry.path)):
                removed.append(Path(entry.path))
        except OSError as exc:
            log.debug("cannot remove stale temporary %s: %s", entry.path, exc)


def clean_stale_temp_files() -> list[Path]:
    """Remove the temporary files and folders left by Workbench processes that died (kill -9,
    power loss), with their journal records; return what was removed. Never raises."""
    removed: list[Path] = []
    for step in (_clean_journal, _clean_temp_folder):
        try:
            step(removed)
        except Exception as exc:  # called at every start-up: never fail it
            log.debug("stale temporary clean-up (%s) failed: %s", step.__name__, exc)
    if removed:
        log.debug("removed %d stale temporary file(s): %s", len(removed), removed)
    return removed

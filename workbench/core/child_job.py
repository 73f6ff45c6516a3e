"""Heavy work in a child process: a memory ceiling, a real kill on cancel, files for results.

`run_in_child` forks (Linux): the child inherits the open models copy-on-write, so nothing
is pickled on the way in. It runs `work(folder, report)`, which writes what it made into
`folder` (safetensors, ONNX, JSON), and returns a JSON-able record; on the way back nothing
is pickled either. The parent watches the child every few milliseconds: its progress comes
through a pipe as JSON lines, and it is killed (SIGKILL) at once when the user cancels, when
its private memory passes the ceiling, or when its time runs out. Whatever happens in the
child (a crash, the kernel's OOM killer) the calling process carries on, and the workspace is
unchanged, since only a finished child's files are read.

The child runs torch on one thread: OpenMP's thread pool does not survive a fork.
Elsewhere than Linux (`can_isolate()` is False) callers run the work in-process.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from workbench.core.errors import CancelledError, WorkbenchError
from workbench.core.job_scope import single_thread_after_fork
from workbench.core.jobs import CancelToken
from workbench.core.memory_budget import (
    MemoryLimitError,
    human,
    private_memory,
    virtual_size,
)

log = logging.getLogger(__name__)

Report = Callable[[float | None, str], None]
Work = Callable[[Path, Report], dict[str, Any]]

_CANCEL_POLL_S = 0.02
_MEMORY_POLL_S = 0.1
_HEARTBEAT_S = 1.0
_AS_SLACK = 2 << 30  # address space beyond the ceiling before allocations fail outright
_PR_SET_PDEATHSIG = 1  # prctl option: a signal for this process when its parent dies


def can_isolate() -> bool:
    """Whether heavy jobs can run in a forked child (Linux; `WORKBENCH_IN_PROCESS` unset)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") \
        and not os.environ.get("WORKBENCH_IN_PROCESS")


@contextlib.contextmanager
def run_in_child(title: str, work: Work, *, limit: int, cancel: CancelToken,
                 progress: Report, time_limit: float | None = None,
                 on_timeout: Callable[[], BaseException] | None = None,
                 hint: str = "") -> Iterator[tuple[dict[str, Any], Path]]:
    """Run `work` in a forked child; yield its record and the folder of its files (removed
    after the block). Raises MemoryLimitError past `limit` bytes, CancelledError on cancel,
    `on_timeout()` past `time_limit` seconds, and the child's own error if it failed."""
    from workbench.core.fileio import temp_dir

    with temp_dir("child") as tmp:
        folder = Path(tmp)
        read_fd, write_fd = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # or the child would print them again
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_fd)
            _child_main(work, folder, write_fd, limit)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        watch = _Watch(title, pid, read_fd, limit, cancel, progress, hint)
        try:
            status = watch.wait(time_limit, on_timeout)
        finally:
            watch.stop()
        yield _outcome(title, folder, status, watch), folder


class _Watch:
    """The parent's side: progress from the pipe, memory, cancel and time."""

    def __init__(self, title: str, pid: int, fd: int, limit: int, cancel: CancelToken,
                 progress: Report, hint: str) -> None:
        self.title, self.pid, self.fd, self.limit = title, pid, fd, limit
        self.cancel, self.progress, self.hint = cancel, progress, hint
        self.peak = 0
        self.reaped = False
        self._buffer = b""
        self._fraction: float | None = None
        self._message = title

    def wait(self, time_limit: float | None,
             on_timeout: Callable[[], BaseException] | None) -> int:
        """The child's wait status once it ends on its own; raises when it is stopped."""
        start = time.monotonic()
        next_memory = next_beat = start
        while True:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.reaped = True
                self._drain()
                return status
            now = time.monotonic()
            if self.cancel.cancelled:
                self._kill()
                raise CancelledError("Cancelled.")
            if time_limit is not None and now - start > time_limit:
                self._kill()
                raise (on_timeout() if on_timeout else
                       WorkbenchError(f"{self.title} took longer than {time_limit:g} s."))
            if now >= next_memory:
                next_memory = now + _MEMORY_POLL_S
                used = private_memory(self.pid) or 0
                self.peak = max(self.peak, used)
                if used > self.limit:
                    self._kill()
                    raise MemoryLimitError(self.title, self.peak, self.limit, self.hint)
            if now >= next_beat:  # a heartbeat: a stuck step still shows time and memory
                next_beat = now + _HEARTBEAT_S
                if now - start >= _HEARTBEAT_S:
                    self.progress(self._fraction, f"{self._message} ({now - start:.0f} s, "
                                                  f"{human(self.peak)})")
            ready, _, _ = select.select([self.fd], [], [], _CANCEL_POLL_S)
            if ready:
                self._drain()

    def _drain(self) -> None:
        """Forward the progress lines the child wrote."""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except (BlockingIOError, InterruptedError):
                break
            if not chunk:
                break
            self._buffer += chunk
            if len(chunk) < 65536:
                break
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                step = json.loads(line)
                self._fraction, self._message = step["fraction"], str(step["message"])
                self.progress(self._fraction, self._message)

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        if not self.reaped:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.reaped = True

    def stop(self) -> None:
        """Kill the child if it still runs (an error in the parent), reap it, close the pipe."""
        if not self.reaped:
            self._kill()
        os.close(self.fd)


def _outcome(title: str, folder: Path, status: int, watch: _Watch) -> dict[str, Any]:
    """The child's record, or its error raised here."""
    result = folder / "result.json"
    if os.waitstatus_to_exitcode(status) == 0 and result.exists():
        record: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
        record.setdefault("peak_bytes", watch.peak)
        return record
    error = folder / "error.json"
    if error.exists():
        _raise(json.loads(error.read_text(encoding="utf-8")), watch)
    code = os.waitstatus_to_exitcode(status)
    why = (f"was killed by signal {-code}" if code < 0 else f"exited with status {code}")
    if code == -signal.SIGKILL:
        why += " (the system may have run out of memory)"
    raise WorkbenchError(f"{title} {why} after using {human(watch.peak)}; nothing was "
                         "changed.")


def _raise(record: dict[str, Any], watch: _Watch) -> None:
    if record.get("memory"):  # an allocation failed against the address-space backstop
        raise MemoryLimitError(watch.title, max(watch.peak, watch.limit), watch.limit,
                               watch.hint)
    message = str(record.get("message", ""))
    module, name = str(record.get("module", "")), str(record.get("name", "Exception"))
    cls: Any = None
    if module == "builtins":
        cls = getattr(builtins, name, None)
    elif module.startswith("workbench.") and module in sys.modules:
        cls = getattr(sys.modules[module], name, None)
    if isinstance(cls, type) and issubclass(cls, (Exception, SystemExit)):
        try:
            exc = cls(message)
        except Exception:
            exc = None
        if exc is not None:
            raise exc
    # a library's own error: the same name and message, so reports read as in-process
    raise type(name, (Exception,), {"__module__": module})(message)


def _child_main(work: Work, folder: Path, fd: int, limit: int) -> None:
    code = 1
    try:
        _die_with_parent()
        _limit_address_space(limit)
        single_thread_after_fork()

        def report(fraction: float | None, message: str) -> None:
            line = json.dumps({"fraction": fraction, "message": message}) + "\n"
            os.write(fd, line.encode("utf-8", "replace"))

        record = work(folder, report)
        _write_json(folder / "result.json", record)
        code = 0
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            _write_json(folder / "error.json", _error_record(exc))
    finally:
        os._exit(code)  # no atexit handlers, no Qt or database clean-up of the parent's


def _die_with_parent() -> None:
    """Ask Linux to kill this child when the process that forked it dies (a crashed or
    killed window must not leave a job eating memory)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _limit_address_space(limit: int) -> None:
    """A backstop in case memory grows faster than the parent polls: the address space may
    grow by the ceiling and some slack, then allocations fail."""
    import resource

    size = virtual_size(os.getpid())
    if size is None:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (size + limit + _AS_SLACK, resource.RLIM_INFINITY))


def _error_record(exc: BaseException) -> dict[str, Any]:
    text = str(exc)
    memory = isinstance(exc, MemoryError) or "can't allocate memory" in text \
        or "DefaultCPUAllocator" in text
    return {"module": type(exc).__module__, "name": type(exc).__qualname__,
            "message": text, "memory": memory}


def _write_json(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, default=_plain), encoding="utf-8")
    os.replace(tmp, path)


def _plain(value: Any) -> Any:
    """JSON for numpy scalars, sets and other odd values in a record."""
    if hasattr(value, "item"):
        with contextlib.suppress(TypeError, ValueError):
            return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)

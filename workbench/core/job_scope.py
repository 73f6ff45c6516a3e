"""The one place that sets and restores process-wide state around a job.

Torch's intra-op thread count, its global random generator and the garbage collector belong
to the whole process, so a job that changed them from a worker thread would change them for
every other thread too, and forget to put them back when it failed. The job runners (`run_job`
for the CLI and tests, `QtJobRunner` for the window) open a `job_scope` around each job; a job
that needs a thread count or a seeded global generator asks the scope (`request_threads`,
`request_seed`), which undoes the change when the job ends, whether it returns, raises or is
cancelled. Everything else that draws random numbers takes a per-job `torch.Generator`.
"""

from __future__ import annotations

import gc
import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

_local = threading.local()


class JobScope:
    """What one job changed, so that its end can undo it."""

    def __init__(self) -> None:
        torch = sys.modules.get("torch")
        self._threads: int | None = torch.get_num_threads() if torch is not None else None
        self._grad: bool = torch.is_grad_enabled() if torch is not None else True
        self._rng: Any = None
        self._gc_enabled = gc.isenabled()
        self._gc_threshold = gc.get_threshold()

    def set_threads(self, threads: int) -> None:
        import torch

        if self._threads is None:  # torch was imported by the job itself
            self._threads = torch.get_num_threads()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(int(threads))

    def seed(self, seed: int) -> None:
        import torch

        if self._rng is None:
            self._rng = torch.get_rng_state()
        torch.manual_seed(int(seed))

    def set_rng_state(self, state: Any) -> None:
        import torch

        if self._rng is None:
            self._rng = torch.get_rng_state()
        torch.set_rng_state(state)

    def restore(self) -> None:
        torch = sys.modules.get("torch")
        if torch is not None:
            if self._threads is not None and torch.get_num_threads() != self._threads:
                torch.set_num_threads(self._threads)
            torch.set_grad_enabled(self._grad)
            if self._rng is not None:
                torch.set_rng_state(self._rng)
        gc.set_threshold(*self._gc_threshold)
        if self._gc_enabled:
            gc.enable()
        else:
            gc.disable()


@contextmanager
def job_scope(threads: int | None = None, freeze_gc: bool = False) -> Iterator[JobScope]:
    """Run the body as a job: state it changes through the scope is restored at the end.

    `threads` sets torch's intra-op thread count for the whole job. `freeze_gc` moves the
    objects that exist now out of the collector's reach (`gc.freeze`), so collections during
    the job scan only new objects; they stay frozen after the job (they are long-lived: the
    open models) until `release_memory()`. Scopes nest; each restores what it found.
    """
    scope = JobScope()
    stack: list[JobScope] = _local.__dict__.setdefault("stack", [])
    stack.append(scope)
    try:
        if freeze_gc:
            gc.freeze()
        if threads is not None:
            scope.set_threads(threads)
        yield scope
    finally:
        stack.remove(scope)
        scope.restore()


def current_scope() -> JobScope:
    """The innermost scope of this thread; a RuntimeError (a bug, not a user error) if none."""
    stack: list[JobScope] = _local.__dict__.get("stack", [])
    if not stack:
        raise RuntimeError("process-wide state can only change inside a job_scope (run the "
                           "job with run_job or a job runner)")
    return stack[-1]


def in_job_scope() -> bool:
    return bool(_local.__dict__.get("stack"))


def request_threads(threads: int) -> None:
    """Set torch's intra-op thread count until the current job ends."""
    current_scope().set_threads(threads)


def request_seed(seed: int) -> None:
    """Seed torch's global generator until the current job ends.

    Only for draws that cannot take a `torch.Generator` (dropout during training).
    """
    current_scope().seed(seed)


def request_rng_state(state: Any) -> None:
    """Set torch's global generator state (a resumed checkpoint) until the job ends."""
    current_scope().set_rng_state(state)


_quiet_lock = threading.Lock()
_quiet_users = 0
_quiet_saved: tuple[int, Any] = (-1, None)


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Inside a job scope, send what is written to stdout (Python's `sys.stdout` and file
    descriptor 1) to stderr with `WORKBENCH_DEBUG`, or nowhere; outside one (a library
    call) change nothing.

    Only for libraries that print with no switch to stop them: ONNX Runtime's histogram
    calibrators `print` progress, and the TorchScript ONNX exporter dumps its IR graph on the
    native stdout when it fails (its log switch is stuck on in torch 2.13). Either would
    corrupt `--json` output. A count under a lock keeps concurrent users from restoring each
    other's streams.
    """
    global _quiet_users, _quiet_saved
    if not in_job_scope():
        yield
        return
    from workbench.core.logs import debug_level

    with _quiet_lock:
        if _quiet_users == 0:
            debugging = debug_level() is not None
            saved_fd = -1
            try:
                sys.stdout.flush()
                saved_fd = os.dup(1)
            except (AttributeError, OSError, ValueError):  # no descriptor 1 (a GUI launch)
                log.debug("no native stdout to quiet", exc_info=True)
            if saved_fd >= 0 and debugging:
                os.dup2(2, 1)
            elif saved_fd >= 0:
                with open(os.devnull, "w") as devnull:
                    os.dup2(devnull.fileno(), 1)
            _quiet_saved = (saved_fd, sys.stdout)
            sys.stdout = sys.stderr if debugging else io.StringIO()
        _quiet_users += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_users -= 1
            if _quiet_users == 0:
                saved_fd, sys.stdout = _quiet_saved
                if saved_fd >= 0:
                    os.dup2(saved_fd, 1)
                    os.close(saved_fd)
                _quiet_saved = (-1, None)


def release_memory() -> None:
    """Hand frozen objects back to the collector and collect now (after deleting models)."""
    gc.unfreeze()
    gc.collect()


def thaw_memory() -> None:
    """Hand frozen objects back to the collector without collecting now (a full collection
    takes seconds once a few models are open)."""
    gc.unfreeze()


def single_thread_after_fork() -> None:
    """In a forked child (`child_job`): torch on one thread, since OpenMP's pool does not
    survive a fork (a parallel op would hang). The child's whole life is one job: nothing
    to restore."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)

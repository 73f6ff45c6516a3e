"""Run core jobs in a worker thread with progress and cancel (`job_worker.JobWorker`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from workbench.core.errors import CancelledError
from workbench.core.job_scope import job_scope, release_memory, thaw_memory
from workbench.core.jobs import CancelToken, Progress
from workbench.gui.job_worker import JobWorker
from workbench.gui.qt_startup import wait_for_warmup

log = logging.getLogger(__name__)


class _ScopedWorker(JobWorker):
    """A worker that runs its whole job inside a `job_scope`, on its own thread: process-wide
    state is set and restored there, and an abandoned job is closed there too."""

    def work(self) -> Any:
        # The objects that exist when a job starts are moved out of the collector's reach: a
        # full collection over them (hundreds of ms once a big model is open) would hold the
        # GIL and freeze the window mid-job. `release_memory` hands them back when the user
        # deletes variants, the moment when memory is worth a pause.
        wait_for_warmup()  # never import torch while the warm-up thread imports it
        with job_scope(freeze_gc=True):
            try:
                return super().work()
            finally:
                self._gen.close()  # a cancelled job's `finally` blocks run inside the scope


class QtJobRunner(QObject):
    """Runs one job at a time and reports its progress; `cancel()` stops it cleanly."""

    started = Signal(str)
    progress = Signal(object)  # Progress
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker: JobWorker | None = None
        self._token: CancelToken | None = None
        self._graceful = False
        self._outcome: str | None = None
        # how the last job ended: "done", "stopped" (asked to stop, kept what it had),
        # "cancelled" or "failed"; read it in a `finished` slot
        self.outcome: str | None = None
        # the window's settings: their memory ceiling applies to every job (`memory_watch`)
        self.settings: Any = getattr(parent, "settings", None)
        self._memory: Any = None

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def run(self, title: str, job_factory: Callable[[CancelToken], Any],
            on_result: Callable[[Any], None], on_error: Callable[[BaseException], None],
            graceful: bool = False) -> JobWorker:
        """Start `job_factory(token)` (a generator) in a worker thread.

        A `graceful` job (training) finishes on cancel and still returns its result.
        """
        token = CancelToken()
        self._graceful = graceful
        memory = None
        if self.settings is not None:
            from workbench.core.memory_watch import watch

            memory = watch(token, self.settings, title)

        def generator(tok: CancelToken) -> Any:
            return (yield from job_factory(tok))

        worker = _ScopedWorker(generator(token))
        worker.yielded.connect(self._on_yield)
        worker.returned.connect(lambda _result: self._set_outcome(
            "stopped" if token.cancelled else "done"))
        worker.returned.connect(on_result)

        def errored(exc: BaseException) -> None:
            if memory is not None:
                exc = memory.translate(exc)  # a cancel by the memory ceiling is an error
            if isinstance(exc, CancelledError):
                self._set_outcome("cancelled")
            else:
                self._set_outcome("failed")
                on_error(exc)

        worker.errored.connect(errored)
        worker.finished.connect(self._on_finished)
        self._worker, self._token = worker, token
        self._memory = memory
        self._outcome = None
        self.started.emit(title)
        worker.start()
        return worker

    def run_task(self, task: Any, on_done: Callable[[Any], None],
                 on_error: Callable[[BaseException], None]) -> JobWorker:
        """Run a core `Task`: its job in a worker, its commit here on the GUI thread."""
        task.report = self.progress.emit  # a queued signal: safe from the worker

        def done(result: Any) -> None:
            try:
                committed = task.commit(result)
            except Exception as exc:  # a commit that fails is an error like any other
                on_error(exc)
                return
            on_done(committed)

        return self.run(task.title, task.job, done, on_error, graceful=task.graceful)

    def report(self, fraction: float | None, message: str = "") -> None:
        """Progress from inside a running job (any thread; the signal is queued)."""
        self.progress.emit(Progress(fraction, message))

    def pause(self) -> None:
        if self._token is not None:
            self._token.pause()

    def resume(self) -> None:
        if self._token is not None:
            self._token.resume()

    @property
    def paused(self) -> bool:
        return self._token is not None and self._token.paused

    @property
    def graceful(self) -> bool:
        """The running job ends early but keeps its result when cancelled (training)."""
        return self._worker is not None and self._graceful

    @property
    def cancelling(self) -> bool:
        """A cancel was asked and the job has not ended yet."""
        return self._token is not None and self._token.cancelled

    def cancel(self) -> None:
        if self._token is not None:
            self._token.cancel()
        if self._worker is not None and not self._graceful:
            self._worker.quit()

    def _set_outcome(self, outcome: str) -> None:
        self._outcome = outcome

    def _on_yield(self, step: Any) -> None:
        if isinstance(step, Progress):
            self.progress.emit(step)

    @staticmethod
    def release_memory() -> None:
        """Let the collector see every object again and collect now."""
        release_memory()

    @staticmethod
    def thaw_memory() -> None:
        """Let the collector see every object again, without a collection now (a full one
        takes seconds once a few models are open, and would freeze the window)."""
        thaw_memory()

    def _on_finished(self) -> None:
        cancelled = self._token is not None and self._token.cancelled
        self.outcome = self._outcome or ("cancelled" if cancelled else "done")
        if self._memory is not None:
            self._memory.stop()
            self._memory = None
        self._worker = None
        self._token = None
        self.finished.emit()

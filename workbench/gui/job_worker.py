"""A generator job on Qt's global thread pool, with its steps and its end as queued signals.

The window's own replacement for superqt's `GeneratorWorker`: importing superqt builds its
widgets and qtpy's enum tables (about 0.4 s of CPU), all before the first paint, for the one
class the job runner used. Same contract: `yielded` for each step, then `returned` (not after
`quit()`) or `errored`, then `finished`; `quit()` stops the generator at its next step.
Warnings raised inside a job go to the log instead of the caller's warning filters (as
superqt did: a filter that turns warnings into errors must not fail a job).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Generator
from typing import Any, ClassVar

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, QTimer, Signal

log = logging.getLogger(__name__)


class JobSignals(QObject):
    """The signals of a `JobWorker` (a QRunnable is not a QObject)."""

    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    aborted = Signal()
    finished = Signal()
    done = Signal(object)  # the worker, let go of on this object's (the GUI) thread


class JobWorker(QRunnable):
    """Runs `generator` to its end on a pool thread; see the module doc."""

    _running_workers: ClassVar[set[JobWorker]] = set()  # their wrappers, until finished

    def __init__(self, generator: Generator[Any, None, Any]) -> None:
        super().__init__()  # auto-deleted by the pool after `run`, as superqt's workers are
        self._gen = generator
        self._abort = False
        self.signals = JobSignals()
        # no closure over `self` here: that cycle left finished workers to the cyclic
        # collector, which could then delete their signals' QObject on a job's thread
        self.signals.done.connect(_let_go)

    def __getattr__(self, name: str) -> Any:
        """`worker.yielded` and the like are the signals' (as with superqt)."""
        if name in ("started", "yielded", "returned", "errored", "aborted", "finished"):
            return getattr(self.signals, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def abort_requested(self) -> bool:
        return self._abort

    def quit(self) -> None:
        """Ask the job to stop at its next step."""
        self._abort = True

    def start(self) -> None:
        """Queue the job on the global thread pool (once the event loop runs, if it does)."""
        if self in JobWorker._running_workers:
            raise RuntimeError("this worker is already started")
        JobWorker._running_workers.add(self)
        pool = QThreadPool.globalInstance()
        if QThread.currentThread().loopLevel():
            QTimer.singleShot(1, lambda: pool.start(self))
        else:
            pool.start(self)

    def run(self) -> None:
        """Called by the pool, on its thread."""
        self.signals.started.emit()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("always")
                warnings.showwarning = _log_warning
                result = self.work()
            if not self._abort:
                self.signals.returned.emit(result)
        except BaseException as exc:  # SystemExit too: the runner must hear the job end
            self.signals.errored.emit(exc)
        finally:
            self.signals.finished.emit()
            self.signals.done.emit(self)

    def work(self) -> Any:
        """Step the generator until it returns or `quit()` is asked; its return value."""
        while True:
            if self._abort:
                self.signals.aborted.emit()
                return None
            try:
                step = next(self._gen)
            except StopIteration as stop:
                return stop.value
            self.signals.yielded.emit(step)


def _let_go(worker: JobWorker) -> None:
    """Drop a finished worker (on the GUI thread, where its signals' QObject lives)."""
    JobWorker._running_workers.discard(worker)


def _log_warning(message: Any, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    log.info("warning in a job: %s", warnings.formatwarning(message, category, filename,
                                                            lineno, line).strip())

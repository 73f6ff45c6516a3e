"""Run core jobs in a worker thread with progress and cancel (superqt's create_worker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from superqt.utils import GeneratorWorker, create_worker

from workbench.core.errors import CancelledError
from workbench.core.jobs import CancelToken, Progress


class QtJobRunner(QObject):
    """Runs one job at a time and reports its progress; `cancel()` stops it cleanly."""

    started = Signal(str)
    progress = Signal(object)  # Progress
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker: GeneratorWorker | None = None
        self._token: CancelToken | None = None

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def run(self, title: str, job_factory: Callable[[CancelToken], Any],
            on_result: Callable[[Any], None], on_error: Callable[[BaseException], None]
            ) -> GeneratorWorker:
        """Start `job_factory(token)` (a generator) in a worker thread."""
        token = CancelToken()

        def generator(tok: CancelToken) -> Any:
            return (yield from job_factory(tok))

        worker = create_worker(generator, token, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._on_yield)
        worker.returned.connect(on_result)

        def errored(exc: BaseException) -> None:
            if not isinstance(exc, CancelledError):
                on_error(exc)

        worker.errored.connect(errored)
        worker.finished.connect(self._on_finished)
        self._worker, self._token = worker, token
        self.started.emit(title)
        worker.start()
        return worker

    def report(self, fraction: float | None, message: str = "") -> None:
        """Progress from inside a running job (any thread; the signal is queued)."""
        self.progress.emit(Progress(fraction, message))

    def cancel(self) -> None:
        if self._token is not None:
            self._token.cancel()
        if self._worker is not None:
            self._worker.quit()

    def _on_yield(self, step: Any) -> None:
        if isinstance(step, Progress):
            self.progress.emit(step)

    def _on_finished(self) -> None:
        self._worker = None
        self._token = None
        self.finished.emit()

"""Startup timing for `packaging/smoke.sh`: with `WORKBENCH_EXIT_AFTER_PAINT=1` the window
prints `painted_at=<unix time>` on stderr once it has painted and quits. This probe serves a
window opened on nothing; with a model, `qt_startup.FirstPaint` reports the graph's first paint.
The launcher subtracts its own start time."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer

log = logging.getLogger(__name__)

ENV = "WORKBENCH_EXIT_AFTER_PAINT"


class PaintProbe(QObject):
    """Watches the window's paint events; reports the first one after the work is done."""

    def __init__(self, window: Any, app: Any, wait_for_job: bool) -> None:
        super().__init__(window)
        self.window, self.app = window, app
        self.waiting = wait_for_job
        if wait_for_job:
            window.jobs.finished.connect(self._job_done)
        window.installEventFilter(self)

    def _job_done(self) -> None:
        self.waiting = False
        self.window.update()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and not self.waiting:
            self.window.removeEventFilter(self)
            # the timestamp after this paint returns: the frame is complete
            QTimer.singleShot(0, self._report)
        return False

    def _report(self) -> None:
        sys.stderr.write(f"painted_at={time.time():.3f}\n")
        sys.stderr.flush()
        self.window.show_dialogs = False
        self.window.close()
        self.app.quit()


def install_paint_probe(window: Any, app: Any, has_model: bool) -> PaintProbe | None:
    """A PaintProbe on `window` when `$WORKBENCH_EXIT_AFTER_PAINT` is set, else None."""
    if os.environ.get(ENV) != "1":
        return None
    return PaintProbe(window, app, has_model)

"""What the window does after its first paint: the heavy imports, in the background.

`FirstPaint` notices the first paint of the graph view with a graph in it. `Warmup` then
imports, in a plain thread, the passes (`Registry.load_all`), torch, onnx and onnxruntime,
so that the first Apply or benchmark does not wait for them; the window builds its Passes
panel when they are in. transformers is left to the zoo model that needs it (seconds of
import that most sessions never use). `WORKBENCH_EXIT_AFTER_PAINT=1` ends the process right
after the first painted graph (the cold-start benchmark and a test measure that moment).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import threading
import time
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from workbench.core.passes.registry import Registry

log = logging.getLogger(__name__)

EXIT_AFTER_PAINT = "WORKBENCH_EXIT_AFTER_PAINT"
# imported after the first paint, in this order, when installed
BACKGROUND_MODULES = ("torch", "onnx", "onnxruntime")


# Clear while a warm-up imports: two threads importing torch at once can hand one of them
# a half-initialised module, so jobs wait for the warm-up (`wait_for_warmup`) before they run.
_idle = threading.Event()
_idle.set()


def warmup_running() -> bool:
    """Whether the background imports are under way (in any window)."""
    return not _idle.is_set()


def wait_for_warmup() -> None:
    """Block (a worker thread) until no background import runs."""
    _idle.wait()


def exit_after_paint() -> bool:
    """Whether this process ends right after its first painted graph (a diagnostic)."""
    return os.environ.get(EXIT_AFTER_PAINT, "") not in ("", "0")


class FirstPaint(QObject):
    """Emits `painted` once, when `viewport` has finished its first paint while
    `has_graph()` is true."""

    painted = Signal()

    def __init__(self, viewport: Any, has_graph: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._viewport = viewport
        self._has_graph = has_graph
        self.done = False
        viewport.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (not self.done and event.type() == QEvent.Type.Paint and watched is self._viewport
                and self._has_graph()):
            self.done = True
            self._viewport.removeEventFilter(self)
            QTimer.singleShot(0, self.painted.emit)  # once this paint has been drawn
        return False


def report_paint_and_exit(nodes: int) -> None:
    """Say on stderr that the graph is painted (and what was imported by then), then end
    the event loop: the process exits as soon as it can."""
    heavy = [m for m in ("torch", "onnxruntime", "transformers") if m in sys.modules]
    sys.stderr.write(f"workbench: first paint: {nodes} nodes; heavy modules: "
                     f"{','.join(heavy) or '-'}\npainted_at={time.time():.3f}\n")
    sys.stderr.flush()
    QApplication.exit(0)


class Warmup(QObject):
    """Imports the passes and the heavy libraries in a background thread, once."""

    finished = Signal(object)  # the registry, with every pass imported (or failed)

    def __init__(self, registry: Registry, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.started = False
        self.seconds: float | None = None  # how long it took, once finished

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        _idle.clear()
        # not a daemon: interpreter shutdown in the middle of `import torch` can crash
        threading.Thread(target=self._run, name="workbench-warmup").start()

    def _run(self) -> None:
        try:
            self._import_all()
        finally:
            _idle.set()
        with contextlib.suppress(RuntimeError):  # the window (and this object) is gone
            self.finished.emit(self.registry)

    def _import_all(self) -> None:
        t0 = time.perf_counter()
        try:
            self.registry.load_all()
        except Exception:  # a broken plugin is reported by the registry; never the app
            log.exception("loading the passes failed")
        for name in BACKGROUND_MODULES:
            if name in sys.modules:
                continue
            try:
                if importlib.util.find_spec(name) is not None:
                    importlib.import_module(name)
            except Exception as exc:  # optional: the feature that needs it says so later
                log.debug("background import of %s failed: %s", name, exc)
        self.seconds = time.perf_counter() - t0
        log.debug("warm-up done in %.2f s", self.seconds)

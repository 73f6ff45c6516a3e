"""The main window's start: panels built when first shown, heavy imports after the first paint.

A mixin of `QtMainWindow`: the tabs and the Passes dock hold `LazyPanel`s, the window talks
to a panel that may not exist yet through `_panel_call`, and once the graph is painted (or the
window is up with nothing to open) a `Warmup` imports the passes, torch, onnx and onnxruntime
in the background while the status bar says "Loading passes…".

An opening job hands over its graph (`GraphReady`) before it reads any weight: the graph
view draws it at once, and keeps it (no second layout) when the variant is added; if the job
fails or is cancelled instead, the view goes back to the selected variant.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QWidget

from workbench.core.graph.analysis import GraphReady
from workbench.core.passes.registry import Registry
from workbench.gui.qt_device_menu import refresh_devices
from workbench.gui.qt_lazy_panel import LazyPanel
from workbench.gui.qt_startup import (
    FirstPaint,
    Warmup,
    exit_after_paint,
    report_paint_and_exit,
    wait_for_warmup,
)

log = logging.getLogger(__name__)

LAZY_PANELS = ("weights", "train", "benchmark", "compare", "passes")


class QtWindowStartup:
    """Lazy panels and background imports for the main window (see the module doc)."""

    lazy: dict[str, LazyPanel]
    warmup: Warmup
    first_paint: FirstPaint
    registry: Registry
    background_imports: bool
    remember_layout: bool
    jobs: Any
    workspace: Any
    graph_view: Any
    warmup_label: Any
    open_failed: Any

    def _setup_lazy_panels(self) -> None:
        self._previewed: Any = None  # the graph an opening job showed ahead of its commit
        self.lazy = {name: LazyPanel(lambda name=name: self._make_panel(name))  # type: ignore[misc]
                     for name in LAZY_PANELS}
        for panel in self.lazy.values():
            panel.built.connect(self._on_panel_built)
        if not self.registry.loaded:
            self.lazy["passes"].hold("Loading passes…")

    def _setup_background_imports(self) -> None:
        self.warmup = Warmup(self.registry, self)  # type: ignore[arg-type]
        self.warmup.finished.connect(self._on_warmup_finished,
                                     Qt.ConnectionType.QueuedConnection)
        self.first_paint = FirstPaint(self.graph_view.view.viewport(),
                                      lambda: self.graph_view.graph() is not None,
                                      self)  # type: ignore[arg-type]
        self.first_paint.painted.connect(self._on_first_paint)
        self.open_failed.connect(lambda _message: self.start_warmup())
        # a window opened on nothing loads the passes once it is up
        QTimer.singleShot(0, lambda: None if self.jobs.busy else self.start_warmup())

    # the panels, built when first shown ------------------------------------------------------
    @property
    def weights_panel(self) -> Any:
        return self.lazy["weights"].widget()

    @property
    def train_panel(self) -> Any:
        return self.lazy["train"].widget()

    @property
    def benchmark_panel(self) -> Any:
        return self.lazy["benchmark"].widget()

    @property
    def compare_panel(self) -> Any:
        return self.lazy["compare"].widget()

    @property
    def passes_panel(self) -> Any:
        """The Passes panel (built now if it is not, importing every pass if need be)."""
        return self.lazy["passes"].widget()

    @passes_panel.setter
    def passes_panel(self, panel: QWidget) -> None:
        self.lazy["passes"].put(panel)

    def _make_panel(self, name: str) -> QWidget:
        # a panel's modules may import torch: never while the warm-up thread imports it
        wait_for_warmup()
        if name == "weights":
            from workbench.gui.qt_weights_panel import QtWeightsPanel

            return QtWeightsPanel()
        if name == "train":
            from workbench.gui.qt_train_panel import QtTrainPanel

            return QtTrainPanel()
        if name == "benchmark":
            from workbench.gui.qt_benchmark_panel import QtBenchmarkPanel

            return QtBenchmarkPanel()
        if name == "compare":
            from workbench.gui.qt_compare_panel import QtComparePanel

            return QtComparePanel(self.workspace)
        from workbench.gui.qt_passes_panel import QtPassesPanel

        panel = QtPassesPanel(self.registry.load_all())
        panel.set_busy(self.jobs.busy)
        return panel

    def _panel_call(self, name: str, method: str, *args: Any) -> Any:
        """Update a panel now if it is built, or when it is."""
        return self.lazy[name].call(method, *args)

    def _built(self, name: str) -> Any:
        """The panel if it is built, else None."""
        return self.lazy[name].panel

    def _on_panel_built(self, panel: Any) -> None:
        self._connect_panel(panel)
        if self.remember_layout:
            self.restore_splitters(panel)

    # an opening job's graph, drawn before its statistics -------------------------------------
    def _show_preview(self, payload: Any) -> None:
        if not isinstance(payload, GraphReady):
            return
        self._previewed = payload.graph
        self.graph_view.set_graph(payload.graph)
        viewport = self.graph_view.view.viewport()
        if not viewport.isVisible():  # nothing will be painted: the job goes on now
            payload.drawn.set()
            return
        painted = FirstPaint(viewport, lambda: True, self)  # type: ignore[arg-type]
        painted.painted.connect(payload.drawn.set)
        painted.painted.connect(painted.deleteLater)

    def _keep_preview(self, graph: Any) -> bool:
        """Whether the view already shows `graph`, drawn ahead by its opening job."""
        kept = graph is self._previewed and self.graph_view.graph() is graph
        self._previewed = None
        return kept

    def _drop_preview(self) -> None:
        if self._previewed is not None:
            self._previewed = None
            self._on_variant_selected(None)  # type: ignore[attr-defined]

    # after the first paint: the heavy imports in the background ------------------------------
    def start_warmup(self) -> None:
        """Import the passes, torch, onnxruntime and transformers in the background (once)."""
        if self.warmup.started or not self.background_imports or exit_after_paint():
            return
        if self.jobs.busy:  # a job may be importing torch itself: after it
            self.jobs.finished.connect(self.start_warmup, Qt.ConnectionType.SingleShotConnection)
            return
        self.warmup_label.setText("Loading passes…")
        self.warmup_label.setVisible(True)
        self.warmup.start()

    def _on_first_paint(self) -> None:
        graph = self.graph_view.graph()
        if exit_after_paint():
            # the rest of the opening job (the weight statistics) is not waited for
            self.jobs.cancel()
            report_paint_and_exit(len(graph.nodes) if graph is not None else 0)
            return
        self.start_warmup()

    def _on_warmup_finished(self, registry: Registry) -> None:
        failed = len(registry.failed)
        self.warmup_label.setText(f"Passes ready ({failed} failed plugin(s): Tools ▸ Plugins)"
                                  if failed else "Passes ready")
        QTimer.singleShot(4000, self.warmup_label, self.warmup_label.hide)
        self.lazy["passes"].release()
        refresh_devices(self)  # torch is in now

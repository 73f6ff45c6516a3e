"""The main window: variant list, the tabs, inspector, status bar with jobs.

A thin client of the core `Session`: the use cases live there; the File menu and the job
actions are mixins (`qt_file_actions`, `qt_task_actions`); this module builds the window
and keeps the views in step with the selection.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QDockWidget,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QWidget,
)

from workbench.core.errors import WorkbenchError
from workbench.core.graph.graph_diff import diff_graphs
from workbench.core.graph.stats import weight_aliases
from workbench.core.jobs import Progress
from workbench.core.passes.registry import discover
from workbench.core.session.session import Session
from workbench.core.session.settings import Settings
from workbench.core.train.teacher_fit import teacher_misfit
from workbench.gui.qt_file_actions import QtFileActions
from workbench.gui.qt_graph_view import QtGraphView
from workbench.gui.qt_inspector import QtInspector
from workbench.gui.qt_menus import build_menus, refresh_recent
from workbench.gui.qt_task_actions import QtTaskActions
from workbench.gui.qt_variant_list import QtVariantList
from workbench.gui.qt_window_startup import QtWindowStartup
from workbench.gui.theme import accent, apply_theme
from workbench.gui.workers import QtJobRunner

log = logging.getLogger(__name__)

TABS = ("graph", "weights", "train", "benchmark", "compare")
DOCK_MIN_WIDTH = 180


class QtMainWindow(QtWindowStartup, QtFileActions, QtTaskActions, QMainWindow):
    """Workbench's main window over a `Session` (its workspace, settings and undo)."""

    model_opened = Signal(str)  # variant id
    open_failed = Signal(str)  # message
    pass_applied = Signal(str)  # new variant id
    pass_failed = Signal(str)  # message
    training_finished = Signal(list)  # new variant ids
    benchmark_finished = Signal(str)  # variant id
    recipe_finished = Signal(list)  # new variant ids
    save_failed = Signal(str)  # the project could not be written (from any thread)

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None,
                 remember_layout: bool = True) -> None:
        super().__init__(parent)
        self.remember_layout = remember_layout  # screenshots use the default layout
        self.setWindowTitle("Workbench")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        apply_theme(self.settings.theme)
        self.session = Session(self.settings, push=self.push)
        self.workspace = self.session.workspace
        self.jobs = QtJobRunner(self)
        self.show_dialogs = True  # tests turn modal dialogs off and read `last_error`
        self.background_imports = True  # after the first paint (off for a headless render)
        self.last_error: str | None = None
        self._job_panel: Any = None  # the panel that started the running job
        self._job_title = ""
        self._step_text = ""  # the running job's current step, and since when
        self._step_since = 0.0

        self.graph_view = QtGraphView()
        self.registry = discover()  # entry-point metadata only: nothing imported yet
        self._setup_lazy_panels()  # the panels not visible at start: built when first shown
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.graph_view, "Graph")
        for name in TABS[1:]:
            self.tabs.addTab(self.lazy[name], name.capitalize())
        self.setCentralWidget(self.tabs)
        self.variant_list = QtVariantList(self.workspace)
        self.variants_dock = self._dock("Variants", self.variant_list,
                                        Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector = QtInspector()
        self.inspector_dock = self._dock("Inspector", self.inspector,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.passes_dock = self._dock("Passes", self.lazy["passes"],
                                      Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.inspector_dock, self.passes_dock)
        self.inspector_dock.raise_()
        for dock in (self.variants_dock, self.inspector_dock, self.passes_dock):
            dock.setMinimumWidth(DOCK_MIN_WIDTH)  # no tab can squeeze a side panel away
        self.resizeDocks([self.variants_dock, self.inspector_dock], [330, 330],
                         Qt.Orientation.Horizontal)
        self.undo_stack = QUndoStack(self)
        self._build_status_bar()
        self.save_failed.connect(self._error)
        self._connect_panels()
        build_menus(self)
        self.settings.changed.connect(lambda: refresh_recent(self))
        if remember_layout:
            self.restore_layout()
        self._setup_background_imports()

    # construction -------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        self.status_label = QLabel(self.settings.warning or "Ready")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_job)
        # a long step with no news still shows time passing ("Quantizing… · 12 s")
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        self.warmup_label = QLabel()  # "Loading passes…" after the first paint
        self.warmup_label.setVisible(False)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.warmup_label)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.jobs.started.connect(self._on_job_started)
        self.jobs.progress.connect(self._on_job_progress)
        self.jobs.finished.connect(self._on_job_finished)

    def _connect_panel(self, panel: Any) -> None:
        """Connect a panel's requests to the window, when the panel is built."""
        if panel is self._built("passes"):
            panel.apply_requested.connect(self.apply_pass)
            panel.pick_nodes.connect(self._pick_nodes)
        elif panel is self._built("train"):
            panel.start_requested.connect(self.start_training)
            panel.pause_requested.connect(self.pause_job)
            panel.stop_requested.connect(self.cancel_job)
            panel.evaluate_requested.connect(self.evaluate_selected)
        elif panel is self._built("benchmark"):
            panel.start_requested.connect(self.start_benchmark)
            panel.stop_requested.connect(self.cancel_job)
            panel.profile_requested.connect(self.start_profile)
            panel.sensitivity_requested.connect(self.start_sensitivity)
            panel.ignore_requested.connect(self._add_to_ignore)
        elif panel is self._built("weights"):
            panel.tensor_selected.connect(self._on_tensor_selected)

    def _connect_panels(self) -> None:
        self.workspace.added.connect(lambda _id: self._refresh_train_panel())
        self.workspace.removed.connect(lambda _id: self._refresh_train_panel())
        self.workspace.renamed.connect(lambda *_: self._refresh_train_panel())
        self.workspace.selection_changed.connect(self._on_variant_selected)
        self.graph_view.node_selected.connect(self.show_node_details)

    def splitters(self) -> dict[str, QSplitter]:
        """The built panels' splitters by a stable name, `Panel.index` in the order the panel
        built them (for the saved layout)."""
        named: dict[str, QSplitter] = {}
        for holder in self.lazy.values():
            panel = holder.panel
            if panel is None:
                continue
            for i, splitter in enumerate(panel.findChildren(QSplitter)):
                named[f"{type(panel).__name__}.{i}"] = splitter
        return named

    def _error(self, message: str) -> None:
        self.last_error = message
        self.status_label.setText(message)
        if self.show_dialogs:
            QMessageBox.critical(self, "Workbench", message)

    # variants: delete, rename (undoable) --------------------------------------------------
    def push(self, command: Any) -> None:
        """Run a core command through the undo stack."""
        self.undo_stack.push(_QtCommand(command))

    def delete_selected(self) -> bool:
        """Delete the selected variant and its descendants (asking first when there are
        descendants); the selection moves to its parent. Returns whether it deleted."""
        entry = self.workspace.selected
        if entry is None:
            return False
        below = self.workspace.subtree(entry.id)[1:]
        if below and self.show_dialogs:
            names = ", ".join(e.name for e in below[:5]) + (" …" if len(below) > 5 else "")
            answer = QMessageBox.question(
                self, "Delete variant",
                f"Delete {entry.name} and the {len(below)} variant(s) made from it "
                f"({names})?\n\nEdit ▸ Undo brings them back.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                self.status_label.setText(f"Kept {entry.name}.")
                return False
        self.session.delete()
        # No collection here: a full one takes seconds with a few models open and would
        # freeze the window, and the undo history still holds the deleted variants anyway.
        self.jobs.thaw_memory()
        more = f" and {len(below)} variant(s) made from it" if below else ""
        self.status_label.setText(f"Deleted {entry.name}{more}; Edit ▸ Undo brings "
                                  f"{'them' if below else 'it'} back.")
        return True

    def rename_dialog(self) -> None:
        entry = self.workspace.selected
        if entry is None:
            return
        name, ok = QInputDialog.getText(self, "Rename variant", "Name:", text=entry.name)
        if ok and name.strip() and name.strip() != entry.name:
            try:
                self.session.rename(name.strip())
            except WorkbenchError as exc:
                self._error(str(exc))

    def _refresh_train_panel(self) -> None:
        entry = self.workspace.selected
        teachers = [(e.id, e.name) for e in self.workspace.entries()  # those that fit only
                    if entry is None or (e.id != entry.id
                                         and teacher_misfit(entry.analysis, e.analysis) is None)]
        self._panel_call("train", "set_variant", entry.name if entry else None, teachers)

    def _add_to_ignore(self, layers: list[str]) -> None:
        """Put layers into the current pass's ignore list (a prune pass by default)."""
        panel = self.passes_panel
        cls = panel.current_pass()
        if cls is None or not any(p.name == "ignore" for p in cls.param_specs()):
            panel.select_pass("prune.structured")
        panel.add_to_list_param("ignore", layers)
        self.passes_dock.raise_()
        self.status_label.setText(f"Added {len(layers)} layer(s) to the ignore list.")

    def _pick_nodes(self, param: str) -> None:
        entry = self.workspace.selected
        node_name = self.graph_view.selected_node()
        if entry is None or not node_name:
            self._error("Select a node in the Graph tab first.")
            return
        graph = entry.analysis.graph
        if node_name.startswith("module:"):
            value = node_name.removeprefix("module:")
        elif entry.analysis.variant.backend == "torch":
            value = ".".join(graph.node(node_name).module_path) or node_name
        else:
            value = node_name
        self.passes_panel.add_to_list_param(param, [value])

    # drag and drop ------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_source(url.toLocalFile())
                event.acceptProposedAction()
                return

    # jobs ---------------------------------------------------------------------------------
    def _launch(self, make: Any, on_done: Any, what: str, panel: Any = None,
                on_failed: Any = None) -> Any:
        worker = super()._launch(make, on_done, what, panel, on_failed)
        if worker is not None:
            self._job_panel = panel
        return worker

    def cancel_job(self) -> None:
        """Cancel the running job; say "Stopping…" for a job that keeps what it has
        (training, benchmark) and "Cancelling…" for one that is dropped."""
        if not self.jobs.busy or self.jobs.cancelling:
            return
        graceful = self.jobs.graceful
        self.jobs.cancel()
        self._set_step(f"{'Stopping' if graceful else 'Cancelling'} {self._job_title}…")
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("Stopping…" if graceful else "Cancelling…")
        stopping = getattr(self._job_panel, "set_stopping", None)
        if callable(stopping):
            stopping()

    def pause_job(self, pause: bool) -> None:
        """Pause or resume the running job (training waits at its next batch)."""
        if not self.jobs.busy:
            return
        if pause:
            self.jobs.pause()
            self._set_step(f"Paused: {self._job_title}")
            self.progress.setFormat("Paused at %p%")
        else:
            self.jobs.resume()
            self._set_step(f"Resuming {self._job_title}…")
            self.progress.setFormat("%p%")

    def _set_step(self, text: str) -> None:
        self._step_text, self._step_since = text, time.monotonic()
        self.status_label.setText(text)

    def _tick(self) -> None:
        if not self.jobs.busy or self.jobs.paused or self.jobs.cancelling:
            return
        elapsed = time.monotonic() - self._step_since
        if elapsed >= 2:
            self.status_label.setText(f"{self._step_text} · {elapsed:.0f} s")

    def _on_job_started(self, title: str) -> None:
        self._job_title = title
        self._set_step(title + "…")
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setVisible(True)
        self._panel_call("passes", "set_busy", True)
        self._ticker.start()

    def _on_job_progress(self, step: Progress) -> None:
        """Events go to the panel that started the job; the status bar names the step."""
        self._show_preview(step.payload)  # an opening job's graph, before its statistics
        if self._job_panel is not None:
            self._job_panel.on_progress(step)
        if step.fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(step.fraction * 100))
        if step.message and not self.jobs.paused and not self.jobs.cancelling \
                and step.message != self._step_text:
            self._set_step(step.message)

    def _on_job_finished(self) -> None:
        panel, outcome = self._job_panel, self.jobs.outcome
        self._job_panel = None
        self._drop_preview()  # a graph shown early whose job failed or was cancelled
        self._ticker.stop()
        self.progress.setVisible(False)
        self.progress.setFormat("%p%")
        self.cancel_button.setVisible(False)
        self._panel_call("passes", "set_busy", False)
        if panel is not None:
            panel.set_running(False)  # a cancelled job reaches neither done nor failed
        train = self._built("train")
        if panel is not None and panel is train:
            train.finish(outcome or "done")
            self._refresh_train_panel()
        if outcome == "cancelled":
            self.status_label.setText(f"Cancelled: {self._job_title}.")
        elif outcome == "stopped" and (panel is None or panel is not train):
            self.status_label.setText(f"Stopped: {self._job_title}; what was measured "
                                      "is kept.")

    # selection ----------------------------------------------------------------------------
    def _on_variant_selected(self, variant_id: object) -> None:
        entry = self.workspace.selected
        busy_panel = self._job_panel if self.jobs.busy else None
        bench_busy = busy_panel is not None and busy_panel is self._built("benchmark")
        train_busy = busy_panel is not None and busy_panel is self._built("train")
        if entry is None:
            self.graph_view.set_graph(None)
            self._panel_call("weights", "set_stats", None)
            self.inspector.show_nothing()
            self._panel_call("passes", "set_variant", None)
            self._panel_call("passes", "clear_report")
            if not bench_busy:
                self._panel_call("benchmark", "show_variant", None)
            if not train_busy:
                self._panel_call("train", "show_history", None, None)
            self._refresh_train_panel()
            self.setWindowTitle("Workbench")
            return
        a = entry.analysis
        parent = self.workspace.parent_of(entry.id)
        if not self._keep_preview(a.graph):
            self.graph_view.set_graph(a.graph)
        self._show_heat(entry.results.get("profile"))  # this variant's own profile, or none
        self._panel_call("weights", "set_stats", a.stats,
                         parent.analysis.stats if parent else None)
        self.inspector.show_graph(entry.name, a.graph)
        self._panel_call("passes", "set_variant", a.variant, a)
        self._refresh_train_panel()
        # each panel shows this variant's results, or says it has none; a panel whose job
        # still runs keeps showing (and naming) the variant that job is about
        if not bench_busy:
            self._panel_call("benchmark", "show_variant", entry.name, entry.results)
        if not train_busy:
            self._panel_call("train", "show_history", entry.name, entry.results.get("history"))
        report = entry.results.get("report")
        if report is not None:
            self._panel_call("passes", "show_report", report)
        else:
            self._panel_call("passes", "clear_report",
                             f"{entry.name} was not made by a pass: no report.")
        if parent is not None:
            diff = diff_graphs(parent.analysis.graph, a.graph)
            if diff.comparable:
                self.graph_view.set_highlight(
                    [c["name"] for c in diff.changed] + diff.added, accent("changed"))
        self.setWindowTitle(f"Workbench — {entry.name}")

    def _show_heat(self, profile: Any) -> None:
        if profile is None or not getattr(profile, "times", None):
            self.graph_view.set_heat(None)
            return
        top = max(profile.times.values(), default=0.0) or 1.0
        self.graph_view.set_heat({k: v / top for k, v in profile.times.items()})

    def show_node_details(self, name: str) -> None:
        """Fill the inspector and the Weights tab for a node or a group id."""
        entry = self.workspace.selected
        # an opening job shows its graph before its variant exists: look the node up there
        previewed = getattr(self, "_previewed", None)
        if entry is None and previewed is None:
            return
        graph = previewed if previewed is not None else entry.analysis.graph
        for kind, tensors in (("input", graph.inputs), ("output", graph.outputs)):
            if name.startswith(f"{kind}:"):
                tensor = next((t for t in tensors if t.name == name[len(kind) + 1:]), None)
                if tensor is not None:
                    self.inspector.show_tensor(kind, tensor)
                return
        if name.startswith("module:"):
            path = tuple(name.removeprefix("module:").split("."))
            members = [n for n in graph.nodes if n.module_path[:len(path)] == path]
            self.inspector.show_module(path, members, graph.module_types.get(path))
            tensors = [p for n in members for p in n.param_names]
        else:
            try:
                node = graph.node(name)
            except KeyError:
                return
            self.inspector.show_node(node)
            tensors = node.param_names
        weights = self._built("weights")
        if weights is None or previewed is not None or entry is None:
            return  # no Weights tab yet, or its weights are the previous variant's
        aliases = weight_aliases(entry.analysis.variant)  # int8 initializer -> float name
        for t in tensors:
            if weights.select_tensor(aliases.get(t, t)):
                break

    def _on_tensor_selected(self, tensor: str) -> None:
        entry = self.workspace.selected
        if entry is None:
            return
        stored = {v: k for k, v in weight_aliases(entry.analysis.variant).items()}
        names = {tensor, stored.get(tensor, tensor)}
        for node in entry.analysis.graph.nodes:
            if names & set(node.param_names):
                self.graph_view.select_node(node.name)
                self.inspector.show_node(node)
                return

    def show_tab(self, key: str) -> None:
        self.tabs.setCurrentIndex(TABS.index(key))

    def closeEvent(self, event: Any) -> None:
        if not self.confirm_quit():
            event.ignore()
            return
        self.jobs.cancel()
        if self.remember_layout:
            self.save_layout()
        if self.session.project is not None:
            self.session.project.close()
        super().closeEvent(event)


class _QtCommand(QUndoCommand):
    """Adapts a core command (redo/undo/text) to Qt's undo stack."""

    def __init__(self, command: Any) -> None:
        super().__init__(command.text)
        self.command = command

    def redo(self) -> None:
        self.command.redo()

    def undo(self) -> None:
        self.command.undo()

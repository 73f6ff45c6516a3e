"""The main window: variant list, Graph/Weights tabs, inspector, status bar with jobs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QWidget,
)

from workbench.core.errors import (
    ArchitectureRequiredError,
    TrustRequiredError,
    WorkbenchError,
)
from workbench.core.graph.analysis import Analysis
from workbench.core.graph.graph_diff import diff_graphs
from workbench.core.jobs import Progress, run_job
from workbench.core.model.export import EXPORT_FILTER, export_variant
from workbench.core.model.loaders import FILE_FILTER
from workbench.core.model.zoo import ZOO
from workbench.core.passes.registry import discover
from workbench.core.session.commands import AddVariant, DeleteVariant, RenameVariant
from workbench.core.session.recipe import Recipe
from workbench.core.session.session import Session
from workbench.core.session.settings import Settings, cuda_available, runs_dir
from workbench.gui.qt_benchmark_panel import QtBenchmarkPanel
from workbench.gui.qt_compare_panel import QtComparePanel
from workbench.gui.qt_graph_view import QtGraphView
from workbench.gui.qt_inspector import QtInspector
from workbench.gui.qt_passes_panel import QtPassesPanel
from workbench.gui.qt_plugins_dialog import QtPluginsDialog
from workbench.gui.qt_train_panel import QtTrainPanel
from workbench.gui.qt_variant_list import QtVariantList
from workbench.gui.qt_weights_panel import QtWeightsPanel
from workbench.gui.workers import QtJobRunner

TABS = ("graph", "weights", "train", "benchmark", "compare")


class QtMainWindow(QMainWindow):
    """Workbench's main window. All state lives in `workspace` and `settings`."""

    model_opened = Signal(str)  # variant id
    open_failed = Signal(str)  # message
    pass_applied = Signal(str)  # new variant id
    pass_failed = Signal(str)  # message
    training_finished = Signal(list)  # new variant ids
    benchmark_finished = Signal(str)  # variant id

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Workbench")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        self.session = Session(self.settings, push=self.push)
        self.workspace = self.session.workspace
        self.jobs = QtJobRunner(self)
        self.show_dialogs = True  # tests turn modal dialogs off and read `last_error`
        self.last_error: str | None = None

        self.graph_view = QtGraphView()
        self.weights_panel = QtWeightsPanel()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.graph_view, "Graph")
        self.tabs.addTab(self.weights_panel, "Weights")
        self.train_panel = QtTrainPanel()
        self.tabs.addTab(self.train_panel, "Train")
        self.benchmark_panel = QtBenchmarkPanel()
        self.tabs.addTab(self.benchmark_panel, "Benchmark")
        self.setCentralWidget(self.tabs)

        self.compare_panel = QtComparePanel(self.workspace)
        self.tabs.addTab(self.compare_panel, "Compare")
        self.variant_list = QtVariantList(self.workspace)
        self.variants_dock = self._dock("Variants", self.variant_list,
                                        Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector = QtInspector()
        self.inspector_dock = self._dock("Inspector", self.inspector,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.registry = discover()
        self.passes_panel = QtPassesPanel(self.registry)
        self.passes_dock = self._dock("Passes", self.passes_panel,
                                      Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.inspector_dock, self.passes_dock)
        self.inspector_dock.raise_()
        self.resizeDocks([self.variants_dock, self.inspector_dock], [360, 340],
                         Qt.Orientation.Horizontal)
        self.undo_stack = QUndoStack(self)
        self._run_dirs: dict[str, str] = {}  # variant id -> checkpoint folder of its last run
        self.passes_panel.apply_requested.connect(self.apply_pass)
        self.passes_panel.pick_nodes.connect(self._pick_nodes)
        self.train_panel.start_requested.connect(self.start_training)
        self.train_panel.pause_requested.connect(
            lambda pause: self.jobs.pause() if pause else self.jobs.resume())
        self.train_panel.stop_requested.connect(self.jobs.cancel)
        self.train_panel.evaluate_requested.connect(self.evaluate_selected)
        self.benchmark_panel.start_requested.connect(self.start_benchmark)
        self.benchmark_panel.stop_requested.connect(self.jobs.cancel)
        self.benchmark_panel.profile_requested.connect(self.start_profile)
        self.benchmark_panel.sensitivity_requested.connect(self.start_sensitivity)
        self.benchmark_panel.ignore_requested.connect(self._add_to_ignore)
        self.workspace.added.connect(lambda _id: self._refresh_train_panel())
        self.workspace.removed.connect(lambda _id: self._refresh_train_panel())
        self.workspace.renamed.connect(lambda *_: self._refresh_train_panel())

        self.status_label = QLabel("Ready")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.jobs.cancel)
        self.statusBar().addWidget(self.status_label, 1)
        if self.settings.warning:
            self.status_label.setText(self.settings.warning)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.jobs.started.connect(self._on_job_started)
        self.jobs.started.connect(lambda _t: self.passes_panel.set_busy(True))
        self.jobs.finished.connect(lambda: self.passes_panel.set_busy(False))
        self.jobs.progress.connect(self._on_job_progress)
        self.jobs.finished.connect(self._on_job_finished)

        self._build_menus()
        self.workspace.selection_changed.connect(self._on_variant_selected)
        self.graph_view.node_selected.connect(self.show_node_details)
        self.weights_panel.tensor_selected.connect(self._on_tensor_selected)
        self.settings.changed.connect(self._refresh_recent)

    # construction -------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        act = QAction("&Open…", self, shortcut=QKeySequence.StandardKey.Open)
        act.triggered.connect(self.open_dialog)
        file_menu.addAction(act)
        act = QAction("Open &Zoo Model…", self, shortcut="Ctrl+Shift+O")
        act.triggered.connect(self.open_zoo_dialog)
        file_menu.addAction(act)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._refresh_recent()
        file_menu.addSeparator()
        act = QAction("Open &Project…", self, shortcut="Ctrl+Shift+P")
        act.triggered.connect(self.open_project_dialog)
        file_menu.addAction(act)
        act = QAction("Save as Pro&ject…", self, shortcut=QKeySequence.StandardKey.SaveAs)
        act.triggered.connect(self.save_project_dialog)
        file_menu.addAction(act)
        file_menu.addSeparator()
        act = QAction("&Export Variant…", self, shortcut="Ctrl+E")
        act.triggered.connect(self.export_dialog)
        file_menu.addAction(act)
        act = QAction("Save &Recipe…", self)
        act.triggered.connect(self.save_recipe_dialog)
        file_menu.addAction(act)
        file_menu.addSeparator()
        act = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        act.triggered.connect(self.close)
        file_menu.addAction(act)

        edit = self.menuBar().addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit.addAction(undo)
        edit.addAction(redo)
        edit.addSeparator()
        act = QAction("Re&name Variant…", self, shortcut="F2")
        act.triggered.connect(self.rename_dialog)
        edit.addAction(act)
        act = QAction("&Delete Variant", self, shortcut=QKeySequence.StandardKey.Delete)
        act.triggered.connect(self.delete_selected)
        edit.addAction(act)

        view = self.menuBar().addMenu("&View")
        view.addAction(self.variants_dock.toggleViewAction())
        view.addAction(self.inspector_dock.toggleViewAction())
        view.addAction(self.passes_dock.toggleViewAction())

        tools = self.menuBar().addMenu("&Tools")
        act = QAction("&Plugins…", self)
        act.triggered.connect(lambda: QtPluginsDialog(self.registry, self).exec())
        tools.addAction(act)

        settings = self.menuBar().addMenu("&Settings")
        device = settings.addMenu("&Device")
        group = QActionGroup(self)
        self.device_actions: dict[str, QAction] = {}
        has_cuda = cuda_available()
        for key, label in (("cpu", "CPU"), ("cuda", "GPU (CUDA)")):
            a = QAction(label, self, checkable=True)
            a.setChecked(self.settings.device == key)
            a.setEnabled(key == "cpu" or has_cuda)
            if key == "cuda" and not has_cuda:
                a.setToolTip("No CUDA device is available on this machine.")
            a.triggered.connect(lambda _=False, k=key: self.settings.set_device(k))
            group.addAction(a)
            device.addAction(a)
            self.device_actions[key] = a

        act = QAction("Pass &time limit…", self)
        act.triggered.connect(self._time_limit_dialog)
        settings.addAction(act)

        help_menu = self.menuBar().addMenu("&Help")
        act = QAction("&About Workbench", self)
        act.triggered.connect(lambda: QMessageBox.about(
            self, "About Workbench",
            "Workbench — see, prune, quantize, distill, benchmark and export neural networks."))
        help_menu.addAction(act)

    def _time_limit_dialog(self) -> None:
        seconds, ok = QInputDialog.getDouble(
            self, "Pass time limit", "Abandon a pass after this many seconds (0: no limit):",
            self.settings.pass_time_limit_s, 0.0, 86_400.0, 0)
        if ok:
            self.settings.set_pass_time_limit(seconds)

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for src in self.settings.recent_files:
            a = self.recent_menu.addAction(src)
            a.triggered.connect(lambda _=False, s=src: self.open_source(s))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    # opening ------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", FILE_FILTER)
        if path:
            self.open_source(path)

    def open_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open project")
        if folder:
            self.open_project(folder)

    def save_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save as project (an empty folder)")
        if folder:
            self.save_project(folder)

    def open_project(self, folder: str) -> bool:
        """Replace the variants with a project's; every later change autosaves to it."""
        if self.jobs.busy:
            self._error("Another job is running; wait for it or cancel it first.")
            return False
        try:
            self.session.open_project(folder)
        except WorkbenchError as exc:
            self._error(str(exc))
            return False
        self.undo_stack.clear()
        self._on_project(folder)
        return True

    def save_project(self, folder: str) -> bool:
        """Save every variant as a project in `folder`; later changes autosave."""
        try:
            self.session.save_as_project(folder)
        except WorkbenchError as exc:
            self._error(str(exc))
            return False
        self._on_project(folder)
        return True

    def _on_project(self, folder: str) -> None:
        project = self.session.project
        project.save_failed.connect(lambda _vid, message: self._error(message))
        self.setWindowTitle(f"{Path(folder).name} — Workbench")
        self.status_label.setText(f"Project {folder}: every change is saved as it happens.")

    def open_zoo_dialog(self) -> None:
        labels = [f"{name} — {e.description}" for name, e in ZOO.items()]
        choice, ok = QInputDialog.getItem(self, "Open zoo model", "Model:", labels, 0, False)
        if ok and choice:
            self.open_source("zoo:" + choice.split(" — ")[0])

    def open_source(self, source: str, **options: Any) -> Any:
        """Load and analyse `source` in a worker; returns the worker (or None if busy)."""
        if self.jobs.busy:
            self._error("Another job is running; wait for it or cancel it first.")
            return None
        options = {k: v for k, v in options.items() if v not in (None, False)}
        return self.jobs.run_task(
            self.session.open(source, **options),
            on_done=lambda entry: self._on_opened(entry),
            on_error=lambda exc: self._on_open_error(source, options, exc))

    def _on_opened(self, entry: Any) -> None:
        self.status_label.setText(f"Opened {entry.analysis.variant.name}")
        self.model_opened.emit(entry.id)

    def _on_open_error(self, source: str, options: dict[str, Any], exc: BaseException) -> None:
        if isinstance(exc, TrustRequiredError) and self.show_dialogs:
            answer = QMessageBox.warning(
                self, "Untrusted file",
                f"{exc}\n\nLoad it anyway?", QMessageBox.StandardButton.Yes
                | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer == QMessageBox.StandardButton.Yes:
                self._retry(source, {**options, "trust": True})
            else:
                self.status_label.setText(f"Not opened: {Path(source).name} was not trusted.")
            return
        if isinstance(exc, ArchitectureRequiredError) and self.show_dialogs:
            names = [n for n in ZOO if n != "minilm"]
            arch, ok = QInputDialog.getItem(
                self, "Architecture needed",
                f"{exc}\n\nArchitecture (zoo name or package.module:Class):", names, 0, True)
            if ok and arch:
                self._retry(source, {**options, "arch": arch})
            return
        message = str(exc) if isinstance(exc, WorkbenchError) else (
            f"Unexpected error: {type(exc).__name__}: {exc}")
        self._error(message)
        self.open_failed.emit(message)

    def _retry(self, source: str, options: dict[str, Any]) -> None:
        # The worker's `finished` fires after `errored`; start the retry once it is idle.
        def again() -> None:
            self.jobs.finished.disconnect(again)
            self.open_source(source, **options)

        self.jobs.finished.connect(again)

    def _error(self, message: str) -> None:
        self.last_error = message
        self.status_label.setText(message)
        if self.show_dialogs:
            QMessageBox.critical(self, "Workbench", message)

    # variants: apply, delete, rename (undoable), export ---------------------------------
    def push(self, command: Any) -> None:
        """Run a core command through the undo stack."""
        self.undo_stack.push(_QtCommand(command))

    def delete_selected(self) -> None:
        entry = self.workspace.selected
        if entry is not None:
            self.push(DeleteVariant(self.workspace, entry.id))
            if not self.jobs.busy:
                self.jobs.release_memory()

    def rename_dialog(self) -> None:
        entry = self.workspace.selected
        if entry is None:
            return
        name, ok = QInputDialog.getText(self, "Rename variant", "Name:", text=entry.name)
        if ok and name.strip() and name.strip() != entry.name:
            self.push(RenameVariant(self.workspace, entry.id, name.strip()))

    def apply_pass(self, pass_name: str, values: dict[str, Any]) -> Any:
        """Apply a pass to the selected variant in a worker; returns the worker."""
        if self.jobs.busy:
            self._error("Another job is running; wait for it or cancel it first.")
            return None
        try:
            task = self.session.apply(pass_name, values)
        except WorkbenchError as exc:
            self._error(str(exc))
            self.pass_failed.emit(str(exc))
            return None

        def done(result: Any) -> None:
            self.passes_panel.show_report(result.report)
            self.status_label.setText(f"{pass_name}: new variant {result.variant.name}")
            self.pass_applied.emit(result.variant.id)

        def failed(exc: BaseException) -> None:
            message = str(exc) if isinstance(exc, WorkbenchError) else (
                f"{pass_name} failed: {type(exc).__name__}: {exc}")
            self._error(message)
            self.pass_failed.emit(message)

        return self.jobs.run_task(task, done, failed)

    # training ---------------------------------------------------------------------------
    def _refresh_train_panel(self) -> None:
        entry = self.workspace.selected
        teachers = [(e.id, e.name) for e in self.workspace.entries()
                    if entry is None or e.id != entry.id]
        self.train_panel.set_variant(entry.name if entry else None, teachers)

    def start_training(self, options: dict[str, Any]) -> Any:
        """Train, distill or prune-and-fine-tune the selected variant in a worker."""
        from workbench.core.graph.analysis import analyse
        from workbench.core.train.data import load_dataset
        from workbench.core.train.distill import distill, prune_finetune
        from workbench.core.train.training import TrainConfig, train

        entry = self.workspace.selected
        if entry is None or self.jobs.busy:
            self._error("Select a variant, and wait for the running job to finish.")
            return None
        variant = entry.analysis.variant
        teacher_id = options.get("teacher")
        teacher = (self.workspace.get(teacher_id).analysis.variant
                   if options["mode"] == "distill" and teacher_id in self.workspace else None)
        if options["mode"] == "distill" and teacher is None:
            self._error("Open or make a teacher variant first.")
            return None
        try:
            run_dir = self._run_dirs.get(variant.id)
            resume = bool(options.get("resume")) and run_dir is not None
            if not resume:
                run_dir = str(runs_dir() / f"{variant.id}-{time.strftime('%Y%m%d-%H%M%S')}")
            cfg = TrainConfig(**options["config"], device=self.settings.device,
                              checkpoint_dir=run_dir, resume=resume)
            cfg.validate()
        except (WorkbenchError, TypeError) as exc:
            self._error(str(exc))
            return None

        def job(token: Any) -> Any:
            spec = variant.inputs[0] if variant.inputs else None
            if spec is None:
                raise WorkbenchError(f"{variant.name} has no declared input shape.")
            yield Progress(0.0, f"Loading {options['dataset']}…")
            data = load_dataset(options["dataset"], spec.shape, seed=cfg.seed,
                                input_dtype=spec.dtype)
            x, y = data.samples(16)
            images = x.reshape(len(x), -1, *x.shape[-2:]).mean(1).numpy() if x.ndim >= 3 \
                else x.reshape(len(x), 1, -1).numpy()
            names = [data.class_names[int(i)] if data.class_names else f"{float(i):.2f}"
                     for i in y]
            yield Progress(0.0, "Dataset ready", {"kind": "samples", "images": images,
                                                  "labels": names})
            if options["mode"] == "prune":
                schedule = yield from prune_finetune(
                    variant, data, options["rounds"], options["step"], cfg, options["budget"],
                    token)
                outs = [(run_job(analyse(r.variant)), r.accuracy) for r in
                        schedule.rounds]
                return outs
            if options["mode"] == "distill":
                result = yield from distill(teacher, variant, data, cfg,
                                            options["temperature"], options["alpha"],
                                            transfer=options.get("transfer", False),
                                            cancel=token)
            else:
                result = yield from train(variant, data, cfg, token)
            acc = result.test.accuracy if result.test else None
            return [(run_job(analyse(result.variant)), acc)]

        def done(outs: list[tuple[Analysis, float | None]]) -> None:
            self.train_panel.set_running(False)
            for analysis, acc in outs:
                self.push(AddVariant(self.workspace, analysis,
                                     {"accuracy": acc} if acc is not None else None))
            self.status_label.setText(f"Training finished: {len(outs)} new variant(s); "
                                      f"checkpoints in {cfg.checkpoint_dir}")
            self.training_finished.emit([a.variant.id for a, _ in outs])

        def failed(exc: BaseException) -> None:
            self.train_panel.set_running(False)
            self._error(str(exc) if isinstance(exc, WorkbenchError) else
                        f"Training failed: {type(exc).__name__}: {exc}")

        self._run_dirs[variant.id] = str(run_dir)
        self.train_panel.set_running(True)
        return self.jobs.run(f"Training {variant.name}", job, done, failed, graceful=True)

    def evaluate_selected(self, dataset: str) -> Any:
        """Evaluate the selected variant on a dataset; fills its accuracy column.

        Embedding models (no labels) are measured by fidelity against their parent instead.
        """
        from workbench.core.model.fidelity import fidelity_report
        from workbench.core.train.data import load_dataset
        from workbench.core.train.training import evaluate

        entry = self.workspace.selected
        if entry is None or self.jobs.busy:
            return None
        variant = entry.analysis.variant
        parent = self.workspace.parent_of(entry.id)
        embedding = variant.metadata.get("task") == "embedding"
        if embedding and parent is None:
            self._error(f"{entry.name} is an embedding model: its fidelity is measured "
                        "against a parent variant. Select an optimized child.")
            return None

        def job(token: Any) -> Any:
            yield Progress(None, f"Evaluating {entry.name}…")
            if embedding:
                report, _ = fidelity_report(parent.analysis.variant, variant, samples=24,
                                            per_layer=False)
                return ("fidelity", report)
            spec = variant.inputs[0]
            data = load_dataset(dataset, spec.shape, input_dtype=spec.dtype)
            return ("accuracy", evaluate(variant, data))

        def done(result: Any) -> None:
            kind, value = result
            if kind == "fidelity":
                if "cosine" not in value:
                    self._error(f"Fidelity could not be measured: {value.get('error')}")
                    return
                self.workspace.set_result(entry.id, "fidelity", value["cosine"])
                self.status_label.setText(f"{entry.name}: cosine {value['cosine']:.4f} "
                                          "against its parent")
                return
            self.workspace.set_result(entry.id, "accuracy", value.accuracy)
            self.status_label.setText(f"{entry.name}: accuracy {value.accuracy:.4f}, loss "
                                      f"{value.loss:.4f}")

        return self.jobs.run("Evaluating", job, done, lambda exc: self._error(str(exc)))

    # benchmark, profile, sensitivity ------------------------------------------------------
    def start_benchmark(self, options: dict[str, Any]) -> Any:
        """Benchmark the selected variant in a worker; results are stored with it."""
        from workbench.core.measure.benchmark import BenchConfig, benchmark

        entry = self.workspace.selected
        if entry is None or self.jobs.busy:
            self._error("Select a variant, and wait for the running job to finish.")
            return None
        try:
            cfg = BenchConfig(device=self.settings.device, **options)
            cfg.validate()
        except (WorkbenchError, TypeError, ValueError) as exc:
            self._error(str(exc))
            return None
        variant = entry.analysis.variant

        def done(result: Any) -> None:
            self.benchmark_panel.set_running(False)
            self.workspace.set_result(entry.id, "benchmark", result)
            first = min(result.records, key=lambda r: r.batch) if result.records else None
            if first is not None:
                self.workspace.set_result(entry.id, "latency_ms", first.p50_ms)
            self.benchmark_finished.emit(entry.id)

        def failed(exc: BaseException) -> None:
            self.benchmark_panel.set_running(False)
            self._error(str(exc) if isinstance(exc, WorkbenchError) else
                        f"Benchmark failed: {type(exc).__name__}: {exc}")

        self.benchmark_panel.set_running(True)
        self.benchmark_panel.reset()
        return self.jobs.run(f"Benchmarking {variant.name}",
                             lambda token: benchmark(variant, cfg, token), done, failed,
                             graceful=True)

    def start_profile(self, options: dict[str, Any]) -> Any:
        from workbench.core.measure.profile import profile_layers

        entry = self.workspace.selected
        if entry is None or self.jobs.busy:
            return None
        variant = entry.analysis.variant

        def job(token: Any) -> Any:
            yield Progress(None, "Profiling layers…")
            return profile_layers(variant, options.get("runtime", "auto"),
                                  options.get("batch", 1))

        def done(profile: Any) -> None:
            self.benchmark_panel.set_running(False)
            self.workspace.set_result(entry.id, "profile", profile)
            self.benchmark_panel.show_profile(profile)
            top = max(profile.times.values(), default=0.0) or 1.0
            self.graph_view.set_heat({k: v / top for k, v in profile.times.items()})
            self.status_label.setText("Profile ready: the Graph tab shows a heat map.")

        def failed(exc: BaseException) -> None:
            self.benchmark_panel.set_running(False)
            self._error(str(exc))

        self.benchmark_panel.set_running(True)
        return self.jobs.run("Profiling", job, done, failed)

    def start_sensitivity(self, options: dict[str, Any]) -> Any:
        from workbench.core.measure.sensitivity import sensitivity
        from workbench.core.train.data import load_dataset

        entry = self.workspace.selected
        if entry is None or self.jobs.busy:
            return None
        variant = entry.analysis.variant

        def job(token: Any) -> Any:
            data = None
            if options.get("data"):
                spec = variant.inputs[0]
                data = load_dataset(options["data"], spec.shape, input_dtype=spec.dtype)
            rows = yield from sensitivity(variant, data, options["method"], options["ratio"],
                                          cancel=token)
            return rows

        def done(rows: Any) -> None:
            self.benchmark_panel.set_running(False)
            self.workspace.set_result(entry.id, "sensitivity", rows)
            self.benchmark_panel.show_sensitivity(rows)

        def failed(exc: BaseException) -> None:
            self.benchmark_panel.set_running(False)
            self._error(str(exc))

        self.benchmark_panel.set_running(True)
        return self.jobs.run("Sensitivity analysis", job, done, failed)

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

    def export_dialog(self) -> None:
        entry = self.workspace.selected
        if entry is None:
            self._error("Open a model first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export variant", entry.name.replace(
            "·", "_").replace(":", "_"), EXPORT_FILTER)
        if not path:
            return
        opset = 18
        if path.lower().endswith(".onnx") and entry.analysis.variant.backend == "torch":
            opset, ok = QInputDialog.getInt(self, "ONNX opset", "Opset version:", 18, 13, 21)
            if not ok:
                return
        self.export_to(path, opset)

    def export_to(self, path: str, opset: int = 18) -> Any:
        """Export the selected variant in a worker (ONNX conversion can take a while)."""
        entry = self.workspace.selected
        if entry is None or self.jobs.busy:
            self._error("Select a variant, and wait for the running job to finish.")
            return None
        variant = entry.analysis.variant

        def job(token: Any) -> Any:
            yield Progress(None, f"Exporting to {path}…")
            return export_variant(variant, path, opset=opset)

        return self.jobs.run(
            "Exporting", job,
            on_result=lambda w: self.status_label.setText(f"Wrote {w['output']}"),
            on_error=lambda exc: self._error(str(exc)))

    def save_recipe_dialog(self) -> None:
        entry = self.workspace.selected
        if entry is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", "recipe.json",
                                              "Recipe (*.json)")
        if path:
            try:
                Recipe.of(entry.analysis.variant).save(path)
            except OSError as exc:
                self._error(f"Could not write {path}: {exc}")
                return
            self.status_label.setText(f"Wrote {path}")

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
    def _on_job_started(self, title: str) -> None:
        self.status_label.setText(title + "…")
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)

    def _on_job_progress(self, step: Progress) -> None:
        payload = step.payload if isinstance(step.payload, dict) else {}
        if payload.get("kind") == "samples":
            self.train_panel.show_samples(payload["images"], payload["labels"])
        elif payload.get("kind") in ("batch", "epoch", "round", "round_start"):
            self.train_panel.on_progress(step)
        elif payload.get("kind") in ("latency", "record"):
            self.benchmark_panel.on_progress(step)
        if step.fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(step.fraction * 100))
        if step.message:
            self.status_label.setText(step.message)

    def _on_job_finished(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)

    # selection ----------------------------------------------------------------------------
    def _on_variant_selected(self, variant_id: object) -> None:
        entry = self.workspace.selected
        if entry is None:
            self.graph_view.set_graph(None)
            self.weights_panel.set_stats(None)
            self.inspector.show_nothing()
            self.passes_panel.set_variant(None)
            self._refresh_train_panel()
            self.setWindowTitle("Workbench")
            return
        a = entry.analysis
        parent = self.workspace.parent_of(entry.id)
        self.graph_view.set_graph(a.graph)
        self.weights_panel.set_stats(a.stats, parent.analysis.stats if parent else None)
        self.inspector.show_graph(entry.name, a.graph)
        self.passes_panel.set_variant(a.variant)
        self._refresh_train_panel()
        if not self.jobs.busy:
            self.benchmark_panel.reset()
            bench = entry.results.get("benchmark")
            for record in getattr(bench, "records", []):
                self.benchmark_panel.add_record(record)
        report = entry.results.get("report")
        if report is not None:
            self.passes_panel.show_report(report)
        if parent is not None:
            diff = diff_graphs(parent.analysis.graph, a.graph)
            if diff.comparable:
                self.graph_view.set_highlight(
                    [c["name"] for c in diff.changed] + diff.added, "#f59e0b")
        self.setWindowTitle(f"Workbench — {entry.name}")

    def show_node_details(self, name: str) -> None:
        """Fill the inspector and the Weights tab for a node or a group id."""
        entry = self.workspace.selected
        if entry is None:
            return
        graph = entry.analysis.graph
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
        for t in tensors:
            if self.weights_panel.select_tensor(t):
                break

    def _on_tensor_selected(self, tensor: str) -> None:
        entry = self.workspace.selected
        if entry is None:
            return
        for node in entry.analysis.graph.nodes:
            if tensor in node.param_names:
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
        if self.session.project is not None:
            self.session.project.close()
        super().closeEvent(event)

    def confirm_quit(self) -> bool:
        """Variants not in a project would be lost: offer to save them first."""
        if self.session.project is not None or not len(self.workspace) or \
                not self.show_dialogs:
            return True
        answer = QMessageBox.question(
            self, "Quit Workbench",
            f"{len(self.workspace)} variant(s) are not saved in a project. Save them first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            folder = QFileDialog.getExistingDirectory(self, "Save as project (an empty folder)")
            return bool(folder) and self.save_project(folder)
        return answer == QMessageBox.StandardButton.Discard


class _QtCommand(QUndoCommand):
    """Adapts a core command (redo/undo/text) to Qt's undo stack."""

    def __init__(self, command: Any) -> None:
        super().__init__(command.text)
        self.command = command

    def redo(self) -> None:
        self.command.redo()

    def undo(self) -> None:
        self.command.undo()

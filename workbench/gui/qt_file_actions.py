"""The window's File menu: models, projects, export and recipes, and the saved layout.

Opening goes through the Session; a file that needs trust or an architecture asks here and
retries. Projects autosave, so Save only has work to do when there is no project yet.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from workbench.core.errors import ArchitectureRequiredError, TrustRequiredError, WorkbenchError
from workbench.core.model.loaders import FILE_FILTER
from workbench.core.model.zoo import ZOO
from workbench.gui.qt_recovery import offer_resume

log = logging.getLogger(__name__)

PROJECT_HINT = "Save as project (an empty folder)"
RECIPE_FILTER = "Recipe (*.yaml *.yml *.json)"


# Graph first (`Session.open(preview=True)`) is off: with it, 1 in 3 runs of the window tests
# crashed in a job thread (segfault at `load_model`), likely the cyclic collector freeing Qt
# objects the GUI thread made while the job ran. Off, the graph is drawn at the commit.
PREVIEW = False

class QtFileActions:
    """Mixed into `QtMainWindow`: open, projects, export, recipes, layout."""

    session: Any
    jobs: Any
    workspace: Any
    settings: Any
    show_dialogs: bool

    def _error(self, message: str) -> None:  # provided by the window
        raise NotImplementedError

    # models -------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", FILE_FILTER)
        if path:
            self.open_source(path)

    def open_zoo_dialog(self) -> None:
        labels = [e.label() for e in ZOO.values()]  # says which are trained, and on what
        choice, ok = QInputDialog.getItem(self, "Open zoo model", "Model:", labels, 0, False)
        if ok and choice:
            self.open_source("zoo:" + choice.split(" — ")[0])

    def open_source(self, source: str, **options: Any) -> Any:
        """Load and analyse `source` in a worker; returns the worker (or None if busy)."""
        if self.jobs.busy:
            self._error("Another job is running; wait for it or cancel it first.")
            return None
        options = {k: v for k, v in options.items() if v is not None}
        return self.jobs.run_task(
            self.session.open(source, preview=PREVIEW, **options),
            on_done=self._on_opened,
            on_error=lambda exc: self._on_open_error(source, options, exc))

    def _on_opened(self, entry: Any) -> None:
        self.status_label.setText(f"Opened {entry.analysis.variant.name}")
        self.model_opened.emit(entry.id)

    def _on_open_error(self, source: str, options: dict[str, Any], exc: BaseException) -> None:
        if isinstance(exc, TrustRequiredError) and self.show_dialogs:
            answer = QMessageBox.warning(
                self, "Untrusted file", f"{exc}\n\nLoad it anyway?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer == QMessageBox.StandardButton.Yes:
                self._retry(source, {**options, "trust": True})
            else:
                self.status_label.setText(
                    f"Not opened: {Path(source).name} was not trusted.")
            return
        if isinstance(exc, ArchitectureRequiredError) and self.show_dialogs:
            names = [n for n in ZOO if n != "minilm"]
            arch, ok = QInputDialog.getItem(
                self, "Architecture needed",
                f"{exc}\n\nArchitecture: a zoo name, or package.module:Class or "
                "package.module:function, with constructor arguments as ?key=value&... "
                "(such as torchvision.models:googlenet?aux_logits=false):", names, 0, True)
            if ok and arch.strip():
                self._retry(source, {**options, "arch": arch.strip()})
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

    # projects -----------------------------------------------------------------------------
    def new_project(self) -> bool:
        """Start empty (File ▸ New), after offering to save unsaved variants."""
        if self.jobs.busy:
            self._error("Another job is running; wait for it or cancel it first.")
            return False
        if not self.confirm_discard("Start a new, empty workspace"):
            return False
        self.session.new()
        self.undo_stack.clear()
        self.setWindowTitle("Workbench")
        self.status_label.setText("New workspace.")
        return True

    def open_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open project")
        if folder:
            self.open_project(folder)

    def save(self) -> bool:
        """Projects save every change as it happens; without one, Save is Save As."""
        if self.session.project is not None:
            self.status_label.setText(
                f"Everything is saved in {self.session.project.folder}.")
            return True
        return self.save_project_dialog()

    def save_project_dialog(self) -> bool:
        folder = QFileDialog.getExistingDirectory(self, PROJECT_HINT)
        return bool(folder) and self.save_project(folder)

    def open_project(self, folder: str) -> bool:
        """Replace the variants with a project's; every later change autosaves to it."""
        if self.jobs.busy:
            self._error("Another job is running; wait for it or cancel it first.")
            return False
        if not self.confirm_discard("Open a project"):
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
        # a run's record may fail in the worker: the Qt signal queues it to this thread
        project.save_failed.connect(lambda _vid, message: self.save_failed.emit(message))
        self.setWindowTitle(f"{Path(folder).name} — Workbench")
        self.status_label.setText(
            f"Project {folder}: every change is saved as it happens.")
        offer_resume(self)

    def confirm_discard(self, action: str = "Quit Workbench") -> bool:
        """Variants not in a project would be lost: offer to save them first."""
        if self.session.project is not None or not len(self.workspace) or \
                not self.show_dialogs:
            return True
        answer = QMessageBox.question(
            self, action,
            f"{len(self.workspace)} variant(s) are not saved in a project. Save them first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save_project_dialog()
        return answer == QMessageBox.StandardButton.Discard

    def confirm_quit(self) -> bool:
        return self.confirm_discard("Quit Workbench")

    # export and recipes -------------------------------------------------------------------
    def export_dialog(self) -> None:
        """Ask for a path, a format and (torch to ONNX) an opset in one dialog, then export."""
        from PySide6.QtWidgets import QDialog

        from workbench.gui.qt_export_dialog import QtExportDialog

        entry = self.workspace.selected
        if entry is None:
            self._error("Open a model first.")
            return
        dialog = QtExportDialog(entry.name, entry.analysis.variant.backend,
                                getattr(self, "_export_folder", ""), self)
        if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.path():
            return
        self._export_folder = str(Path(dialog.path()).parent)
        self.export_to(dialog.path(), dialog.opset(), dialog.fmt())

    def save_recipe_dialog(self) -> None:
        entry = self.workspace.selected
        if entry is None:
            self._error("Select a variant first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", "recipe.yaml",
                                              RECIPE_FILTER)
        if path:
            try:
                recipe = self.session.recipe()
                recipe.save(path)
            except (OSError, WorkbenchError) as exc:
                self._error(f"Could not write {path}: {exc}")
                return
            steps = len(getattr(recipe, "steps", []) or [])
            self.status_label.setText(
                f"Saved the recipe of {entry.name} ({steps} step{'s' if steps != 1 else ''}) "
                f"to {path}")

    def run_recipe_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Run recipe", "", RECIPE_FILTER)
        if path:
            self.run_recipe(path)

    def run_recipe(self, path: str, trust: bool = False) -> Any:
        """Replay a recipe in a worker; every variant it makes joins the lineage tree."""
        from workbench.core.session.recipe import Recipe
        from workbench.core.session.recipe_replay import replay_task

        def done(run: Any) -> None:
            self.status_label.setText(
                f"Recipe {Path(path).name}: {len(run.variant_ids)} new variant(s).")
            self.recipe_finished.emit(run.variant_ids)

        return self._launch(lambda: replay_task(self.session, Recipe.load_file(path), trust),
                            done, "Recipe")

    # layout -------------------------------------------------------------------------------
    def save_layout(self) -> None:
        """Remember the window's size, docks and splitters for the next start."""
        layout = dict(self.settings.window_layout)
        layout["geometry"] = bytes(self.saveGeometry().toBase64()).decode()
        layout["state"] = bytes(self.saveState().toBase64()).decode()
        for name, splitter in self.splitters().items():
            if splitter.isVisible():  # a tab never shown keeps what was saved before
                layout[f"splitter:{name}"] = bytes(splitter.saveState().toBase64()).decode()
        self.settings.set_window_layout(layout)

    def restore_layout(self) -> bool:
        """Put back the layout `save_layout` stored; False if there is none (or it is bad)."""
        layout = self.settings.window_layout
        if not layout.get("geometry"):
            return False
        ok = self.restoreGeometry(QByteArray.fromBase64(layout["geometry"].encode()))
        ok = self.restoreState(QByteArray.fromBase64(
            layout.get("state", "").encode())) and ok
        self.restore_splitters()
        return bool(ok)

    def restore_splitters(self, panel: Any = None) -> None:
        """Put back the saved splitter sizes, of `panel` only if given (a panel built late)."""
        layout = self.settings.window_layout
        prefix = f"{type(panel).__name__}." if panel is not None else ""
        for name, splitter in self.splitters().items():
            if name.startswith(prefix) and f"splitter:{name}" in layout:
                splitter.restoreState(QByteArray.fromBase64(layout[f"splitter:{name}"].encode()))

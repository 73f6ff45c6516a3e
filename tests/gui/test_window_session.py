"""The window as a client of the Session: File ▸ New, Recent Projects, and a layout that
comes back at the next start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from tests.conftest import open_and_wait


def _window(qtbot: Any) -> Any:
    from workbench.gui.qt_main_window import QtMainWindow

    window = QtMainWindow()
    window.show_dialogs = False
    qtbot.addWidget(window)
    window.show()
    return window


def test_new_asks_before_discarding_unsaved_variants(qtbot: Any, main_window: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    open_and_wait(qtbot, main_window, "zoo:mlp")
    main_window.show_dialogs = True
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Discard]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.pop(0))
    assert not main_window.new_project()  # Cancel keeps the variant
    assert len(main_window.workspace) == 1
    assert main_window.new_project()  # Discard empties the window
    main_window.show_dialogs = False
    assert len(main_window.workspace) == 0
    assert main_window.variant_list.topLevelItemCount() == 0
    assert not main_window.undo_stack.canUndo()


def test_recent_projects_reopen_from_the_menu(qtbot: Any, main_window: Any,
                                              tmp_path: Path) -> None:
    open_and_wait(qtbot, main_window, "zoo:mlp")
    folder = tmp_path / "proj"
    assert main_window.save_project(str(folder))
    assert main_window.settings.recent_projects[0] == str(folder.resolve())
    actions = main_window.recent_projects_menu.actions()
    assert [a.text() for a in actions] == [str(folder.resolve())]
    assert main_window.new_project()  # in a project: nothing is lost, nothing to ask
    assert len(main_window.workspace) == 0
    actions[0].trigger()
    assert len(main_window.workspace) == 1
    assert main_window.windowTitle().startswith("proj")


def test_the_layout_comes_back_at_the_next_start(qtbot: Any) -> None:
    first = _window(qtbot)
    first.resize(first.minimumWidth() + 20, 560)
    first.removeDockWidget(first.passes_dock)
    first.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, first.passes_dock)
    first.passes_dock.show()
    first.show_tab("train")
    qtbot.wait(50)
    name, splitter = next((n, s) for n, s in first.splitters().items()
                          if n.startswith("QtTrainPanel") and s.isVisible())
    splitter.setSizes([100, max(splitter.sizes()[1:] or [100]), *splitter.sizes()[2:]])
    saved_sizes = splitter.sizes()
    qtbot.wait(50)
    size = (first.width(), first.height())
    first.close()
    second = _window(qtbot)
    qtbot.wait(50)
    # the offscreen screen (800×600) is narrower than the window's minimum width: Qt fits
    # the restored width to the screen, down to that minimum; the height is restored as is
    assert second.height() == size[1] == 560
    assert second.minimumWidth() <= second.width() <= size[0]
    assert second.dockWidgetArea(second.passes_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    second.show_tab("train")
    qtbot.wait(50)
    assert second.splitters()[name].sizes() == saved_sizes
    second.close()


def test_a_screenshot_neither_reads_nor_writes_the_layout(qtbot: Any, tmp_path: Path) -> None:
    from workbench.core.session.settings import Settings
    from workbench.gui.screenshot import render_screenshot

    Settings().set_window_layout({"geometry": "AAAA"})
    render_screenshot("zoo:mlp", "train", str(tmp_path / "shot.png"))
    assert Settings().window_layout == {"geometry": "AAAA"}


def test_a_damaged_saved_layout_is_ignored(qtbot: Any) -> None:
    from workbench.core.session.settings import Settings

    settings = Settings()
    settings.set_window_layout({"geometry": "not base64 at all!", "state": "%%%"})
    window = _window(qtbot)
    assert window.width() > 0  # built with the default layout, no error
    window.close()


def test_save_a_recipe_then_run_it_from_the_window(qtbot: Any, main_window: Any,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QFileDialog

    open_and_wait(qtbot, main_window, "zoo:mlp")
    with qtbot.waitSignal(main_window.pass_applied, timeout=60_000):
        main_window.apply_pass("prune.magnitude", {"sparsity": 0.5})
    qtbot.waitUntil(lambda: not main_window.jobs.busy, timeout=10_000)
    path = tmp_path / "made.yaml"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    main_window.save_recipe_dialog()
    assert "prune.magnitude" in path.read_text()
    before = len(main_window.workspace)
    with qtbot.waitSignal(main_window.recipe_finished, timeout=60_000) as blocker:
        main_window.run_recipe(str(path))
    new_ids = blocker.args[0]
    assert len(main_window.workspace) == before + len(new_ids)
    last = main_window.workspace.get(new_ids[-1])
    assert last.analysis.variant.recipe[-1]["pass"] == "prune.magnitude"
    qtbot.waitUntil(lambda: not main_window.jobs.busy, timeout=10_000)  # `finished` follows
    path.write_text("workbench_recipe: 1\nsource: zoo:mlp\nsteps:\n  - pass: prune.nothing\n")
    assert main_window.run_recipe(str(path)) is None  # refused before any work
    assert "prune.nothing" in main_window.last_error


def test_a_project_write_failure_from_a_worker_reaches_the_window(qtbot: Any,
                                                                  main_window: Any,
                                                                  tmp_path: Path) -> None:
    import threading

    open_and_wait(qtbot, main_window, "zoo:mlp")
    assert main_window.save_project(str(tmp_path / "proj"))
    worker = threading.Thread(target=main_window.session.project.save_failed.emit,
                              args=("v1", "Cannot write the project: disk full."))
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: main_window.last_error == "Cannot write the project: disk full.",
                    timeout=5_000)

"""The main window's menu bar: File, Edit, View, Tools, Settings and Help."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QInputDialog, QMenu

from workbench.gui.qt_about_dialog import QtAboutDialog
from workbench.gui.qt_device_menu import build_device_menu
from workbench.gui.qt_plugins_dialog import QtPluginsDialog

log = logging.getLogger(__name__)


def _action(window: Any, menu: QMenu, text: str, slot: Any, shortcut: Any = None) -> QAction:
    act = QAction(text, window)
    if shortcut is not None:
        act.setShortcut(shortcut)
    act.triggered.connect(slot)
    menu.addAction(act)
    return act


def build_menus(window: Any) -> None:
    """Fill `window`'s menu bar; keeps `recent_menu`, `recent_projects_menu` and
    `device_actions` on the window."""
    _file_menu(window)
    edit = window.menuBar().addMenu("&Edit")
    undo = window.undo_stack.createUndoAction(window, "&Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    redo = window.undo_stack.createRedoAction(window, "&Redo")
    redo.setShortcut(QKeySequence.StandardKey.Redo)
    edit.addAction(undo)
    edit.addAction(redo)
    edit.addSeparator()
    _action(window, edit, "Re&name Variant…", window.rename_dialog, "F2")
    _action(window, edit, "&Delete Variant", window.delete_selected,
            QKeySequence.StandardKey.Delete)

    view = window.menuBar().addMenu("&View")
    for dock in (window.variants_dock, window.inspector_dock, window.passes_dock):
        view.addAction(dock.toggleViewAction())

    tools = window.menuBar().addMenu("&Tools")
    _action(window, tools, "&Plugins…", lambda: QtPluginsDialog(window.registry, window).exec())
    _settings_menu(window)
    help_menu = window.menuBar().addMenu("&Help")
    window.about_action = _action(window, help_menu, "&About Workbench", lambda: QtAboutDialog(
        window, window.settings.device).exec())


def _file_menu(window: Any) -> None:
    menu = window.menuBar().addMenu("&File")
    _action(window, menu, "&New", window.new_project, QKeySequence.StandardKey.New)
    _action(window, menu, "&Open…", window.open_dialog, QKeySequence.StandardKey.Open)
    _action(window, menu, "Open &Zoo Model…", window.open_zoo_dialog, "Ctrl+Shift+O")
    window.recent_menu = menu.addMenu("Open &Recent")
    menu.addSeparator()
    _action(window, menu, "Open &Project…", window.open_project_dialog, "Ctrl+Shift+P")
    window.recent_projects_menu = menu.addMenu("Recent Pro&jects")
    _action(window, menu, "&Save", window.save, QKeySequence.StandardKey.Save)
    _action(window, menu, "Save Project &As…", window.save_project_dialog,
            QKeySequence.StandardKey.SaveAs)
    menu.addSeparator()
    _action(window, menu, "&Export Variant…", window.export_dialog, "Ctrl+E")
    _action(window, menu, "Save &Recipe…", window.save_recipe_dialog)
    _action(window, menu, "R&un Recipe…", window.run_recipe_dialog)
    menu.addSeparator()
    _action(window, menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)
    refresh_recent(window)


def refresh_recent(window: Any) -> None:
    """Rebuild Open Recent and Recent Projects from the settings."""
    for menu, items, open_item in (
            (window.recent_menu, window.settings.recent_files, window.open_source),
            (window.recent_projects_menu, window.settings.recent_projects,
             window.open_project)):
        menu.clear()
        for item in items:
            menu.addAction(item).triggered.connect(lambda _=False, s=item, f=open_item: f(s))
        menu.setEnabled(bool(items))


def _settings_menu(window: Any) -> None:
    settings = window.menuBar().addMenu("&Settings")
    build_device_menu(window, settings)

    def time_limit() -> None:
        seconds, ok = QInputDialog.getDouble(
            window, "Pass time limit",
            "Abandon a pass after this many seconds (0: no limit):",
            window.settings.pass_time_limit_s, 0.0, 86_400.0, 0)
        if ok:
            window.settings.set_pass_time_limit(seconds)

    _action(window, settings, "Pass &time limit…", time_limit)
    from workbench.gui.qt_memory_setting import ask_memory_ceiling

    _action(window, settings, "&Memory ceiling…", lambda: ask_memory_ceiling(window))
    _theme_menu(window, settings)


def _theme_menu(window: Any, settings: QMenu) -> None:
    """Settings > Theme: follow the system, light or dark (saved, applied at once)."""
    from workbench.gui.theme import apply_theme

    menu = settings.addMenu("T&heme")
    group = QActionGroup(window)
    window.theme_actions = {}

    def choose(key: str) -> None:
        window.settings.set_theme(key)
        apply_theme(key)

    for key, label in (("system", "Follow the &System"), ("light", "&Light"),
                       ("dark", "&Dark")):
        a = QAction(label, window, checkable=True)
        a.setChecked(window.settings.theme == key)
        a.triggered.connect(lambda _=False, k=key: choose(k))
        group.addAction(a)
        menu.addAction(a)
        window.theme_actions[key] = a

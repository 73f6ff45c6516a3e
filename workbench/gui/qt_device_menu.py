"""Settings ▸ Device: the CPU, each CUDA GPU (`cuda:N` with its name) and MPS, as torch
finds them here; the choice is saved and shown in the status bar.

Listing GPUs imports torch, so the list is filled once torch is in (after the first paint)
or when the menu opens. A saved device this machine lacks (the settings moved) stays listed,
checked and disabled, so the user sees why jobs refuse it."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QLabel, QMenu

from workbench.core.errors import WorkbenchError

log = logging.getLogger(__name__)


def build_device_menu(window: Any, settings_menu: QMenu) -> QMenu:
    """Add Settings ▸ Device and the status bar's device label to `window`; the actions
    are in `window.device_actions` (name -> QAction)."""
    import sys

    menu = settings_menu.addMenu("&Device")
    window.device_menu = menu
    window.device_group = QActionGroup(window)
    window.device_actions = {}
    window.device_label = QLabel()
    window.device_label.setToolTip("The device jobs run on (Settings ▸ Device)")
    window.statusBar().addPermanentWidget(window.device_label)
    _fill(window, [("cpu", "CPU")])  # until torch is in
    window.settings.changed.connect(lambda: _show_choice(window))
    menu.aboutToShow.connect(lambda: refresh_devices(window))
    if "torch" in sys.modules:
        refresh_devices(window)
    return menu


def refresh_devices(window: Any) -> None:
    """List the devices torch can use here (imports torch)."""
    from workbench.gui.qt_startup import warmup_running

    if warmup_running():  # torch is being imported: asked again when it is in
        return
    from workbench.core.devices import available_devices

    try:
        found = available_devices()
    except Exception:  # a broken CUDA install must not take the menu down
        log.warning("cannot list the devices", exc_info=True)
        found = [("cpu", "CPU")]
    _fill(window, found)


def choose_device(window: Any, name: str) -> None:
    """Make `name` the device of every job (saved); a message if it cannot be used."""
    try:
        window.settings.set_device(name)
    except WorkbenchError as exc:
        window._error(str(exc))
    _show_choice(window)


def _fill(window: Any, found: list[tuple[str, str]]) -> None:
    menu: QMenu = window.device_menu
    for action in window.device_actions.values():
        window.device_group.removeAction(action)
        menu.removeAction(action)
        action.deleteLater()
    window.device_actions = {}
    chosen = window.settings.device
    entries = [(name, label, True) for name, label in found]
    if chosen not in {name for name, _ in found}:
        entries.append((chosen, f"{chosen} (not available here)", False))
    for name, label, usable in entries:
        action = QAction(label, window, checkable=True)
        action.setData(name)
        action.setEnabled(usable)
        action.triggered.connect(lambda _=False, n=name: choose_device(window, n))
        window.device_group.addAction(action)
        menu.addAction(action)
        window.device_actions[name] = action
    _show_choice(window)


def _show_choice(window: Any) -> None:
    chosen = window.settings.device
    for name, action in window.device_actions.items():
        action.setChecked(name == chosen)
    window.device_label.setText(f"Device: {chosen}")

"""Help ▸ About: the report shows, names the running Qt, and Copy puts it on the clipboard."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from workbench import __version__
from workbench.gui.qt_about_dialog import QtAboutDialog


def test_about_dialog_shows_the_report_and_copies_it(qtbot: Any) -> None:
    dialog = QtAboutDialog(device="cpu")
    qtbot.addWidget(dialog)
    text = dialog.details.toPlainText()
    assert text.startswith(f"workbench {__version__} (")
    assert f"Qt runtime {qVersion()}" in text
    assert f"torch {dialog.report['packages']['torch']}" in text
    assert "onnxruntime" in text
    assert "device cpu" in text
    assert dialog.report["folders"]["settings"] in text
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == text
    assert "Copied" in dialog.copied.text()


def test_help_about_opens_from_the_menu(qtbot: Any, main_window: Any) -> None:
    seen: list[str] = []

    def close_it() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QtAboutDialog):
            seen.append(dialog.details.toPlainText())
            dialog.reject()
        else:
            QTimer.singleShot(20, close_it)

    QTimer.singleShot(0, close_it)
    main_window.about_action.trigger()
    assert seen
    assert f"device {main_window.settings.device}" in seen[0]

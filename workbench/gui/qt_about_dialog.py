"""Help ▸ About: the version, commit, library versions, device, CPU features and folders,
with a Copy button for bug reports (the same facts as `workbench --version --json`)."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import qVersion
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.core.session.about import about, about_text

log = logging.getLogger(__name__)


def gui_about(device: str | None = None) -> dict[str, Any]:
    """`about()` plus the Qt library this process actually runs."""
    return {**about(device), "qt_runtime": qVersion()}


class QtAboutDialog(QDialog):
    """A read-only report and a Copy button that puts it on the clipboard."""

    def __init__(self, parent: QWidget | None = None, device: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Workbench")
        self.report = gui_about(device)
        self.text = about_text(self.report)
        layout = QVBoxLayout(self)
        title = QLabel("<b>Workbench</b> — see, prune, quantize, distill, benchmark and "
                       "export neural networks.")
        title.setWordWrap(True)
        layout.addWidget(title)
        self.details = QPlainTextEdit(self.text)
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setMinimumSize(640, 260)
        layout.addWidget(self.details)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("&Copy")
        self.copy_button.setToolTip("Copy this report to paste into a bug report")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.copied = QLabel("")
        layout.addWidget(self.copied)

    def copy(self) -> None:
        """Put the report on the clipboard."""
        QGuiApplication.clipboard().setText(self.text)
        self.copied.setText("Copied to the clipboard.")

"""The Plugins dialog: every pass, where it comes from, and any plugin that failed."""

from __future__ import annotations

import logging

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QDialog, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from workbench.core.passes.registry import Registry
from workbench.gui.theme import accent

log = logging.getLogger(__name__)


class QtPluginsDialog(QDialog):
    def __init__(self, registry: Registry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Plugins")
        self.resize(820, 420)
        self.table = QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels(["Pass", "Title", "Category", "Origin", "Status"])
        for info in registry.plugins:
            cls = info.pass_cls
            item = QTreeWidgetItem([
                cls.name if cls else info.entry_point, cls.title if cls else "",
                cls.category if cls else "", info.origin, "ok" if info.ok else "failed"])
            if not info.ok:
                item.setForeground(4, QColor(accent("error")))
                item.setToolTip(4, info.error or "")
                item.setText(1, info.error or "")
            self.table.addTopLevelItem(item)
        for col in range(5):
            self.table.resizeColumnToContents(col)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)

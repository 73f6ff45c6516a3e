"""The variant list: every variant of the workspace with its size and cost."""

from __future__ import annotations

import logging

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from workbench.core.session.workspace import Entry, Workspace
from workbench.gui.format import human_bytes, human_count

log = logging.getLogger(__name__)

COLUMNS = ("Variant", "Params", "Size", "MACs", "Sparsity", "Accuracy", "Latency")
# shown from the header's menu (the Compare tab has them all)
HIDDEN = ("Params", "MACs", "Sparsity")
_ROLE = Qt.ItemDataRole.UserRole


class QtVariantList(QTreeWidget):
    """A view of the workspace; it follows the workspace's events and edits nothing itself."""

    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(list(COLUMNS))
        self.setRootIsDecorated(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # long names elide in the middle (both ends tell variants apart); the tooltip has it all
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.header()
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(40)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
            self.setColumnHidden(col, COLUMNS[col] in HIDDEN)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._column_menu)
        self._items: dict[str, QTreeWidgetItem] = {}
        workspace.added.connect(self._on_added)
        workspace.removed.connect(self._on_removed)
        workspace.renamed.connect(self._on_renamed)
        workspace.selection_changed.connect(self._on_selection)
        workspace.results_changed.connect(self._on_results)
        self.currentItemChanged.connect(self._on_current)
        self.destroyed.connect(self._disconnect)

    def _disconnect(self) -> None:
        for sig, slot in ((self.workspace.added, self._on_added),
                          (self.workspace.removed, self._on_removed),
                          (self.workspace.renamed, self._on_renamed),
                          (self.workspace.selection_changed, self._on_selection),
                          (self.workspace.results_changed, self._on_results)):
            sig.disconnect(slot)

    def _column_menu(self, pos: QPoint) -> None:
        """Show or hide the figure columns."""
        menu = QMenu(self)
        for col in range(1, len(COLUMNS)):
            act = menu.addAction(COLUMNS[col])
            act.setCheckable(True)
            act.setChecked(not self.isColumnHidden(col))
            act.toggled.connect(lambda on, c=col: self.setColumnHidden(c, not on))
        menu.popup(self.header().mapToGlobal(pos))

    def _row(self, entry: Entry) -> list[str]:
        g = entry.analysis.graph
        sparsity = entry.analysis.stats.summary.sparsity
        acc = entry.results.get("accuracy")
        cos = entry.results.get("fidelity")
        lat = entry.results.get("latency_ms")
        return [entry.name, human_count(g.parameters), human_bytes(g.size_bytes),
                human_count(g.macs), f"{sparsity:.1%}",
                f"{acc:.1%}" if acc is not None else (
                    f"cos {cos:.3f}" if cos is not None else "—"),
                f"{lat:.2f} ms" if lat is not None else "—"]

    def _on_added(self, variant_id: str) -> None:
        entry = self.workspace.get(variant_id)
        item = QTreeWidgetItem(self._row(entry))
        item.setData(0, _ROLE, variant_id)
        item.setToolTip(0, _tooltip(entry))
        parent = self._items.get(entry.analysis.variant.parent or "")
        if parent is not None:
            parent.addChild(item)
            parent.setExpanded(True)
        else:
            self.addTopLevelItem(item)
        self._items[variant_id] = item

    def _on_removed(self, variant_id: str) -> None:
        item = self._items.pop(variant_id, None)
        if item is None:
            return
        parent = item.parent()
        if parent is not None:
            parent.removeChild(item)
        else:
            self.takeTopLevelItem(self.indexOfTopLevelItem(item))

    def _on_results(self, variant_id: str) -> None:
        item = self._items.get(variant_id)
        if item is not None:
            for col, text in enumerate(self._row(self.workspace.get(variant_id))):
                item.setText(col, text)

    def _on_renamed(self, variant_id: str, name: str) -> None:
        item = self._items.get(variant_id)
        if item is not None:
            item.setText(0, name)
            item.setToolTip(0, _tooltip(self.workspace.get(variant_id)))

    def _on_selection(self, variant_id: object) -> None:
        item = self._items.get(variant_id) if isinstance(variant_id, str) else None
        if item is not self.currentItem():
            self.blockSignals(True)
            self.setCurrentItem(item)
            self.blockSignals(False)

    def _on_current(self, item: QTreeWidgetItem | None, _prev: object = None) -> None:
        if item is not None:
            self.workspace.select(item.data(0, _ROLE))


def _tooltip(entry: Entry) -> str:
    """The full name, and where the variant came from."""
    return f"{entry.name}\n{entry.analysis.variant.source}"

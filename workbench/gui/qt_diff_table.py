"""The layer diff of two variants as a sortable table, with a one-line summary above it."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)

COLUMNS = ("Layer", "Op", "Change", "Shape A", "Shape B", "Params A", "Params B", "Δ params")
MAX_ROWS = 2000
MAX_COLUMN = 180  # px: longer names elide in the middle (the tooltip has them)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def _shape(shape: Any) -> str:
    return "×".join(map(str, shape)) if shape else "—"


def diff_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str, str, int, int]]:
    """(layer, op, change, shape A, shape B, params A, params B) for every node that was
    reshaped, added or removed, from a `VariantDiff.to_json()`."""
    rows = [(str(c.get("name")), str(c.get("op") or ""), "reshaped", _shape(c.get("shape_before")),
             _shape(c.get("shape_after")), int(c.get("params_before") or 0),
             int(c.get("params_after") or 0)) for c in data.get("changed") or []]
    rows += [(str(n), "", "added", "—", "", 0, 0) for n in data.get("added") or []]
    rows += [(str(n), "", "removed", "", "—", 0, 0) for n in data.get("removed") or []]
    return rows


class QtDiffTable(QWidget):
    """A summary line (ops gained and lost, totals) and one sortable row per changed layer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("Pick two variants and press Diff.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().setVisible(False)
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(48)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)

    def show_diff(self, diff: Any) -> None:
        """Fill the table from a `VariantDiff` (or its JSON)."""
        data = diff.to_json() if hasattr(diff, "to_json") else dict(diff)
        rows = diff_rows(data)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(min(len(rows), MAX_ROWS))
        for i, row in enumerate(rows[:MAX_ROWS]):
            *texts, before, after = row
            cells: list[Any] = [*texts, before, after, after - before]
            for j, value in enumerate(cells):
                item = QTableWidgetItem()
                item.setData(Qt.ItemDataRole.DisplayRole, value)  # numbers sort as numbers
                if isinstance(value, int):
                    item.setTextAlignment(_RIGHT)
                if j == 0:
                    item.setToolTip(str(value))
                self.table.setItem(i, j, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        for col in range(len(COLUMNS)):  # long names elide instead of pushing columns away
            if self.table.columnWidth(col) > MAX_COLUMN:
                self.table.setColumnWidth(col, MAX_COLUMN)
        self.summary.setText(_summary(data, len(rows)))

    def row_texts(self) -> list[list[str]]:
        """Every row as displayed (for tests and copying)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]


def _summary(data: dict[str, Any], n_rows: int) -> str:
    parts = [f"{n_rows} layer{'s' if n_rows != 1 else ''} differ"
             + (f" (first {MAX_ROWS} shown)" if n_rows > MAX_ROWS else "") if n_rows
             else "No layer differs."]
    for key, title in (("ops_added", "ops gained"), ("ops_removed", "ops lost")):
        ops = data.get(key) or {}
        if ops:
            parts.append(f"{title}: " + ", ".join(f"{k}×{v}" for k, v in ops.items()))
    if not data.get("comparable", True):
        parts.append("the two graphs barely line up by name (e.g. torch against ONNX)")
    return " · ".join(parts)

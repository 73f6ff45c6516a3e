"""A pass report as tables: before/after figures, warnings, per-layer rows, other facts.

The raw JSON stays one click away ("Show JSON"). The rows come from the headless
`workbench.core.passes.report_view`; this module only formats and lays them out.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.passes.base import PassReport
from workbench.core.passes.report_view import (
    Figure,
    LayerTable,
    layer_table,
    report_facts,
    report_figures,
)
from workbench.gui.format import human_bytes, human_count

log = logging.getLogger(__name__)

PLACEHOLDER = "The report of the last pass appears here."


def format_value(value: float | None, kind: str) -> str:
    """A figure in its unit: 1.2M, 2.7 MB, 45.0%, 3.1 ms, 0.99998."""
    if value is None:
        return "—"
    if kind == "count":
        return human_count(value)
    if kind == "bytes":
        return human_bytes(value)
    if kind == "share":
        return f"{value:.1%}"
    if kind == "ms":
        return f"{value:.3g} ms"
    if kind == "cosine":
        return f"{value:.5f}"
    return f"{value:.4g}"


def format_change(figure: Figure) -> str:
    """'0.25×' for sizes and counts, '2.50× faster' for latency, '+12.0 pt' for shares."""
    if figure.before is None or figure.after is None:
        return ""
    if figure.kind == "share":
        points = (figure.after - figure.before) * 100
        if abs(points) < 0.005:
            return "no change"
        return f"{points:+.2f} pt" if abs(points) < 0.1 else f"{points:+.1f} pt"
    ratio = figure.ratio
    if ratio is None:
        return ""
    if figure.kind == "ms":
        return f"{1 / ratio:.2f}× faster" if ratio <= 1 else f"{ratio:.2f}× slower"
    return f"{ratio:.2f}×"


def _cell(value: Any) -> QTableWidgetItem:
    """A table cell; numbers sort as numbers and align right."""
    if isinstance(value, bool) or value is None:
        item = QTableWidgetItem("" if value is None else ("yes" if value else "no"))
    elif isinstance(value, (int, float)):
        item = QTableWidgetItem()
        item.setData(Qt.ItemDataRole.DisplayRole, value if isinstance(value, int)
                     else round(float(value), 6))
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    else:
        item = QTableWidgetItem(str(value))
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


def _table(columns: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    return table


def _fit_height(table: QTableWidget, max_rows: int | None = None) -> None:
    """Tall enough for its rows (up to `max_rows`), so short tables need no scrollbar."""
    rows = table.rowCount() if max_rows is None else min(table.rowCount(), max_rows)
    table.resizeRowsToContents()
    header = table.horizontalHeader()
    height = max(header.sizeHint().height(), header.height() if header.isVisible() else 0)
    height += 2 * table.frameWidth()
    height += sum(table.rowHeight(r) for r in range(rows)) if rows else \
        table.verticalHeader().defaultSectionSize()
    table.setFixedHeight(height + 2)


class QtPassReport(QWidget):
    """Shows one `PassReport`, or a placeholder sentence when there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: PassReport | None = None
        self.title = QLabel(PLACEHOLDER)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.json_button = QPushButton("Show JSON")
        self.json_button.setCheckable(True)
        self.json_button.setEnabled(False)
        self.json_button.toggled.connect(self._toggle_json)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.json_button, 0, Qt.AlignmentFlag.AlignTop)

        self.figures = _table(["", "Before", "After", "Change"])
        # a narrow dock elides the labels (full text in the tooltip) rather than hiding rows
        # behind a horizontal scrollbar
        self.figures.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.figures.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.figures.horizontalHeader().setStretchLastSection(False)
        self.warnings = QLabel()
        self.warnings.setWordWrap(True)
        self.warnings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_table = QLabel()  # a pass's own text table (quantize.auto's candidates)
        self.text_table.setTextFormat(Qt.TextFormat.PlainText)
        self.text_table.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text_table.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.layers_title = QLabel()
        self.layers = _table(["layer"])
        self.layers.setSortingEnabled(True)
        self.facts = _table(["Detail", "Value"])
        tables = QWidget()
        tv = QVBoxLayout(tables)
        tv.setContentsMargins(0, 0, 0, 0)
        tv.addWidget(self.figures)
        tv.addWidget(self.warnings)
        tv.addWidget(self.text_table)
        tv.addWidget(self.layers_title)
        tv.addWidget(self.layers, 1)
        tv.addWidget(self.facts)
        self.json = QPlainTextEdit()
        self.json.setReadOnly(True)
        self.json.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        scroll = QScrollArea()  # a short dock scrolls the report rather than squeezing it
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(tables)
        self.stack = QStackedWidget()
        self.stack.addWidget(scroll)
        self.stack.addWidget(self.json)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.stack, 1)
        self.clear()

    # public API ---------------------------------------------------------------------------
    def show_report(self, report: PassReport) -> None:
        """Fill the tables (and the JSON view) from `report`."""
        self.report = report
        params = ", ".join(f"{k}={v}" for k, v in report.params.items()
                           if v not in ([], None, ""))
        self.title.setText(f"<b>{report.pass_name}</b> · {report.seconds:.2f} s"
                           + (f"<br><small>{params}</small>" if params else ""))
        self._fill_figures(report_figures(report))
        self.warnings.setText("<br>".join(f"⚠ {w}" for w in report.warnings))
        self.warnings.setVisible(bool(report.warnings))
        table_text = report.details.get("table")
        self.text_table.setText(table_text if isinstance(table_text, str) else "")
        self.text_table.setVisible(isinstance(table_text, str) and bool(table_text))
        self._fill_layers(layer_table(report))
        facts = report_facts(report)
        self.facts.setRowCount(len(facts))
        for i, (key, value) in enumerate(facts):
            self.facts.setItem(i, 0, _cell(key))
            self.facts.setItem(i, 1, _cell(value))
        self.facts.setVisible(bool(facts))
        _fit_height(self.facts, 12)
        self.json.setPlainText(json.dumps(report.to_json(), indent=2, default=str))
        self.json_button.setEnabled(True)
        self.stack.setVisible(True)

    def clear(self, message: str = PLACEHOLDER) -> None:
        """No report: the placeholder (or `message`) and nothing else."""
        self.report = None
        self.title.setText(message)
        self.json_button.setChecked(False)
        self.json_button.setEnabled(False)
        self.json.clear()
        self.figures.setRowCount(0)
        self.layers.setRowCount(0)
        self.facts.setRowCount(0)
        self.stack.setVisible(False)

    def figure_rows(self) -> list[list[str]]:
        """The figures table as text, row by row (for tests and copying)."""
        return _rows(self.figures)

    def layer_rows(self) -> list[list[str]]:
        return _rows(self.layers)

    def toPlainText(self) -> str:
        """Everything shown, as text, with the JSON."""
        if self.report is None:
            return self.title.text()
        parts = [self.report.pass_name, *("\t".join(r) for r in self.figure_rows()),
                 *self.report.warnings, self.text_table.text(),
                 *("\t".join(r) for r in self.layer_rows()),
                 *("\t".join(r) for r in _rows(self.facts)), self.json.toPlainText()]
        return "\n".join(parts)

    # internals ----------------------------------------------------------------------------
    def _fill_figures(self, figures: list[Figure]) -> None:
        self.figures.setRowCount(len(figures))
        for i, f in enumerate(figures):
            cells = [f.label, format_value(f.before, f.kind),
                     "undefined" if f.undefined else format_value(f.after, f.kind),
                     format_change(f)]
            for col, text in enumerate(cells):
                item = _cell(text)
                item.setToolTip(f.label if col == 0 else text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.figures.setItem(i, col, item)
        _fit_height(self.figures)

    def _fill_layers(self, table: LayerTable | None) -> None:
        self.layers.setSortingEnabled(False)
        self.layers.clear()
        has = table is not None and bool(table.rows)
        self.layers.setVisible(has)
        self.layers_title.setVisible(has)
        if table is None or not has:
            self.layers.setRowCount(0)
            return
        self.layers_title.setText(f"<b>{table.title}</b> ({len(table.rows)})")
        self.layers.setColumnCount(len(table.columns))
        self.layers.setHorizontalHeaderLabels(table.columns)
        self.layers.setRowCount(len(table.rows))
        for i, row in enumerate(table.rows):
            for j, value in enumerate(row):
                self.layers.setItem(i, j, _cell(value))
        # the pass's own order first; a click on a header sorts
        self.layers.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.layers.setSortingEnabled(True)
        self.layers.setMinimumHeight(self.layers.verticalHeader().defaultSectionSize() * 6)

    def _toggle_json(self, on: bool) -> None:
        self.stack.setCurrentIndex(1 if on else 0)
        self.json_button.setText("Show tables" if on else "Show JSON")


def _rows(table: QTableWidget) -> list[list[str]]:
    return [[(table.item(r, c).text() if table.item(r, c) else "")
             for c in range(table.columnCount())] for r in range(table.rowCount())]

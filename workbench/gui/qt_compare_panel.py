"""The Compare tab: a table of variants, a Pareto view, a two-variant diff, and exports."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from workbench.core.fileio import atomic_write_text
from workbench.core.session.workspace import Workspace
from workbench.gui.format import human_bytes, human_count

log = logging.getLogger(__name__)

HEADERS = ("Variant", "Params", "Size", "MACs", "Sparsity", "Accuracy", "p50 ms", "p99 ms",
           "Speed-up")


class QtComparePanel(QWidget):
    """Follows the workspace; redraws when variants or their measurements change."""

    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.rows: list[Any] = []
        self.front: list[int] = []
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(False)
        self.table.verticalHeader().setVisible(False)
        self.pareto = pg.PlotWidget(title="Accuracy against latency (marker size: model size)")
        self.pareto.setLabel("bottom", "p50 latency (ms), batch 1")
        self.pareto.setLabel("left", "accuracy")
        self.scatter = pg.ScatterPlotItem(pen=pg.mkPen("#1a5fd0"), brush=(66, 133, 244, 140))
        self.frontier = pg.PlotDataItem(pen=pg.mkPen("#d9534f", width=2,
                                                     style=Qt.PenStyle.DashLine))
        self.pareto.addItem(self.frontier)
        self.pareto.addItem(self.scatter)
        self._labels: list[Any] = []
        self.hint = QLabel()
        self.hint.setWordWrap(True)

        self.diff_a = QComboBox()
        self.diff_b = QComboBox()
        self.diff_button = QPushButton("Diff")
        self.diff_button.clicked.connect(self.show_diff)
        self.diff_view = QTextBrowser()
        diff_row = QHBoxLayout()
        diff_row.addWidget(QLabel("A"))
        diff_row.addWidget(self.diff_a, 1)
        diff_row.addWidget(QLabel("B"))
        diff_row.addWidget(self.diff_b, 1)
        diff_row.addWidget(self.diff_button)
        self.export_table_button = QPushButton("Export table…")
        self.export_table_button.clicked.connect(self._export_table_dialog)
        self.export_plot_button = QPushButton("Export plot…")
        self.export_plot_button.clicked.connect(self._export_plot_dialog)
        exports = QHBoxLayout()
        exports.addWidget(self.hint, 1)
        exports.addWidget(self.export_table_button)
        exports.addWidget(self.export_plot_button)

        diff_box = QWidget()
        dv = QVBoxLayout(diff_box)
        dv.setContentsMargins(0, 0, 0, 0)
        dv.addLayout(diff_row)
        dv.addWidget(self.diff_view)
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(self.pareto)
        lower.addWidget(diff_box)
        lower.setSizes([650, 450])
        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        tv = QVBoxLayout(top)
        tv.setContentsMargins(0, 0, 0, 0)
        tv.addWidget(self.table)
        tv.addLayout(exports)
        split.addWidget(top)
        split.addWidget(lower)
        split.setSizes([300, 500])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        for sig in (workspace.added, workspace.removed, workspace.results_changed):
            sig.connect(self._on_change)
        workspace.renamed.connect(self._on_change)
        self.destroyed.connect(self._disconnect)
        self.refresh()

    def _disconnect(self) -> None:
        for sig in (self.workspace.added, self.workspace.removed,
                    self.workspace.results_changed, self.workspace.renamed):
            sig.disconnect(self._on_change)

    def _on_change(self, *_: Any) -> None:
        self.refresh()

    # public API ---------------------------------------------------------------------------
    def refresh(self) -> None:
        from workbench.core.measure.compare import compare_table, pareto_front

        entries = self.workspace.entries()
        self.rows = compare_table(entries)
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            cells = [r.name, human_count(r.parameters), human_bytes(r.size_bytes),
                     human_count(r.macs), f"{r.sparsity:.1%}", _fmt(r.accuracy, "{:.2%}"),
                     _fmt(r.p50_ms, "{:.3f}"), _fmt(r.p99_ms, "{:.3f}"),
                     _fmt(r.speedup, "{:.2f}×")]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        for box in (self.diff_a, self.diff_b):
            current = box.currentData()
            box.blockSignals(True)
            box.clear()
            for e in entries:
                box.addItem(e.name, e.id)
            if current is not None and box.findData(current) >= 0:
                box.setCurrentIndex(box.findData(current))
            box.blockSignals(False)
        if self.diff_b.count() > 1 and self.diff_b.currentIndex() == 0:
            self.diff_b.setCurrentIndex(self.diff_b.count() - 1)
        self._draw_pareto()
        del pareto_front

    def show_diff(self) -> None:
        from workbench.core.measure.compare import diff_variants

        a, b = self.diff_a.currentData(), self.diff_b.currentData()
        if a is None or b is None or a not in self.workspace or b not in self.workspace:
            return
        diff = diff_variants(self.workspace.get(a), self.workspace.get(b))
        self.diff_view.setHtml(_diff_html(diff))

    def export_table(self, path: str | Path) -> None:
        from workbench.core.measure.compare import to_csv, to_markdown

        path = Path(path)
        text = to_markdown(self.rows) if path.suffix.lower() in (".md", ".markdown") \
            else to_csv(self.rows)
        atomic_write_text(path, text)

    def export_plot(self, path: str | Path) -> None:
        from pyqtgraph.exporters import ImageExporter

        from workbench.core.fileio import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            if path.suffix.lower() == ".svg":
                # Qt's own SVG painter: pyqtgraph's SVGExporter trips over Qt 6 path data
                from PySide6.QtCore import QRect
                from PySide6.QtGui import QPainter
                from PySide6.QtSvg import QSvgGenerator

                gen = QSvgGenerator()
                gen.setFileName(str(tmp))
                gen.setSize(self.pareto.size())
                gen.setViewBox(QRect(0, 0, self.pareto.width(), self.pareto.height()))
                gen.setTitle("Workbench Pareto plot")
                painter = QPainter(gen)
                self.pareto.render(painter)
                painter.end()
            else:
                ImageExporter(self.pareto.plotItem).export(str(tmp))

    # internals ----------------------------------------------------------------------------
    def _draw_pareto(self) -> None:
        from workbench.core.measure.compare import pareto_front

        for label in self._labels:
            self.pareto.removeItem(label)
        self._labels = []
        pts = [(i, r) for i, r in enumerate(self.rows)
               if r.p50_ms is not None and r.accuracy is not None]
        if not pts:
            self.scatter.setData([], [])
            self.frontier.setData([], [])
            self.front = []
            self.hint.setText("Benchmark and evaluate variants to see them on the Pareto "
                              "plot (Benchmark and Train tabs).")
            return
        self.hint.setText(f"{len(pts)} of {len(self.rows)} variants have both latency and "
                          "accuracy.")
        xs = np.array([r.p50_ms for _, r in pts], dtype=float)
        ys = np.array([r.accuracy for _, r in pts], dtype=float)
        sizes = np.array([r.size_bytes for _, r in pts], dtype=float)
        marker = 10 + 30 * np.sqrt(sizes / max(sizes.max(), 1.0))
        front = pareto_front(list(zip(xs.tolist(), ys.tolist(), strict=True)))
        self.front = [pts[i][0] for i in front]
        brushes = [pg.mkBrush("#d9534f" if k in front else "#4285f4") for k in range(len(pts))]
        self.scatter.setData(xs, ys, size=marker, brush=brushes)
        order = sorted(front, key=lambda k: xs[k])
        self.frontier.setData(xs[order], ys[order])
        for (_, r), x, y in zip(pts, xs, ys, strict=True):
            label = pg.TextItem(r.name, color="#333", anchor=(0, 1))
            label.setPos(x, y)
            self.pareto.addItem(label)
            self._labels.append(label)
        self.pareto.autoRange(padding=0.15)

    def _export_table_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export table", "comparison.csv",
                                              "CSV (*.csv);;Markdown (*.md)")
        if path:
            self.export_table(path)

    def _export_plot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", "pareto.png",
                                              "PNG (*.png);;SVG (*.svg)")
        if path:
            self.export_plot(path)


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def _diff_html(diff: Any) -> str:
    data = diff.to_json() if hasattr(diff, "to_json") else dict(diff)
    parts = []
    for key, title in (("ops_added", "Ops added"), ("ops_removed", "Ops removed")):
        ops = data.get(key) or {}
        if ops:
            parts.append(f"<b>{title}</b>: " + ", ".join(f"{k}×{v}" for k, v in ops.items()))
    changed = data.get("changed") or data.get("layers") or []
    if changed:
        parts.append("<b>Changed layers</b><table cellspacing=4><tr><th>layer</th><th>op</th>"
                     "<th>shape</th><th>params</th></tr>")
        for c in changed[:300]:
            parts.append(
                f"<tr><td>{c.get('name')}</td><td>{c.get('op', '')}</td>"
                f"<td>{c.get('shape_before')} → {c.get('shape_after')}</td>"
                f"<td>{c.get('params_before')} → {c.get('params_after')}</td></tr>")
        parts.append("</table>")
    for key, title in (("added", "Nodes added"), ("removed", "Nodes removed")):
        names = data.get(key) or []
        if names:
            parts.append(f"<b>{title}</b> ({len(names)}): " + ", ".join(names[:60])
                         + (" …" if len(names) > 60 else ""))
    return "<br>".join(parts) or "No differences."

"""The Compare tab: a table of variants, then a Pareto plot and a two-variant layer diff
(as tabs), and exports."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.fileio import atomic_write_text
from workbench.core.session.workspace import Workspace
from workbench.gui import theme
from workbench.gui.format import human_bytes, human_count
from workbench.gui.plots import Plot, percent_axis, place_labels
from workbench.gui.qt_diff_table import QtDiffTable
from workbench.gui.qt_responsive import compact_combo, sturdy_splitter

log = logging.getLogger(__name__)

PARETO_MIN_WIDTH = 300
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
        self.pareto = Plot(title="Accuracy against latency (marker size: model size)")
        self.pareto.setMinimumWidth(PARETO_MIN_WIDTH)
        self.pareto.setLabel("bottom", "p50 latency (ms), batch 1")
        percent_axis(self.pareto, "left", "accuracy")
        self.scatter = pg.ScatterPlotItem(hoverable=True, tip=_tip)
        self.frontier = pg.PlotDataItem()
        self.pareto.addItem(self.frontier)
        self.pareto.addItem(self.scatter)
        self._labels: list[Any] = []
        self._points: list[tuple[float, float, float, bool]] = []  # x, y, marker px, on front
        self._place_timer = QTimer(self, singleShot=True, interval=0)
        self._place_timer.timeout.connect(self._place_labels)
        view = self.pareto.getPlotItem().getViewBox()
        view.sigRangeChanged.connect(self._place_timer.start)
        view.sigResized.connect(self._place_timer.start)
        self.hint = QLabel()
        self.hint.setWordWrap(True)

        self.diff_a = compact_combo(QComboBox())
        self.diff_b = compact_combo(QComboBox())
        self.diff_button = QPushButton("Diff")
        self.diff_button.clicked.connect(self.show_diff)
        self.diff_view = QtDiffTable()
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
        # the plot and the diff share the lower half as tabs: each gets the full width
        self.views = QTabWidget()
        self.views.setDocumentMode(True)
        self.views.addTab(self.pareto, "Pareto plot")
        self.views.addTab(diff_box, "Layer diff")
        split = sturdy_splitter(QSplitter(Qt.Orientation.Vertical))
        top = QWidget()
        tv = QVBoxLayout(top)
        tv.setContentsMargins(0, 0, 0, 0)
        tv.addWidget(self.table)
        tv.addLayout(exports)
        split.addWidget(top)
        split.addWidget(self.views)
        split.setStretchFactor(1, 1)
        split.setSizes([240, 560])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        for sig in (workspace.added, workspace.removed, workspace.results_changed):
            sig.connect(self._on_change)
        workspace.renamed.connect(self._on_change)
        self.destroyed.connect(self._disconnect)
        theme.manager().changed.connect(self._draw_pareto)
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
        self.diff_view.show_diff(diff)
        self.views.setCurrentWidget(self.diff_view.parentWidget())

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
        self._points = []
        self.frontier.setPen(pg.mkPen(theme.series("red"), width=2, style=Qt.PenStyle.DashLine))
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
        on_front, other = pg.mkColor(theme.series("red")), pg.mkColor(theme.series("fill"))
        on_front.setAlpha(200)
        other.setAlpha(150)
        brushes = [pg.mkBrush(on_front if k in front else other) for k in range(len(pts))]
        self.scatter.setData(xs, ys, size=marker, brush=brushes,
                             pen=pg.mkPen(theme.palette_color("Text"), width=0.8),
                             data=[_point_text(r) for _, r in pts])
        order = sorted(front, key=lambda k: xs[k])
        self.frontier.setData(xs[order], ys[order])
        text = theme.palette_color("Text")
        for (_, r), x, y, size, k in zip(pts, xs, ys, marker, range(len(pts)), strict=True):
            label = pg.TextItem(r.name, color=text, anchor=(0, 0))
            label.setPos(x, y)
            self.pareto.addItem(label)
            self._labels.append(label)
            self._points.append((float(x), float(y), float(size), k in front))
        self.pareto.autoRange(padding=0.2)
        self._place_timer.start()

    def _place_labels(self) -> None:
        """Put each point's name where it overlaps no other name or marker; a name that
        finds no room is hidden (the point's tooltip still shows it)."""
        if not self._labels:
            return
        view = self.pareto.getPlotItem().getViewBox()
        box = view.sceneBoundingRect()
        centres = [view.mapViewToScene(QPointF(x, y)) for x, y, _, _ in self._points]
        sizes = [(lb.textItem.boundingRect().width(), lb.textItem.boundingRect().height())
                 for lb in self._labels]
        order = sorted(range(len(self._points)),
                       key=lambda k: (not self._points[k][3], self._points[k][0]))
        spots = place_labels([(c.x(), c.y()) for c in centres],
                             [p[2] / 2 for p in self._points], sizes,
                             (box.x(), box.y(), box.width(), box.height()), order)
        for label, spot in zip(self._labels, spots, strict=True):
            label.setVisible(spot is not None)
            if spot is not None:
                label.setPos(view.mapSceneToView(QPointF(*spot)))

    def visible_label_rects(self) -> list[Any]:
        """The scene rectangles of the point names shown (for tests)."""
        return [lb.mapRectToScene(lb.boundingRect()) for lb in self._labels if lb.isVisible()]

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


def _point_text(row: Any) -> str:
    return f"{row.name}\n{row.accuracy:.2%} accuracy · {row.p50_ms:.3f} ms · " \
           f"{human_bytes(row.size_bytes)}"


def _tip(x: float, y: float, data: Any) -> str:
    """The hover text of a Pareto point: its name and figures."""
    return str(data)

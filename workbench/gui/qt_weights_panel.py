"""The Weights tab: a histogram, per-channel ranges and per-layer sparsity (pyqtgraph)."""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.core.graph.dequant import match_to_parent
from workbench.core.graph.stats import TensorStats, WeightStats, nonfinite_text
from workbench.gui import theme
from workbench.gui.format import human_count
from workbench.gui.plots import NameAxis, Plot, percent_axis
from workbench.gui.qt_responsive import sturdy_splitter

log = logging.getLogger(__name__)

WHOLE_MODEL = "Whole model"
_ROLE = Qt.ItemDataRole.UserRole


def nonfinite_note(t: TensorStats) -> str:
    """'4 non-finite values (3 NaN and 1 Inf) left out of the histogram', or ''."""
    if not t.nonfinite:
        return ""
    return (f"{t.nonfinite:,} non-finite value{'s' if t.nonfinite != 1 else ''} "
            f"({nonfinite_text(t.nan, t.inf)}) left out of the histogram")


class QtWeightsPanel(QWidget):
    """Shows the statistics of the chosen weight tensor, or of the whole model."""

    tensor_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._stats: WeightStats | None = None
        self._reference: WeightStats | None = None
        self._parent_names: dict[str, str] = {}

        self.filter = QLineEdit(placeholderText="Filter layers…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        self.layers = QListWidget()
        self.layers.currentItemChanged.connect(self._on_current)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.filter)
        lv.addWidget(self.layers)

        self.log_scale = QCheckBox("Log scale")
        self.log_scale.toggled.connect(self._set_log)
        self.summary = QLabel()
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setWordWrap(True)

        self.hist_plot = Plot(title="Weight distribution")
        self.hist_plot.setLabel("bottom", "value")
        self.hist_plot.setLabel("left", "count")
        self.hist_plot.addLegend(offset=(-10, 10))
        self.hist_curve = self.hist_plot.plot(
            [0, 1], [0], stepMode="center", fillLevel=0, name="current")
        self.ref_curve = self.hist_plot.plot([0, 1], [0], stepMode="center", name="parent")
        self.ref_curve.setVisible(False)
        self.hist_plot.plotItem.legend.removeItem(self.ref_curve)
        # a clustered (k-means) or quantized layer: one stem per shared value
        self.clusters = pg.ScatterPlotItem(symbol="t", size=11)
        self.hist_plot.addItem(self.clusters)

        self.channel_plot = Plot(title="Per-output-channel range")
        self.channel_plot.setLabel("bottom", "output channel")
        self.channel_plot.setLabel("left", "value")
        self.channel_bars = pg.ErrorBarItem(x=np.zeros(1), y=np.zeros(1), top=np.zeros(1),
                                            bottom=np.zeros(1), beam=0.3)
        self.channel_plot.addItem(self.channel_bars)

        self.sparsity_axis = NameAxis("bottom", max_chars=14)
        self.sparsity_plot = Plot(title="Sparsity per layer (share of zeros)",
                                  axisItems={"bottom": self.sparsity_axis})
        percent_axis(self.sparsity_plot, "left", "sparsity")
        self.sparsity_plot.setYRange(0, 1)
        self.sparsity_bars = pg.BarGraphItem(x=[0], height=[0], width=0.8)
        self.sparsity_plot.addItem(self.sparsity_bars)
        self.sparsity_highlight = pg.BarGraphItem(x=[0], height=[0], width=0.8)
        self.sparsity_plot.addItem(self.sparsity_highlight)

        header = QHBoxLayout()
        header.addWidget(self.summary, 1)
        header.addWidget(self.log_scale)
        plots = sturdy_splitter(QSplitter(Qt.Orientation.Vertical))
        plots.addWidget(self.hist_plot)
        bottom = sturdy_splitter(QSplitter(Qt.Orientation.Horizontal))
        bottom.addWidget(self.channel_plot)
        bottom.addWidget(self.sparsity_plot)
        plots.addWidget(bottom)
        plots.setSizes([500, 300])
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addLayout(header)
        rv.addWidget(plots, 1)

        split = sturdy_splitter(QSplitter(Qt.Orientation.Horizontal))
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([260, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self._apply_theme()
        theme.manager().changed.connect(self._apply_theme)
        self.set_stats(None)

    # public API ---------------------------------------------------------------------------
    def set_stats(self, stats: WeightStats | None, reference: WeightStats | None = None) -> None:
        """Show `stats`; `reference` (e.g. the parent variant's) is overlaid on the histogram."""
        self._stats, self._reference = stats, reference
        # the parent's name of each tensor (the same name, or the layer an exporter renamed)
        self._parent_names = match_to_parent(
            {n: t.shape for n, t in stats.tensors.items()},
            {n: t.shape for n, t in reference.tensors.items()}) \
            if stats is not None and reference is not None else {}
        self.layers.blockSignals(True)
        self.layers.clear()
        if stats is not None:
            item = QListWidgetItem(WHOLE_MODEL)
            item.setData(_ROLE, WHOLE_MODEL)
            self.layers.addItem(item)
            for name, t in stats.tensors.items():
                mark = "⚠ " if t.nonfinite else ""
                shown = self._parent_names.get(name, name)
                item = QListWidgetItem(f"{mark}{shown}  ({'×'.join(map(str, t.shape))})")
                item.setData(_ROLE, name)
                tip = name if shown == name else f"{shown}\n(stored as {name})"
                item.setToolTip(f"{tip}\n{nonfinite_note(t)}" if t.nonfinite else tip)
                self.layers.addItem(item)
        self.layers.blockSignals(False)
        self._draw_sparsity()
        self._apply_filter(self.filter.text())
        if stats is not None:
            self.layers.setCurrentRow(0)
        else:
            self._show(None)

    def select_tensor(self, name: str) -> bool:
        """Select a tensor by name (no signal loop); return whether it exists."""
        for row in range(self.layers.count()):
            item = self.layers.item(row)
            if item.data(_ROLE) == name:
                self.layers.blockSignals(True)
                self.layers.setCurrentItem(item)
                self.layers.blockSignals(False)
                self._show(name)
                return True
        return False

    def current_tensor(self) -> str | None:
        item = self.layers.currentItem()
        return item.data(_ROLE) if item else None

    def histogram_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The (edges, counts) currently drawn, for tests and export."""
        x, y = self.hist_curve.getData()
        return np.asarray(x), np.asarray(y)

    # internals ----------------------------------------------------------------------------
    def _apply_theme(self) -> None:
        """Series colours of the current theme (plot backgrounds follow by themselves)."""
        fill = pg.mkColor(theme.series("fill"))
        fill.setAlpha(110)
        self.hist_curve.setPen(pg.mkPen(theme.series("blue"), width=1.5))
        self.hist_curve.setBrush(fill)
        self.ref_curve.setPen(pg.mkPen(theme.series("orange"), width=1.5,
                                       style=Qt.PenStyle.DashLine))
        self.clusters.setPen(pg.mkPen(theme.series("red")))
        self.clusters.setBrush(pg.mkBrush(theme.series("red")))
        self.channel_bars.setData(pen=pg.mkPen(theme.series("green"), width=1.5))
        self.sparsity_bars.setOpts(brush=theme.series("purple"))
        self.sparsity_highlight.setOpts(brush=theme.series("amber"))
        if self._stats is not None:
            self._show(self.current_tensor())  # the summary's warning colour

    def _on_current(self, item: QListWidgetItem | None, _prev: object = None) -> None:
        name = item.data(_ROLE) if item else None
        self._show(name)
        if name is not None:
            self.tensor_selected.emit(name)

    def _lookup(self, stats: WeightStats | None, name: str | None) -> TensorStats | None:
        if stats is None or name is None:
            return None
        return stats.summary if name == WHOLE_MODEL else stats.tensors.get(name)

    def _show(self, name: str | None) -> None:
        t = self._lookup(self._stats, name)
        if t is None:
            self.hist_curve.setData([0, 1], [0])
            self.ref_curve.setVisible(False)
            self.clusters.setData([], [])
            self.channel_bars.setData(x=np.zeros(1), y=np.zeros(1), top=np.zeros(1),
                                      bottom=np.zeros(1))
            self.summary.setText("Open a model to see its weights.")
            self._highlight_sparsity(None)
            return
        self.hist_curve.setData(t.hist_edges, self._counts(t.hist_counts))
        self.hist_plot.setTitle(f"Weight distribution — {t.name}")
        ref = self._lookup(self._reference, self._parent_names.get(name, name)
                           if name != WHOLE_MODEL else name)
        self.ref_curve.setVisible(ref is not None)
        legend = self.hist_plot.plotItem.legend
        legend.removeItem(self.ref_curve)
        if ref is not None:
            self.ref_curve.setData(ref.hist_edges, self._counts(ref.hist_counts))
            legend.addItem(self.ref_curve, "parent")
        if t.values is not None and t.value_counts is not None and len(t.values) <= 64:
            self.clusters.setData(t.values, self._counts(t.value_counts.astype(float)))
        else:
            self.clusters.setData([], [])
        if t.channel_min is not None and t.channel_max is not None:
            x = np.arange(len(t.channel_min), dtype=float)
            mid = (t.channel_min + t.channel_max) / 2
            self.channel_bars.setData(x=x, y=mid, top=t.channel_max - mid,
                                      bottom=mid - t.channel_min)
            self.channel_plot.autoRange()
        else:
            self.channel_bars.setData(x=np.zeros(1), y=np.zeros(1), top=np.zeros(1),
                                      bottom=np.zeros(1))
        distinct = (f"  ·  <b>{t.distinct} distinct values</b> (clusters marked ▼)"
                    if t.distinct is not None and t.distinct <= 64 else "")
        note = nonfinite_note(t)
        if note:  # NaN/Inf weights: the figures above are of the finite values only
            note = (f"<br><span style='color:{theme.accent('error')}'>⚠ <b>{note}</b> and the "
                    "figures.</span>")
        self.summary.setText(
            f"<b>{t.name}</b>  shape {'×'.join(map(str, t.shape))}  ·  {human_count(t.numel)} "
            f"values  ·  min {t.min:.4g}  max {t.max:.4g}  mean {t.mean:.4g}  std {t.std:.4g}"
            f"  ·  sparsity {t.sparsity:.1%}{distinct}{note}")
        self._highlight_sparsity(name)

    def _sparsity_names(self) -> list[str]:
        """Weight matrices and kernels only: biases and norm scales are not pruned."""
        if self._stats is None:
            return []
        return [n for n, t in self._stats.tensors.items() if len(t.shape) >= 2]

    def _draw_sparsity(self) -> None:
        names = self._sparsity_names()
        heights = [self._stats.tensors[n].sparsity for n in names] if self._stats else []
        x = np.arange(len(names), dtype=float)
        self.sparsity_bars.setOpts(x=x, height=np.asarray(heights, dtype=float), width=0.8)
        self.sparsity_plot.setXRange(-1, max(len(names), 1))
        self.sparsity_axis.set_names([".".join(n.removesuffix(".weight").split(".")[-2:])
                                      for n in names])

    def _highlight_sparsity(self, name: str | None) -> None:
        names = self._sparsity_names()
        if name in names:
            i = names.index(name)
            h = self._stats.tensors[name].sparsity if self._stats else 0.0
            self.sparsity_highlight.setOpts(x=[i], height=[h], width=0.8)
            self.sparsity_highlight.setVisible(True)
        else:
            self.sparsity_highlight.setVisible(False)

    def _counts(self, counts: np.ndarray) -> np.ndarray:
        return np.log10(counts + 1.0) if self.log_scale.isChecked() else counts

    def _set_log(self, on: bool) -> None:
        self.hist_plot.setLabel("left", "log10(count + 1)" if on else "count")
        self._show(self.current_tensor())

    def _apply_filter(self, text: str) -> None:
        text = text.lower().strip()
        for row in range(self.layers.count()):
            item = self.layers.item(row)
            item.setHidden(bool(text) and text not in item.text().lower()
                           and item.data(_ROLE) != WHOLE_MODEL)

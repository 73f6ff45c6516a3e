"""The Benchmark tab: live latency plots, batch sweeps, per-layer profile and sensitivity."""

from __future__ import annotations

import html
import logging
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.core.events import LatencySample, RecordDone
from workbench.core.measure.benchmark import BenchConfig
from workbench.core.params import param_specs
from workbench.core.train.data import DATASETS
from workbench.gui import theme
from workbench.gui.plots import NameAxis, Plot
from workbench.gui.qt_param_form import QtParamForm
from workbench.gui.qt_responsive import (
    VScrollArea,
    compact_combo,
    responsive_form,
    sturdy_splitter,
)

log = logging.getLogger(__name__)


class QtBenchmarkPanel(QWidget):
    """Forms on the left; latency histogram, timeline and sweep charts on the right."""

    start_requested = Signal(dict)
    stop_requested = Signal()
    profile_requested = Signal(dict)
    sensitivity_requested = Signal(dict)
    ignore_requested = Signal(list)  # layer names for a pass's ignore list

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = QtParamForm(param_specs(BenchConfig))
        self.form.set_value("batch_sizes", [1, 8, 32])
        self.start_button = QPushButton("Run benchmark")
        self.stop_button = QPushButton("Stop")
        self.start_button.clicked.connect(self._start)
        self.stop_button.clicked.connect(self.stop_requested)
        bench_box = QGroupBox("Latency")
        bv = QVBoxLayout(bench_box)
        bv.addWidget(self.form)
        row = QHBoxLayout()
        row.addWidget(self.start_button, 1)
        row.addWidget(self.stop_button)
        bv.addLayout(row)

        self.profile_button = QPushButton("Profile layers")
        self.profile_button.clicked.connect(
            lambda: self.profile_requested.emit({"runtime": "auto", "batch": 1}))
        prof_box = QGroupBox("Per-layer profile")
        pv = QVBoxLayout(prof_box)
        about = QLabel("Times each layer and paints a heat map on the Graph tab.")
        about.setWordWrap(True)
        pv.addWidget(about)
        pv.addWidget(self.profile_button)

        self.sens_method = compact_combo(QComboBox())
        self.sens_method.addItems(["prune", "int8"])
        self.sens_ratio = QDoubleSpinBox(minimum=0.05, maximum=0.99, value=0.5, singleStep=0.05)
        self.sens_data = compact_combo(QComboBox())
        self.sens_data.setEditable(True)
        self.sens_data.addItems(["(fidelity on sample inputs)", *DATASETS])
        self.sens_button = QPushButton("Analyse sensitivity")
        self.sens_button.clicked.connect(self._sensitivity)
        self.sens_k = QSpinBox(minimum=1, maximum=100, value=3)
        self.ignore_button = QPushButton("Ignore the top k")
        self.ignore_button.setToolTip("Add the k most sensitive layers to the pass's ignore list")
        self.ignore_button.setEnabled(False)
        self.ignore_button.clicked.connect(self._ignore)
        sens_box = QGroupBox("Sensitivity")
        f = responsive_form(QFormLayout(sens_box), sens_box)
        f.addRow("Method", self.sens_method)
        f.addRow("Ratio", self.sens_ratio)
        f.addRow("Data", self.sens_data)
        f.addRow(self.sens_button)
        f.addRow("Top k", self.sens_k)
        f.addRow(self.ignore_button)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(bench_box)
        lv.addWidget(prof_box)
        lv.addWidget(sens_box)
        lv.addStretch(1)
        scroll = VScrollArea(left)

        self.summary = QLabel("Run a benchmark to see latency.")
        self.summary.setWordWrap(True)
        self.hist_plot = Plot(title="Latency distribution (ms)")
        self.hist_plot.setLabel("bottom", "ms")
        self.hist_curve = self.hist_plot.plot([0, 1], [0], stepMode="center", fillLevel=0)
        self.timeline_plot = Plot(title="Latency per iteration")
        self.timeline_plot.setLabel("bottom", "iteration")
        self.timeline_plot.setLabel("left", "ms")
        self.timeline_curve = self.timeline_plot.plot()
        self.timeline_plot.setClipToView(True)
        self.timeline_plot.setDownsampling(auto=True)
        self.sweep_plot = Plot(title="p50 latency by batch size")
        self.sweep_plot.setLabel("bottom", "batch size")
        self.sweep_plot.setLabel("left", "ms")
        self.sweep_curve = self.sweep_plot.plot(symbol="o")
        self.tput_plot = Plot(title="Throughput by batch size")
        self.tput_plot.setLabel("bottom", "batch size")
        self.tput_plot.setLabel("left", "samples/s")
        self.tput_curve = self.tput_plot.plot(symbol="s")

        self.layers_table = QTreeWidget()
        self.layers_table.setHeaderLabels(["Layer", "Op", "ms", "share"])
        self.layers_table.setRootIsDecorated(False)
        self.sens_axis = NameAxis("bottom")
        self.sens_plot = Plot(title="Sensitivity: drop per layer (sorted)",
                              axisItems={"bottom": self.sens_axis})
        self.sens_bars = pg.BarGraphItem(x=[0], height=[0], width=0.8)
        self.sens_plot.addItem(self.sens_bars)
        self.sens_table = QTreeWidget()
        self.sens_table.setHeaderLabels(["Layer", "Params", "Drop"])
        self.sens_table.setRootIsDecorated(False)

        latency = sturdy_splitter(QSplitter(Qt.Orientation.Vertical))
        top = sturdy_splitter(QSplitter(Qt.Orientation.Horizontal))
        top.addWidget(self.hist_plot)
        top.addWidget(self.timeline_plot)
        bottom = sturdy_splitter(QSplitter(Qt.Orientation.Horizontal))
        bottom.addWidget(self.sweep_plot)
        bottom.addWidget(self.tput_plot)
        latency.addWidget(top)
        latency.addWidget(bottom)
        sens = sturdy_splitter(QSplitter(Qt.Orientation.Vertical))
        sens.addWidget(self.sens_plot)
        sens.addWidget(self.sens_table)
        self.views = QTabWidget()
        self.views.addTab(latency, "Latency")
        self.views.addTab(self.layers_table, "Slowest layers")
        self.views.addTab(sens, "Sensitivity")
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addWidget(self.summary)
        rv.addWidget(self.views, 1)
        split = sturdy_splitter(QSplitter(Qt.Orientation.Horizontal))
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([280, 10_000])  # the form its width, the plots the rest
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self._samples: dict[int, list[float]] = {}
        self._sweep: list[Any] = []
        self._notes: list[str] = []  # the run's notes (which exporter, how long it took)
        self.sensitivity_rows: list[Any] = []
        self.subject: str | None = None  # the variant whose results are on screen
        self.set_running(False)
        self._apply_theme()
        theme.manager().changed.connect(self._apply_theme)

    # public API ---------------------------------------------------------------------------
    def set_running(self, running: bool) -> None:
        for w in (self.start_button, self.profile_button, self.sens_button):
            w.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def reset(self) -> None:
        self._samples = {}
        self._sweep = []
        self._notes = []
        self.hist_curve.setData([0, 1], [0])
        self.hist_plot.setTitle("Latency distribution (ms)")
        self.timeline_curve.setData([], [])
        self.sweep_curve.setData([], [])
        self.tput_curve.setData([], [])

    def show_variant(self, name: str | None, results: dict[str, Any] | None = None) -> None:
        """Show `name`'s stored benchmark, profile and sensitivity, or say there are none;
        nothing of the previous variant stays on screen."""
        results = results or {}
        self.subject = name
        self.reset()
        bench = results.get("benchmark")
        records = list(getattr(bench, "records", []) or [])
        self._notes = list(getattr(bench, "notes", []) or [])
        for record in records:
            self.add_record(record)
        if not records:
            self.summary.setText("Open a model to benchmark it." if name is None else
                                 f"No benchmark of <b>{name}</b> yet: run one to see its "
                                 "latency.")
        profile = results.get("profile")
        if profile is not None and getattr(profile, "rows", None):
            self.show_profile(profile, focus=False)
        else:
            self.layers_table.clear()
        rows = results.get("sensitivity")
        self.show_sensitivity(list(rows) if rows else [], focus=False)

    def set_stopping(self) -> None:
        """Stop was asked: the run ends after the current measurement."""
        self.stop_button.setEnabled(False)
        self.summary.setText(f"Stopping the benchmark of <b>{self.subject}</b>…")

    def on_progress(self, step: Any) -> None:
        event = step.payload
        if isinstance(event, LatencySample):
            samples = self._samples.setdefault(event.batch, [])
            samples.extend(event.recent_ms or [event.ms])
            self._draw_live(event.batch)
        elif isinstance(event, RecordDone):
            self.add_record(event.record)

    def add_record(self, record: Any) -> None:
        self._sweep.append(record)
        self._sweep.sort(key=lambda r: r.batch)
        self._samples[record.batch] = list(record.samples_ms)
        self._draw_live(record.batch)
        self.sweep_curve.setData([r.batch for r in self._sweep], [r.p50_ms for r in self._sweep])
        self.tput_curve.setData([r.batch for r in self._sweep],
                                [r.throughput for r in self._sweep])
        self._show_summary()

    def show_notes(self, notes: list[str]) -> None:
        """Notes of the finished run (the ONNX export it made or reused) under its records."""
        self._notes = list(notes)
        if self._sweep:
            self._show_summary()

    def _show_summary(self) -> None:
        head = [f"Benchmark of <b>{self.subject}</b>"] if self.subject else []
        lines = head + [f"<b>{r.runtime}/{r.device}</b> batch {r.batch}: p50 {r.p50_ms:.3f} ms · "
                 f"p90 {r.p90_ms:.3f} · p99 {r.p99_ms:.3f} · {r.throughput:,.0f} samples/s"
                 + (f" <span style='color:{theme.accent('warning')}'>⚠ {r.warning}</span>"
                    if r.noisy else "")
                 for r in self._sweep]
        lines += [f"<span style='color:{theme.accent('muted')}'>{html.escape(n)}</span>"
                  for n in self._notes]
        self.summary.setText("<br>".join(lines))

    def show_profile(self, profile: Any, focus: bool = True) -> None:
        self.layers_table.clear()
        for row in profile.rows[:200]:
            self.layers_table.addTopLevelItem(QTreeWidgetItem(
                [row.name, row.op, f"{row.ms:.4f}", f"{row.share:.1%}"]))
        for col in range(4):
            self.layers_table.resizeColumnToContents(col)
        if focus:
            self.views.setCurrentIndex(1)

    def show_sensitivity(self, rows: list[Any], focus: bool = True) -> None:
        self.sensitivity_rows = rows
        self.sens_table.clear()
        for r in rows:
            self.sens_table.addTopLevelItem(QTreeWidgetItem(
                [r.layer, f"{r.params:,}", f"{r.drop:.4f}"]))
        self.sens_table.resizeColumnToContents(0)
        x = np.arange(len(rows), dtype=float)
        self.sens_bars.setOpts(x=x, height=np.array([r.drop for r in rows], dtype=float),
                               width=0.8)
        self.sens_axis.set_names([r.layer for r in rows])
        self.sens_plot.autoRange()
        self.ignore_button.setEnabled(bool(rows))
        if focus:
            self.views.setCurrentIndex(2)

    def batch_sizes(self) -> list[int]:
        return [int(b) for b in self.batches.text().replace(" ", "").split(",") if b]

    # internals ----------------------------------------------------------------------------
    def _apply_theme(self) -> None:
        """Series colours of the current theme (plot backgrounds follow by themselves)."""
        fill = pg.mkColor(theme.series("fill"))
        fill.setAlpha(110)
        self.hist_curve.setPen(pg.mkPen(theme.series("blue")))
        self.hist_curve.setBrush(fill)
        self.timeline_curve.setPen(pg.mkPen(theme.series("orange"), width=1))
        for curve, colour in ((self.sweep_curve, theme.series("blue")),
                              (self.tput_curve, theme.series("green"))):
            curve.setPen(pg.mkPen(colour, width=2))
            curve.setSymbolBrush(colour)
        self.sens_bars.setOpts(brush=theme.series("red"))
        if self._sweep:
            self.add_record(self._sweep.pop())  # redraws the summary's warning colour

    def _draw_live(self, batch: int) -> None:
        samples = np.asarray(self._samples.get(batch, []), dtype=float)
        if samples.size == 0:
            return
        lo, hi = float(samples.min()), float(samples.max())
        counts, edges = np.histogram(samples, bins=40, range=(lo, hi if hi > lo else lo + 1e-6))
        self.hist_curve.setData(edges, counts)
        self.hist_plot.setTitle(f"Latency distribution (ms), batch {batch}")
        self.timeline_curve.setData(np.arange(samples.size), samples)

    def _start(self) -> None:
        self.start_requested.emit(self.form.values())

    def _sensitivity(self) -> None:
        data = self.sens_data.currentText().strip()
        self.sensitivity_requested.emit({
            "method": self.sens_method.currentText(), "ratio": self.sens_ratio.value(),
            "data": None if data.startswith("(") else data})

    def _ignore(self) -> None:
        from workbench.core.measure.sensitivity import most_sensitive

        self.ignore_requested.emit(most_sensitive(self.sensitivity_rows, self.sens_k.value()))

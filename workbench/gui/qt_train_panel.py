"""The Train tab: train, fine-tune, distill or prune-and-fine-tune, with live curves."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.core.events import BatchDone, EpochDone, RoundDone, SamplesShown
from workbench.core.train.data import DATASETS
from workbench.core.train.training import train_param_specs
from workbench.gui import theme
from workbench.gui.plots import Plot, percent_axis
from workbench.gui.qt_param_form import QtParamForm
from workbench.gui.qt_responsive import (
    VScrollArea,
    compact_combo,
    responsive_form,
    sturdy_splitter,
)

log = logging.getLogger(__name__)

MODES = ("Train / fine-tune", "Distill from a teacher", "Iterative prune + fine-tune")


class QtTrainPanel(QWidget):
    """Forms on the left, live curves on the right. The window runs the job."""

    start_requested = Signal(dict)  # {"mode", "dataset", "config", "teacher", ...}
    pause_requested = Signal(bool)  # True: pause, False: resume
    stop_requested = Signal()
    evaluate_requested = Signal(str)  # dataset

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._running = False
        self._hold = False  # a state ("Paused", "Stopping…") the ETA must not overwrite
        self.variant_label = QLabel("No variant selected.")
        self.variant_label.setWordWrap(True)
        self.dataset = compact_combo(QComboBox())
        self.dataset.setEditable(True)
        self.dataset.addItems(list(DATASETS))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        ds_row = QWidget()
        h = QHBoxLayout(ds_row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.dataset, 1)
        h.addWidget(browse)
        self.mode = compact_combo(QComboBox())
        self.mode.addItems(list(MODES))
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.teacher = compact_combo(QComboBox())
        self.teacher.setPlaceholderText("No variant fits as teacher")
        self.teacher.setToolTip("Variants that take the student's inputs and output as many "
                                "classes")
        self.temperature = QDoubleSpinBox(minimum=0.1, maximum=50.0, value=4.0, singleStep=0.5)
        self.alpha = QDoubleSpinBox(minimum=0.0, maximum=1.0, value=0.7, singleStep=0.05)
        self.transfer = QCheckBox("Start from the teacher's layers")
        self.transfer.setToolTip("Start from the teacher's matching layers")
        self.rounds = QSpinBox(minimum=1, maximum=20, value=4)
        self.step = QDoubleSpinBox(minimum=0.01, maximum=0.9, value=0.2, singleStep=0.05)
        self.budget = QDoubleSpinBox(minimum=0.0, maximum=1.0, value=0.01, singleStep=0.01,
                                     decimals=3)
        self.processes = QSpinBox(minimum=1, maximum=64, value=1)
        self.processes.setToolTip("Train, distill or prune-and-fine-tune data-parallel in this "
                                  "many processes (torch's elastic launcher); curves come "
                                  "from rank 0")
        top = QFormLayout()
        top.addRow("Variant", self.variant_label)
        top.addRow("Dataset", ds_row)
        top.addRow("Mode", self.mode)
        top.addRow("Processes", self.processes)
        self.distill_box = QGroupBox("Distillation")
        f = responsive_form(QFormLayout(self.distill_box), self.distill_box)
        f.addRow("Teacher", self.teacher)
        f.addRow("Temperature T", self.temperature)
        f.addRow("α (KL weight)", self.alpha)
        f.addRow(self.transfer)
        self.prune_box = QGroupBox("Prune schedule")
        f = responsive_form(QFormLayout(self.prune_box), self.prune_box)
        f.addRow("Rounds", self.rounds)
        f.addRow("Prune per round", self.step)
        f.addRow("Accuracy budget", self.budget)
        self.form = QtParamForm(train_param_specs())
        self.resume = QCheckBox("Resume this variant's last run")
        self.resume.setToolTip("Continue from the last epoch checkpoint of the previous run")
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.eval_button = QPushButton("Evaluate")
        self.start_button.clicked.connect(self._start)
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button.clicked.connect(self.stop_requested)
        self.eval_button.clicked.connect(
            lambda: self.evaluate_requested.emit(self.dataset.currentText().strip()))
        buttons = QGridLayout()  # two by two: the form stays narrow and every label shows
        for i, b in enumerate((self.start_button, self.pause_button, self.stop_button,
                               self.eval_button)):
            buttons.addWidget(b, i // 2, i % 2)
        left = QWidget()
        responsive_form(top, left)
        lv = QVBoxLayout(left)
        lv.addLayout(top)
        lv.addWidget(self.distill_box)
        lv.addWidget(self.prune_box)
        lv.addWidget(QLabel("<b>Optimizer and schedule</b>"))
        lv.addWidget(self.form)
        lv.addWidget(self.resume)
        lv.addLayout(buttons)
        lv.addStretch(1)
        scroll = VScrollArea(left)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.eta = QLabel("Idle")
        self.loss_plot = Plot(title="Loss")
        self.loss_plot.addLegend(offset=(-10, 10))
        self.loss_plot.setLabel("bottom", "epoch")
        self.batch_curve = self.loss_plot.plot(name="train (batches)")
        self.train_curve = self.loss_plot.plot(symbol="o", symbolSize=5, name="train")
        self.val_curve = self.loss_plot.plot(symbol="o", symbolSize=5, name="val")
        self.acc_plot = Plot(title="Accuracy")
        self.acc_plot.addLegend(offset=(-10, -10))
        self.acc_plot.setLabel("bottom", "epoch")
        percent_axis(self.acc_plot, "left", "accuracy")
        self.train_acc_curve = self.acc_plot.plot(symbol="o", symbolSize=5, name="train")
        self.val_acc_curve = self.acc_plot.plot(symbol="o", symbolSize=5, name="val")
        self.lr_plot = Plot(title="Learning rate")
        self.lr_plot.setLabel("bottom", "epoch")
        self.lr_curve = self.lr_plot.plot()
        self.sparsity_plot = Plot(title="Accuracy against sparsity")
        percent_axis(self.sparsity_plot, "bottom", "sparsity")
        percent_axis(self.sparsity_plot, "left", "val accuracy")
        self.sparsity_curve = self.sparsity_plot.plot(symbol="o", symbolSize=7)
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
            plot.setClipToView(True)
            plot.setDownsampling(auto=True)
        self.samples_plot = Plot(title="Samples")
        self.samples_plot.hideAxis("left")
        self.samples_plot.hideAxis("bottom")
        self.samples_plot.setAspectLocked(True)
        self.samples_image = pg.ImageItem()
        self.samples_plot.addItem(self.samples_image)
        self._sample_labels: list[Any] = []

        grid = sturdy_splitter(QSplitter(Qt.Orientation.Vertical))
        row1 = sturdy_splitter(QSplitter(Qt.Orientation.Horizontal))
        row1.addWidget(self.loss_plot)
        row1.addWidget(self.acc_plot)
        row2 = sturdy_splitter(QSplitter(Qt.Orientation.Horizontal))
        row2.addWidget(self.lr_plot)
        row2.addWidget(self.sparsity_plot)
        row2.addWidget(self.samples_plot)
        grid.addWidget(row1)
        grid.addWidget(row2)
        grid.setSizes([480, 300])
        right = QWidget()
        rv = QVBoxLayout(right)
        status = QHBoxLayout()
        status.addWidget(self.progress, 1)
        status.addWidget(self.eta)
        rv.addLayout(status)
        rv.addWidget(grid, 1)
        split = sturdy_splitter(QSplitter(Qt.Orientation.Horizontal))
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([280, 10_000])  # the form its width, the plots the rest
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self._reset_curves()
        self._mode_changed()
        self.set_running(False)
        self._apply_theme()
        theme.manager().changed.connect(self._apply_theme)

    # public API ---------------------------------------------------------------------------
    def set_variant(self, name: str | None, teachers: list[tuple[str, str]]) -> None:
        """The variant to train and the candidates for teacher (id, name). While a run goes
        on, the label keeps naming the variant being trained (the curves are its)."""
        if not self._running:
            self.variant_label.setText(name or "No variant selected.")
        current = self.teacher.currentData()
        self.teacher.clear()
        for vid, tname in teachers:
            self.teacher.addItem(tname, vid)
        if self.teacher.count():  # the previous teacher if it still fits, else the first
            self.teacher.setCurrentIndex(max(0, self.teacher.findData(current)))
        self.start_button.setEnabled(name is not None and not self._running)
        self.eval_button.setEnabled(name is not None and not self._running)

    def set_running(self, running: bool) -> None:
        self._running = running
        has_variant = self.variant_label.text() != "No variant selected."
        self.start_button.setEnabled(not running and has_variant)
        self.eval_button.setEnabled(not running and has_variant)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Pause")
        self.progress.setFormat("%p%")
        self._hold = False
        if running:
            self._reset_curves()
            self._t0 = time.monotonic()
            self.eta.setText("Starting…")

    def set_paused(self, paused: bool) -> None:
        """Show that the run waits (the job itself stops at the next batch)."""
        self._hold = paused
        self.pause_button.setText("Resume" if paused else "Pause")
        self.eta.setText("Paused" if paused else "Resuming…")
        self.progress.setFormat("Paused at %p%" if paused else "%p%")

    def set_stopping(self) -> None:
        """Stop was asked: the run ends after the current batch and keeps what it learnt."""
        self._hold = True
        self.pause_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        self.eta.setText("Stopping…")
        self.progress.setFormat("Stopping at %p%")

    def finish(self, outcome: str) -> None:
        """The run is over: say how (no ETA is left on screen)."""
        epochs = len(self.history)
        done = f" after {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else ""
        text = {"done": f"Finished{done}", "stopped": f"Stopped{done}",
                "cancelled": "Cancelled", "failed": "Failed"}.get(outcome, outcome)
        self.eta.setText(text)
        self.progress.setFormat(f"{text.split(' ')[0]} at %p%" if outcome != "done"
                                else "%p%")

    def show_history(self, name: str | None, history: list[dict[str, Any]] | None) -> None:
        """The stored curves of `name`'s training run, or empty ones (never another
        variant's): called when the selection changes and no run is going on."""
        if self._running:
            return
        self._reset_curves()
        self.progress.setFormat("%p%")
        for record in history or []:
            self.history.append(dict(record))
        if self.history:
            self._draw_epochs()
            self.progress.setValue(1000)
            self.eta.setText(f"{name}: trained for {len(self.history)} epoch"
                             f"{'s' if len(self.history) != 1 else ''}")
        else:
            self.eta.setText("Idle" if name is None else f"{name}: no training run yet")

    def on_progress(self, step: Any) -> None:
        """Feed a job's Progress: batch and epoch events grow the curves."""
        event = step.payload
        if step.fraction is not None:
            self.progress.setValue(int(step.fraction * 1000))
        if isinstance(event, SamplesShown):
            self.show_samples(event.images, event.labels)
        elif isinstance(event, BatchDone):
            self._batch_x.append(event.epoch + (event.step + 1) / max(event.steps, 1))
            self._batch_y.append(event.loss)
            self.batch_curve.setData(self._batch_x, self._batch_y)
            if not self._hold:  # "Paused" and "Stopping…" stay until the state changes
                self.eta.setText(f"{step.message} · ETA {event.eta_s:.0f} s")
        elif isinstance(event, EpochDone):
            self.history.append(event.to_json())
            self._draw_epochs()
        elif isinstance(event, RoundDone):
            self._rounds.append((event.sparsity, event.accuracy))
            xs, ys = zip(*self._rounds, strict=True)
            self.sparsity_curve.setData(list(xs), list(ys))
        elif step.message and not self._hold:
            self.eta.setText(step.message)

    def set_baseline(self, accuracy: float) -> None:
        self._rounds = [(0.0, accuracy)]
        self.sparsity_curve.setData([0.0], [accuracy])

    def show_samples(self, images: np.ndarray, labels: list[str]) -> None:
        """A grid of up to 16 samples (N, H, W) with their labels."""
        for item in self._sample_labels:
            self.samples_plot.removeItem(item)
        self._sample_labels = []
        n = min(len(images), 16)
        if n == 0:
            self.samples_image.clear()
            return
        cols = 4
        rows = (n + cols - 1) // cols
        h, w = images.shape[1:3]
        canvas = np.zeros((rows * (h + 2), cols * (w + 2)), dtype=np.float32)
        for i in range(n):
            r, c = divmod(i, cols)
            img = images[i]
            img = (img - img.min()) / (np.ptp(img) + 1e-9)
            canvas[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = img
            text = pg.TextItem(labels[i], color=theme.palette_color("ToolTipText"),
                               anchor=(0, 0), fill=pg.mkBrush(theme.palette_color("ToolTipBase")))
            text.setPos(c * (w + 2), (rows - r) * (h + 2))
            self.samples_plot.addItem(text)
            self._sample_labels.append(text)
        self.samples_image.setImage(np.flipud(canvas).T)
        self.samples_plot.autoRange()

    def config_values(self) -> dict[str, Any]:
        return self.form.values()

    # internals ----------------------------------------------------------------------------
    def _apply_theme(self) -> None:
        """Series colours of the current theme (plot backgrounds follow by themselves)."""
        blue, orange = theme.series("blue"), theme.series("orange")
        for curve, colour, width in (
                (self.batch_curve, theme.series("faint"), 1), (self.train_curve, blue, 2),
                (self.val_curve, orange, 2), (self.train_acc_curve, blue, 2),
                (self.val_acc_curve, orange, 2), (self.lr_curve, theme.series("green"), 2),
                (self.sparsity_curve, theme.series("purple"), 2)):
            curve.setPen(pg.mkPen(colour, width=width))
            curve.setSymbolBrush(colour)
            curve.setSymbolPen(colour)

    def _draw_epochs(self) -> None:
        h = self.history
        x = [r.get("epoch") for r in h]
        self.train_curve.setData(x, [r.get("train_loss") for r in h])
        self.val_curve.setData(x, [r.get("val_loss") for r in h])
        if h and h[-1].get("val_accuracy") is not None:
            self.train_acc_curve.setData(x, [r.get("train_accuracy") for r in h])
            self.val_acc_curve.setData(x, [r.get("val_accuracy") for r in h])
        self.lr_curve.setData(x, [r.get("lr") for r in h])

    def _reset_curves(self) -> None:
        self.history: list[dict[str, Any]] = []
        self._batch_x: list[float] = []
        self._batch_y: list[float] = []
        self._rounds: list[tuple[float, float]] = []
        for curve in (self.batch_curve, self.train_curve, self.val_curve, self.train_acc_curve,
                      self.val_acc_curve, self.lr_curve, self.sparsity_curve):
            curve.setData([], [])
        self.progress.setValue(0)

    def _mode_changed(self) -> None:
        i = self.mode.currentIndex()
        self.distill_box.setVisible(i == 1)
        self.prune_box.setVisible(i == 2)
        self.sparsity_plot.setVisible(i == 2)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Dataset", "", "Data (*.npz *.csv)")
        if path:
            self.dataset.setCurrentText(path)

    def _toggle_pause(self) -> None:
        pausing = self.pause_button.text() == "Pause"
        self.pause_requested.emit(pausing)
        self.set_paused(pausing)

    def _start(self) -> None:
        mode = ("train", "distill", "prune")[self.mode.currentIndex()]
        self.start_requested.emit({
            "mode": mode, "dataset": self.dataset.currentText().strip(),
            "config": self.config_values(), "teacher": self.teacher.currentData(),
            "temperature": self.temperature.value(), "alpha": self.alpha.value(),
            "transfer": self.transfer.isChecked(), "resume": self.resume.isChecked(),
            "rounds": self.rounds.value(), "step": self.step.value(),
            "budget": self.budget.value(), "processes": self.processes.value()})

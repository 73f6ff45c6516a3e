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
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.core.events import BatchDone, EpochDone, RoundDone, SamplesShown
from workbench.core.train.data import DATASETS
from workbench.core.train.training import train_param_specs
from workbench.gui.qt_param_form import QtParamForm

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
        self.variant_label = QLabel("No variant selected.")
        self.variant_label.setWordWrap(True)
        self.dataset = QComboBox()
        self.dataset.setEditable(True)
        self.dataset.addItems(list(DATASETS))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        ds_row = QWidget()
        h = QHBoxLayout(ds_row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.dataset, 1)
        h.addWidget(browse)
        self.mode = QComboBox()
        self.mode.addItems(list(MODES))
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.teacher = QComboBox()
        self.teacher.setPlaceholderText("No variant fits as teacher")
        self.teacher.setToolTip("Variants that take the student's inputs and output as many "
                                "classes")
        self.temperature = QDoubleSpinBox(minimum=0.1, maximum=50.0, value=4.0, singleStep=0.5)
        self.alpha = QDoubleSpinBox(minimum=0.0, maximum=1.0, value=0.7, singleStep=0.05)
        self.transfer = QCheckBox("Start from the teacher's matching layers")
        self.rounds = QSpinBox(minimum=1, maximum=20, value=4)
        self.step = QDoubleSpinBox(minimum=0.01, maximum=0.9, value=0.2, singleStep=0.05)
        self.budget = QDoubleSpinBox(minimum=0.0, maximum=1.0, value=0.01, singleStep=0.01,
                                     decimals=3)
        top = QFormLayout()
        top.addRow("Variant", self.variant_label)
        top.addRow("Dataset", ds_row)
        top.addRow("Mode", self.mode)
        self.distill_box = QGroupBox("Distillation")
        f = QFormLayout(self.distill_box)
        f.addRow("Teacher", self.teacher)
        f.addRow("Temperature T", self.temperature)
        f.addRow("α (KL weight)", self.alpha)
        f.addRow(self.transfer)
        self.prune_box = QGroupBox("Prune schedule")
        f = QFormLayout(self.prune_box)
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
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.stop_button, self.eval_button):
            buttons.addWidget(b)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addLayout(top)
        lv.addWidget(self.distill_box)
        lv.addWidget(self.prune_box)
        lv.addWidget(QLabel("<b>Optimizer and schedule</b>"))
        lv.addWidget(self.form)
        lv.addWidget(self.resume)
        lv.addLayout(buttons)
        lv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(left)
        scroll.setMinimumWidth(330)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.eta = QLabel("Idle")
        self.loss_plot = pg.PlotWidget(title="Loss")
        self.loss_plot.addLegend(offset=(-10, 10))
        self.loss_plot.setLabel("bottom", "epoch")
        self.batch_curve = self.loss_plot.plot(pen=pg.mkPen("#9db8e8", width=1),
                                               name="train (batches)")
        self.train_curve = self.loss_plot.plot(pen=pg.mkPen("#1a5fd0", width=2), symbol="o",
                                               symbolSize=5, name="train")
        self.val_curve = self.loss_plot.plot(pen=pg.mkPen("#e0761b", width=2), symbol="o",
                                             symbolSize=5, name="val")
        self.acc_plot = pg.PlotWidget(title="Accuracy")
        self.acc_plot.addLegend(offset=(-10, -10))
        self.acc_plot.setLabel("bottom", "epoch")
        self.train_acc_curve = self.acc_plot.plot(pen=pg.mkPen("#1a5fd0", width=2), symbol="o",
                                                  symbolSize=5, name="train")
        self.val_acc_curve = self.acc_plot.plot(pen=pg.mkPen("#e0761b", width=2), symbol="o",
                                                symbolSize=5, name="val")
        self.lr_plot = pg.PlotWidget(title="Learning rate")
        self.lr_plot.setLabel("bottom", "epoch")
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen("#2f8f5b", width=2))
        self.sparsity_plot = pg.PlotWidget(title="Accuracy against sparsity")
        self.sparsity_plot.setLabel("bottom", "sparsity")
        self.sparsity_plot.setLabel("left", "val accuracy")
        self.sparsity_curve = self.sparsity_plot.plot(pen=pg.mkPen("#8e6bd6", width=2),
                                                      symbol="o", symbolSize=7)
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
            plot.setClipToView(True)
            plot.setDownsampling(auto=True)
        self.samples_plot = pg.PlotWidget(title="Samples")
        self.samples_plot.hideAxis("left")
        self.samples_plot.hideAxis("bottom")
        self.samples_plot.setAspectLocked(True)
        self.samples_image = pg.ImageItem()
        self.samples_plot.addItem(self.samples_image)
        self._sample_labels: list[Any] = []

        grid = QSplitter(Qt.Orientation.Vertical)
        row1 = QSplitter(Qt.Orientation.Horizontal)
        row1.addWidget(self.loss_plot)
        row1.addWidget(self.acc_plot)
        row2 = QSplitter(Qt.Orientation.Horizontal)
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
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(right)
        split.setSizes([340, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self._reset_curves()
        self._mode_changed()
        self.set_running(False)

    # public API ---------------------------------------------------------------------------
    def set_variant(self, name: str | None, teachers: list[tuple[str, str]]) -> None:
        """The variant to train and the candidates for teacher (id, name)."""
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
        if running:
            self._reset_curves()
            self._t0 = time.monotonic()

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
            self.eta.setText(f"{step.message} · ETA {event.eta_s:.0f} s")
        elif isinstance(event, EpochDone):
            h = self.history
            h.append(event.to_json())
            x = [r["epoch"] for r in h]
            self.train_curve.setData(x, [r["train_loss"] for r in h])
            self.val_curve.setData(x, [r["val_loss"] for r in h])
            if h[-1].get("val_accuracy") is not None:
                self.train_acc_curve.setData(x, [r["train_accuracy"] for r in h])
                self.val_acc_curve.setData(x, [r["val_accuracy"] for r in h])
            self.lr_curve.setData(x, [r["lr"] for r in h])
        elif isinstance(event, RoundDone):
            self._rounds.append((event.sparsity, event.accuracy))
            xs, ys = zip(*self._rounds, strict=True)
            self.sparsity_curve.setData(list(xs), list(ys))
        elif step.message:
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
            text = pg.TextItem(labels[i], color="#ffeb3b", anchor=(0, 0),
                               fill=pg.mkBrush(0, 0, 0, 170))
            text.setPos(c * (w + 2), (rows - r) * (h + 2))
            self.samples_plot.addItem(text)
            self._sample_labels.append(text)
        self.samples_image.setImage(np.flipud(canvas).T)
        self.samples_plot.autoRange()

    def config_values(self) -> dict[str, Any]:
        return self.form.values()

    # internals ----------------------------------------------------------------------------
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
        self.pause_button.setText("Resume" if pausing else "Pause")
        self.pause_requested.emit(pausing)

    def _start(self) -> None:
        mode = ("train", "distill", "prune")[self.mode.currentIndex()]
        self.start_requested.emit({
            "mode": mode, "dataset": self.dataset.currentText().strip(),
            "config": self.config_values(), "teacher": self.teacher.currentData(),
            "temperature": self.temperature.value(), "alpha": self.alpha.value(),
            "transfer": self.transfer.isChecked(), "resume": self.resume.isChecked(),
            "rounds": self.rounds.value(), "step": self.step.value(),
            "budget": self.budget.value()})

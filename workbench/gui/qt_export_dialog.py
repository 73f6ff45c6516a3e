"""The Export dialog: a path, a format and (for torch to ONNX) the opset, in one place.

The format decides the extension: choosing one puts its suffix on the path, and a path
whose suffix names no format (a variant name with a dot, 'mlp·prune.structured') gets the
chosen format's suffix appended rather than failing. Browse… opens a save dialog whose type
filter is the chosen format.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from workbench.core.errors import InvalidParameterError
from workbench.core.model.export import (
    FORMATS,
    SUFFIXES,
    export_format,
    suggested_filename,
    with_suffix_for,
)

log = logging.getLogger(__name__)

# format -> (label, file dialog filter)
FORMAT_LABELS = {"onnx": ("ONNX", "ONNX (*.onnx)"),
                 "pt2": ("PyTorch export (.pt2)", "PyTorch export (*.pt2)"),
                 "torchscript": ("TorchScript", "TorchScript (*.ts *.pt)"),
                 "safetensors": ("State dict (safetensors)", "State dict (*.safetensors)")}
OPSETS = (13, 21)
DEFAULT_OPSET = 18


class QtExportDialog(QDialog):
    """Ask where and how to export a variant; `path()`, `fmt()` and `opset()` give the
    answer once `exec()` accepted it."""

    def __init__(self, variant_name: str, backend: str, folder: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Export {variant_name}")
        self.backend = backend
        self.format_box = QComboBox()
        for fmt, (label, _) in FORMAT_LABELS.items():
            if backend == "torch" or fmt == "onnx":  # an ONNX variant exports to ONNX only
                self.format_box.addItem(label, fmt)
        self.path_edit = QLineEdit(os.path.join(folder or str(Path.home()),
                                                suggested_filename(variant_name, "onnx")))
        self.path_edit.textEdited.connect(self._path_edited)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QWidget()
        row = QHBoxLayout(path_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.opset_box = QSpinBox(minimum=OPSETS[0], maximum=OPSETS[1], value=DEFAULT_OPSET)
        self.opset_box.setToolTip("The ONNX operator set the torch model is exported to")
        self.opset_label = QLabel("ONNX opset")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setText("Export")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Format", self.format_box)
        form.addRow("File", path_row)
        form.addRow(self.opset_label, self.opset_box)
        form.addRow(self.note)
        form.addRow(self.buttons)
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self._format_changed()
        self.resize(560, self.sizeHint().height())

    # answers ------------------------------------------------------------------------------
    def fmt(self) -> str:
        return str(self.format_box.currentData())

    def path(self) -> str:
        """The path to write: what was typed, ending in the chosen format's suffix."""
        text = self.path_edit.text().strip()
        return with_suffix_for(text, self.fmt()) if text else ""

    def opset(self) -> int:
        return self.opset_box.value()

    def set_format(self, fmt: str) -> bool:
        index = self.format_box.findData(fmt)
        if index >= 0:
            self.format_box.setCurrentIndex(index)
        return index >= 0

    # internals ----------------------------------------------------------------------------
    def _format_changed(self) -> None:
        fmt = self.fmt()
        text = self.path_edit.text().strip()
        if text:
            self.path_edit.setText(_swap_suffix(text, fmt))
        onnx_from_torch = fmt == "onnx" and self.backend == "torch"
        self.opset_box.setEnabled(onnx_from_torch)
        self.opset_label.setEnabled(onnx_from_torch)
        self.note.setText("" if self.backend == "torch" else
                          "An ONNX variant exports to ONNX only, as it is.")
        self.note.setVisible(self.backend != "torch")

    def _path_edited(self, text: str) -> None:
        """A typed suffix that names a format selects that format."""
        try:
            fmt = export_format(text)
        except InvalidParameterError:
            return
        if fmt != self.fmt():
            self.format_box.blockSignals(True)
            self.set_format(fmt)
            self.format_box.blockSignals(False)
            self._format_changed()

    def _browse(self) -> None:
        fmt = self.fmt()
        chosen_filter = FORMAT_LABELS[fmt][1]
        filters = ";;".join(FORMAT_LABELS[f][1] for f in
                            (self.format_box.itemData(i) for i in range(self.format_box.count())))
        path, picked = QFileDialog.getSaveFileName(self, "Export to", self.path(), filters,
                                                   chosen_filter)
        if not path:
            return
        picked_fmt = next((f for f, (_, flt) in FORMAT_LABELS.items() if flt == picked), fmt)
        self.set_format(picked_fmt)  # the filter chosen in the dialog sets the extension
        self.path_edit.setText(with_suffix_for(path, picked_fmt))

    def _accept(self) -> None:
        if self.path():
            self.path_edit.setText(self.path())
            self.accept()


def _swap_suffix(path: str, fmt: str) -> str:
    """`path` with a format's suffix replaced by `fmt`'s (any other suffix is kept, and
    `fmt`'s appended)."""
    lower = path.lower()
    for suffix in FORMATS:
        if lower.endswith(suffix) and len(path) > len(suffix):
            return path[:-len(suffix)] + SUFFIXES[fmt]
    return with_suffix_for(path, fmt)

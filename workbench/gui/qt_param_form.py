"""A form generated from a pass's typed parameters (ranges, choices, help text)."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from workbench.core.passes.base import ParamSpec
from workbench.gui.qt_responsive import compact_combo, responsive_form

log = logging.getLogger(__name__)

_BIG = 1_000_000_000


class QtParamForm(QWidget):
    """Editors for a list of ParamSpecs; `values()` returns typed values by name."""

    changed = Signal()
    pick_nodes = Signal(str)  # parameter name whose node list wants the graph's selection

    def __init__(self, specs: list[ParamSpec], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.specs = specs
        self._getters: dict[str, Any] = {}
        self._setters: dict[str, Any] = {}
        layout = QFormLayout(self)
        responsive_form(layout, self)  # labels above the fields when the form is narrow
        for spec in specs:
            editor = self._editor(spec)
            editor.setToolTip(spec.help)
            label = spec.name.replace("_", " ")
            layout.addRow(label, editor)
            layout.labelForField(editor).setToolTip(spec.help)

    def _editor(self, spec: ParamSpec) -> QWidget:
        if spec.choices:
            box = compact_combo(QComboBox())
            for c in spec.choices:
                box.addItem(str(c), c)
            box.setCurrentIndex(max(0, list(spec.choices).index(spec.default)
                                    if spec.default in spec.choices else 0))
            box.currentIndexChanged.connect(self.changed)
            self._getters[spec.name] = box.currentData
            self._setters[spec.name] = lambda v, b=box: b.setCurrentIndex(max(0, b.findData(v)))
            return box
        if spec.type == "bool":
            check = QCheckBox()
            check.setChecked(bool(spec.default))
            check.toggled.connect(self.changed)
            self._getters[spec.name] = check.isChecked
            self._setters[spec.name] = check.setChecked
            return check
        if spec.type == "int":
            spin = QSpinBox()
            lo = int(spec.min) if spec.min is not None else -_BIG
            if spec.nullable:  # one below the minimum stands for "unset"
                lo -= 1
                spin.setSpecialValueText("default")
            spin.setRange(lo, int(spec.max) if spec.max is not None else _BIG)
            spin.setValue(lo if spec.default is None else int(spec.default))
            spin.valueChanged.connect(self.changed)
            self._getters[spec.name] = (lambda sp=spin, unset=lo: None if sp.value() == unset
                                        else sp.value()) if spec.nullable else spin.value
            self._setters[spec.name] = (lambda v, sp=spin, unset=lo: sp.setValue(
                unset if v is None else v)) if spec.nullable else spin.setValue
            return spin
        if spec.type == "float":
            return self._float_editor(spec)
        line = QLineEdit()
        if spec.type == "list":
            line.setText(", ".join(map(str, spec.default or [])))
            line.setPlaceholderText("comma-separated")
            self._getters[spec.name] = lambda le=line: [v.strip() for v in le.text().split(",")
                                                        if v.strip()]
            self._setters[spec.name] = lambda v, le=line: le.setText(", ".join(map(str, v)))
        else:
            line.setText(str(spec.default or ""))
            self._getters[spec.name] = line.text
            self._setters[spec.name] = lambda v, le=line: le.setText(str(v))
        line.textChanged.connect(self.changed)
        if spec.widget != "nodes":
            return line
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(line, 1)
        button = QPushButton("+ selected node")
        button.setToolTip("Add the node selected in the Graph tab")
        button.clicked.connect(lambda: self.pick_nodes.emit(spec.name))
        h.addWidget(button)
        return row

    def _float_editor(self, spec: ParamSpec) -> QWidget:
        spin = QDoubleSpinBox()
        lo = spec.min if spec.min is not None else -_BIG
        hi = spec.max if spec.max is not None else _BIG
        if spec.nullable:  # zero stands for "unset"
            lo = 0.0
            spin.setSpecialValueText("off")
        spin.setRange(lo, hi)
        spin.setDecimals(4 if hi - lo < 10 else 2)
        spin.setSingleStep(0.05 if hi - lo <= 1 else 0.1)
        spin.setValue(float(spec.default or 0.0))
        spin.valueChanged.connect(self.changed)
        if spec.nullable:
            self._getters[spec.name] = lambda sp=spin: sp.value() or None
            self._setters[spec.name] = lambda v, sp=spin: sp.setValue(v or 0.0)
        else:
            self._getters[spec.name] = spin.value
            self._setters[spec.name] = spin.setValue
        if spec.widget != "slider" or spec.min is None or spec.max is None:
            return spin
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(0, 1000)

        def to_slider(v: float) -> int:
            return round((v - lo) / (hi - lo) * 1000)

        slider.setValue(to_slider(spin.value()))
        slider.valueChanged.connect(lambda s: spin.setValue(lo + (hi - lo) * s / 1000))
        spin.valueChanged.connect(lambda v: slider.setValue(to_slider(v)))
        h.addWidget(slider, 1)
        h.addWidget(spin)
        return row

    def values(self) -> dict[str, Any]:
        return {name: get() for name, get in self._getters.items()}

    def set_value(self, name: str, value: Any) -> None:
        self._setters[name](value)

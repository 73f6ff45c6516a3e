"""The Passes dock: passes by category, a form per pass, a preview, Apply, and the report."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QLabel,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qdebounced

from workbench.core.errors import WorkbenchError
from workbench.core.passes.base import Pass, PassReport, parse_params
from workbench.core.passes.quant_auto import SUGGEST_FOR, suggest_int8
from workbench.core.passes.registry import Registry
from workbench.gui import theme
from workbench.gui.qt_param_form import QtParamForm
from workbench.gui.qt_pass_report import PLACEHOLDER, QtPassReport
from workbench.gui.qt_responsive import VScrollArea

log = logging.getLogger(__name__)

_ROLE = Qt.ItemDataRole.UserRole


class QtPassesPanel(QWidget):
    """Pick a pass, fill its form, press Apply. The window runs it in a worker."""

    apply_requested = Signal(str, dict)  # pass name, raw parameter values
    pick_nodes = Signal(str)  # parameter name

    def __init__(self, registry: Registry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.variant: Any = None  # the selected Variant (for previews and backend checks)
        self.analysis: Any = None  # its Analysis, when known (for advice such as int8's)
        # No torch work on the GUI thread while a worker runs: torch.export's fake-tensor
        # mode is not safe against tensor ops from another thread.
        self.busy = False
        self.form: QtParamForm | None = None

        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        for category, passes in registry.by_category().items():
            top = QTreeWidgetItem([category.capitalize()])
            top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            self.tree.addTopLevelItem(top)
            for cls in passes:
                item = QTreeWidgetItem([f"{cls.title}  ({cls.name})"])
                item.setData(0, _ROLE, cls.name)
                item.setToolTip(0, cls.description or cls.title)
                top.addChild(item)
            top.setExpanded(True)
        if registry.failed:
            top = QTreeWidgetItem(["Failed plugins"])
            top.setForeground(0, QColor(theme.accent("error")))
            self.tree.addTopLevelItem(top)
            for info in registry.failed:
                item = QTreeWidgetItem([f"{info.entry_point} ({info.origin})"])
                item.setToolTip(0, info.error or "")
                item.setForeground(0, QColor(theme.accent("error")))
                top.addChild(item)
        self.tree.currentItemChanged.connect(self._on_pass_changed)

        self.description = QLabel("Choose a pass.")
        self.description.setWordWrap(True)
        self.advice = QLabel()  # e.g. "prefer static int8" for convolution-heavy models
        self.advice.setWordWrap(True)
        self.advice.setVisible(False)
        self.form_area = VScrollArea()
        self.preview = QTreeWidget()
        self.preview.setHeaderLabels(["Layer", "Preview"])
        self.preview.setRootIsDecorated(False)
        self.preview.setVisible(False)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self._apply)
        self.report = QtPassReport()

        top_box = QWidget()
        tv = QVBoxLayout(top_box)
        tv.setContentsMargins(0, 0, 0, 0)
        tv.addWidget(self.tree)
        form_box = QWidget()
        fv = QVBoxLayout(form_box)
        fv.setContentsMargins(0, 0, 0, 0)
        fv.addWidget(self.description)
        fv.addWidget(self.advice)
        fv.addWidget(self.form_area, 1)
        fv.addWidget(self.preview, 1)
        fv.addWidget(self.apply_button)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top_box)
        split.addWidget(form_box)
        split.addWidget(self.report)
        split.setSizes([220, 360, 220])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(split)
        self._apply_theme()
        theme.manager().changed.connect(self._apply_theme)

    # public API ---------------------------------------------------------------------------
    def current_pass(self) -> type[Pass] | None:
        item = self.tree.currentItem()
        name = item.data(0, _ROLE) if item else None
        return self.registry.passes.get(name) if name else None

    def select_pass(self, name: str) -> bool:
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                if top.child(j).data(0, _ROLE) == name:
                    self.tree.setCurrentItem(top.child(j))
                    return True
        return False

    def set_variant(self, variant: Any, analysis: Any = None) -> None:
        self.variant = variant
        self.analysis = analysis
        self._update_enabled()
        self._refresh_preview()

    def add_to_list_param(self, param: str, values: list[str]) -> None:
        if self.form is None:
            return
        current = list(self.form.values().get(param) or [])
        self.form.set_value(param, current + [v for v in values if v not in current])

    def show_report(self, report: PassReport) -> None:
        self.report.show_report(report)

    def clear_report(self, message: str = PLACEHOLDER) -> None:
        """No report (the selected variant was not made by a pass, or is gone)."""
        self.report.clear(message)

    # internals ----------------------------------------------------------------------------
    def _apply_theme(self) -> None:
        self.advice.setStyleSheet(f"color: {theme.accent('warning')}")
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.text(0) == "Failed plugins":
                for item in (top, *(top.child(j) for j in range(top.childCount()))):
                    item.setForeground(0, QColor(theme.accent("error")))

    def _on_pass_changed(self, item: QTreeWidgetItem | None, _prev: Any = None) -> None:
        cls = self.current_pass()
        if cls is None:
            self.form = None
            self.form_area.takeWidget()
            self.description.setText("Choose a pass.")
            self._update_enabled()
            return
        self.description.setText(f"<b>{cls.title}</b> — works on "
                                 f"{' and '.join(cls.backends)} models. {cls.description}")
        self.form = QtParamForm(cls.param_specs())
        self.form.changed.connect(self._refresh_preview)
        self.form.pick_nodes.connect(self.pick_nodes)
        self.form_area.setWidget(self.form)
        self._update_enabled()
        self._refresh_preview()

    def _update_advice(self) -> None:
        cls = self.current_pass()
        text = None
        if cls is not None and cls.name in SUGGEST_FOR and self.analysis is not None:
            text = suggest_int8(self.analysis)
        self.advice.setText(text or "")
        self.advice.setVisible(bool(text))

    def _update_enabled(self) -> None:
        self._update_advice()
        cls = self.current_pass()
        ok = cls is not None and self.variant is not None and \
            self.variant.backend in cls.backends
        self.apply_button.setEnabled(ok)
        if cls is not None and self.variant is not None and not ok:
            self.apply_button.setToolTip(f"{cls.name} does not run on {self.variant.backend} "
                                         "models.")
        else:
            self.apply_button.setToolTip("")

    @qdebounced(timeout=150)
    def _refresh_preview(self) -> None:
        self._preview_now()

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        if not busy:
            self._refresh_preview()

    def _preview_now(self) -> None:
        if self.busy:
            return
        cls = self.current_pass()
        values = None
        if cls is not None and self.variant is not None and self.form is not None and \
                self.variant.backend in cls.backends:
            try:
                values = cls().preview(self.variant, parse_params(cls, self.form.values()))
            except WorkbenchError as exc:
                self.description.setToolTip(str(exc))
        self.preview.setVisible(values is not None)
        self.preview.clear()
        for layer, value in (values or {}).items():
            self.preview.addTopLevelItem(QTreeWidgetItem([layer, f"{value:.1%}"]))

    def _apply(self) -> None:
        cls = self.current_pass()
        if cls is not None and self.form is not None:
            self.apply_requested.emit(cls.name, self.form.values())

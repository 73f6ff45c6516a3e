"""The Passes dock: passes by category, a form per pass, a preview, Apply, and the report."""

from __future__ import annotations

import html
import json
import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QLabel,
    QPushButton,
    QSplitter,
    QTextBrowser,
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
from workbench.gui.format import human_bytes, human_count
from workbench.gui.qt_param_form import QtParamForm
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
        self.report = QTextBrowser()
        self.report.setPlaceholderText("The report of the last pass appears here.")

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
        self.report.setHtml(report_html(report))

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


def report_html(report: PassReport) -> str:
    """A compact HTML view of a pass report."""
    b, a = report.before, report.after
    rows = []
    for key, fmt in (("parameters", human_count), ("size_bytes", human_bytes),
                     ("macs", human_count), ("sparsity", lambda v: f"{v:.1%}")):
        if key in b and key in a:
            ratio = f"{a[key] / b[key]:.2f}×" if b[key] else ""
            rows.append(f"<tr><td>{key}</td><td align=right>{fmt(b[key])}</td>"
                        f"<td align=right>{fmt(a[key])}</td><td align=right>{ratio}</td></tr>")
    parts = [f"<h3>{report.pass_name}</h3>", f"<p>{report.seconds:.2f} s</p>",
             "<table cellspacing=4><tr><th></th><th>before</th><th>after</th><th></th></tr>",
             *rows, "</table>"]
    fid = report.details.get("fidelity")
    if isinstance(fid, dict) and "cosine" in fid:
        parts.append(f"<p><b>Fidelity</b>: cosine {fid['cosine']:.5f}, max |Δ| "
                     f"{fid.get('max_abs_diff', float('nan')):.4g}, mean |Δ| "
                     f"{fid.get('mean_abs_diff', float('nan')):.4g}</p>")
    lat = report.details.get("latency")
    if isinstance(lat, dict) and "speedup" in lat:
        parts.append(f"<p><b>Latency</b> (ONNX Runtime, {lat['threads']} threads): "
                     f"{lat['parent_ms']:.3g} ms → {lat['child_ms']:.3g} ms, "
                     f"{lat['speedup']:.2f}× faster</p>")
    table = report.details.get("table")
    if isinstance(table, str):
        parts.append(f"<pre>{html.escape(table)}</pre>")
    for w in report.warnings:
        parts.append(f"<p style='color:{theme.accent('warning')}'>⚠ {w}</p>")
    other = {k: v for k, v in report.details.items()
             if k not in ("fidelity", "latency", "table", "candidates")}
    if other:
        text = json.dumps(other, indent=1, default=str)
        if len(text) > 4000:
            text = text[:4000] + "\n…"
        parts.append(f"<pre>{text}</pre>")
    parts.append(f"<p>params: <code>{json.dumps(report.params, default=str)}</code></p>")
    return "\n".join(parts)

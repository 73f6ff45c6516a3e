"""Layout helpers for forms that hold up at any width: vertical-only scrolling, labels that
move above their fields when the form is narrow, and combo boxes that do not demand the
width of their longest item."""

from __future__ import annotations

import logging

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QScrollArea,
    QSplitter,
    QStyle,
    QWidget,
)

log = logging.getLogger(__name__)

FIELD_ROOM = 140  # the least width a field gets beside its label before labels go above


class VScrollArea(QScrollArea):
    """A scroll area that scrolls vertically only: it never gets narrower than its content's
    minimum width (plus the vertical scroll bar), so nothing is clipped at the right."""

    def __init__(self, widget: QWidget | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        if widget is not None:
            self.setWidget(widget)

    def setWidget(self, widget: QWidget) -> None:
        super().setWidget(widget)
        self.updateGeometry()  # the minimum width is the new content's

    def _extra(self) -> int:
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        return bar + 2 * self.frameWidth() + 2

    def minimumSizeHint(self) -> QSize:
        base = super().minimumSizeHint()
        inner = self.widget()
        if inner is None:
            return base
        return QSize(inner.minimumSizeHint().width() + self._extra(), base.height())

    def sizeHint(self) -> QSize:
        base = super().sizeHint()
        inner = self.widget()
        if inner is None:
            return base
        return QSize(max(inner.sizeHint().width() + self._extra(), self.minimumSizeHint().width()),
                     base.height())


def compact_combo(box: QComboBox, chars: int = 10) -> QComboBox:
    """Let `box` shrink to about `chars` characters instead of its longest item."""
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(chars)
    return box


class _FormWrapper(QObject):
    """Watches a form's host widget and puts the labels above the fields when narrow."""

    def __init__(self, form: QFormLayout, host: QWidget, room: int) -> None:
        super().__init__(host)
        self.form = form
        self.room = room
        host.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and isinstance(obj, QWidget):
            update_wrap(self.form, obj.width(), self.room)
        return False


def label_width(form: QFormLayout) -> int:
    """The width of the widest label of `form`."""
    widest = 0
    for row in range(form.rowCount()):
        item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
        if item is not None and item.widget() is not None and not item.widget().isHidden():
            widest = max(widest, item.widget().sizeHint().width())
    return widest


def update_wrap(form: QFormLayout, width: int, room: int = FIELD_ROOM) -> None:
    """Labels beside their fields when `width` leaves `room` for the fields, else above."""
    margins = form.contentsMargins()
    spacing = max(form.horizontalSpacing(), 0)
    need = label_width(form) + spacing + room + margins.left() + margins.right()
    policy = QFormLayout.RowWrapPolicy.WrapAllRows if width < need \
        else QFormLayout.RowWrapPolicy.WrapLongRows
    if form.rowWrapPolicy() != policy:
        form.setRowWrapPolicy(policy)


def responsive_form(form: QFormLayout, host: QWidget, room: int = FIELD_ROOM) -> QFormLayout:
    """Make `form` (laid out on `host`) wrap its labels above the fields when narrow."""
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    _FormWrapper(form, host, room)
    return form


def sturdy_splitter(splitter: QSplitter) -> QSplitter:
    """A splitter whose panes cannot be collapsed to nothing (they stop at their minimum)."""
    splitter.setChildrenCollapsible(False)
    return splitter

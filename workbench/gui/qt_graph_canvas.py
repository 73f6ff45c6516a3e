"""The graph view's canvas: wheel zoom under the mouse, drag to pan, clicks to its owner."""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import (
    QContextMenuEvent,
    QHelpEvent,
    QMouseEvent,
    QPainter,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsView, QToolTip, QWidget

__all__ = ["CanvasOwner", "GraphCanvas"]


class CanvasOwner(Protocol):
    """What the canvas reports to (the QtGraphView)."""

    def zoom_by(self, factor: float) -> None: ...
    def _on_click(self, p: QPointF) -> None: ...
    def _on_double_click(self, p: QPointF) -> None: ...
    def _on_context_menu(self, p: QPointF, global_pos: QPoint) -> None: ...
    def _tooltip_at(self, p: QPointF) -> str: ...
    def _on_resized(self) -> None: ...
    def _on_scrolled(self) -> None: ...


class GraphCanvas(QGraphicsView):
    """A QGraphicsView that forwards user input to its owner in scene coordinates."""

    def __init__(self, owner: CanvasOwner, parent: QWidget) -> None:
        super().__init__(parent)
        self._owner = owner
        self._press: QPoint | None = None
        self.horizontalScrollBar().valueChanged.connect(owner._on_scrolled)
        self.verticalScrollBar().valueChanged.connect(owner._on_scrolled)
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlags(QGraphicsView.OptimizationFlag.DontSavePainterState
                                  | QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self._owner.zoom_by(1.0015 ** delta)
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self._press is not None:
            moved = (event.position().toPoint() - self._press).manhattanLength()
            self._press = None
            if moved < 5:
                self._owner._on_click(self.mapToScene(event.position().toPoint()))

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._owner._on_double_click(self.mapToScene(event.position().toPoint()))
        event.accept()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        self._owner._on_context_menu(self.mapToScene(event.pos()), event.globalPos())

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self._owner._tooltip_at(self.mapToScene(event.pos()))
            if text:
                QToolTip.showText(event.globalPos(), text, self.viewport())
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().viewportEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._owner._on_resized()

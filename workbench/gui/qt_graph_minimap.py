"""An overview of the whole graph in a corner of the view, with the visible part outlined.

A deep network is far taller than wide (densenet121 lays out at about 1:240), so a plain
scaled copy would be a line. The minimap folds such a graph into side-by-side columns, as a
newspaper does, choosing the number of columns that makes the boxes largest. Click or drag
to move the view there. The boxes are painted once into an image per rebuild or restyle;
only the viewport outline is redrawn on scroll and zoom.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QWidget

__all__ = ["GraphMinimap"]

_MARGIN = 4.0
_GAP = 6.0  # between columns
_MAX_COLUMNS = 24


class GraphMinimap(QWidget):
    """The whole scene, folded into columns if tall; the view's rectangle drawn on top."""

    def __init__(self, parent: QWidget, visible_rect: Callable[[], QRectF],
                 center_on: Callable[[QPointF], None]) -> None:
        super().__init__(parent)
        self._visible_rect = visible_rect
        self._center_on = center_on
        self._scene = QRectF()
        self._cols = 1
        self._scale = 1.0
        self._slice = 1.0
        self._image: QImage | None = None
        self._boxes: tuple[np.ndarray, ...] = ()
        self._colors: list[QColor] = []
        self._limit = QSize(200, 400)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview: click or drag to move the view")

    # ---- geometry -------------------------------------------------------------------------

    @property
    def columns(self) -> int:
        """How many columns the graph is folded into."""
        return self._cols

    def set_limit(self, size: QSize) -> None:
        """The largest size the minimap may take; it re-lays itself out within it."""
        self._limit = QSize(max(size.width(), 40), max(size.height(), 40))
        self._fold()

    def set_boxes(self, scene: QRectF, xs: np.ndarray, ys: np.ndarray, hw: np.ndarray,
                  hh: np.ndarray, colors: list[QColor]) -> None:
        """The boxes to show (centres, half sizes, colours) inside `scene`."""
        self._scene = QRectF(scene)
        self._boxes = (xs, ys, hw, hh)
        self._colors = list(colors)
        self._fold()

    def _fold(self) -> None:
        w, h = self._scene.width(), self._scene.height()
        if w <= 0 or h <= 0:
            self._image = None
            self.update()
            return
        aw = self._limit.width() - 2 * _MARGIN
        ah = self._limit.height() - 2 * _MARGIN
        best = (0.0, 1)
        for k in range(1, _MAX_COLUMNS + 1):
            s = min((aw - (k - 1) * _GAP) / (k * w), ah / (h / k))
            if s > best[0]:
                best = (s, k)
            if k * w * s > aw:
                break
        self._scale, self._cols = max(best[0], 1e-6), best[1]
        self._slice = h / self._cols
        s = self._scale
        size = QSize(math.ceil(self._cols * w * s + (self._cols - 1) * _GAP + 2 * _MARGIN),
                     math.ceil(self._slice * s + 2 * _MARGIN))
        self.resize(size)
        self._render()

    def scene_to_map(self, p: QPointF) -> QPointF:
        """Where scene point `p` is drawn on the minimap."""
        c = min(max(int((p.y() - self._scene.top()) // self._slice), 0), self._cols - 1)
        s = self._scale
        return QPointF(_MARGIN + c * (self._scene.width() * s + _GAP)
                       + (p.x() - self._scene.left()) * s,
                       _MARGIN + (p.y() - self._scene.top() - c * self._slice) * s)

    def map_to_scene(self, p: QPointF) -> QPointF:
        """The scene point under minimap point `p`."""
        s = self._scale
        col_w = self._scene.width() * s + _GAP
        c = min(max(int((p.x() - _MARGIN) // col_w), 0), self._cols - 1)
        x = self._scene.left() + (p.x() - _MARGIN - c * col_w) / s
        y = self._scene.top() + c * self._slice + (p.y() - _MARGIN) / s
        return QPointF(min(max(x, self._scene.left()), self._scene.right()),
                       min(max(y, self._scene.top()), self._scene.bottom()))

    # ---- drawing --------------------------------------------------------------------------

    def _render(self) -> None:
        """Paint the boxes once into an image (the view outline is drawn on top per frame)."""
        size = self.size()
        dpr = self.devicePixelRatioF()
        image = QImage(max(1, int(size.width() * dpr)), max(1, int(size.height() * dpr)),
                       QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(dpr)
        image.fill(Qt.GlobalColor.transparent)
        if self._boxes:
            painter = QPainter(image)
            xs, ys, hw, hh = self._boxes
            s, top, left = self._scale, self._scene.top(), self._scene.left()
            col_w = self._scene.width() * s + _GAP
            cols = np.clip(((ys - top) // self._slice).astype(int), 0, self._cols - 1)
            mx = _MARGIN + cols * col_w + (xs - hw - left) * s
            my = _MARGIN + (ys - hh - top - cols * self._slice) * s
            bw = np.maximum(2 * hw * s, 1.0)
            bh = np.maximum(2 * hh * s, 1.0)
            for k, color in enumerate(self._colors):
                painter.fillRect(QRectF(mx[k], my[k], bw[k], bh[k]), color)
            painter.end()
        self._image = image
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        pal = self.palette()
        base = QColor(pal.color(QPalette.ColorRole.Base))
        base.setAlpha(235)
        painter.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        painter.setBrush(base)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        if self._image is None:
            return
        painter.drawImage(0, 0, self._image)
        accent = QColor(pal.color(QPalette.ColorRole.Highlight))
        painter.setPen(QPen(accent, 1.5))
        fill = QColor(accent)
        fill.setAlpha(45)
        painter.setBrush(fill)
        for rect in self.view_rects():
            painter.drawRect(rect)

    def view_rects(self) -> list[QRectF]:
        """The visible part of the scene, on the minimap (one rectangle per column it spans)."""
        if self._image is None:
            return []
        r = self._visible_rect().intersected(self._scene)
        if r.isEmpty():
            return []
        out = []
        for c in range(self._cols):
            top = self._scene.top() + c * self._slice
            y0, y1 = max(r.top(), top), min(r.bottom(), top + self._slice)
            if y1 <= y0:
                continue
            a = self.scene_to_map(QPointF(r.left(), y0))
            b = self.scene_to_map(QPointF(r.right(), y0))
            height = (y1 - y0) * self._scale
            out.append(QRectF(a.x(), a.y(), max(b.x() - a.x(), 2.0), max(height, 2.0)))
        return out

    # ---- navigation -----------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._center_on(self.map_to_scene(event.position()))
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._center_on(self.map_to_scene(event.position()))
        event.accept()

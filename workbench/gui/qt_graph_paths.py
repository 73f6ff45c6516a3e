"""Painter paths the graph view is drawn with: boxes, pills, edge curves, ⊕/⊖ badges."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath

__all__ = ["ARROW", "BADGE_RADIUS", "add_route", "badge", "pill", "rounded", "short_op"]

ARROW = 7.0
BADGE_RADIUS = 7.0
_NOISE = {"aten", "default", "Tensor", "torch", "ops", "prims", "nn", "functional", "int",
          "Scalar"}


def short_op(op: str) -> str:
    """`aten.conv2d.default` -> `conv2d`; ONNX op types are kept."""
    return ".".join(p for p in op.split(".") if p not in _NOISE) or op


def rounded(w: float, h: float, r: float = 6.0) -> QPainterPath:
    """A rounded rectangle centred on the origin."""
    path = QPainterPath()
    path.addRoundedRect(QRectF(-w / 2, -h / 2, w, h), r, r)
    return path


def pill(w: float, h: float) -> QPainterPath:
    """A fully rounded box centred on the origin (model inputs and outputs)."""
    return rounded(w, h, h / 2)


def badge(centre: QPointF, plus: bool, r: float = BADGE_RADIUS) -> QPainterPath:
    """A circled plus (expand) or minus (collapse)."""
    x, y = centre.x(), centre.y()
    path = QPainterPath()
    path.addEllipse(centre, r, r)
    arm = r * 0.58
    path.moveTo(x - arm, y)
    path.lineTo(x + arm, y)
    if plus:
        path.moveTo(x, y - arm)
        path.lineTo(x, y + arm)
    return path


def add_route(path: QPainterPath, arrows: QPainterPath,
              points: list[tuple[float, float]]) -> None:
    """Append a smooth vertical-tangent curve through `points` and its arrow head."""
    (x0, y0) = points[0]
    path.moveTo(x0, y0)
    last = len(points) - 1
    for k in range(1, last + 1):
        x1, y1 = points[k]
        sign = 1.0 if y1 >= y0 else -1.0
        if k == last:
            arrows.moveTo(x1, y1)
            arrows.lineTo(x1 - ARROW / 2, y1 - sign * ARROW)
            arrows.lineTo(x1 + ARROW / 2, y1 - sign * ARROW)
            arrows.closeSubpath()
            y1 -= sign * ARROW
        half = (y1 - y0) / 2
        path.cubicTo(x0, y0 + half, x1, y1 - half, x1, y1)
        x0, y0 = x1, y1

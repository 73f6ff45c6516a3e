"""Plot widgets that hold up at any size: titles that elide instead of clipping, axes with
name ticks that never overlap, percent axes, and point labels placed without overlap."""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QApplication

from workbench.gui import theme

log = logging.getLogger(__name__)

TITLE_PT = 10
# pyqtgraph is imported with the first panel that plots: set it up for the current theme
pg.setConfigOptions(antialias=True, background=theme.plot_colors()[0],
                    foreground=theme.plot_colors()[1])
_AXES = ("left", "bottom", "right", "top")


class Plot(pg.PlotWidget):
    """A themed PlotWidget whose title is elided to its width (the full title as tooltip)
    and whose axes never rescale numbers behind an SI factor such as "(x0.001)"."""

    _full_title: str | None = None  # set before PlotWidget's constructor resizes

    def __init__(self, title: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setMinimumSize(140, 120)
        for name in _AXES:
            self.getPlotItem().getAxis(name).enableAutoSIPrefix(False)
        # the title sits over the view box only: refit it whenever that changes size
        self.getPlotItem().getViewBox().sigResized.connect(self._fit_title)
        theme.style_plot(self)
        self.setTitle(title)

    def setTitle(self, title: str | None = None, **_: Any) -> None:
        self._full_title = title
        self._fit_title()

    def title(self) -> str | None:
        """The full title (the one drawn may be elided)."""
        return self._full_title

    def drawn_title(self) -> str:
        """The title text as drawn (plain text)."""
        return html.unescape(self.getPlotItem().titleLabel.text or "")

    def title_font(self) -> QFont:
        font = QFont(QApplication.font())
        font.setPointSizeF(TITLE_PT)
        return font

    def title_room(self) -> float:
        """The width the title may take: the view box's (it is centred over it)."""
        view = self.getPlotItem().getViewBox().width()
        return max((view if view > 0 else self.width() - 70) - 12, 30)

    def refit_title(self, *_: Any) -> None:
        """Draw the title again, elided to the room there is, in the theme's colour."""
        self._fit_title()

    def _fit_title(self, *_: Any) -> None:
        item = self.getPlotItem()
        if not self._full_title:
            item.setTitle(None)
            return
        room = int(self.title_room())
        text = QFontMetrics(self.title_font()).elidedText(
            self._full_title, Qt.TextElideMode.ElideRight, room)
        item.setTitle(html.escape(text), size=f"{TITLE_PT}pt",
                      color=theme.plot_colors()[1].name())
        # a LabelItem asks for its text's width, which would widen the plot past its widget
        item.titleLabel.setMinimumWidth(0)
        self.setToolTip(self._full_title if text != self._full_title else "")

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if getattr(self, "plotItem", None) is not None:
            self._fit_title()


def percent_axis(plot: pg.PlotWidget, side: str, label: str) -> None:
    """Show fractions (0…1) on `side` as percent: 0.1 reads 10, labelled "label (%)"."""
    axis = plot.getPlotItem().getAxis(side)
    axis.enableAutoSIPrefix(False)
    axis.setScale(100.0)
    plot.setLabel(side, label, units="%")


def elide_middle(text: str, max_chars: int = 18) -> str:
    """`text` cut in the middle with an ellipsis when it is longer than `max_chars`."""
    if len(text) <= max_chars:
        return text
    head = (max_chars - 1) // 2
    tail = max_chars - 1 - head
    return text[:head] + "…" + text[len(text) - tail:]


class NameAxis(pg.AxisItem):
    """An axis whose ticks are names at 0, 1, 2, …: it shows as many as fit without
    overlapping (every k-th), each elided in the middle."""

    def __init__(self, orientation: str = "bottom", max_chars: int = 18, **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        self.names: list[str] = []
        self.max_chars = max_chars
        self.enableAutoSIPrefix(False)

    def set_names(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.picture = None
        self.update()

    def _metrics(self) -> QFontMetrics:
        font = self.style.get("tickFont") or QApplication.font()
        return QFontMetrics(font)

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[Any]:
        if not self.names:
            return super().tickValues(minVal, maxVal, size)
        lo = max(0, math.ceil(minVal))
        hi = min(len(self.names) - 1, math.floor(maxVal))
        if hi < lo or size <= 0:
            return []
        fm = self._metrics()
        if self.orientation in ("bottom", "top"):
            step_px = max(fm.horizontalAdvance(elide_middle(n, self.max_chars))
                          for n in self.names[lo:hi + 1]) + 16
        else:
            step_px = fm.height() + 4
        per_unit = size / max(maxVal - minVal, 1e-9)  # pixels between two names
        stride = max(1, math.ceil(step_px / max(per_unit, 1e-9)))
        return [(float(stride), [float(v) for v in range(lo, hi + 1, stride)])]

    def tickStrings(self, values: list[float], scale: float,
                    spacing: float) -> list[str]:
        if not self.names:
            return super().tickStrings(values, scale, spacing)
        out = []
        for v in values:
            i = round(v)
            out.append(elide_middle(self.names[i], self.max_chars)
                       if 0 <= i < len(self.names) else "")
        return out


Rect = tuple[float, float, float, float]  # x, y, width, height (pixels, y down)


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and \
        b[1] < a[1] + a[3]


def place_labels(points: Sequence[tuple[float, float]], radii: Sequence[float],
                 sizes: Sequence[tuple[float, float]], bounds: Rect,
                 order: Sequence[int] | None = None) -> list[tuple[float, float] | None]:
    """Top-left pixel positions for point labels so that no two labels overlap, no label
    covers a marker and all stay inside `bounds`; None for a label that cannot be placed
    (show it on hover instead). Labels are placed in `order` (the first win)."""
    markers = [(x - r, y - r, 2 * r, 2 * r) for (x, y), r in zip(points, radii, strict=True)]
    placed: list[Rect] = []
    out: list[tuple[float, float] | None] = [None] * len(points)
    bx, by, bw, bh = bounds
    for i in (order if order is not None else range(len(points))):
        (x, y), r, (w, h) = points[i], radii[i], sizes[i]
        gap = r * 0.7 + 2
        for cx, cy in ((x + gap, y - gap - h), (x - gap - w, y - gap - h), (x + gap, y + gap),
                       (x - gap - w, y + gap), (x - w / 2, y - r - h - 1),
                       (x - w / 2, y + r + 1), (x + r + 2, y - h / 2), (x - r - 2 - w, y - h / 2)):
            rect = (cx, cy, w, h)
            if cx < bx or cy < by or cx + w > bx + bw or cy + h > by + bh:
                continue
            if any(_overlaps(rect, p) for p in placed) or \
                    any(_overlaps(rect, m) for m in markers):
                continue
            placed.append(rect)
            out[i] = (cx, cy)
            break
    return out

"""Colours of the graph view, derived from the widget's palette so light and dark both read.

Each op category has a hue; a box is that hue blended into the palette's Base colour (pale on
a light base, deep on a dark one), outlined in the hue, with the palette's Text on top. The
overlays (changed nodes, heat) blend strong hues into Base the same way, with a cap on how
far they go so that Text keeps a contrast of at least 4.5:1 on either base.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtGui import QColor, QPalette

from workbench.core.graph.layergraph import CATEGORIES

__all__ = ["CATEGORY_COLORS", "GraphColors", "blend", "contrast", "heat_color"]

#: The hue of each op category: it outlines boxes and tints their fill.
CATEGORY_COLORS: dict[str, str] = {
    "quantize": "#7b4bc4",
    "attention": "#d26a12",
    "conv": "#3a6fc4",
    "linear": "#2c8a55",
    "recurrent": "#8c5a2c",
    "norm": "#b08a00",
    "activation": "#c8413b",
    "pool": "#1e8791",
    "elementwise": "#687a35",
    "shape": "#8592a3",
    "group": "#5361b8",
    "other": "#8a8a8a",
}
assert set(CATEGORY_COLORS) == set(CATEGORIES)

_HEAT_HUES = (QColor("#f2c94c"), QColor("#f2994a"), QColor("#e0432f"))
CHANGED_HUE = "#f59e0b"
"""The default tint of boxes a pass changed."""


def blend(a: QColor, b: QColor, t: float) -> QColor:
    """`a` moved a fraction `t` towards `b` (RGB)."""
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
    )


def _luminance(c: QColor) -> float:
    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF())


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def heat_color(value: float) -> QColor:
    """The hue of a 0..1 heat value: yellow, orange, red (before blending into Base)."""
    v = min(max(float(value), 0.0), 1.0) * (len(_HEAT_HUES) - 1)
    i = min(int(v), len(_HEAT_HUES) - 2)
    return blend(_HEAT_HUES[i], _HEAT_HUES[i + 1], v - i)


@dataclass
class GraphColors:
    """Every colour the graph view draws with, for one palette."""

    dark: bool
    background: QColor
    text: QColor
    subtext: QColor
    edge: QColor
    edge_text: QColor
    accent: QColor
    frame: QColor
    io_fill: QColor
    io_text: QColor
    neutral: QColor
    fills: dict[str, QColor]
    borders: dict[str, QColor]
    _cache: dict[tuple[int, int], QColor] = field(default_factory=dict, repr=False)

    @classmethod
    def from_palette(cls, palette: QPalette) -> GraphColors:
        """Colours for `palette` (its Base, Text, Mid and Highlight roles)."""
        base = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text)
        mid = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Mid)
        accent = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight)
        dark = base.lightnessF() < 0.5
        fills, borders = {}, {}
        for cat, hue in CATEGORY_COLORS.items():
            h = QColor(hue)
            fills[cat] = blend(base, h, 0.34 if dark else 0.2)
            borders[cat] = h.lighter(150) if dark else h
        return cls(
            dark=dark, background=base, text=text, subtext=blend(text, base, 0.3),
            edge=blend(base, text, 0.5), edge_text=blend(base, text, 0.65), accent=accent,
            frame=blend(base, borders["group"], 0.75), io_fill=blend(base, text, 0.85),
            io_text=base, neutral=blend(base, mid, 0.25), fills=fills, borders=borders,
        )

    def overlay(self, hue: QColor, strength: float = 1.0) -> QColor:
        """A box tinted by an overlay `hue`; `strength` 0..1.

        The tint stops short where Text would fall under a 4.5:1 contrast on it.
        """
        step = round(min(max(strength, 0.0), 1.0) * 32)
        key = (hue.rgba(), step)
        color = self._cache.get(key)
        if color is None:
            t = 0.25 + 0.45 * step / 32
            color = blend(self.background, hue, t)
            while t > 0.05 and contrast(self.text, color) < 4.6:
                t -= 0.04
                color = blend(self.background, hue, t)
            self._cache[key] = color
        return color

    def overlay_border(self, hue: QColor) -> QColor:
        return hue.lighter(130) if self.dark else hue.darker(115)

    def heat(self, value: float) -> QColor:
        """A box's fill for a 0..1 heat value."""
        return self.overlay(heat_color(value), value)

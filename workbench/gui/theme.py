"""Light and dark themes: the palette, accent and series colours, and a hook when they change.

Every colour in the GUI comes from here. `apply_theme("system" | "light" | "dark")` sets the
application palette (Fusion with Workbench's palettes for an explicit choice; the platform's
own palette for "system", or the dark one when the system asks for dark and the platform
palette is light), re-applies the palette-based style sheet, restyles every pyqtgraph plot
and emits `manager().changed`. Views connect to that signal (a bound method of a QObject
disconnects itself when the object goes) and re-read `accent()`, `series()` or
`palette_color()`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

log = logging.getLogger(__name__)

MODES = ("system", "light", "dark")

# Text-safe accents: each meets WCAG 4.5:1 on its theme's window and base colours.
_ACCENTS = {
    "light": {"warning": "#8a4b00", "changed": "#a14d07", "error": "#b71c1c", "ok": "#1b6e3a",
              "info": "#1a56b8", "muted": "#5f6368"},
    "dark": {"warning": "#f2b450", "changed": "#f59e0b", "error": "#ff8a80", "ok": "#7ee2a0",
             "info": "#8ab4f8", "muted": "#a8adb3"},
}
# Plot series: distinct hues that stand out on the plot background of each theme.
_SERIES = {
    "light": {"blue": "#1a5fd0", "orange": "#d9641b", "green": "#2f8f5b", "purple": "#7c4dcc",
              "red": "#d9534f", "faint": "#9db8e8", "amber": "#e69500", "fill": "#4285f4"},
    "dark": {"blue": "#6ea8fe", "orange": "#ffa657", "green": "#56d364", "purple": "#bc8cff",
             "red": "#ff7b72", "faint": "#46608f", "amber": "#e3b341", "fill": "#6ea8fe"},
}

# Every colour is a palette role, so the sheet holds in both themes.
STYLE_SHEET = """
QDockWidget::title { background: palette(midlight); color: palette(window-text);
                     padding: 4px 6px; font-weight: bold; }
QTabBar::tab { padding: 6px 16px; }
QTabBar::tab:selected { font-weight: bold; }
QTreeWidget, QListWidget, QTableWidget, QTableView { border: 1px solid palette(mid); }
QProgressBar { border: 1px solid palette(mid); border-radius: 3px; text-align: center;
               height: 14px; }
QProgressBar::chunk { background: palette(highlight); }
"""

_DARK = {
    QPalette.ColorRole.Window: "#202124", QPalette.ColorRole.WindowText: "#e8eaed",
    QPalette.ColorRole.Base: "#17181a", QPalette.ColorRole.AlternateBase: "#26282b",
    QPalette.ColorRole.ToolTipBase: "#2d2f33", QPalette.ColorRole.ToolTipText: "#e8eaed",
    QPalette.ColorRole.PlaceholderText: "#9aa0a6", QPalette.ColorRole.Text: "#e8eaed",
    QPalette.ColorRole.Button: "#2d2f33", QPalette.ColorRole.ButtonText: "#e8eaed",
    QPalette.ColorRole.BrightText: "#ffffff", QPalette.ColorRole.Light: "#4a4c50",
    QPalette.ColorRole.Midlight: "#3a3c40", QPalette.ColorRole.Mid: "#4f5257",
    QPalette.ColorRole.Dark: "#111213", QPalette.ColorRole.Shadow: "#000000",
    QPalette.ColorRole.Highlight: "#2f6bd0", QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#8ab4f8", QPalette.ColorRole.LinkVisited: "#c58af9",
}
_DARK_DISABLED = {
    QPalette.ColorRole.WindowText: "#80858b", QPalette.ColorRole.Text: "#80858b",
    QPalette.ColorRole.ButtonText: "#80858b", QPalette.ColorRole.Highlight: "#3c4043",
    QPalette.ColorRole.HighlightedText: "#9aa0a6",
}


class ThemeManager(QObject):
    """Holds the chosen mode and the platform's own style and palette (to go back to)."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.mode = "system"
        self.dark = False
        self._system_style: str | None = None
        self._system_palette: QPalette | None = None
        self._watching = False
        self.applied = False

    def remember_system(self, app: QApplication) -> None:
        if self._system_palette is None:
            self._system_style = app.style().name()
            self._system_palette = QPalette(app.palette())

    def watch_system(self) -> None:
        """Follow the platform's colour scheme live while the mode is "system"."""
        if self._watching:
            return
        self._watching = True
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_system_scheme)

    def _on_system_scheme(self, *_: Any) -> None:
        if self.mode == "system":
            apply_theme("system", force=True)


_MANAGER: ThemeManager | None = None


def manager() -> ThemeManager:
    """The one theme manager (its `changed` signal fires after every theme change)."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = ThemeManager()
    return _MANAGER


def dark_palette() -> QPalette:
    """Workbench's dark palette."""
    pal = QPalette()
    for role, colour in _DARK.items():
        pal.setColor(role, QColor(colour))
    for role, colour in _DARK_DISABLED.items():
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(colour))
    return pal


def light_palette() -> QPalette:
    """Workbench's light palette (Fusion's, with readable placeholder text)."""
    style = QStyleFactory.create("Fusion")
    pal = QPalette(style.standardPalette()) if style is not None else QPalette()
    pal.setColor(QPalette.ColorRole.PlaceholderText, QColor("#6b6f75"))
    return pal


def _palette_is_dark(pal: QPalette) -> bool:
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def _system_wants_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    return scheme is not None and scheme() == Qt.ColorScheme.Dark


def apply_theme(mode: str, app: QApplication | None = None, force: bool = False) -> None:
    """Switch the whole application to `mode` ("system", "light" or "dark"), live (nothing
    to do when that mode is on already, unless `force`)."""
    if mode not in MODES:
        raise ValueError(f"Unknown theme '{mode}': use one of {', '.join(MODES)}.")
    app = app or QApplication.instance()  # type: ignore[assignment]
    if app is None:
        return
    m = manager()
    if m.applied and m.mode == mode and not force:
        return
    m.remember_system(app)
    m.watch_system()
    system_palette = m._system_palette or QPalette()
    # Off with the style sheet first: widgets it polished hold copies of the old palette.
    app.setStyleSheet("")
    if mode == "dark" or (mode == "system" and _system_wants_dark()
                          and not _palette_is_dark(system_palette)):
        app.setStyle("Fusion")
        palette = dark_palette()
    elif mode == "light":
        app.setStyle("Fusion")
        palette = light_palette()
    else:  # the platform's own look
        if m._system_style:
            app.setStyle(m._system_style)
        palette = QPalette(system_palette)
    app.setPalette(palette)
    m.mode = mode
    m.applied = True
    m.dark = _palette_is_dark(palette)
    _apply_style_sheet(app)
    _restyle_plots()
    m.changed.emit()


def current_mode() -> str:
    return manager().mode


def is_dark() -> bool:
    """Whether the current palette is a dark one."""
    app = QApplication.instance()
    if app is None:
        return manager().dark
    return _palette_is_dark(app.palette())  # type: ignore[attr-defined]


def palette_color(role: QPalette.ColorRole | str,
                  group: QPalette.ColorGroup = QPalette.ColorGroup.Active) -> QColor:
    """A colour of the application palette, by role (a `QPalette.ColorRole` or its name,
    such as "Base" or "WindowText")."""
    if isinstance(role, str):
        role = getattr(QPalette.ColorRole, role)
    app = QApplication.instance()
    pal = app.palette() if app is not None else QPalette()  # type: ignore[attr-defined]
    return QColor(pal.color(group, role))


def accent(name: str) -> str:
    """A text-safe accent ("warning", "changed", "error", "ok", "info", "muted") as #rrggbb
    for the current theme."""
    return _ACCENTS["dark" if is_dark() else "light"][name]


def series(name: str) -> str:
    """A plot series colour ("blue", "orange", "green", "purple", "red", "faint", "amber",
    "fill") as #rrggbb for the current theme."""
    return _SERIES["dark" if is_dark() else "light"][name]


def plot_colors() -> tuple[QColor, QColor]:
    """(background, foreground) for plots: the palette's Base and Text."""
    return palette_color("Base"), palette_color("Text")


def _apply_style_sheet(app: QApplication) -> None:
    app.setStyleSheet(STYLE_SHEET)  # palette(...) references resolve when the sheet is set


def style_plot(plot: Any) -> None:
    """Give a pyqtgraph PlotWidget the theme's background, axes, title and legend colours."""
    import pyqtgraph as pg

    bg, fg = plot_colors()
    plot.setBackground(bg)
    item = plot.getPlotItem()
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(fg))
        axis.setTextPen(pg.mkPen(fg))
    refit = getattr(plot, "refit_title", None)
    if refit is not None:  # a `plots.Plot`: it elides its title to its width
        refit()
    else:
        item.titleLabel.setText(item.titleLabel.text, color=fg.name())
    legend = item.legend
    if legend is not None:
        legend.setLabelTextColor(fg)
        fill = QColor(bg)
        fill.setAlpha(200)
        legend.setBrush(fill)
        legend.setPen(pg.mkPen(palette_color("Mid")))


def _restyle_plots() -> None:
    pg = sys.modules.get("pyqtgraph")
    if pg is None:  # no plot yet: `workbench.gui.plots` configures it when imported
        return
    bg, fg = plot_colors()
    pg.setConfigOptions(background=bg, foreground=fg)
    for widget in QApplication.allWidgets():
        if isinstance(widget, pg.PlotWidget):
            style_plot(widget)

"""Helpers for the layout and theme tests: a window with variants, and what to measure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QWidget

from tests.conftest import make_onnx_mlp, open_and_wait

LONG = "a-rather-long-variant-name-that-must-elide-in-the-middle"


def window_with_variants(qtbot: Any, window: Any, tmp_path: Path) -> list[str]:
    """Open two models (one with a long name), each measured: accuracy and latency."""
    open_and_wait(qtbot, window, "zoo:mlp")
    open_and_wait(qtbot, window, str(make_onnx_mlp(tmp_path / f"{LONG}.onnx")))
    ids = [e.id for e in window.workspace.entries()]
    for vid, acc, ms in zip(ids, (0.1004, 0.9731), (1.25, 0.81), strict=True):
        window.workspace.set_result(vid, "accuracy", acc)
        window.workspace.set_result(vid, "latency_ms", ms)
    window.workspace.select(ids[0])
    return ids


def showing(widget: QWidget, top: QWidget) -> bool:
    """Whether `widget` is on screen in `top` (shown, with every ancestor shown)."""
    return widget.isVisibleTo(top) and widget.isVisible() and widget.width() > 0


def visible(top: QWidget, kind: type) -> list[Any]:
    return [w for w in top.findChildren(kind) if showing(w, top)]


def relative_luminance(hex_or_rgb: Any) -> float:
    """WCAG 2 relative luminance of an sRGB colour (a QColor)."""
    def channel(c: float) -> float:
        c = c / 255.0
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = hex_or_rgb.red(), hex_or_rgb.green(), hex_or_rgb.blue()
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: Any, b: Any) -> float:
    """WCAG contrast ratio (1…21) of two QColors."""
    la, lb = relative_luminance(a), relative_luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)

"""The application style: the theme (palette and palette-based style sheet) and plots."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def apply_style(app: Any, theme: str = "system") -> None:
    """The `theme` ("system", "light" or "dark"). Plots are set up (antialiased, themed) by
    `workbench.gui.plots` when the first panel with a plot is built: pyqtgraph is not
    imported before then."""
    from workbench.gui.theme import apply_theme

    apply_theme(theme, app)

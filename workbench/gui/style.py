"""The application style: the theme (palette and palette-based style sheet) and plots."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def apply_style(app: Any, theme: str = "system") -> None:
    """Antialiased plots, and the `theme` ("system", "light" or "dark")."""
    import pyqtgraph as pg

    from workbench.gui.theme import apply_theme

    pg.setConfigOptions(antialias=True)
    apply_theme(theme, app)

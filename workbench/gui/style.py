"""The application style sheet and pyqtgraph defaults."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

log = logging.getLogger(__name__)


def apply_style(app: Any) -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, background="w", foreground="#333")
    try:
        qss = resources.files("workbench.resources").joinpath("workbench.qss").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        return
    app.setStyleSheet(qss)

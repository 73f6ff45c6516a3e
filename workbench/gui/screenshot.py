"""Render the main window offscreen to a PNG (for docs and tests)."""

from __future__ import annotations

import logging
import time
from typing import Any

from workbench.core.errors import InvalidParameterError
from workbench.core.fileio import atomic_path
from workbench.core.graph.analysis import open_model
from workbench.core.jobs import run_job

log = logging.getLogger(__name__)


def render_screenshot(source: str, tab: str, output: str, size: tuple[int, int] = (1400, 900),
                      load_options: dict[str, Any] | None = None,
                      select: str | None = None, theme: str = "light") -> None:
    """Open `source`, show `tab` in the `theme` and write the window to `output`
    atomically."""
    from workbench.gui.app import create_app
    from workbench.gui.qt_main_window import TABS, QtMainWindow

    if tab not in TABS:
        raise InvalidParameterError(f"Unknown tab '{tab}': use one of {', '.join(TABS)}.")
    options = {k: v for k, v in (load_options or {}).items() if v is not None}
    analysis = run_job(open_model(source, **options))
    from workbench.gui.theme import apply_theme

    app = create_app()
    window = QtMainWindow(remember_layout=False)
    apply_theme(theme, app)  # after the window, which applies the saved choice
    window.show_dialogs = False  # a headless render never asks anything
    window.background_imports = False  # nor loads what only a live session uses
    window.resize(*size)
    window.workspace.add(analysis)
    window.show_tab(tab)
    window.show()
    if select:
        window.graph_view.select_node(select)
        window.show_node_details(select)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        app.processEvents()
    image = window.grab()
    with atomic_path(output) as tmp:
        if not image.save(str(tmp), "PNG"):
            raise InvalidParameterError(f"Could not write {output}.")
    window.close()

"""Start the Qt application."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def create_app() -> Any:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Workbench")
    app.setOrganizationName("workbench")
    app.setDesktopFileName("workbench")  # Wayland: the window belongs to workbench.desktop
    from workbench.gui.app_icon import app_icon

    app.setWindowIcon(app_icon())
    from workbench.gui.style import apply_style

    apply_style(app)
    return app


def run_app(model: str | None = None, load_options: dict[str, Any] | None = None) -> int:
    """Open the main window, optionally loading `model`; return the exit code."""
    from workbench.core.logs import configure_logging

    configure_logging()  # idempotent: `workbench` (cli.main) has usually done it already
    app = create_app()
    from workbench.gui.single_instance import hand_off, serve_window

    if model and hand_off(model, load_options):  # a running window opens it
        return 0
    from workbench.gui.paint_probe import install_paint_probe
    from workbench.gui.qt_main_window import QtMainWindow

    window = QtMainWindow()
    # with a model, the graph's first paint ends the process (qt_startup.FirstPaint)
    window.probe = None if model else install_paint_probe(window, app, False)
    window.instance_server = serve_window(window)
    window.show()
    if model and (Path(model) / "project.db").is_file():
        window.open_project(model)
    elif model:
        window.open_source(model, **(load_options or {}))
    code = int(app.exec())
    from workbench.gui.qt_startup import exit_after_paint

    if exit_after_paint():  # the job cancelled at the first paint ends before the interpreter
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(30_000)
    return code

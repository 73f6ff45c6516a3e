"""The application icon: resources/workbench.svg (installed as package data
`workbench.resources`, or read from the checkout's resources/ folder)."""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

from PySide6.QtGui import QIcon

log = logging.getLogger(__name__)

CHECKOUT_RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def resource_path(name: str) -> Path | None:
    """A file of `workbench.resources`, or None when this copy has none."""
    try:
        candidate = Path(str(importlib.resources.files("workbench.resources") / name))
    except ModuleNotFoundError:  # a checkout: the package maps to ./resources
        candidate = CHECKOUT_RESOURCES / name
    return candidate if candidate.is_file() else None


def app_icon() -> QIcon:
    """Workbench's icon (an empty icon when the resources are missing)."""
    path = resource_path("workbench.svg")
    if path is None:
        log.debug("no workbench.svg among the resources")
        return QIcon()
    return QIcon(str(path))

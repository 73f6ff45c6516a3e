"""What a bug report needs: versions, the machine, its int8-relevant CPU features, folders."""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import sys
from typing import Any

from workbench import __version__
from workbench.core.model.cpu import cpu_features
from workbench.core.session.settings import config_dir, runs_dir

log = logging.getLogger(__name__)

PACKAGES = ("torch", "onnx", "onnxruntime", "onnxscript", "torch-pruning", "PySide6-Essentials",
            "pyqtgraph", "numpy", "transformers")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the libraries results depend on (read from metadata, no import)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def about() -> dict[str, Any]:
    """Everything `workbench --version --json` prints."""
    return {"workbench": __version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "packages": package_versions(),
            "cpu": cpu_features().to_json(),
            "folders": {"config": str(config_dir()), "runs": str(runs_dir())}}

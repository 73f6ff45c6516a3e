"""Folders of third-party plugins for an app without a Python environment of its own.

A bundled app has no `pip`: plugins are installed into a folder with
`pip install --target FOLDER PLUGIN` and found there. The folders, in order:
`$WORKBENCH_PLUGIN_PATH` (os.pathsep-separated), `plugins/` beside the bundle's executable
(bundles only), and `plugins/` in the user data folder. Each existing one is appended to
`sys.path`, so `importlib.metadata` reads the `workbench.passes` entry points from the
`*.dist-info` folders inside it and the registry discovers them like any installed plugin.
Appended, not prepended: a plugin folder can never shadow the app's own modules.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

ENV = "WORKBENCH_PLUGIN_PATH"


def user_plugin_dir() -> Path:
    """`plugins/` in the user data folder (`$WORKBENCH_DATA_DIR` or platformdirs')."""
    from workbench.core.fileio import journal_dir

    return journal_dir().parent / "plugins"


def plugin_dirs(existing_only: bool = True) -> list[Path]:
    """The plugin folders, in search order (only those that exist, unless asked)."""
    dirs = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]
    if getattr(sys, "frozen", False):
        dirs.append(Path(sys.executable).resolve().parent / "plugins")
    dirs.append(user_plugin_dir())
    return [d for d in dirs if d.is_dir()] if existing_only else dirs


def add_plugin_dirs() -> list[Path]:
    """Append the existing plugin folders to `sys.path` (once each); returns those added."""
    added = []
    for folder in plugin_dirs():
        text = str(folder)
        if text not in sys.path:
            sys.path.append(text)
            added.append(folder)
            log.debug("plugin folder %s on sys.path", text)
    return added

"""User settings, evented and saved as JSON in the platform's config folder."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from psygnal import Signal

from workbench.core.devices import check_device, is_device_name
from workbench.core.errors import WorkbenchError, first_line
from workbench.core.fileio import atomic_write_text

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_RECENT = 10
MAX_SETTINGS_BYTES = 1_000_000
MAX_LAYOUT_CHARS = 100_000
THEMES = ("system", "light", "dark")


def config_dir() -> Path:
    """`$WORKBENCH_CONFIG_DIR`, or platformdirs' user config folder for workbench."""
    override = os.environ.get("WORKBENCH_CONFIG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("workbench", appauthor=False))


def runs_dir() -> Path:
    """Where training runs keep their checkpoints (`$WORKBENCH_DATA_DIR/runs`, or platformdirs'
    user data folder)."""
    override = os.environ.get("WORKBENCH_DATA_DIR")
    if override:
        return Path(override) / "runs"
    import platformdirs

    return Path(platformdirs.user_data_dir("workbench", appauthor=False)) / "runs"


class Settings:
    """Device choice, theme and recent files. `changed` fires after every edit, which is saved."""

    changed = Signal()

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "settings.json"
        self.device = "cpu"
        self.recent_files: list[str] = []
        self.recent_projects: list[str] = []
        # The window's geometry, docks and splitters, as the GUI saved them (opaque text)
        self.window_layout: dict[str, str] = {}
        self.pass_time_limit_s = 0.0  # a pass running longer is abandoned; 0: no limit
        self.theme = "system"  # the GUI's colours: follow the system, or light or dark
        # the memory ceiling of a heavy job (structured pruning, export) in bytes; 0: 60%
        # of the machine's memory (`memory_budget.default_limit`)
        self.max_memory_bytes = 0
        self.warning: str | None = None  # set when the file could not be used
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            if self.path.stat().st_size > MAX_SETTINGS_BYTES:
                raise ValueError("the file is too large")
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except Exception as exc:  # any unreadable settings fall back to defaults, never crash
            log.debug("cannot read settings %s", self.path, exc_info=True)
            why = "nested too deeply" if isinstance(exc, RecursionError) else first_line(exc)
            self._warn(f"cannot be read ({why})")
            return
        if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
            self._warn("is not a Workbench settings file of this version")
            return
        if is_device_name(data.get("device")):
            self.device = data["device"]
        if data.get("theme") in THEMES:
            self.theme = data["theme"]
        limit = data.get("pass_time_limit_s", 0.0)
        if isinstance(limit, (int, float)) and not isinstance(limit, bool) and \
                0 <= limit < float("inf"):
            self.pass_time_limit_s = float(limit)
        ceiling = data.get("max_memory_bytes", 0)
        if isinstance(ceiling, int) and not isinstance(ceiling, bool) and ceiling >= 0:
            self.max_memory_bytes = ceiling
        self.recent_files = _strings(data.get("recent_files"))
        self.recent_projects = _strings(data.get("recent_projects"))
        layout = data.get("window_layout")
        if isinstance(layout, dict):
            self.window_layout = {k: v for k, v in layout.items() if isinstance(k, str)
                                  and isinstance(v, str) and len(v) < MAX_LAYOUT_CHARS}

    def _warn(self, problem: str) -> None:
        self.warning = f"The settings file {self.path} {problem}; using the defaults."
        log.warning(self.warning)

    def save(self) -> None:
        data = {"schema": SCHEMA_VERSION, "device": self.device,
                "recent_files": self.recent_files, "recent_projects": self.recent_projects,
                "pass_time_limit_s": self.pass_time_limit_s, "theme": self.theme,
                "max_memory_bytes": self.max_memory_bytes,
                "window_layout": self.window_layout}
        # settings are a convenience: never fail over them
        with contextlib.suppress(OSError, WorkbenchError):
            atomic_write_text(self.path, json.dumps(data, indent=2))

    def set_device(self, device: str) -> None:
        """cpu, cuda, cuda:N or mps, if torch can use it here (InvalidParameterError if not).
        A saved device that is gone (the settings moved machines) is kept and refused by the
        first job that needs it, with the same sentence."""
        self.device = check_device(device)
        self.save()
        self.changed.emit()

    def set_theme(self, theme: str) -> None:
        """"system", "light" or "dark"."""
        if theme not in THEMES:
            raise ValueError(f"Unknown theme '{theme}': use one of {', '.join(THEMES)}.")
        self.theme = theme
        self.save()
        self.changed.emit()

    def set_pass_time_limit(self, seconds: float) -> None:
        if not (0 <= seconds < float("inf")):
            raise ValueError("The time limit must be a number of seconds, 0 for none.")
        self.pass_time_limit_s = float(seconds)
        self.save()
        self.changed.emit()

    def set_max_memory(self, limit: int) -> None:
        """The memory ceiling of heavy jobs in bytes; 0 for the default (60% of the machine)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError("The memory ceiling must be a number of bytes, 0 for the default.")
        self.max_memory_bytes = limit
        self.save()
        self.changed.emit()

    def add_recent(self, source: str) -> None:
        self.recent_files = [source, *(r for r in self.recent_files if r != source)][:MAX_RECENT]
        self.save()
        self.changed.emit()

    def add_recent_project(self, folder: str) -> None:
        self.recent_projects = [folder, *(r for r in self.recent_projects
                                          if r != folder)][:MAX_RECENT]
        self.save()
        self.changed.emit()

    def set_window_layout(self, layout: dict[str, str]) -> None:
        """Remember the window's layout (saved; no `changed` signal: nothing to redraw)."""
        self.window_layout = dict(layout)
        self.save()


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)][:MAX_RECENT] if isinstance(value, list) \
        else []


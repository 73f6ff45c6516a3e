"""Settings ▸ Memory ceiling: how much memory a heavy job (structured pruning, export) may
use before it is stopped, in GB; 0 keeps the default share of the machine's memory."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtWidgets import QInputDialog

from workbench.core.memory_budget import DEFAULT_SHARE, default_limit, human, machine_memory

log = logging.getLogger(__name__)

_GB = 1 << 30


def memory_dialog(window: Any) -> QInputDialog:
    """The dialog, filled with the current ceiling; accepting it saves the new one."""
    settings = window.settings
    dialog = QInputDialog(window)
    dialog.setWindowTitle("Memory ceiling")
    dialog.setInputMode(QInputDialog.InputMode.DoubleInput)
    dialog.setLabelText(
        "Stop a heavy job (structured pruning, export) when it uses more than this many GB.\n"
        f"0: {DEFAULT_SHARE:.0%} of this machine's memory ({human(default_limit())} of "
        f"{human(machine_memory())}).")
    dialog.setDoubleDecimals(1)
    dialog.setDoubleRange(0.0, max(machine_memory() / _GB, 1.0) * 4)
    dialog.setDoubleValue(settings.max_memory_bytes / _GB)
    dialog.accepted.connect(
        lambda: settings.set_max_memory(round(dialog.doubleValue() * _GB)))
    return dialog


def ask_memory_ceiling(window: Any) -> None:
    """Settings ▸ Memory ceiling…"""
    memory_dialog(window).open()

"""Logging for the entry points: `WORKBENCH_DEBUG` picks the level, stderr gets one line each.

Every module logs to `logging.getLogger(__name__)`; the CLI and the window call
`configure_logging()` once. Unset, records below WARNING are dropped and the chattiest
libraries (and Python warnings, routed to the `py.warnings` logger) are silenced through
their loggers; `WORKBENCH_DEBUG=1` (or `true`) shows everything at DEBUG, with tracebacks,
and a level name (`INFO`) sets that level.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)

FORMAT = "%(levelname)s %(name)s: %(message)s"
# Libraries whose WARNING-level chatter is not for the user's terminal.
NOISY_LOGGERS = ("torch", "onnxruntime", "onnxscript", "onnx_ir", "onnx", "transformers",
                 "torch_pruning", "sympy", "py.warnings")

_handler: logging.Handler | None = None


class _OneLine(logging.Formatter):
    """One line per record and never a traceback: what users see at the default level."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        return " ".join(self.formatMessage(record).split())


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (the CLI wraps it; tests capture it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _LibraryChatter(logging.Filter):
    """Below CRITICAL, drops records that libraries send to the root logger itself (ONNX
    Runtime's quantization tools log "please run pre-processing" there)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno >= logging.CRITICAL or record.name != "root"
                or "site-packages" not in record.pathname)


def debug_level(value: str | None = None) -> int | None:
    """The level `WORKBENCH_DEBUG` asks for: None when unset or empty, DEBUG for 1/true/yes/on,
    else a level name (`INFO`, `warning`); anything unrecognised means DEBUG."""
    value = os.environ.get("WORKBENCH_DEBUG", "") if value is None else value
    value = value.strip()
    if not value or value.lower() in ("0", "false", "no", "off"):
        return None
    if value.lower() in ("1", "true", "yes", "on"):
        return logging.DEBUG
    named = logging.getLevelName(value.upper())
    return named if isinstance(named, int) else logging.DEBUG


def configure_logging() -> int:
    """Set the root logger from `WORKBENCH_DEBUG` (idempotent); return the level in use."""
    global _handler
    level = debug_level()
    root = logging.getLogger()
    if _handler is None:  # one handler of ours, even if an earlier one was forgotten
        _handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)),
                        None) or _StderrHandler()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    _handler.setFormatter(logging.Formatter(FORMAT) if level is not None else _OneLine(FORMAT))
    for old in list(_handler.filters):
        _handler.removeFilter(old)
    if level is None:
        _handler.addFilter(_LibraryChatter())
    root.setLevel(logging.WARNING if level is None else level)
    logging.captureWarnings(True)
    if level is None:
        # torch and transformers reset their own loggers when imported (usually after this
        # runs): their documented switches set the level they start at. A user's own wins.
        os.environ.setdefault("TORCH_LOGS", "-all")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in NOISY_LOGGERS:
        # unset: libraries stay quiet (an error reaches the user as our one line); debugging:
        # whatever the root level lets through
        logging.getLogger(name).setLevel(logging.CRITICAL if level is None else logging.NOTSET)
    return logging.WARNING if level is None else level

"""Typed errors: each carries one clear, user-facing sentence."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def first_line(exc: BaseException | str) -> str:
    """The first line of an exception's (or warning's) message (its type name when empty)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class WorkbenchError(Exception):
    """Base class of every error the user should see as a message, not a traceback."""


class ModelNotFoundError(WorkbenchError):
    """The file or zoo name does not exist."""


class UnsupportedFormatError(WorkbenchError):
    """The file's extension or content is not a model format Workbench reads."""


class CorruptModelError(WorkbenchError):
    """The file is truncated, corrupt or otherwise unreadable."""


class TrustRequiredError(WorkbenchError):
    """The file is a full pickle; loading it can run arbitrary code."""


class ArchitectureMismatchError(WorkbenchError):
    """A state dict does not fit the architecture it was joined to."""


class ArchitectureRequiredError(WorkbenchError):
    """A state dict was given without an architecture to join it to."""


class OptionalDependencyError(WorkbenchError):
    """An optional extra is not installed."""


class InvalidParameterError(WorkbenchError):
    """A parameter is out of range or impossible."""


class CancelledError(WorkbenchError):
    """The user cancelled a job."""

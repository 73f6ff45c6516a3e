"""The memory ceiling for jobs that run in this process (quantization, training, benchmarks).

Heavy steps run in a child process that is killed at the ceiling (`child_job`). Every other
job is watched here: a daemon thread samples this process's private memory and, when it has
grown by more than the ceiling since the job started, cancels the job's token. A job stops
at its next cancel check (they check between steps), and the runner reports a
MemoryLimitError instead of a cancel (`MemoryWatch.translate`). Cooperative: a single
step that allocates without checking its token is only stopped after it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from workbench.core.errors import CancelledError
from workbench.core.jobs import CancelToken
from workbench.core.memory_budget import MemoryLimitError, private_memory

log = logging.getLogger(__name__)

_POLL_S = 0.25
HINT = ("Try a smaller input or dataset, fewer samples, raise the ceiling (Settings ▸ Memory "
        "ceiling, or --max-memory), or use a machine with more memory.")


class MemoryWatch:
    """Cancels `token` once this process has grown by more than `limit` bytes."""

    def __init__(self, token: CancelToken, limit: int, title: str) -> None:
        self.token, self.limit, self.title = token, limit, title
        self.tripped = False
        self.peak = 0
        self._baseline = private_memory(os.getpid())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory watch", daemon=True)

    def start(self) -> MemoryWatch:
        """Start watching (once; memory must be readable on this platform)."""
        if self._baseline is not None and not self._thread.is_alive() \
                and not self._stop.is_set() and self._thread.ident is None:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def __enter__(self) -> MemoryWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(_POLL_S):
            used = (private_memory(os.getpid()) or 0) - (self._baseline or 0)
            self.peak = max(self.peak, used)
            if used > self.limit:
                self.tripped = True
                self.token.cancel()
                return

    def translate(self, exc: BaseException) -> BaseException:
        """The error to report for `exc`: a MemoryLimitError for the cancel this watch
        caused, else `exc` itself."""
        if self.tripped and isinstance(exc, CancelledError):
            return MemoryLimitError(self.title, self.peak, self.limit, HINT)
        return exc


def watch(token: CancelToken, settings: Any, title: str) -> MemoryWatch:
    """A started watch of `token`'s job under the settings' ceiling."""
    from workbench.core.memory_budget import effective_limit

    limit = effective_limit(getattr(settings, "max_memory_bytes", 0) or None)
    return MemoryWatch(token, limit, title).start()

"""Jobs: generators that yield `Progress` and honour a `CancelToken`.

The GUI runs them on a pool thread (`workbench.gui.job_worker`); the CLI drives them with
`run_job`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, TypeVar

from workbench.core.errors import CancelledError
from workbench.core.job_scope import job_scope

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """A step of a job: a fraction in [0, 1] (or None if unknown), a message, a payload."""

    fraction: float | None
    message: str = ""
    payload: Any = None


class CancelToken:
    """Set by the caller; jobs call `check()` between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._event.set()
        self._running.set()  # a paused job wakes up to see the cancel

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> None:
        """Block while paused (jobs call this between steps)."""
        self._running.wait(timeout)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise CancelledError("Cancelled.")


Job = Generator[Progress, None, T]


def call_cancellable(call: Callable[[CancelToken], T], cancel: CancelToken,
                     poll_s: float = 0.02) -> T:
    """`call(token)` in a daemon thread, its result or error returned here; a cancel of
    `cancel` ends the wait at once (CancelledError), and the call, told through `token`,
    finishes on its own in the background (a thread cannot be killed)."""
    token = CancelToken()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            with job_scope():
                box["result"] = call(token)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="cancellable step", daemon=True)
    thread.start()
    while thread.is_alive():
        if cancel.cancelled:
            token.cancel()
            raise CancelledError("Cancelled.")
        thread.join(poll_s)
    if "error" in box:
        raise box["error"]
    return box["result"]


def run_job(job: Job[T], on_progress: Callable[[Progress], None] | None = None) -> T:
    """Drive a job to completion on the calling thread, inside a `job_scope`, and return its
    result; process-wide state the job changed is restored however it ends."""
    with job_scope(), closing(job):  # a job stopped early runs its `finally` in the scope
        while True:
            try:
                step = next(job)
            except StopIteration as stop:
                return stop.value
            if on_progress is not None:
                on_progress(step)

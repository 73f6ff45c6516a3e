"""The named steps of a long pass: progress with a message, cancel between steps, seconds each.

A pass calls `steps.start("export", 0.05, "Exporting to ONNX…")` as each step begins: the
cancel token is checked, the previous step's time is recorded, and the progress moves on.
`steps.within(lo, hi)` gives a `(fraction, message)` callback for work with its own
sub-steps (an ONNX export), mapped onto [lo, hi] and checking the cancel token too.
`steps.seconds()` is the time of each step so far, for the pass report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Steps:
    """Progress and timing of a pass's steps (see the module docstring)."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._times: dict[str, float] = {}
        self._current: str | None = None
        self._began = 0.0

    def start(self, name: str, fraction: float, message: str) -> None:
        """End the current step and begin `name` (after checking the cancel token)."""
        self._ctx.cancel.check()
        self._stop()
        self._current, self._began = name, time.perf_counter()
        self._ctx.progress(fraction, message)

    def within(self, lo: float, hi: float, prefix: str = "") -> Callable[[float, str], None]:
        """A progress callback for sub-steps, mapped onto [lo, hi], checking cancel."""
        def step(fraction: float, message: str) -> None:
            self._ctx.cancel.check()
            text = f"{prefix}{message[0].lower()}{message[1:]}" if prefix and message \
                else message
            self._ctx.progress(lo + (hi - lo) * min(max(fraction, 0.0), 1.0), text)
        return step

    def seconds(self) -> dict[str, float]:
        """Seconds spent in each step, the current one up to now, rounded to ms."""
        self._stop()
        if self._current is not None:
            self._began = time.perf_counter()
        return {k: round(v, 3) for k, v in self._times.items()}

    def _stop(self) -> None:
        if self._current is not None:
            elapsed = time.perf_counter() - self._began
            self._times[self._current] = self._times.get(self._current, 0.0) + elapsed

"""Benchmark jobs within a budget (issue 16): the memory ceiling and cancel of a heavy job.

Run:  .venv/bin/python tests/benchmarks/bench_budget.py [--ceiling 10G] [--skip-swin]
      [--skip-resnet] [--cancel-after 3]

1. torchvision swin_t (weights=None, 1x3x224x224), `prune.structured` ratio 0.5 through
   `Session.apply` under the ceiling (10 GB). A sampler thread reads the child's private
   memory every 20 ms and notes when it first crosses the ceiling; the bench reports the
   time from that crossing to the job's MemoryLimitError (target <= 10 s), the peak, and
   checks the workspace is unchanged. Meanwhile the main thread ticks every 20 ms, as a
   window's event loop would: the longest gap between ticks is its worst stall (the
   heartbeat; it should stay well under a second).
2. torchvision resnet50 (weights=None), `prune.structured` 0.5, cancelled `--cancel-after`
   seconds into the job (mid dependency graph or mid pruning): the time from `cancel()` to
   the job's end (target <= 1 s), and the child is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from workbench.core.errors import CancelledError
from workbench.core.jobs import CancelToken, run_job
from workbench.core.memory_budget import MemoryLimitError, human, parse_memory, private_memory

TARGET_STOP_S = 10.0
TARGET_CANCEL_S = 1.0
_TICK_S = 0.02


def _session(ceiling: int) -> Any:
    import tempfile

    from workbench.core.session.session import Session
    from workbench.core.session.settings import Settings

    settings = Settings(Path(tempfile.mkdtemp()) / "settings.json")
    settings.max_memory_bytes = ceiling
    return Session(settings, remember_recent=False)


def _add_torchvision(session: Any, arch: str) -> Any:
    from workbench.core.graph.analysis import analyse
    from workbench.core.model.torchvision_shim import import_torchvision
    from workbench.core.model.variant import InputSpec, Variant

    tv = import_torchvision()
    model = getattr(tv.models, arch)(weights=None).eval()
    variant = Variant(arch, "torch", model, "eager", (InputSpec("x", (1, 3, 224, 224)),))
    return session._add(run_job(analyse(variant)))


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


class _Sampler(threading.Thread):
    """Samples the children's private memory; notes the first crossing of `ceiling`."""

    def __init__(self, ceiling: int) -> None:
        super().__init__(daemon=True)
        self.ceiling, self.peak = ceiling, 0
        self.crossed: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for pid in _children():
                used = private_memory(pid) or 0
                self.peak = max(self.peak, used)
                if used > self.ceiling and self.crossed is None:
                    self.crossed = time.monotonic()
            time.sleep(_TICK_S)


def _in_thread(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:
            box["error"] = exc
        box["ended"] = time.monotonic()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def _heartbeat(thread: threading.Thread, poll: Any = None) -> float:
    """Tick on this thread until `thread` ends; the longest gap between ticks (s)."""
    worst, last = 0.0, time.monotonic()
    while thread.is_alive():
        time.sleep(_TICK_S)
        now = time.monotonic()
        worst = max(worst, now - last - _TICK_S)
        last = now
        if poll is not None:
            poll()
    return worst


def bench_swin(ceiling: int) -> None:
    session = _session(ceiling)
    entry = _add_torchvision(session, "swin_t")
    ids = [e.id for e in session.workspace.entries()]
    messages: list[str] = []
    sampler = _Sampler(ceiling)
    sampler.start()
    start = time.monotonic()
    task = session.apply("prune.structured", {"ratio": 0.5}, entry.id)
    thread, box = _in_thread(lambda: session.run(task, lambda p: messages.append(p.message)))
    worst = _heartbeat(thread)
    sampler.stop.set()
    err = box.get("error")
    print(f"swin_t prune.structured 0.5 under {human(ceiling)}: job ran "
          f"{box['ended'] - start:.1f} s, child peak {human(sampler.peak)} (sampled)")
    if isinstance(err, MemoryLimitError):
        stop = box["ended"] - sampler.crossed if sampler.crossed else float("nan")
        print(f"  stopped {stop:.2f} s after crossing the ceiling (target <= "
              f"{TARGET_STOP_S:.0f} s): {'PASS' if stop <= TARGET_STOP_S else 'FAIL'}")
        print(f"  message: {err}")
    else:
        print(f"  not stopped by the ceiling: {type(err).__name__ if err else 'finished'}"
              f"{': ' + str(err) if err else ''}")
    unchanged = [e.id for e in session.workspace.entries()] == ids
    print(f"  workspace unchanged: {unchanged}; children left: {_children()}")
    print(f"  heartbeat: longest stall of the calling process {worst * 1000:.0f} ms")
    print(f"  last progress: {messages[-3:]}")


def bench_resnet_cancel(cancel_after: float) -> None:
    session = _session(0)
    entry = _add_torchvision(session, "resnet50")
    token = CancelToken()
    messages: list[str] = []
    task = session.apply("prune.structured", {"ratio": 0.5}, entry.id)
    thread, box = _in_thread(lambda: session.run(task, lambda p: messages.append(p.message),
                                                 cancel=token))
    started = time.monotonic()
    while thread.is_alive() and time.monotonic() - started < cancel_after:
        time.sleep(_TICK_S)
    if not thread.is_alive():
        print(f"resnet50: the prune ended before the cancel ({box.get('error')!r})")
        return
    children = _children()
    asked = time.monotonic()
    token.cancel()
    thread.join()
    took = box["ended"] - asked
    gone = all(not Path(f"/proc/{pid}").exists() for pid in children)
    print(f"resnet50 prune.structured 0.5, cancelled {cancel_after:g} s in (during "
          f"{messages[-1]!r}): ended {took * 1000:.0f} ms after cancel (target <= "
          f"{TARGET_CANCEL_S:.0f} s): {'PASS' if took <= TARGET_CANCEL_S else 'FAIL'}; "
          f"{type(box.get('error')).__name__}; child gone: {gone}")
    if not isinstance(box.get("error"), CancelledError):
        print(f"  unexpected end: {box.get('error')!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ceiling", default="10G")
    parser.add_argument("--skip-swin", action="store_true")
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--cancel-after", type=float, default=3.0)
    args = parser.parse_args()
    if not args.skip_resnet:
        for after in (args.cancel_after, 0.5 + args.cancel_after * 2):
            bench_resnet_cancel(after)
    if not args.skip_swin:
        bench_swin(parse_memory(args.ceiling))


if __name__ == "__main__":
    main()

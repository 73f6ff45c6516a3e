"""A brief latency probe for passes: several ONNX models on one input, same runtime and threads.

`apply_pass` measures nothing about speed, and the benchmark engine sits above the passes
(`session > measure > train > passes`), so a pass that must know whether its result is
faster than its parent (int8 on a CPU without VNNI often is not) uses this probe: one ONNX
Runtime session per model with the same intra-op threads, a warm-up run each, then rounds
that run every model once in turn (interleaved, so a busy machine slows them alike) until
a small time budget is spent; each model's figure is the median of its runs. The rounds
stop sooner once they settle the comparison (`settled`): after `SETTLE_ROUNDS` rounds,
when a Mann-Whitney rank test tells each pair of models apart at p < 0.01 (two-sided,
normal approximation), counting only pairs of runs more than `NOISE` apart. After 5 + 5
runs that takes every run of one model 5% quicker than every run of the other (exactly:
p = 1/126); later rounds outweigh an outlier (9 + 9 runs: 70 of the 81 pairs). Int8
against float usually settles in a fraction of the budget (resnet-mini's ConvInteger is
over 10x slower than float here); models within 5% of each other never do.

The sessions of small models are kept for the next probe (`probe_session`: a few, up to
64 MB of model, keyed by a SHA-256 of the model's bytes and the thread count), so that
timing int8 against the same float parent again does not build its session again; every
probe still warms each model up first.

A probe is any `LatencyProbe`: passes accept one in place of `time_models` so that tests
can inject timings instead of depending on the speed of the machine they run on.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import os
import statistics
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.model.cpu import cpu_features
from workbench.core.model.runtime import ort_session, session_feed

log = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 0.4
MIN_RUNS = 3  # per model, even past the budget (a median needs a few)
MAX_RUNS = 200
MAX_THREADS = 2  # the probe is brief and the machine is shared: at most two threads
NOISE = 0.05  # speedups within 5% of 1.0 are "no faster", not a measured gain or loss
SETTLE_ROUNDS = 5  # rounds before the comparison may be called settled
SETTLE_Z = 2.576  # two-sided p < 0.01 (normal approximation of Mann-Whitney U)
SESSIONS_KEPT = 4  # probe sessions kept for the next probe ...
SESSION_BYTES_KEPT = 64 << 20  # ... while their models' bytes add up to at most this

_sessions: OrderedDict[tuple[str, int], tuple[Any, int]] = OrderedDict()
_sessions_lock = threading.Lock()

LatencyProbe = Callable[[Mapping[str, Any], Sequence[Any], int, float], dict[str, float]]


def probe_threads() -> int:
    """Threads the probe uses: the cores this process may use, at most `MAX_THREADS`."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, usable))


def time_models(models: Mapping[str, Any], inputs: Sequence[Any], threads: int,
                budget_s: float = DEFAULT_BUDGET_S) -> dict[str, float]:
    """Median milliseconds per run of each ONNX model (name -> ModelProto) on `inputs`.

    Models run interleaved, one run each per round, with `threads` intra-op threads, for
    about `budget_s` seconds after a warm-up run each (at least `MIN_RUNS` rounds), or
    fewer once the rounds have `settled` the comparison.
    """
    sessions = {name: probe_session(model, threads) for name, model in models.items()}
    feeds = {name: session_feed(s, inputs) for name, s in sessions.items()}
    for name, s in sessions.items():  # warm-up: allocations, kernel selection
        s.run(None, feeds[name])
    runs: dict[str, list[float]] = {name: [] for name in sessions}
    clock = time.perf_counter
    start = clock()
    for k in range(MAX_RUNS):
        if k >= MIN_RUNS and (clock() - start > budget_s or settled(runs)):
            break
        for name, s in sessions.items():
            t0 = clock()
            s.run(None, feeds[name])
            runs[name].append((clock() - t0) * 1e3)
    return {name: statistics.median(ms) for name, ms in runs.items()}


def probe_session(model: Any, threads: int) -> Any:
    """An ORT session of ONNX `model` with `threads` intra-op threads: the one a recent probe
    built for the same bytes and threads, else a new one (then kept, LRU)."""
    data = model.SerializeToString()
    key = (hashlib.sha256(data).hexdigest(), int(threads))
    with _sessions_lock:
        hit = _sessions.get(key)
        if hit is not None:
            _sessions.move_to_end(key)
            return hit[0]
    session = ort_session(model, threads)
    if len(data) > SESSION_BYTES_KEPT:  # a big model's memory is worth more than its set-up
        return session
    with _sessions_lock:
        _sessions[key] = (session, len(data))
        while len(_sessions) > SESSIONS_KEPT or sum(
                size for _, size in _sessions.values()) > SESSION_BYTES_KEPT:
            _sessions.popitem(last=False)
    return session


def clear_probe_sessions() -> None:
    """Forget the sessions kept for the next probe."""
    with _sessions_lock:
        _sessions.clear()


def settled(runs: Mapping[str, Sequence[float]]) -> bool:
    """Whether interleaved `runs` (name -> milliseconds) already rank the models beyond
    noise: at least `SETTLE_ROUNDS` runs each, and every pair told apart by `_apart`."""
    times = [sorted(t) for t in runs.values()]
    if len(times) < 2 or min(len(t) for t in times) < SETTLE_ROUNDS:
        return False
    return all(_apart(a, b) for i, a in enumerate(times) for b in times[i + 1:])


def _apart(a: list[float], b: list[float]) -> bool:
    """Mann-Whitney U on sorted runs `a` and `b`, counting a pair only when one run is more
    than `NOISE` quicker: U at least `SETTLE_Z` standard deviations above its mean."""
    n, m = len(a), len(b)

    def quicker(x: list[float], y: list[float]) -> int:  # pairs with x clearly quicker
        return sum(len(y) - bisect.bisect_right(y, v * (1 + NOISE)) for v in x)

    u = max(quicker(a, b), quicker(b, a))
    return u - n * m / 2 >= SETTLE_Z * math.sqrt(n * m * (n + m + 1) / 12)


@dataclass(frozen=True)
class LatencyComparison:
    """A child's median latency against its parent's, measured side by side."""

    parent_ms: float
    child_ms: float
    threads: int

    @property
    def speedup(self) -> float:
        return self.parent_ms / self.child_ms if self.child_ms > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {"parent_ms": round(self.parent_ms, 3), "child_ms": round(self.child_ms, 3),
                "speedup": round(self.speedup, 3), "threads": self.threads}


def compare_latency(parent: Any, child: Any, inputs: Sequence[Any],
                    probe: LatencyProbe | None = None, threads: int | None = None,
                    budget_s: float = DEFAULT_BUDGET_S) -> LatencyComparison:
    """Time ONNX `child` against ONNX `parent` on `inputs` with `probe` (default:
    `time_models`) and the same threads."""
    threads = threads or probe_threads()
    ms = (probe or time_models)({"parent": parent, "child": child}, inputs, threads,
                                budget_s)
    return LatencyComparison(ms["parent"], ms["child"], threads)


def slower_warning(speedup: float, child_ops: set[str], alternatives: str) -> str | None:
    """A sentence when an int8 model is not faster than float (None when it is)."""
    if speedup >= 1.0 + NOISE:
        return None
    why = ""
    cpu = cpu_features()
    if "ConvInteger" in child_ops:
        why = (" (no VNNI: convolutions run through ConvInteger)" if cpu.is_x86 and not cpu.vnni
               else " (convolutions run through ConvInteger)")
    if speedup <= 1.0 - NOISE:
        what = f"int8 is {1.0 / speedup:.1f}x slower than float on this CPU{why}."
    else:
        what = f"int8 is no faster than float on this CPU ({speedup:.2f}x){why}."
    return f"{what[0].upper()}{what[1:]} {alternatives}"

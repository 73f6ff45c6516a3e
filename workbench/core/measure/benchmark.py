"""Latency, throughput and memory of a variant: a headless job with live progress.

`benchmark(variant, config)` times each iteration with `time.perf_counter_ns` around exactly
the inference call (torch under `torch.inference_mode()`, followed by
`torch.cuda.synchronize()` on a GPU; ONNX Runtime's `session.run` with input feeds built
beforehand), so the job's own bookkeeping (progress, cancel checks) is not in the numbers.
Every sample is kept; live `Progress` payloads are throttled to about 60 a second.

Cancelling stops the run and still returns what was measured (`BenchResult.stopped`), as
training does; a batch size cut short keeps its samples in a record marked `partial`.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from workbench.core import devices
from workbench.core.devices import check_device, device_type, on_device, ort_providers, synchronize
from workbench.core.errors import InvalidParameterError, WorkbenchError, first_line
from workbench.core.events import LatencySample, RecordDone, WarmupStep
from workbench.core.job_scope import request_threads
from workbench.core.jobs import CancelToken, Job, Progress
from workbench.core.model.variant import Variant
from workbench.core.params import local, param, parse_values

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "torch_compile", "ort")
DEVICES = ("cpu", "cuda")  # what recipes of old recorded (the recipe schema still reads them)
MIN_ITERS = 5  # a duration-bound run still times at least this many iterations
MAX_SAMPLES = 1_000_000  # a duration-bound run stops here whatever the clock says
NOISY_TAIL = 2.0  # p99 / p50 above this marks a record as noisy
NOISY_CV = 0.25  # std / mean above this marks a record as noisy
_YIELD_NS = 1_000_000_000 // 60  # at most ~60 live updates a second


@dataclass
class BenchConfig:
    """What to measure: runtime, batch sweep, threads and how long. Declared once: the
    Benchmark tab's form, the CLI's flags and the validation come from these fields."""

    runtime: str = param("auto", help="auto: ONNX Runtime for ONNX models, torch eager "
                         "otherwise", choices=RUNTIMES)
    batch_sizes: list[int] = param([1], help="batch sizes to sweep, e.g. 1, 8, 32")
    threads: int | None = param(None, help="intra-op threads (unset: the library's default)",
                                min=1, max=1024)
    warmup: int = param(10, help="untimed runs first", min=0, max=1_000_000)
    iters: int = param(100, help="timed runs per batch size", min=1, max=10_000_000)
    duration_s: float | None = param(None, help="time each batch size for this long instead "
                                     "(seconds; unset: use iters)", min=1e-6, max=86_400.0)
    device: str = local("cpu")

    @classmethod
    def parse(cls, values: dict[str, Any] | None, **local_fields: Any) -> BenchConfig:
        """Build from form or CLI values (strings allowed) and validate."""
        values = dict(values or {})
        sizes = values.get("batch_sizes")
        if isinstance(sizes, str):
            sizes = sizes.replace(" ", "").split(",")
        if isinstance(sizes, (list, tuple)):
            try:
                values["batch_sizes"] = [int(b) for b in sizes if str(b).strip()]
            except ValueError:
                raise InvalidParameterError(f"Batch sizes are whole numbers such as 1,8,32, "
                                            f"not {sizes!r}.") from None
        config = parse_values(cls, values, "benchmark", **local_fields)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise InvalidParameterError on impossible values (and a missing GPU)."""
        checks = [
            (self.runtime in RUNTIMES, f"runtime must be one of {', '.join(RUNTIMES)}"),
            (isinstance(self.batch_sizes, (list, tuple)) and len(self.batch_sizes) > 0,
             "give at least one batch size"),
            (all(_is_int(b) and b >= 1 for b in self.batch_sizes),
             "batch sizes must be whole numbers of at least 1"),
            (self.threads is None or (_is_int(self.threads) and self.threads >= 1),
             "threads must be at least 1 (or unset for the library's default)"),
            (_is_int(self.warmup) and self.warmup >= 0, "warm-up cannot be negative"),
            (_is_int(self.iters) and self.iters >= 1, "iterations must be at least 1"),
            (self.duration_s is None or (isinstance(self.duration_s, (int, float))
                                         and math.isfinite(self.duration_s)
                                         and self.duration_s > 0),
             "the duration must be a positive number of seconds"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidParameterError(message + ".")
        check_device(self.device)  # cpu, cuda, cuda:N or mps, and present here

    def resolved_runtime(self, variant: Variant) -> str:
        """The runtime `auto` stands for: ONNX Runtime for ONNX variants, else torch."""
        if self.runtime != "auto":
            return self.runtime
        return "ort" if variant.backend == "onnx" else "torch"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class BenchRecord:
    """The latency distribution of one batch size."""

    runtime: str
    device: str
    batch: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    throughput: float  # samples per second: batch * 1000 / mean_ms
    samples_ms: list[float]
    peak_memory_bytes: int | None = None
    model_bytes: int | None = None
    threads: int | None = None
    warmup: int = 0
    noisy: bool = False
    warning: str = ""
    partial: bool = False  # cancelled before all iterations ran

    @property
    def iters(self) -> int:
        return len(self.samples_ms)

    @classmethod
    def from_samples(cls, samples_ms: list[float], runtime: str, device: str, batch: int,
                     **extra: Any) -> BenchRecord:
        """Statistics of `samples_ms` (one per timed iteration)."""
        if not samples_ms:
            raise ValueError("a record needs at least one sample")
        a = np.asarray(samples_ms, dtype=np.float64)
        mean = float(a.mean())
        p50, p90, p99 = (float(v) for v in np.percentile(a, [50, 90, 99]))
        std = float(a.std(ddof=1)) if a.size > 1 else 0.0
        record = cls(runtime, device, batch, mean, p50, p90, p99, std, float(a.min()),
                     float(a.max()), batch * 1000.0 / mean if mean > 0 else math.inf,
                     [float(v) for v in samples_ms], **extra)
        record.noisy, record.warning = noise_warning(a)
        if record.partial:
            note = f"Stopped after {a.size} iterations."
            record.warning = f"{record.warning} {note}".strip()
        return record

    def to_json(self, samples: bool = True) -> dict[str, Any]:
        data = asdict(self)
        data["iters"] = self.iters
        if not samples:
            data.pop("samples_ms")
        return data


def noise_warning(samples_ms: np.ndarray) -> tuple[bool, str]:
    """(noisy, warning) for a latency distribution: a long tail or a wide spread."""
    if samples_ms.size < 3:
        return False, ""
    p50 = float(np.percentile(samples_ms, 50))
    p99 = float(np.percentile(samples_ms, 99))
    mean = float(samples_ms.mean())
    cv = float(samples_ms.std(ddof=1)) / mean if mean > 0 else 0.0
    tail = p99 / p50 if p50 > 0 else 0.0
    if tail <= NOISY_TAIL and cv <= NOISY_CV:
        return False, ""
    return True, (f"Noisy run: p99 is {tail:.1f}× p50 and the spread is {cv:.0%} of the mean; "
                  "close other programs, fix the thread count, or run longer.")


@dataclass
class BenchResult:
    """Every record of a run, and where and with what it ran."""

    variant: str
    records: list[BenchRecord]
    config: dict[str, Any]
    machine: dict[str, Any]
    versions: dict[str, Any]
    stopped: bool = False
    notes: list[str] = field(default_factory=list)

    def record(self, batch: int | None = None) -> BenchRecord | None:
        """The record of `batch`, or (None) batch 1, else the smallest batch measured."""
        if not self.records:
            return None
        if batch is not None:
            return next((r for r in self.records if r.batch == batch), None)
        return next((r for r in self.records if r.batch == 1),
                    min(self.records, key=lambda r: r.batch))

    def to_json(self, samples: bool = True) -> dict[str, Any]:
        return {"variant": self.variant, "records": [r.to_json(samples) for r in self.records],
                "config": self.config, "machine": self.machine, "versions": self.versions,
                "stopped": self.stopped, "notes": self.notes}


# environment ------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        log.debug("cannot read /proc/cpuinfo", exc_info=True)
    return platform.processor() or platform.machine() or "unknown"


def machine_info(threads: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """CPU, cores, threads used, OS (and the GPU when one is used)."""
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    info: dict[str, Any] = {"cpu": cpu_model(), "logical_cores": os.cpu_count(),
                            "usable_cores": usable, "threads": threads,
                            "os": platform.platform(), "machine": platform.machine()}
    if device_type(device) == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name(device)
    elif device == "mps":
        info["gpu"] = "Apple GPU (MPS)"
    return info


def library_versions() -> dict[str, str | None]:
    """Versions of python, numpy, torch, onnx, onnxruntime and workbench (None: missing)."""
    from importlib.metadata import PackageNotFoundError, version

    import workbench

    out: dict[str, str | None] = {"python": platform.python_version(),
                                  "workbench": workbench.__version__}
    for name in ("numpy", "torch", "onnx", "onnxruntime"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def peak_rss_bytes() -> int | None:
    """The process's resident-set high-water mark (process-wide, never goes down)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if platform.system() == "Darwin" else int(peak) * 1024


def model_bytes(model: Any) -> int:
    """Serialized size: an ONNX model's ByteSize, or the bytes `torch.save` writes of a
    module's state dict."""
    if hasattr(model, "ByteSize"):
        return int(model.ByteSize())
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


# runners -----------------------------------------------------------------------------------
@dataclass
class _Runner:
    """One inference call ready to time (`call`), and what to run around it."""

    call: Callable[[], Any]
    sync: Callable[[], None] | None = None  # torch.cuda.synchronize on a GPU


def _torch_runner(variant: Variant, cfg: BenchConfig, batch: int, model: Any) -> _Runner:

    from workbench.core.model.runtime import torch_inputs

    device = cfg.device
    args = tuple(t.to(device) for t in torch_inputs(variant, variant.example_inputs(
        batch=batch)))
    sync = None if device == "cpu" else (lambda: synchronize(device))

    def call() -> Any:
        return model(*args)

    return _Runner(call, sync)


def _ort_runner(session: Any, variant: Variant, batch: int) -> _Runner:
    from workbench.core.model.runtime import session_feed

    feed = session_feed(session, variant.example_inputs(batch=batch))
    run = session.run

    def call() -> Any:
        return run(None, feed)

    return _Runner(call)


def bench_session(model: Any, threads: int | None = None, device: str = "cpu",
                  providers: list[Any] | None = None) -> Any:
    """The ONNX Runtime session a benchmark uses: `runtime.ort_session` on the CPU (same
    options as everywhere else); on `cuda:N`, the CUDA execution provider on GPU N first
    (`devices.ort_providers`, which `providers` overrides)."""
    from workbench.core.model.runtime import UNSAFE_FP16_OPTIMIZERS, has_float16, ort_session

    providers = providers or ort_providers(device)[0]
    if providers == ["CPUExecutionProvider"]:
        return ort_session(model, threads)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    disabled = list(UNSAFE_FP16_OPTIMIZERS) if has_float16(model) else None
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=providers,
                                disabled_optimizers=disabled)


# the job -----------------------------------------------------------------------------------
def benchmark(variant: Variant, config: BenchConfig, cancel: CancelToken | None = None
              ) -> Job[BenchResult]:
    """Time `variant` at each batch size of `config`; yields live latency samples.

    Events: `LatencySample` (throttled: the latest sample, and every sample since the
    previous event), `WarmupStep`, and `RecordDone` when a batch size is done.
    """
    config.validate()
    # the device this job computes on (`devices.job_device`; the same one outside tests)
    config = replace(config, device=devices.job_device(config.device))
    cancel = cancel or CancelToken()
    runtime = config.resolved_runtime(variant)
    _check_variant(variant, runtime)
    notes: list[str] = []
    if config.threads is not None and runtime != "ort":
        request_threads(config.threads)  # the runner's job scope restores it
    records: list[BenchRecord] = []
    stopped = False
    try:
        make_runner, size, threads_used, ran_on = yield from _prepare(variant, config,
                                                                      runtime, notes)
        machine = machine_info(threads_used, ran_on)  # the GPU's name, if one runs it
        n_batches = len(config.batch_sizes)
        for k, batch in enumerate(config.batch_sizes):
            if cancel.cancelled:
                stopped = True
                break
            yield Progress(k / n_batches, f"Batch {batch}: preparing…")
            runner = make_runner(batch)
            samples, stopped = yield from _time_batch(runner, config, runtime, batch, k,
                                                      n_batches, cancel)
            if samples:
                record = BenchRecord.from_samples(
                    samples, runtime, ran_on, batch,
                    peak_memory_bytes=_peak_memory(ran_on, runtime), model_bytes=size,
                    threads=threads_used, warmup=max(config.warmup, _min_warmup(runtime)),
                    partial=stopped)
                records.append(record)
                yield Progress((k + 1) / n_batches,
                               f"Batch {batch}: p50 {record.p50_ms:.3f} ms",
                               RecordDone(record))
            if stopped:
                break
    finally:
        log.debug("benchmark of %s ended after %d batch size(s)", variant.name, len(records))
    if stopped:
        notes.append("Stopped before the end; the records hold what was measured.")
    return BenchResult(variant.name, records, {**config.to_json(), "runtime": runtime},
                       machine, library_versions(), stopped, notes)


def _check_variant(variant: Variant, runtime: str) -> None:
    if variant.backend == "onnx" and runtime in ("torch", "torch_compile"):
        raise InvalidParameterError(
            f"{variant.name} is an ONNX model; benchmark it with ONNX Runtime (runtime 'ort'), "
            "not torch.")
    if variant.backend not in ("onnx", "torch"):
        raise InvalidParameterError(f"{variant.name}: unknown backend {variant.backend!r}.")
    if not variant.inputs:
        raise InvalidParameterError(
            f"{variant.name} declares no input shape, so there is nothing to feed it; give "
            "an input shape when loading.")


def _min_warmup(runtime: str) -> int:
    # torch.compile compiles on the first call: that call must never be timed
    return 1 if runtime == "torch_compile" else 0


def _prepare(variant: Variant, cfg: BenchConfig, runtime: str, notes: list[str]
             ) -> Generator[Progress, None,
                            tuple[Callable[[int], _Runner], int, int | None, str]]:
    """Build the model or session once; returns (runner factory, model bytes, threads, the
    device it runs on: ONNX Runtime without a CUDA provider runs on the CPU, said in a
    note)."""
    if runtime == "ort":
        model = variant.model
        if variant.backend == "torch":
            yield Progress(0.0, "Exporting to ONNX for ONNX Runtime…")
            from workbench.core.model.onnx_export import export_onnx

            # the fastest exporter that gives a faithful graph, or the cached export
            exported = export_onnx(variant, fast=True)
            model = exported.model
            notes.append(exported.summary())
            notes.extend(exported.warnings)
        yield Progress(0.0, "Creating the ONNX Runtime session…")
        try:
            providers, why_cpu = ort_providers(cfg.device)
            session = bench_session(model, cfg.threads, cfg.device, providers)
        except Exception as exc:
            raise WorkbenchError(f"ONNX Runtime cannot load {variant.name}: "
                                 f"{first_line(exc)}") from exc
        ran_on = cfg.device
        if why_cpu:
            notes.append(why_cpu)
            ran_on = "cpu"
        elif cfg.device != "cpu" and "CUDAExecutionProvider" not in session.get_providers():
            notes.append("ONNX Runtime fell back to the CPU for this model.")
            ran_on = "cpu"
        size = model_bytes(model)
        return (lambda batch: _ort_runner(session, variant, batch)), size, \
            cfg.threads, ran_on
    import torch

    if isinstance(variant.model, torch.jit.ScriptModule) and runtime == "torch_compile":
        raise InvalidParameterError(f"{variant.name} is TorchScript, which torch.compile "
                                    "does not take; use runtime 'torch'.")
    module = variant.model
    size = model_bytes(module)
    module = on_device(module, cfg.device)  # a copy on a GPU: the variant stays on the CPU
    model = module
    if runtime == "torch_compile":
        yield Progress(0.0, "torch.compile: the first call of each batch size compiles…")
        model = torch.compile(module)
    return (lambda batch: _torch_runner(variant, cfg, batch, model)), size, \
        torch.get_num_threads(), cfg.device


def _peak_memory(device: str, runtime: str) -> int | None:
    if device_type(device) == "cuda" and runtime != "ort":
        import torch

        return int(torch.cuda.max_memory_allocated(device))
    return peak_rss_bytes()


def _time_batch(runner: _Runner, cfg: BenchConfig, runtime: str, batch: int, k: int,
                n_batches: int, cancel: CancelToken
                ) -> Generator[Progress, None, tuple[list[float], bool]]:
    """Warm up, then time iterations; returns (samples in ms, stopped early).

    The loops run in chunks of about 1/60 s; progress is yielded between chunks, outside
    `torch.inference_mode()` (so the consumer never runs under it) and outside the timing.
    """
    import contextlib

    import torch

    call, sync = runner.call, runner.sync
    clock = time.perf_counter_ns
    mode: Callable[[], Any] = (torch.inference_mode if runtime != "ort"
                               else contextlib.nullcontext)
    warmup = max(cfg.warmup, _min_warmup(runtime))
    if device_type(cfg.device) == "cuda" and runtime != "ort":
        torch.cuda.reset_peak_memory_stats(cfg.device)
    share = 1.0 / n_batches
    i = 0
    while i < warmup:
        with mode():
            last = clock()
            while i < warmup:
                if cancel.cancelled:
                    return [], True
                _run_checked(call, batch, runtime, first=i == 0)
                i += 1
                if clock() - last >= _YIELD_NS:
                    break
        if i < warmup:
            cancel.wait_while_paused()
            yield Progress(k * share, f"Batch {batch}: warm-up {i}/{warmup}",
                           WarmupStep(batch, i - 1))
    if sync is not None:
        sync()
    samples: list[float] = []
    budget_ns = int(cfg.duration_s * 1e9) if cfg.duration_s is not None else None
    total = MAX_SAMPLES if budget_ns is not None else cfg.iters
    spent_ns = 0  # time inside the timed calls
    sent = 0
    unchecked = warmup == 0  # no warm-up: the first timed call reports errors clearly
    while True:
        with mode():
            last = clock()
            while True:
                if cancel.cancelled:
                    return samples, True
                if unchecked:
                    unchecked = False
                    t0 = clock()
                    _run_checked(call, batch, runtime, first=True)
                else:
                    t0 = clock()
                    call()
                if sync is not None:
                    sync()
                t1 = clock()
                samples.append((t1 - t0) / 1e6)
                spent_ns += t1 - t0
                n = len(samples)
                if n >= total or (budget_ns is not None and spent_ns >= budget_ns
                                  and n >= MIN_ITERS):
                    return samples, False
                if t1 - last >= _YIELD_NS:
                    break
        cancel.wait_while_paused()
        done = spent_ns / budget_ns if budget_ns is not None else n / total
        yield Progress((k + min(done, 1.0)) * share, f"Batch {batch}: {n} iterations",
                       LatencySample(batch, n - 1, samples[-1], tuple(samples[sent:])))
        sent = n


def _run_checked(call: Callable[[], Any], batch: int, runtime: str, first: bool) -> Any:
    """Run once; the first call turns a shape error into a clear message."""
    if not first:
        return call()
    try:
        return call()
    except WorkbenchError:
        raise
    except Exception as exc:
        raise WorkbenchError(f"The model does not run at batch size {batch} with {runtime}: "
                             f"{first_line(exc)}") from exc

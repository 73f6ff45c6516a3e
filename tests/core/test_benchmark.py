"""The benchmark job: statistics, runtimes, sweeps, live progress, cancel, bad configs."""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.conftest import make_onnx_mlp
from workbench.core.errors import InvalidParameterError, WorkbenchError
from workbench.core.events import LatencySample, RecordDone
from workbench.core.job_scope import job_scope
from workbench.core.jobs import CancelToken, Progress, run_job
from workbench.core.measure.benchmark import (
    BenchConfig,
    BenchRecord,
    BenchResult,
    benchmark,
    model_bytes,
    noise_warning,
)
from workbench.core.model.loaders import load_model
from workbench.core.model.zoo import build_zoo

FAST = {"warmup": 2, "iters": 10, "threads": 1}


def run(variant: Any, **options: Any) -> tuple[BenchResult, list[Progress]]:
    steps: list[Progress] = []
    result = run_job(benchmark(variant, BenchConfig(**{**FAST, **options})), steps.append)
    return result, steps


def check_record(r: BenchRecord, batch: int, iters: int) -> None:
    assert r.batch == batch
    assert len(r.samples_ms) == r.iters == iters
    a = np.asarray(r.samples_ms)
    assert np.all(a > 0)
    assert r.min_ms <= r.p50_ms <= r.p90_ms <= r.p99_ms <= r.max_ms
    assert r.min_ms == pytest.approx(a.min())
    assert r.max_ms == pytest.approx(a.max())
    assert r.mean_ms == pytest.approx(a.mean())
    assert r.p50_ms == pytest.approx(float(np.median(a)))
    assert r.std_ms == pytest.approx(a.std(ddof=1))
    assert r.throughput == pytest.approx(batch * 1000.0 / r.mean_ms, rel=1e-9)
    assert r.model_bytes
    assert r.model_bytes > 0
    assert r.peak_memory_bytes is None or r.peak_memory_bytes > 10_000_000  # RSS of a python


def test_sweep_gives_sane_records_per_batch() -> None:
    result, steps = run(build_zoo("mlp"), runtime="torch", batch_sizes=[1, 4, 16])
    assert [r.batch for r in result.records] == [1, 4, 16]
    for r in result.records:
        check_record(r, r.batch, 10)
        assert (r.runtime, r.device, r.threads, r.warmup) == ("torch", "cpu", 1, 2)
    recorded = [s.payload.record for s in steps if isinstance(s.payload, RecordDone)]
    assert recorded == result.records
    fractions = [s.fraction for s in steps if s.fraction is not None]
    assert fractions == sorted(fractions)
    assert fractions[-1] == pytest.approx(1.0)
    assert not result.stopped
    assert result.record() is result.records[0]
    assert result.record(16) is result.records[2]
    assert result.record(3) is None


def test_result_json_has_machine_versions_and_config() -> None:
    result, _ = run(build_zoo("mlp"), runtime="torch", batch_sizes=[2])
    data = json.loads(json.dumps(result.to_json()))
    rec = data["records"][0]
    for key in ("runtime", "device", "batch", "mean_ms", "p50_ms", "p90_ms", "p99_ms",
                "throughput", "std_ms", "min_ms", "samples_ms", "peak_memory_bytes",
                "model_bytes", "noisy", "warning"):
        assert key in rec
    assert len(rec["samples_ms"]) == 10
    assert "samples_ms" not in result.to_json(samples=False)["records"][0]
    assert data["machine"]["logical_cores"] >= 1
    assert data["machine"]["cpu"]
    assert data["machine"]["threads"] == 1
    assert data["machine"]["os"]
    assert data["versions"]["torch"] == torch.__version__.split("+")[0] or \
        data["versions"]["torch"] == torch.__version__
    for lib in ("python", "onnx", "onnxruntime", "workbench"):
        assert data["versions"][lib]
    assert data["config"]["batch_sizes"] == [2]
    assert data["config"]["runtime"] == "torch"


@pytest.mark.parametrize("runtime", ["torch", "ort"])
def test_resnet_mini_runs_on_both_runtimes(runtime: str) -> None:
    variant = build_zoo("resnet-mini")
    result, _ = run(variant, runtime=runtime, batch_sizes=[1, 2], iters=5)
    assert [r.runtime for r in result.records] == [runtime, runtime]
    for r in result.records:
        check_record(r, r.batch, 5)
    if runtime == "ort":
        assert any("Exported to ONNX" in n for n in result.notes)
        # the ONNX file's size, not the state dict's
        assert result.records[0].model_bytes != model_bytes(variant.model)
    else:
        assert result.records[0].model_bytes == model_bytes(variant.model)


def test_onnx_file_runs_on_ort_and_auto_picks_it(onnx_mlp: Path) -> None:
    variant = load_model(str(onnx_mlp))
    result, _ = run(variant, runtime="auto", batch_sizes=[1, 8])
    assert [(r.runtime, r.batch) for r in result.records] == [("ort", 1), ("ort", 8)]
    for r in result.records:
        check_record(r, r.batch, 10)
        assert r.model_bytes == variant.model.ByteSize()
    with pytest.raises(InvalidParameterError, match="ONNX model"):
        run(variant, runtime="torch")


def test_fixed_batch_onnx_fails_clearly(tmp_path: Path) -> None:
    variant = load_model(str(make_onnx_mlp(tmp_path / "fixed.onnx", dynamic_batch=False)))
    result, _ = run(variant, runtime="ort", batch_sizes=[1])
    assert result.records[0].batch == 1
    with pytest.raises(WorkbenchError, match="batch size 3"):
        run(variant, runtime="ort", batch_sizes=[3])
    with pytest.raises(WorkbenchError, match="batch size 3"):
        run(variant, runtime="ort", batch_sizes=[3], warmup=0)


def test_model_bytes_are_serialized_sizes(onnx_mlp: Path) -> None:
    variant = build_zoo("mlp")
    buffer = io.BytesIO()
    torch.save(variant.model.state_dict(), buffer)
    assert model_bytes(variant.model) == len(buffer.getvalue())
    onnx_variant = load_model(str(onnx_mlp))
    assert model_bytes(onnx_variant.model) == onnx_mlp.stat().st_size


def test_live_progress_is_throttled_but_keeps_every_sample() -> None:
    result, steps = run(build_zoo("mlp"), runtime="torch", duration_s=0.4, iters=1)
    (record,) = result.records
    live = [s.payload for s in steps if isinstance(s.payload, LatencySample)]
    assert live, "a 0.4 s run reports live samples"
    assert record.iters > 10 * len(live)  # many samples per update
    assert sum(record.samples_ms) >= 400.0  # ran for the duration (timed calls only)
    streamed = [ms for p in live for ms in p.recent_ms]
    assert streamed == record.samples_ms[:len(streamed)]
    for p in live:
        assert p.batch == 1
        assert p.ms == record.samples_ms[p.i]


def test_duration_still_times_a_few_iterations() -> None:
    result, _ = run(build_zoo("resnet-mini"), runtime="torch", duration_s=1e-6, warmup=0)
    assert result.records[0].iters == 5


def test_cancel_stops_and_returns_what_was_measured() -> None:
    token = CancelToken()
    job = benchmark(build_zoo("mlp"), BenchConfig(runtime="torch", batch_sizes=[1, 2],
                                                  warmup=0, iters=10_000_000, threads=1),
                    token)

    def cancel_on_latency(step: Progress) -> None:
        if isinstance(step.payload, LatencySample):
            token.cancel()

    result = run_job(job, cancel_on_latency)
    assert result.stopped
    (record,) = result.records  # batch 2 never started
    assert record.iters < 10_000_000  # stopped long before its iterations ran out
    assert record.partial
    assert 0 < record.iters < 10_000_000
    assert "Stopped after" in record.warning
    token = CancelToken()
    token.cancel()
    result = run_job(benchmark(build_zoo("mlp"), BenchConfig(runtime="torch"), token))
    assert result.stopped
    assert result.records == []


def test_threads_are_set_and_restored() -> None:
    before = torch.get_num_threads()
    seen: list[int] = []

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return x * 2

    from workbench.core.model.variant import InputSpec, Variant

    variant = Variant("probe", "torch", Probe(), "zoo", (InputSpec("x", (1, 4)),))
    result, _ = run(variant, runtime="torch", threads=1)
    assert set(seen) == {1}
    assert torch.get_num_threads() == before
    assert result.machine["threads"] == 1


def test_inference_mode_does_not_leak_into_the_caller() -> None:
    job = benchmark(build_zoo("mlp"), BenchConfig(runtime="torch", duration_s=0.2, **FAST))
    with job_scope():  # the runner's part: it sets the thread count the job asks for
        for _ in job:
            assert not torch.is_inference_mode_enabled()
            assert torch.is_grad_enabled()


@pytest.mark.parametrize("bad", [
    {"runtime": "tensorrt"}, {"device": "tpu"}, {"batch_sizes": []}, {"batch_sizes": [0]},
    {"batch_sizes": [1.5]}, {"threads": 0}, {"warmup": -1}, {"iters": 0},
    {"duration_s": 0.0}, {"duration_s": math.inf}, {"batch_sizes": [True]},
])
def test_bad_configs_are_refused(bad: dict[str, Any]) -> None:
    cfg = BenchConfig(**bad)
    with pytest.raises(InvalidParameterError):
        cfg.validate()
    with pytest.raises(InvalidParameterError):
        next(benchmark(build_zoo("mlp"), cfg))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameterError, match="CUDA"):
        BenchConfig(runtime="torch", device="cuda").validate()
    with pytest.raises(InvalidParameterError, match="CUDA"):
        BenchConfig(runtime="ort", device="cuda").validate()


def test_a_model_without_input_shape_is_refused() -> None:
    from workbench.core.model.variant import Variant

    variant = Variant("bare", "torch", torch.nn.Linear(2, 2), "pickle")
    with pytest.raises(InvalidParameterError, match="input shape"):
        run(variant, runtime="torch")


def test_noise_flag() -> None:
    steady = np.full(50, 1.0) + np.linspace(0, 0.05, 50)
    assert noise_warning(steady) == (False, "")
    tail = steady.copy()
    tail[-3:] = 5.0  # a few 5x outliers: p99 far above p50
    noisy, text = noise_warning(tail)
    assert noisy
    assert "p99" in text
    record = BenchRecord.from_samples(list(tail), "torch", "cpu", 1)
    assert record.noisy
    assert record.warning


def test_two_runs_of_the_same_model_agree_within_noise() -> None:
    variant = build_zoo("mlp")
    cfg = {"runtime": "torch", "warmup": 20, "iters": 300}
    a = run(variant, **cfg)[0].records[0]
    b = run(variant, **cfg)[0].records[0]
    assert abs(a.p50_ms - b.p50_ms) <= 3 * max(a.std_ms, b.std_ms) + 0.05


@pytest.mark.slow
def test_torch_compile_always_warms_up_once() -> None:
    result, _ = run(build_zoo("mlp"), runtime="torch_compile", warmup=0, iters=5)
    (record,) = result.records
    assert record.runtime == "torch_compile"
    assert record.warmup == 1  # the compiling call is a warm-up, never a sample


@pytest.mark.perf
def test_torch_compile_never_times_the_compilation() -> None:
    result, _ = run(build_zoo("mlp"), runtime="torch_compile", warmup=0, iters=5)
    assert result.records[0].max_ms < 500  # compiling takes seconds


@pytest.mark.perf
def test_live_updates_stay_under_60_a_second() -> None:
    start = time.perf_counter()
    _, steps = run(build_zoo("mlp"), runtime="torch", duration_s=0.4, iters=1)
    wall = time.perf_counter() - start
    live = [s.payload for s in steps if isinstance(s.payload, LatencySample)]
    assert len(live) <= 60 * wall + 2

"""The latency probe passes use: interleaved medians, and the slower-than-float sentence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from tests.conftest import make_onnx_mlp
from workbench.core.model import latency
from workbench.core.model.latency import compare_latency, slower_warning, time_models


def test_time_models_gives_every_model_a_positive_median(tmp_path: Path) -> None:
    small = onnx.load(str(make_onnx_mlp(tmp_path / "a.onnx", hidden=8)))
    big = onnx.load(str(make_onnx_mlp(tmp_path / "b.onnx", hidden=64)))
    x = np.ones((1, 8), np.float32)
    ms = time_models({"small": small, "big": big}, (x,), threads=1, budget_s=0.02)
    assert set(ms) == {"small", "big"}
    assert all(v > 0 for v in ms.values())


def test_compare_latency_uses_the_injected_probe_and_threads() -> None:
    calls = []

    def probe(models, inputs, threads, budget_s):
        calls.append((sorted(models), threads, budget_s))
        return {"parent": 10.0, "child": 4.0}

    lat = compare_latency("p", "c", (), probe, threads=2, budget_s=0.1)
    assert calls == [(["child", "parent"], 2, 0.1)]
    assert lat.to_json() == {"parent_ms": 10.0, "child_ms": 4.0, "speedup": 2.5, "threads": 2}


def test_slower_warning_in_words(monkeypatch) -> None:
    from workbench.core.model.cpu import CpuFeatures

    no_vnni = CpuFeatures("x86_64", "test", frozenset({"avx2"}), True)
    monkeypatch.setattr(latency, "cpu_features", lambda: no_vnni)
    text = slower_warning(10 / 34, {"ConvInteger", "DynamicQuantizeLinear"}, "Try X.")
    assert text == ("Int8 is 3.4x slower than float on this CPU (no VNNI: convolutions run "
                    "through ConvInteger). Try X.")
    assert slower_warning(1.0, {"MatMulInteger"}, "Try X.") == (
        "Int8 is no faster than float on this CPU (1.00x). Try X.")
    assert slower_warning(1.3, {"ConvInteger"}, "Try X.") is None


def test_runs_settle_only_when_a_rank_test_tells_them_apart_beyond_noise() -> None:
    from workbench.core.model.latency import NOISE, SETTLE_ROUNDS, settled

    slow, fast = [40.0, 44.0, 41.0, 43.0, 45.0], [3.0, 2.9, 3.1, 3.5, 2.8]
    assert settled({"parent": fast, "child": slow})
    assert settled({"parent": slow, "child": fast})
    assert not settled({"parent": fast[:SETTLE_ROUNDS - 1], "child": slow[:SETTLE_ROUNDS - 1]})
    assert not settled({"parent": [*fast, 50.0], "child": [*slow, 42.0]})  # one run overlaps
    # more rounds outweigh one outlier (9 + 9 runs: 70 of the 81 pairs must be apart)
    assert settled({"parent": [*fast, 3.0, 3.2, 2.9, 50.0],
                    "child": [*slow, 42.0, 40.0, 41.0, 43.0]})
    assert not settled({"parent": [*fast, 3.0, 3.2, 50.0, 50.0],
                        "child": [*slow, 42.0, 40.0, 41.0, 43.0]})
    edge = max(fast) * (1 + NOISE)  # within the noise band of the slowest fast run
    assert not settled({"parent": fast, "child": [edge] * 5})
    assert not settled({"only": slow})
    # three models: every pair must be apart
    assert settled({"a": fast, "b": slow, "c": [x * 10 for x in slow]})
    assert not settled({"a": fast, "b": slow, "c": [x * 1.01 for x in slow]})


def test_time_models_stops_once_the_runs_settle(tmp_path: Path, monkeypatch) -> None:
    """A model several hundred times slower than the other: the rounds stop as soon as they
    settle, long before the budget or MAX_RUNS (and a median still has SETTLE_ROUNDS runs)."""
    small = onnx.load(str(make_onnx_mlp(tmp_path / "a.onnx", hidden=4)))
    big = onnx.load(str(make_onnx_mlp(tmp_path / "b.onnx", hidden=4096)))
    verdicts: list[bool] = []
    real = latency.settled

    def watched(runs):
        verdicts.append(real(runs))
        return verdicts[-1]

    monkeypatch.setattr(latency, "settled", watched)
    x = np.ones((256, 8), np.float32)
    time_models({"small": small, "big": big}, (x,), threads=1, budget_s=60.0)
    assert verdicts.count(True) == 1  # stopped at the first True
    assert verdicts[-1] is True
    assert len(verdicts) < latency.MAX_RUNS - latency.MIN_RUNS


def test_probe_sessions_are_reused_for_the_same_bytes_and_threads(tmp_path: Path,
                                                                  monkeypatch) -> None:
    built: list[int] = []
    real = latency.ort_session

    def counting(model, threads=None):
        built.append(threads)
        return real(model, threads)

    monkeypatch.setattr(latency, "ort_session", counting)
    latency.clear_probe_sessions()
    a = onnx.load(str(make_onnx_mlp(tmp_path / "a.onnx", hidden=8)))
    b = onnx.load(str(make_onnx_mlp(tmp_path / "b.onnx", hidden=16)))
    x = np.ones((1, 8), np.float32)
    time_models({"parent": a, "child": b}, (x,), threads=1, budget_s=0.01)
    assert built == [1, 1]
    again = onnx.load(str(tmp_path / "a.onnx"))  # the same bytes, another ModelProto
    time_models({"parent": again, "child": b}, (x,), threads=1, budget_s=0.01)
    assert built == [1, 1]
    time_models({"parent": a, "child": b}, (x,), threads=2, budget_s=0.01)
    assert built == [1, 1, 2, 2]  # other threads: other sessions
    c = onnx.load(str(make_onnx_mlp(tmp_path / "c.onnx", hidden=12)))
    time_models({"parent": a, "child": c}, (x,), threads=1, budget_s=0.01)
    assert built == [1, 1, 2, 2, 1]  # only the changed model gets a new session
    monkeypatch.setattr(latency, "SESSIONS_KEPT", 1)
    time_models({"parent": a, "child": b}, (x,), threads=1, budget_s=0.01)
    assert len(built) == 6  # (b, 1) was evicted by (c, 1); now it alone is kept
    time_models({"parent": a, "child": b}, (x,), threads=1, budget_s=0.01)
    assert len(built) == 8  # one kept: each evicts the other
    latency.clear_probe_sessions()

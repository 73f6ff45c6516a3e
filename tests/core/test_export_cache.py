"""ONNX exports are made once per (variant, opset, dynamic batch) and reused."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from workbench.core.jobs import run_job
from workbench.core.measure.benchmark import BenchConfig, benchmark
from workbench.core.model import onnx_export
from workbench.core.model.zoo import build_zoo


def test_a_second_export_is_the_same_model_and_a_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    onnx_export.clear_export_cache()
    calls: list[int] = []
    real = onnx_export._export_onnx
    monkeypatch.setattr(onnx_export, "_export_onnx",
                        lambda *a: calls.append(1) or real(*a))
    variant = build_zoo("mlp")
    first = onnx_export.export_onnx(variant)
    second = onnx_export.export_onnx(variant)
    assert len(calls) == 1
    assert first.model is not second.model  # each caller may change its own copy
    assert first.model.SerializeToString() == second.model.SerializeToString()
    first.model.graph.node[0].name = "changed by a caller"
    assert onnx_export.export_onnx(variant).model.graph.node[0].name != "changed by a caller"
    onnx_export.export_onnx(variant, opset=17)
    onnx_export.export_onnx(build_zoo("mlp", seed=1))  # another variant, other weights
    assert len(calls) == 3
    onnx_export.export_onnx(build_zoo("mlp"))  # same content: read from the disk cache
    assert len(calls) == 3


@pytest.mark.perf
def test_benchmarking_twice_reuses_the_export(perf_figure: Callable[[str], None]) -> None:
    onnx_export.clear_export_cache()
    variant = build_zoo("resnet-mini")
    cfg = BenchConfig(runtime="ort", iters=5, warmup=1, threads=1)
    walls = []
    for _ in range(2):
        start = time.perf_counter()
        run_job(benchmark(variant, cfg))
        walls.append(time.perf_counter() - start)
    perf_figure(f"benchmark of resnet-mini on ORT: first {walls[0]:.2f} s, second "
                f"{walls[1]:.2f} s ({walls[0] / walls[1]:.1f}x less)")
    assert walls[0] >= 5 * walls[1]

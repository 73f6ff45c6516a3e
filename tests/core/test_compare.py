"""The comparison table, the Pareto front, CSV/Markdown export and variant diffs."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from workbench.core.graph.analysis import analyse
from workbench.core.jobs import run_job
from workbench.core.measure.benchmark import BenchRecord, BenchResult
from workbench.core.measure.compare import (
    COLUMNS,
    compare_table,
    diff_variants,
    pareto_front,
    to_csv,
    to_markdown,
)
from workbench.core.model.loaders import load_model
from workbench.core.model.variant import new_variant_id
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import apply_pass
from workbench.core.passes.registry import discover
from workbench.core.session.workspace import Workspace


def bench(*records: tuple[int, float]) -> BenchResult:
    """A result whose record at `batch` has every sample equal to `ms`, but p99 = 2·ms."""
    recs = [BenchRecord.from_samples([ms] * 99 + [2 * ms], "torch", "cpu", batch)
            for batch, ms in records]
    return BenchResult("x", recs, {}, {}, {})


@pytest.fixture
def workspace() -> Workspace:
    """root -> pruned -> pruned again, plus an orphan whose parent is not open."""
    ws = Workspace()
    root = run_job(analyse(build_zoo("mlp")))
    ws.add(root, name="original")
    prune = discover().get("prune.magnitude")
    child = apply_pass(prune, root, {"sparsity": 0.5})
    ws.add(child.analysis, name="pruned 50%")
    grandchild = apply_pass(prune, child.analysis, {"sparsity": 0.8})
    ws.add(grandchild.analysis, name="pruned | 80%")
    orphan = dataclasses.replace(build_zoo("mlp"), parent="gone", id=new_variant_id())
    ws.add(run_job(analyse(orphan)), name="orphan")
    ids = [e.id for e in ws.entries()]
    ws.set_result(ids[0], "benchmark", bench((8, 9.0), (1, 2.0)))
    ws.set_result(ids[0], "accuracy", 0.95)
    ws.set_result(ids[1], "latency_ms", 1.0)
    ws.set_result(ids[1], "accuracy", 0.94)
    ws.set_result(ids[2], "benchmark", bench((16, 4.0), (4, 0.5)).to_json())  # from a file
    ws.set_result(ids[3], "latency_ms", 3.0)
    return ws


def test_table_columns_and_speedups(workspace: Workspace) -> None:
    rows = compare_table(workspace.entries())
    root, child, grandchild, orphan = rows
    assert [r.name for r in rows] == ["original", "pruned 50%", "pruned | 80%", "orphan"]
    entry = workspace.entries()[0]
    assert root.parameters == entry.analysis.graph.parameters > 0
    assert root.size_bytes == entry.analysis.graph.size_bytes
    assert root.macs == entry.analysis.graph.macs > 0
    assert root.sparsity == pytest.approx(0.0, abs=1e-3)
    assert child.sparsity == pytest.approx(0.5, abs=0.02)
    assert grandchild.sparsity > child.sparsity
    # batch 1 wins over batch 8; p99 interpolates between 99 samples of 2 ms and one of 4
    assert (root.p50_ms, root.p99_ms, root.batch) == (2.0, pytest.approx(2.02), 1)
    assert (child.p50_ms, child.p99_ms, child.batch) == (1.0, None, None)
    assert (grandchild.p50_ms, grandchild.batch) == (0.5, 4)  # smallest batch measured
    assert root.speedup == pytest.approx(1.0)
    assert child.speedup == pytest.approx(2.0)
    assert grandchild.speedup == pytest.approx(4.0)  # against the root, not its parent
    assert grandchild.baseline == root.id
    assert orphan.baseline == orphan.id
    assert orphan.speedup == pytest.approx(1.0)
    assert (root.accuracy, child.accuracy, grandchild.accuracy) == (0.95, 0.94, None)
    json.dumps([r.to_json() for r in rows])
    by_child = compare_table(workspace.entries(), baseline=child.id)
    assert [r.speedup for r in by_child] == pytest.approx([0.5, 1.0, 2.0, 1 / 3])


def test_rows_without_measurements(workspace: Workspace) -> None:
    ws = Workspace()
    ws.add(workspace.entries()[0].analysis)
    (row,) = compare_table(ws.entries())
    assert (row.p50_ms, row.p99_ms, row.speedup, row.accuracy) == (None, None, None, None)


def test_pareto_front_with_ties() -> None:
    points: list[tuple[Any, Any]] = [
        (1.0, 0.90),  # 0 front
        (2.0, 0.95),  # 1 front
        (3.0, 0.93),  # 2 slower and worse than 1
        (1.0, 0.90),  # 3 identical to 0: both stay
        (0.5, 0.50),  # 4 fastest
        (2.0, 0.95),  # 5 identical to 1
        (4.0, 0.99),  # 6 most accurate
        (1.0, 0.80),  # 7 as fast as 0 but worse
        (None, 0.99),  # 8 unmeasured
        (5.0, 0.99),  # 9 as accurate as 6 but slower
        (float("nan"), 1.0),  # 10
    ]
    assert pareto_front(points) == [0, 1, 3, 4, 5, 6]
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 0.5)]) == [0]


def test_csv_and_markdown(workspace: Workspace) -> None:
    rows = compare_table(workspace.entries())
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert list(parsed[0]) == list(COLUMNS)
    assert [p["name"] for p in parsed] == [r.name for r in rows]
    assert float(parsed[1]["speedup"]) == pytest.approx(2.0)
    assert int(parsed[0]["parameters"]) == rows[0].parameters
    assert parsed[1]["p99_ms"] == ""
    assert parsed[2]["accuracy"] == ""
    md = to_markdown(rows).splitlines()
    assert md[0].startswith("| Variant |")
    assert "Speed-up" in md[0]
    assert set(md[1].replace("|", "").replace(":", "").replace("-", "")) == set()
    assert len(md) == 2 + len(rows)
    assert all(line.count(" | ") == len(COLUMNS) - 1 for line in md[2:])  # escaped pipe
    assert "pruned \\| 80%" in md[4]
    assert "2.00×" in md[3]
    assert "—" in md[3]


def test_diff_finds_removed_channels() -> None:
    before = run_job(analyse(build_zoo("mlp")))
    result = apply_pass(discover().get("prune.structured"), before, {"ratio": 0.5})
    diff = diff_variants(before, result.analysis)
    assert diff.comparable
    assert not diff.added
    assert not diff.removed
    channels = diff.removed_channels
    assert channels
    assert all(n > 0 for n in channels.values())
    weights = {w["name"]: w for w in diff.weights}
    assert weights["1.weight"]["shape_before"] == [128, 64]
    assert weights["1.weight"]["shape_after"][0] < 128
    assert weights["5.weight"]["shape_after"][0] == 10  # the output layer keeps its classes
    assert diff.totals["parameters"]["after"] < diff.totals["parameters"]["before"]
    data = json.loads(json.dumps(diff.to_json()))
    assert data["removed_channels"] == channels
    assert diff_variants(before, before).to_json()["changed"] == []


@pytest.mark.parametrize("pass_name", ["quantize.ort_static", "quantize.ort_dynamic"])
def test_diff_finds_quantize_ops(onnx_mlp: Path, pass_name: str) -> None:
    registry = discover()
    if pass_name not in registry.passes:
        pytest.skip(f"{pass_name} is not installed")
    variant = load_model(str(onnx_mlp))
    result = apply_pass(registry.get(pass_name), variant, {})
    ws = Workspace()
    a = ws.add(run_job(analyse(variant)))
    b = ws.add(result.analysis)
    diff = diff_variants(a, b)
    added = set(diff.ops_added)
    if pass_name == "quantize.ort_static":
        assert {"QuantizeLinear", "DequantizeLinear"} <= added
    else:
        assert "DynamicQuantizeLinear" in added
    assert "MatMul" in diff.ops_removed
    # int8 weights read back as floats under their own names: no scale or zero point
    # shows up as a weight of its own, and no layer seems removed
    assert not any(w["change"] in ("added", "removed") for w in diff.weights)


def test_an_unmeasured_root_does_not_hide_speedups(workspace: Workspace) -> None:
    root_id = workspace.entries()[0].id
    del workspace.get(root_id).results["benchmark"]
    rows = compare_table(workspace.entries())
    assert rows[0].speedup is None
    assert rows[1].speedup == pytest.approx(1.0)  # the oldest measured ancestor: itself
    assert rows[2].speedup == pytest.approx(2.0)  # against "pruned 50%"

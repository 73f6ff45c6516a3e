"""The Compare tab: an original and three optimized variants, measured for real, on the
Pareto plot with the right frontier; the table and the plot export."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from workbench.core.graph.analysis import analyse
from workbench.core.jobs import run_job
from workbench.core.measure.benchmark import BenchConfig, benchmark
from workbench.core.model.zoo import build_zoo
from workbench.core.passes import apply_pass
from workbench.core.passes.registry import discover
from workbench.core.session.commands import AddVariant
from workbench.core.train.data import load_dataset
from workbench.core.train.training import TrainConfig, evaluate, train

SMALL = (1, 1, 8, 8)


@pytest.fixture(scope="module")
def measured() -> list[tuple[Any, float, Any]]:
    """(analysis, accuracy, bench result) for an original and three optimized variants."""
    data = load_dataset("digits", SMALL)
    original = run_job(train(build_zoo("resnet-mini", input_shape=SMALL), data,
                             TrainConfig(epochs=4, lr=3e-3))).variant
    registry = discover()
    base = run_job(analyse(original))
    children = [
        apply_pass(registry.get("prune.structured"), base, {"ratio": 0.5}),
        apply_pass(registry.get("prune.magnitude"), base, {"sparsity": 0.7}),
        apply_pass(registry.get("quantize.kmeans"), base, {"bits": 2}),
    ]
    cfg = BenchConfig(runtime="torch", batch_sizes=[1], threads=1, warmup=3, iters=15)
    out = []
    for analysis in [base, *(c.analysis for c in children)]:
        variant = analysis.variant
        out.append((analysis, evaluate(variant, data).accuracy,
                    run_job(benchmark(variant, cfg))))
    return out


def _brute_force_front(points: list[tuple[float, float]]) -> set[int]:
    front = set()
    for i, (lat, acc) in enumerate(points):
        dominated = any(
            (l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc)
            for j, (l2, a2) in enumerate(points) if j != i)
        if not dominated:
            front.add(i)
    return front


def test_pareto_plot_of_four_variants(qtbot: Any, main_window: Any,
                                      measured: list[Any], tmp_path: Path) -> None:
    ws = main_window.workspace
    for analysis, acc, bench in measured:
        main_window.push(AddVariant(ws, analysis, {"accuracy": acc}))
        ws.set_result(analysis.variant.id, "benchmark", bench)
        ws.set_result(analysis.variant.id, "latency_ms", bench.record().p50_ms)
    main_window.show_tab("compare")
    panel = main_window.compare_panel
    assert panel.table.rowCount() == 4
    points = [(r.p50_ms, r.accuracy) for r in panel.rows]
    assert all(p is not None and a is not None for p, a in points)
    assert set(panel.front) == _brute_force_front(points)
    assert len(panel.scatter.data) == 4
    xs, _ys = panel.frontier.getData()
    assert len(xs) == len(panel.front)
    assert panel.rows[0].speedup == pytest.approx(1.0)
    structured = panel.rows[1]
    assert structured.speedup > 0  # that it is faster is a timing: tests/benchmarks
    assert structured.macs < panel.rows[0].macs * 0.4

    table_csv = tmp_path / "table.csv"
    panel.export_table(table_csv)
    rows = list(csv.DictReader(io.StringIO(table_csv.read_text())))
    assert len(rows) == 4
    md = tmp_path / "table.md"
    panel.export_table(md)
    assert md.read_text().count("\n|") >= 5
    png, svg = tmp_path / "pareto.png", tmp_path / "pareto.svg"
    panel.export_plot(png)
    panel.export_plot(svg)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in svg.read_text()[:2000]

    panel.diff_a.setCurrentIndex(0)
    panel.diff_b.setCurrentIndex(1)
    panel.show_diff()
    rows = panel.diff_view.row_texts()  # shapes changed where channels went
    assert any(r[2] == "reshaped" and r[3] != r[4] for r in rows)

"""The Benchmark tab: live latency plots, results stored with the variant, the per-layer heat
map on the graph, and sensitivity feeding a pass's ignore list."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from tests.conftest import open_and_wait


def test_benchmark_run_fills_plots_and_the_latency_column(qtbot: Any, main_window: Any
                                                          ) -> None:
    open_and_wait(qtbot, main_window, "zoo:mlp")
    panel = main_window.benchmark_panel
    main_window.show_tab("benchmark")
    panel.form.set_value("runtime", "torch")
    panel.form.set_value("batch_sizes", [1, 4])
    panel.form.set_value("threads", 1)
    panel.form.set_value("warmup", 2)
    panel.form.set_value("iters", 3000)
    live: list[int] = []

    def sample(_step: Any) -> None:
        xs, _ = panel.timeline_curve.getData()
        live.append(0 if xs is None else len(xs))

    main_window.jobs.progress.connect(sample)
    with qtbot.waitSignal(main_window.benchmark_finished, timeout=60_000):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not main_window.jobs.busy, timeout=10_000)
    growing = [n for n in live if n > 0]
    assert len(set(growing)) > 2  # the timeline grew while the run went on
    entry = main_window.workspace.selected
    bench = entry.results["benchmark"]
    assert [r.batch for r in bench.records] == [1, 4]
    assert entry.results["latency_ms"] == bench.records[0].p50_ms
    assert main_window.variant_list.currentItem().text(6).endswith("ms")
    xs, _ = panel.sweep_curve.getData()
    assert list(xs) == [1, 4]
    assert "p50" in panel.summary.text()


def test_an_ort_benchmark_of_torch_says_which_export_it_ran(qtbot: Any, main_window: Any
                                                           ) -> None:
    open_and_wait(qtbot, main_window, "zoo:mlp")
    panel = main_window.benchmark_panel
    main_window.show_tab("benchmark")
    panel.form.set_value("runtime", "ort")
    panel.form.set_value("batch_sizes", [1])
    panel.form.set_value("warmup", 1)
    panel.form.set_value("iters", 20)
    for run in range(2):
        with qtbot.waitSignal(main_window.benchmark_finished, timeout=60_000):
            qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not main_window.jobs.busy, timeout=10_000)
        text = panel.summary.text()
        assert "p50" in text
        if run == 0:  # the fast exporter, timed; then the same export again, from the cache
            assert "Exported to ONNX with the torchscript exporter in " in text
        else:
            assert "Reused the cached ONNX export (from memory" in text
    main_window.workspace.select(main_window.workspace.selected.id)  # shown again: kept
    assert "Reused the cached ONNX export" in panel.summary.text()


def test_profile_paints_a_heat_map(qtbot: Any, main_window: Any) -> None:
    open_and_wait(qtbot, main_window, "zoo:lenet5")
    with qtbot.waitSignal(main_window.jobs.finished, timeout=60_000):
        main_window.start_profile({"runtime": "auto", "batch": 1})
    profile = main_window.workspace.selected.results["profile"]
    slowest = profile.rows[0].name
    assert main_window.benchmark_panel.layers_table.topLevelItem(0).text(0) == slowest
    heat_color = main_window.graph_view.box_color(slowest)
    assert heat_color is not None
    profiled = main_window.workspace.selected.id
    open_and_wait(qtbot, main_window, "zoo:mlp")  # another variant: no stale heat map
    assert main_window.graph_view._heat is None
    main_window.workspace.select(profiled)  # back: its own profile is painted again
    assert main_window.graph_view.box_color(slowest) == heat_color


def test_sensitivity_feeds_the_ignore_list(qtbot: Any, main_window: Any) -> None:
    open_and_wait(qtbot, main_window, "zoo:mlp")
    panel = main_window.benchmark_panel
    panel.sens_k.setValue(2)
    with qtbot.waitSignal(main_window.jobs.finished, timeout=60_000):
        qtbot.mouseClick(panel.sens_button, Qt.MouseButton.LeftButton)
    rows = panel.sensitivity_rows
    assert len(rows) == 3
    assert panel.sens_table.topLevelItemCount() == 3
    qtbot.mouseClick(panel.ignore_button, Qt.MouseButton.LeftButton)
    form = main_window.passes_panel.form
    assert form.values()["ignore"] == [r.layer for r in rows[:2]]

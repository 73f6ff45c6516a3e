"""Readable pass reports, panels that follow the selection, honest job states, export
through the suggested name, and delete that asks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from tests.conftest import open_and_wait


def _apply(qtbot: Any, window: Any, pass_name: str, **values: Any) -> str:
    with qtbot.waitSignal(window.pass_applied, timeout=120_000) as blocker:
        window.apply_pass(pass_name, values)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=10_000)
    return blocker.args[0]


def _benchmark(qtbot: Any, window: Any) -> None:
    panel = window.benchmark_panel
    panel.form.set_value("runtime", "torch")
    panel.form.set_value("batch_sizes", [1])
    panel.form.set_value("threads", 1)
    panel.form.set_value("warmup", 1)
    panel.form.set_value("iters", 50)
    with qtbot.waitSignal(window.benchmark_finished, timeout=60_000):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=10_000)


def test_a_pass_report_is_a_table_with_the_json_one_click_away(qtbot: Any, main_window: Any
                                                               ) -> None:
    open_and_wait(qtbot, main_window, "zoo:lenet5")
    _apply(qtbot, main_window, "prune.magnitude", sparsity=0.6)
    report = main_window.passes_panel.report
    figures = {row[0]: row[1:] for row in report.figure_rows()}
    assert {"Parameters", "Size", "MACs", "Sparsity"} <= set(figures)
    before, after, change = figures["Sparsity"]
    assert before == "0.0%"
    assert after.endswith("%")
    assert float(after.rstrip("%")) > 50
    assert change.startswith("+")
    layers = report.layer_rows()
    names = [row[0] for row in layers]
    assert "3" in names or any(n.startswith("3") for n in names)  # lenet5's layers by name
    assert report.layers_title.isVisible()
    # the raw JSON is one click away, and back
    assert report.stack.currentIndex() == 0
    qtbot.mouseClick(report.json_button, Qt.MouseButton.LeftButton)
    assert report.stack.currentIndex() == 1
    assert '"pass": "prune.magnitude"' in report.json.toPlainText()
    assert report.json_button.text() == "Show tables"
    qtbot.mouseClick(report.json_button, Qt.MouseButton.LeftButton)
    assert report.stack.currentIndex() == 0


def test_report_benchmark_and_curves_follow_the_selection_and_undo(qtbot: Any,
                                                                   main_window: Any) -> None:
    open_and_wait(qtbot, main_window, "zoo:mlp")
    root = main_window.workspace.selected
    main_window.show_tab("benchmark")
    _benchmark(qtbot, main_window)
    bench = main_window.benchmark_panel
    assert f"Benchmark of <b>{root.name}</b>" in bench.summary.text()

    child_id = _apply(qtbot, main_window, "prune.magnitude", sparsity=0.5)
    child = main_window.workspace.get(child_id)
    # the child has no benchmark: nothing of the parent's stays on screen
    assert "No benchmark" in bench.summary.text()
    assert child.name in bench.summary.text()
    xs, _ = bench.timeline_curve.getData()
    assert xs is None or len(xs) == 0
    assert "prune.magnitude" in main_window.passes_panel.report.toPlainText()

    main_window.workspace.select(root.id)  # back to the parent: its own results
    assert f"Benchmark of <b>{root.name}</b>" in bench.summary.text()
    xs, _ = bench.sweep_curve.getData()
    assert list(xs) == [1]
    report = main_window.passes_panel.report
    assert report.report is None  # the root was not made by a pass
    assert "not made by a pass" in report.title.text()
    assert main_window.train_panel.eta.text() == f"{root.name}: no training run yet"

    main_window.workspace.select(child_id)
    assert report.report is not None
    main_window.undo_stack.undo()  # the child goes: so does its report
    assert child_id not in main_window.workspace
    assert main_window.workspace.selected.id == root.id
    assert report.report is None
    assert "prune.magnitude" not in report.toPlainText()


def test_stop_pause_and_cancel_say_what_happens(qtbot: Any, main_window: Any,
                                                tmp_path: Path) -> None:
    open_and_wait(qtbot, main_window, "zoo:mlp")
    panel = main_window.train_panel
    main_window.show_tab("train")
    panel.form.set_value("epochs", 400)
    panel.dataset.setCurrentText("digits")
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(panel.history) >= 1, timeout=60_000)
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert main_window.jobs.paused
    assert panel.eta.text() == "Paused"
    assert main_window.status_label.text().startswith("Paused")
    assert "Paused" in main_window.progress.format()
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert not main_window.jobs.paused
    with qtbot.waitSignal(main_window.training_finished, timeout=120_000):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        assert main_window.status_label.text().startswith("Stopping")
        assert panel.eta.text() == "Stopping…"
    qtbot.waitUntil(lambda: not main_window.jobs.busy, timeout=10_000)
    assert main_window.jobs.outcome == "stopped"
    assert panel.eta.text().startswith("Stopped after")
    assert "ETA" not in panel.eta.text()
    assert panel.progress.format().startswith("Stopped")
    assert "stopped early" in main_window.status_label.text()
    assert not panel.stop_button.isEnabled()
    assert panel.start_button.isEnabled()

    # a job that keeps nothing says "Cancelling…", then "Cancelled"
    main_window.workspace.select(main_window.workspace.entries()[0].id)
    assert main_window.export_to(str(tmp_path / "never.onnx")) is not None
    main_window.cancel_job()
    assert main_window.status_label.text().startswith("Cancelling")
    assert not main_window.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not main_window.jobs.busy, timeout=60_000)
    if main_window.jobs.outcome == "cancelled":  # (a fast export may end first)
        assert main_window.status_label.text().startswith("Cancelled")


def test_export_through_the_suggested_name(qtbot: Any, main_window: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.core.model.loaders import load_model
    from workbench.gui.qt_export_dialog import QtExportDialog

    open_and_wait(qtbot, main_window, "zoo:lenet5")
    main_window.session.rename("lenet5·prune.structured_trained")
    main_window._export_folder = str(tmp_path)
    seen: list[QtExportDialog] = []

    def accept(dialog: QtExportDialog) -> int:  # the user presses Export as offered
        seen.append(dialog)
        assert dialog.opset_box.isEnabled()  # the opset sits in the same dialog
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(QtExportDialog, "exec", accept)
    with qtbot.waitSignal(main_window.jobs.finished, timeout=120_000):
        main_window.export_dialog()
    out = tmp_path / "lenet5_prune_structured_trained.onnx"
    assert main_window.last_error is None
    assert out.is_file()
    assert load_model(str(out)).format == "onnx"
    status = main_window.status_label.text()
    assert status.startswith("Exported lenet5·prune.structured_trained to")
    assert str(out) in status
    assert "ONNX opset 18, dynamo exporter, " in status  # which exporter, and how long

    # a typed name whose "suffix" names no format gets the chosen format's
    dialog = seen[0]
    dialog.path_edit.setText(str(tmp_path / "lenet5·prune.structured_trained"))
    assert dialog.path().endswith("structured_trained.onnx")
    # the file dialog's type filter sets the extension
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (
        str(tmp_path / "picked"), "PyTorch export (*.pt2)"))
    dialog._browse()
    assert dialog.fmt() == "pt2"
    assert dialog.path() == str(tmp_path / "picked.pt2")
    assert not dialog.opset_box.isEnabled()


def test_delete_asks_when_children_would_go_and_selects_the_parent(
        qtbot: Any, main_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    open_and_wait(qtbot, main_window, "zoo:mlp")
    root = main_window.workspace.selected
    middle = _apply(qtbot, main_window, "prune.magnitude", sparsity=0.3)
    leaf = _apply(qtbot, main_window, "prune.magnitude", sparsity=0.6)
    main_window.show_dialogs = True
    asked: list[str] = []

    def answer(reply: QMessageBox.StandardButton) -> Any:
        def ask(_parent: Any, _title: str, text: str, *_a: Any) -> Any:
            asked.append(text)
            return reply
        return ask

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    main_window.workspace.select(middle)
    assert not main_window.delete_selected()
    assert len(asked) == 1
    assert "1 variant(s) made from it" in asked[0]
    assert leaf in main_window.workspace
    assert middle in main_window.workspace

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    assert main_window.delete_selected()
    assert middle not in main_window.workspace
    assert leaf not in main_window.workspace
    assert main_window.workspace.selected.id == root.id  # the parent, not another model
    assert main_window.status_label.text().startswith("Deleted")
    assert "Undo" in main_window.status_label.text()

    main_window.undo_stack.undo()  # both come back
    assert leaf in main_window.workspace
    main_window.workspace.select(leaf)
    asked.clear()
    assert main_window.delete_selected()  # a leaf goes without a question
    assert asked == []
    assert main_window.workspace.selected.id == middle


def test_int8_weights_show_dequantized_under_the_parent_names(qtbot: Any, main_window: Any
                                                               ) -> None:
    open_and_wait(qtbot, main_window, "zoo:lenet5")
    parent = main_window.workspace.selected
    _apply(qtbot, main_window, "quantize.ort_dynamic", measure_latency=False)
    panel = main_window.weights_panel
    assert panel.select_tensor("3.weight")  # the parent's name, not an ONNX internal one
    edges, counts = panel.histogram_data()
    ref = parent.analysis.stats.tensors["3.weight"]
    assert edges.min() >= ref.min - 0.05  # floats near the parent's, not −127…127
    assert edges.max() <= ref.max + 0.05
    assert counts.sum() == ref.numel
    assert panel.ref_curve.isVisible()  # the float parent beside it
    texts = [panel.layers.item(i).text() for i in range(panel.layers.count())]
    assert not any("_quantized" in t or "_scale" in t or "val_" in t for t in texts)
    assert np.isfinite(edges).all()

"""Apply a pass from the Passes dock: a new variant, its report, a changed histogram; undo."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.conftest import open_and_wait


def _apply_from_dock(qtbot: Any, window: Any, pass_name: str, **values: Any) -> str:
    panel = window.passes_panel
    assert panel.select_pass(pass_name)
    for key, value in values.items():
        panel.form.set_value(key, value)
    assert panel.apply_button.isEnabled()
    with qtbot.waitSignal(window.pass_applied, timeout=120_000) as blocker:
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=10_000)
    return blocker.args[0]


def test_apply_from_the_dock_then_undo_redo(qtbot: Any, main_window: Any) -> None:
    open_and_wait(qtbot, main_window, "zoo:resnet-mini")
    parent = main_window.workspace.selected
    main_window.weights_panel.select_tensor("layer1.0.conv1.weight")
    before, _ = main_window.weights_panel.histogram_data()

    new_id = _apply_from_dock(qtbot, main_window, "convert.fold_bn")
    child = main_window.workspace.selected
    assert child.id == new_id
    assert child.analysis.variant.parent == parent.id
    assert child.analysis.graph.parameters < parent.analysis.graph.parameters
    assert "convert.fold_bn" in main_window.passes_panel.report.toPlainText()
    assert "batchnorm_folded" in main_window.passes_panel.report.toPlainText()
    # the variant list shows it under its parent
    item = main_window.variant_list.currentItem()
    assert item.parent() is not None
    # folded weights: the same layer's histogram changed, and the parent's is overlaid
    panel = main_window.weights_panel
    assert panel.select_tensor("layer1.0.conv1.weight")
    after, _ = panel.histogram_data()  # BN folding rescales: the bin edges move
    assert not np.array_equal(before, after)
    assert panel.ref_curve.isVisible()

    main_window.undo_stack.undo()
    assert new_id not in main_window.workspace
    assert main_window.workspace.selected.id == parent.id
    main_window.undo_stack.redo()
    assert main_window.workspace.selected.id == new_id


def test_a_failing_pass_reports_and_keeps_the_variant(qtbot: Any, main_window: Any) -> None:
    open_and_wait(qtbot, main_window, "zoo:mlp")  # no BatchNorm to fold
    panel = main_window.passes_panel
    panel.select_pass("convert.fold_bn")
    with qtbot.waitSignal(main_window.pass_failed, timeout=30_000) as blocker:
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert "no BatchNorm" in blocker.args[0]
    assert len(main_window.workspace) == 1


def test_rename_and_delete_are_undoable(qtbot: Any, main_window: Any) -> None:
    from workbench.core.session.commands import DeleteVariant, RenameVariant

    open_and_wait(qtbot, main_window, "zoo:mlp")
    vid = main_window.workspace.selected.id
    main_window.push(RenameVariant(main_window.workspace, vid, "baseline"))
    assert main_window.variant_list.currentItem().text(0) == "baseline"
    main_window.push(DeleteVariant(main_window.workspace, vid))
    assert main_window.variant_list.topLevelItemCount() == 0
    main_window.undo_stack.undo()
    main_window.undo_stack.undo()
    assert main_window.variant_list.currentItem().text(0) == "zoo:mlp"


def test_plugins_dialog_lists_origins(qtbot: Any, main_window: Any) -> None:
    from workbench.gui.qt_plugins_dialog import QtPluginsDialog

    dialog = QtPluginsDialog(main_window.registry, main_window)
    qtbot.addWidget(dialog)
    rows = [dialog.table.topLevelItem(i) for i in range(dialog.table.topLevelItemCount())]
    fold = next(r for r in rows if r.text(0) == "convert.fold_bn")
    assert fold.text(3).startswith("workbench-fold-bn")
    assert fold.text(4) == "ok"


def test_node_pick_fills_an_ignore_list(qtbot: Any, main_window: Any) -> None:
    from dataclasses import dataclass

    from workbench.core.passes import Pass, param
    from workbench.core.passes.registry import PluginInfo, Registry
    from workbench.gui.qt_passes_panel import QtPassesPanel

    class Pick(Pass):
        name = "test.pick"
        title = "Pick"

        @dataclass
        class Params:
            ignore: list[str] = param([], widget="nodes")

    open_and_wait(qtbot, main_window, "zoo:lenet5")
    panel = QtPassesPanel(Registry([PluginInfo("test_pick", "tests 0", Pick)]))
    qtbot.addWidget(panel)
    main_window.passes_panel.form = None
    panel.select_pass("test.pick")
    graph = main_window.workspace.selected.analysis.graph
    conv = next(n for n in graph.nodes if n.op == "aten.conv2d")
    main_window.graph_view.select_node(conv.name)
    main_window.passes_panel = panel
    main_window._pick_nodes("ignore")
    assert panel.form.values()["ignore"] == [".".join(conv.module_path)]


def test_magnitude_pruning_from_the_dock_with_preview(qtbot: Any, main_window: Any) -> None:
    open_and_wait(qtbot, main_window, "zoo:lenet5")
    panel = main_window.passes_panel
    assert panel.select_pass("prune.magnitude")
    panel.form.set_value("sparsity", 0.6)
    panel._preview_now()
    assert panel.preview.isVisible()
    assert panel.preview.topLevelItemCount() >= 4
    assert panel.preview.topLevelItem(0).text(1) == "60.0%"
    main_window.weights_panel.select_tensor("3.weight")
    _, before = main_window.weights_panel.histogram_data()
    new_id = _apply_from_dock(qtbot, main_window, "prune.magnitude", sparsity=0.6)
    entry = main_window.workspace.get(new_id)
    assert entry.analysis.stats.tensors["3.weight"].sparsity == pytest.approx(0.6, abs=0.01)
    assert "prune.magnitude" in main_window.passes_panel.report.toPlainText()
    assert main_window.weights_panel.select_tensor("3.weight")
    _, after = main_window.weights_panel.histogram_data()
    assert after.max() > before.max()  # the zero bin towers over the rest now
    assert main_window.variant_list.currentItem().text(4) != "0.0%"


def test_export_and_recipe_from_the_window(qtbot: Any, main_window: Any, tmp_path: Any
                                           ) -> None:
    import json

    from workbench.core.model.loaders import load_model
    from workbench.core.session.recipe import Recipe

    open_and_wait(qtbot, main_window, "zoo:lenet5")
    _apply_from_dock(qtbot, main_window, "prune.magnitude", sparsity=0.3)
    out = tmp_path / "pruned.pt2"
    with qtbot.waitSignal(main_window.jobs.finished, timeout=60_000):
        main_window.export_to(str(out))
    assert main_window.last_error is None
    assert load_model(str(out)).format == "pt2"
    recipe_path = tmp_path / "recipe.json"
    Recipe.of(main_window.workspace.selected.analysis.variant).save(recipe_path)
    steps = json.loads(recipe_path.read_text())["steps"]
    assert [s["pass"] for s in steps] == ["prune.magnitude"]
    assert steps[0]["params"]["sparsity"] == pytest.approx(0.3)
    replayed = Recipe.load_file(recipe_path).replay()
    assert replayed.report.after["sparsity"] == pytest.approx(
        main_window.workspace.selected.analysis.stats.summary.sparsity, abs=1e-6)


def test_int8_advice_for_a_convolution_heavy_model(qtbot: Any, main_window: Any) -> None:
    from workbench.core.passes.base import PassReport

    open_and_wait(qtbot, main_window, "zoo:resnet-mini")
    panel = main_window.passes_panel
    assert panel.select_pass("quantize.ort_dynamic")
    assert not panel.advice.isHidden()
    assert "quantize.ort_static" in panel.advice.text()
    assert panel.select_pass("prune.magnitude")
    assert panel.advice.isHidden()
    report = PassReport("quantize.auto", {}, {}, {}, 1.0, ["Kept static int8."],
                        {"latency": {"parent_ms": 10.0, "child_ms": 4.0, "speedup": 2.5,
                                     "threads": 2},
                         "table": "candidate  cosine\nstatic <b>", "candidates": []})
    panel.show_report(report)
    assert ["Latency (ONNX Runtime, 2 threads)", "10 ms", "4 ms", "2.50× faster"] in \
        panel.report.figure_rows()
    assert "static <b>" in panel.report.text_table.text()  # shown as text, not markup
    assert panel.report.text_table.textFormat() == Qt.TextFormat.PlainText

"""Graph navigation: minimap, fit on tall graphs, ⊕/⊖ controls, context menus, model inputs
and outputs, legends, keyboard, palette-derived colours, and torch attribute names."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from tests.conftest import light_models
from tests.gui.test_qt_graph_view import resnet_like
from workbench.core.graph.describe import describe
from workbench.core.graph.layergraph import (
    CATEGORIES,
    LayerGraph,
    Node,
    TensorInfo,
    edges_from_nodes,
)
from workbench.core.model.variant import InputSpec, Variant
from workbench.gui.qt_graph_style import CHANGED_HUE, GraphColors, contrast
from workbench.gui.qt_graph_view import QtGraphView
from workbench.gui.qt_inspector import QtInspector

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


@pytest.fixture
def view(qtbot: Any) -> QtGraphView:
    w = QtGraphView()
    w.resize(900, 700)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def with_io(g: LayerGraph) -> LayerGraph:
    g.inputs = [TensorInfo("input", (1, 64, 8, 8), "float32")]
    g.outputs = [TensorInfo("fc", (1, 64, 8, 8), "float32")]
    return g


def chain(n: int) -> LayerGraph:
    """A tall graph: `n` nodes in a line (far taller than wide)."""
    nodes = [Node(f"n{i}", "Relu" if i % 2 else "Conv",
                  [TensorInfo(f"n{i - 1}" if i else "x", (1, 8))], [TensorInfo(f"n{i}", (1, 8))])
             for i in range(n)]
    return LayerGraph("onnx", nodes, edges_from_nodes(nodes))


def click_scene(qtbot: Any, view: QtGraphView, p: QPointF) -> None:
    view.view.centerOn(p)
    qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.view.mapFromScene(p))


def test_minimap_folds_a_tall_graph_and_follows_the_view(view: QtGraphView, qtbot: Any) -> None:
    view.set_graph(chain(400))
    mm = view.minimap
    assert mm.isVisible()
    assert mm.columns > 1  # folded, not a one-pixel line
    assert mm.width() > 60
    assert view.view.viewport().rect().contains(mm.geometry().translated(
        -view.view.viewport().x(), -view.view.viewport().y()))
    top_rects = mm.view_rects()
    assert top_rects
    assert top_rects[0].left() < mm.width() / mm.columns  # the top: first column
    # Scroll to the bottom: the outline moves to the last column.
    view.view.centerOn(view.node_scene_rect("n399").center())
    bottom = mm.view_rects()
    assert bottom[-1].left() > mm.width() * (mm.columns - 1) / mm.columns - 8
    # A click on the minimap centres the view on the scene point under it.
    target = view.node_scene_rect("n200").center()
    at = mm.scene_to_map(target)
    qtbot.mouseClick(mm, Qt.MouseButton.LeftButton, pos=at.toPoint())
    centre = view.view.mapToScene(view.view.viewport().rect().center())
    assert abs(centre.y() - target.y()) < 2 / mm._scale + 2
    assert view.view.viewport().rect().contains(view.view.mapFromScene(target))
    # Dragging keeps following the mouse.
    target2 = view.node_scene_rect("n300").center()
    qtbot.mouseMove(mm, mm.scene_to_map(target2).toPoint())
    qtbot.mousePress(mm, Qt.MouseButton.LeftButton, pos=mm.scene_to_map(target2).toPoint())
    assert view.view.viewport().rect().contains(view.view.mapFromScene(target2))
    # The Map button hides it; no graph hides it.
    view._map_button.click()
    assert not mm.isVisible()
    view._map_button.click()
    assert mm.isVisible()
    view.set_graph(None)
    assert not mm.isVisible()


def test_fit_on_a_tall_graph_shows_the_top_readably(view: QtGraphView) -> None:
    view.set_graph(chain(400))
    view.zoom_by(0.05)
    view.fit()
    scale = view.view.transform().m11()
    assert 0.5 <= scale <= 1.0
    vp = view.view.viewport().rect()
    assert vp.contains(view.view.mapFromScene(view.node_scene_rect("n0").center()))
    # A small graph still fits whole.
    view.set_graph(resnet_like())
    view.fit()
    rect = view.view.mapFromScene(view.view.sceneRect()).boundingRect()
    assert view.view.viewport().rect().adjusted(-2, -2, 2, 2).contains(rect)


def test_fit_on_densenet121_is_not_a_line(view: QtGraphView) -> None:
    from workbench.core.model.loaders import load_model

    path = next(p for p in light_models() if p.name == "light_densenet121.onnx")
    graph = describe(load_model(str(path)))
    view.set_graph(graph)
    view.fit()
    assert view.view.transform().m11() >= 0.5
    first = view.node_scene_rect("input:" + graph.inputs[0].name)
    assert first is not None
    assert view.view.viewport().rect().contains(view.view.mapFromScene(first.center()))
    assert view.minimap.columns >= 4
    assert view.minimap.height() > 300


def test_clicking_plus_expands_and_minus_collapses(view: QtGraphView, qtbot: Any) -> None:
    view.max_visible = 5
    view.set_graph(resnet_like())
    assert "module:layer1" in view.display_graph()
    with qtbot.assertNotEmitted(view.node_selected):
        click_scene(qtbot, view, view.expand_control(("layer1",)))
    dg = view.display_graph()
    assert "module:layer1" not in dg
    assert ("layer1",) in view.expanded_modules()
    assert view.frame_paths() == [("layer1",)]
    click_scene(qtbot, view, view.expand_control(("layer1", "1")))
    assert "layer1.1.conv1" in view.display_graph()
    assert view.frame_paths() == [("layer1",), ("layer1", "1")]
    # ⊖ on the inner frame collapses it; on the outer frame everything inside.
    with qtbot.assertNotEmitted(view.node_selected):
        click_scene(qtbot, view, view.collapse_control(("layer1", "1")))
    assert "module:layer1.1" in view.display_graph()
    assert view.frame_paths() == [("layer1",)]
    click_scene(qtbot, view, view.collapse_control(("layer1",)))
    assert "module:layer1" in view.display_graph()
    assert view.frame_paths() == []
    # A click elsewhere on a module box still selects it.
    rect = view.node_scene_rect("module:layer1")
    with qtbot.waitSignal(view.node_selected, timeout=1000) as blocker:
        click_scene(qtbot, view, QPointF(rect.left() + 20, rect.center().y()))
    assert blocker.args == ["module:layer1"]


def test_context_menu_fits_what_was_clicked(view: QtGraphView) -> None:
    view.max_visible = 5
    view.set_graph(with_io(resnet_like()))

    def texts(p: QPointF) -> list[str]:
        return [a.text() for a in view.context_menu_at(p).actions() if a.text()]

    leaf = texts(view.node_scene_rect("conv1").center())
    assert not any("ollapse" in t and "all" not in t for t in leaf)
    assert not any(t.startswith("Expand ") and "all" not in t for t in leaf)
    assert any("Copy name" in t for t in leaf)
    group = texts(view.node_scene_rect("module:layer1").center())
    assert "Expand layer1" in group
    view.expand(("layer1",))
    inside = view.node_scene_rect("module:layer1.0")
    on_frame = QPointF(inside.left() - 4, inside.center().y())  # inside the frame, on no box
    assert "Collapse layer1" in texts(on_frame)
    leaf_inside = texts(view.node_scene_rect("module:layer1.0").center())
    assert "Expand layer1.0" in leaf_inside
    assert "Collapse layer1" not in leaf_inside
    io = texts(view.node_scene_rect("input:input").center())
    assert not any(t.startswith(("Expand ", "Collapse ", "Find")) and "all" not in t
                   for t in io)


def test_model_inputs_and_outputs_are_drawn(view: QtGraphView, qtbot: Any) -> None:
    view.set_graph(with_io(resnet_like()))
    dg = view.display_graph()
    assert dg.node("input:input").io == "input"
    assert dg.node("output:fc").io == "output"
    top_in = view.node_scene_rect("input:input").center().y()
    assert top_in < view.node_scene_rect("conv1").center().y()
    assert view.node_scene_rect("output:fc").center().y() > view.node_scene_rect(
        "fc").center().y()
    assert view.box_color("input:input") != view.box_color("conv1")
    with qtbot.waitSignal(view.node_selected, timeout=1000) as blocker:
        click_scene(qtbot, view, view.node_scene_rect("input:input").center())
    assert blocker.args == ["input:input"]


def test_search_clears_when_the_model_changes(view: QtGraphView) -> None:
    g = resnet_like()
    view.set_graph(g)
    assert view.search("bn2")
    view.set_graph(g)  # the same model again: the search stays
    assert view.search_edit.text() == "bn2"
    view.set_graph(resnet_like(2))
    assert view.search_edit.text() == ""
    assert view.find_next() is None


def test_shortcuts_zoom_fit_and_search(view: QtGraphView, qtbot: Any) -> None:
    view.set_graph(resnet_like())
    view.activateWindow()
    view.view.setFocus()
    qtbot.waitUntil(view.view.hasFocus, timeout=1000)
    view.actual_size()
    ctrl = Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(view.view, Qt.Key.Key_Equal, ctrl)
    assert view.view.transform().m11() == pytest.approx(1.25)
    qtbot.keyClick(view.view, Qt.Key.Key_Minus, ctrl)
    qtbot.keyClick(view.view, Qt.Key.Key_Minus, ctrl)
    assert view.view.transform().m11() == pytest.approx(0.8)
    qtbot.keyClick(view.view, Qt.Key.Key_0, ctrl)
    assert view.view.transform().m11() == pytest.approx(1.0)
    view.zoom_by(0.1)
    qtbot.keyClick(view.view, Qt.Key.Key_F)
    rect = view.view.mapFromScene(view.view.sceneRect()).boundingRect()
    assert view.view.viewport().rect().adjusted(-2, -2, 2, 2).contains(rect)
    qtbot.keyClick(view.view, Qt.Key.Key_F, ctrl)
    assert view.search_edit.hasFocus()
    # Typing F in the search box types; it does not fit.
    view.zoom_by(0.5)
    scale = view.view.transform().m11()
    qtbot.keyClick(view.search_edit, Qt.Key.Key_F)
    assert view.search_edit.text() == "f"
    assert view.view.transform().m11() == pytest.approx(scale)


def test_every_overlay_has_a_legend(view: QtGraphView) -> None:
    g = resnet_like()
    view.set_graph(g)
    assert "conv" in view.legend_text()
    view.set_highlight({"conv1", "fc"}, CHANGED_HUE)
    assert "changed from the parent variant (2 boxes)" in view.legend_text()
    view.set_highlight({"fc"}, CHANGED_HUE, label="pruned by the pass")
    assert "pruned by the pass (1 box)" in view.legend_text()
    view.clear_highlight()
    assert "changed" not in view.legend_text()
    view.set_heat({"conv1": 1.0})
    text = view.legend_text()
    assert "Heat" in text
    assert "not measured" in text
    view.set_heat(None)
    assert "Heat" not in view.legend_text()


def _dark_palette() -> QPalette:
    p = QPalette()
    for role, c in ((QPalette.ColorRole.Window, "#202124"),
                    (QPalette.ColorRole.WindowText, "#e8eaed"),
                    (QPalette.ColorRole.Base, "#1b1c1f"), (QPalette.ColorRole.Text, "#e8eaed"),
                    (QPalette.ColorRole.Mid, "#5f6368"),
                    (QPalette.ColorRole.Highlight, "#8ab4f8")):
        p.setColor(role, QColor(c))
    return p


@pytest.mark.parametrize("dark", [False, True])
def test_colours_follow_the_palette_and_stay_readable(view: QtGraphView, dark: bool) -> None:
    palette = _dark_palette() if dark else QApplication.palette()
    c = GraphColors.from_palette(palette)
    assert c.dark == dark
    fills = [c.fills[k] for k in CATEGORIES]
    fills += [c.overlay(QColor(CHANGED_HUE)), c.neutral]
    fills += [c.heat(v / 10) for v in range(11)]
    for fill in fills:
        assert contrast(c.text, fill) >= 4.5, fill.name()
    assert contrast(c.io_text, c.io_fill) >= 4.5
    # The view restyles itself when its palette changes.
    view.set_graph(resnet_like())
    view.setPalette(palette)
    assert view.view.backgroundBrush().color() == c.background
    assert view.box_color("conv1") == c.fills["conv"]


def test_inspector_shows_torch_attribute_names_and_weight_shapes(qtbot: Any) -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)).eval()
    graph = describe(Variant("c", "torch", model, "zoo", (InputSpec("x", (1, 3, 16, 16)),)))
    conv = next(n for n in graph.nodes if n.op == "aten.conv2d")
    inspector = QtInspector()
    qtbot.addWidget(inspector)
    inspector.show_node(conv)

    def rows(key: str) -> dict[str, str]:
        item = next(inspector.topLevelItem(i) for i in range(inspector.topLevelItemCount())
                    if inspector.topLevelItem(i).text(0) == key)
        return {item.child(j).text(0): item.child(j).text(1) for j in range(item.childCount())}

    assert rows("Attributes") == {"stride": "[2, 2]", "padding": "[1, 1]"}
    assert rows("Weights") == {"0.weight": "8×3×3×3", "0.bias": "8"}
    inspector.show_tensor("input", graph.inputs[0])
    assert inspector.value_of("Shape") == "1×3×16×16"


def test_frame_title_click_selects_the_module(view: QtGraphView, qtbot: Any) -> None:
    view.set_graph(resnet_like())
    assert ("layer1", "0") in view.frame_paths()
    badge = view.collapse_control(("layer1", "0"))
    title = QPointF(badge.x() + 30, badge.y())
    with qtbot.waitSignal(view.node_selected, timeout=1000) as blocker:
        click_scene(qtbot, view, title)
    assert blocker.args == ["module:layer1.0"]
    assert ("layer1", "0") in view.expanded_modules()
    assert isinstance(view.view.mapFromScene(title), QPoint)

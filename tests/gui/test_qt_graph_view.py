"""QtGraphView: drawing, selection by click and search, expand/collapse, highlight, heat."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsSimpleTextItem

from workbench.core.graph.layergraph import LayerGraph, Node, TensorInfo, edges_from_nodes
from workbench.gui.qt_graph_view import QtGraphView

# The offscreen platform plugin warns about this on every show().
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


def resnet_like(blocks: int = 3) -> LayerGraph:
    """stem, then `blocks` BasicBlocks (conv, bn, relu, conv, bn, add, relu), then fc."""
    nodes: list[Node] = []

    def add(name: str, op: str, inputs: list[str], path: tuple[str, ...]) -> str:
        nodes.append(Node(name, op, [TensorInfo(i, (1, 64, 8, 8)) for i in inputs],
                          [TensorInfo(name, (1, 64, 8, 8))], params=100, module_path=path))
        return name

    h = add("conv1", "Conv", ["input"], ("conv1",))
    h = add("relu", "Relu", [h], ("relu",))
    types = {}
    for b in range(blocks):
        p = ("layer1", str(b))
        types[p] = "BasicBlock"
        pre = f"layer1.{b}"
        x = h
        y = add(f"{pre}.conv1", "Conv", [x], (*p, "conv1"))
        y = add(f"{pre}.bn1", "BatchNormalization", [y], (*p, "bn1"))
        y = add(f"{pre}.relu", "Relu", [y], (*p, "relu"))
        y = add(f"{pre}.conv2", "Conv", [y], (*p, "conv2"))
        y = add(f"{pre}.bn2", "BatchNormalization", [y], (*p, "bn2"))
        y = add(f"{pre}.add", "Add", [y, x], p)
        h = add(f"{pre}.out", "Relu", [y], p)
    add("fc", "Gemm", [h], ("fc",))
    types[("layer1",)] = "Sequential"
    return LayerGraph("onnx", nodes, edges_from_nodes(nodes), module_types=types)


@pytest.fixture
def view(qtbot) -> QtGraphView:
    w = QtGraphView()
    w.resize(900, 700)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def assert_centred(view: QtGraphView, name: str) -> None:
    """Box `name` is in view and vertically centred (a narrow graph cannot scroll sideways)."""
    box = view.view.mapFromScene(view.node_scene_rect(name)).boundingRect()
    assert view.view.viewport().rect().contains(box)
    assert abs(box.center().y() - view.view.viewport().rect().center().y()) < 5


def viewport_pos(view: QtGraphView, name: str) -> QPoint:
    """Scroll box `name` into view and return its centre in viewport coordinates."""
    rect = view.node_scene_rect(name)
    assert rect is not None, name
    view.view.centerOn(rect.center())
    return view.view.mapFromScene(rect.center())


def test_set_graph_draws_every_node_and_none_clears(view: QtGraphView) -> None:
    g = resnet_like()
    view.set_graph(g)
    dg = view.display_graph()
    assert dg is not None
    assert len(dg.nodes) == len(g.nodes)
    assert view.graph() is g
    assert view.node_scene_rect("layer1.1.bn2") is not None
    assert view.box_color("layer1.0.conv1") == view.fill_color("conv")
    view.set_graph(None)
    assert view.display_graph() is None
    assert view.node_scene_rect("conv1") is None
    assert view.selected_node() is None


def test_click_selects_node_and_emits_its_name(view: QtGraphView, qtbot) -> None:
    view.set_graph(resnet_like())
    pos = viewport_pos(view, "layer1.1.relu")
    with qtbot.waitSignal(view.node_selected, timeout=1000) as blocker:
        qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == ["layer1.1.relu"]
    assert view.selected_node() == "layer1.1.relu"
    # A click on empty canvas selects nothing new.
    empty = view.view.mapFromScene(view.node_scene_rect("layer1.1.relu").topLeft()) - QPoint(40, 0)
    with qtbot.assertNotEmitted(view.node_selected):
        qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=empty)
    assert view.selected_node() == "layer1.1.relu"


def test_click_on_group_emits_group_id(view: QtGraphView, qtbot) -> None:
    view.max_visible = 5
    view.set_graph(resnet_like())
    dg = view.display_graph()
    assert dg is not None
    assert "module:layer1" in dg
    pos = viewport_pos(view, "module:layer1")
    with qtbot.waitSignal(view.node_selected, timeout=1000) as blocker:
        qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == ["module:layer1"]


def test_double_click_expands_group_and_on_member_collapses(view: QtGraphView, qtbot) -> None:
    view.max_visible = 5
    view.set_graph(resnet_like())
    dg = view.display_graph()
    assert dg is not None
    assert [d.id for d in dg.nodes] == ["conv1", "relu", "module:layer1", "fc"]
    qtbot.mouseDClick(view.view.viewport(), Qt.MouseButton.LeftButton,
                      pos=viewport_pos(view, "module:layer1"))
    dg = view.display_graph()
    assert dg is not None
    assert "module:layer1" not in dg
    assert {"module:layer1.0", "module:layer1.1", "module:layer1.2"} <= {d.id for d in dg.nodes}
    assert ("layer1",) in view.expanded_modules()

    qtbot.mouseDClick(view.view.viewport(), Qt.MouseButton.LeftButton,
                      pos=viewport_pos(view, "module:layer1.1"))
    dg = view.display_graph()
    assert dg is not None
    assert "layer1.1.conv1" in dg
    assert "module:layer1.1" not in dg

    # Double-clicking a node collapses its innermost module again.
    qtbot.mouseDClick(view.view.viewport(), Qt.MouseButton.LeftButton,
                      pos=viewport_pos(view, "layer1.1.bn1"))
    dg = view.display_graph()
    assert dg is not None
    assert "module:layer1.1" in dg
    assert "layer1.1.bn1" not in dg
    assert ("layer1", "1") not in view.expanded_modules()


def test_search_enter_cycles_matches_and_expands(view: QtGraphView, qtbot) -> None:
    view.max_visible = 5
    view.set_graph(resnet_like())
    qtbot.keyClicks(view.search_edit, "BN2")  # case-insensitive, by name
    with qtbot.waitSignal(view.node_selected, timeout=1000) as blocker:
        qtbot.keyClick(view.search_edit, Qt.Key.Key_Return)
    assert blocker.args == ["layer1.0.bn2"]
    dg = view.display_graph()
    assert dg is not None
    assert "layer1.0.bn2" in dg
    assert view.selected_node() == "layer1.0.bn2"
    assert_centred(view, "layer1.0.bn2")
    with qtbot.waitSignal(view.node_selected, timeout=1000) as blocker:
        qtbot.keyClick(view.search_edit, Qt.Key.Key_Return)
    assert blocker.args == ["layer1.1.bn2"]
    # By op type: three Add nodes, and the cycle wraps around.
    assert view.search("add") == ["layer1.0.add", "layer1.1.add", "layer1.2.add"]
    assert [view.find_next() for _ in range(4)] == [
        "layer1.0.add", "layer1.1.add", "layer1.2.add", "layer1.0.add"]
    assert view.search("no such thing") == []
    assert view.find_next() is None


def test_select_node_expands_centres_and_does_not_emit(view: QtGraphView, qtbot) -> None:
    view.max_visible = 5
    view.set_graph(resnet_like())
    with qtbot.assertNotEmitted(view.node_selected):
        assert view.select_node("layer1.2.conv2")
    assert view.selected_node() == "layer1.2.conv2"
    dg = view.display_graph()
    assert dg is not None
    assert "layer1.2.conv2" in dg
    assert_centred(view, "layer1.2.conv2")
    assert not view.select_node("missing")
    assert view.selected_node() == "layer1.2.conv2"
    # A group id that is currently expanded is collapsed again to show it.
    with qtbot.assertNotEmitted(view.node_selected):
        assert view.select_node("module:layer1.2")
    dg = view.display_graph()
    assert dg is not None
    assert "module:layer1.2" in dg


def test_expand_all_and_collapse_all(view: QtGraphView) -> None:
    view.max_visible = 5
    g = resnet_like()
    view.set_graph(g)
    view.expand_all()
    assert len(view.display_graph().nodes) == len(g.nodes)
    view.collapse_all()
    assert len(view.display_graph().nodes) == 4


def test_highlight_and_heat_tint_boxes(view: QtGraphView) -> None:
    view.set_graph(resnet_like())
    conv = view.fill_color("conv")
    assert view.box_color("conv1") == conv
    view.set_highlight({"conv1"}, QColor("#ff0000"))
    tinted = view.box_color("conv1")
    assert tinted != conv
    assert tinted.red() > tinted.blue()
    assert view.box_color("layer1.0.conv1") == conv  # not in the set
    view.clear_highlight()
    assert view.box_color("conv1") == conv

    view.set_heat({"conv1": 0.0, "fc": 1.0})
    cold, hot = view.box_color("conv1"), view.box_color("fc")
    assert cold != hot
    assert hot.green() < cold.green()
    assert view.box_color("relu") not in (cold, hot)  # no value: neutral
    view.set_heat(None)
    assert view.box_color("conv1") == conv


def test_labels_hide_when_zoomed_out(view: QtGraphView) -> None:
    view.set_graph(resnet_like())

    def visible_texts() -> int:
        return sum(1 for it in view.view.scene().items()
                   if isinstance(it, QGraphicsSimpleTextItem) and it.isVisible())

    assert view.view.transform().m11() >= 0.5
    assert visible_texts() > 0
    for _ in range(30):
        view.zoom_out()
    assert view.view.transform().m11() < 0.2
    assert visible_texts() == 0
    scale = view.view.transform().m11()
    view.zoom_in()
    assert view.view.transform().m11() == pytest.approx(scale * 1.25)
    view.fit()
    rect = view.view.mapFromScene(view.view.sceneRect()).boundingRect()
    assert view.view.viewport().rect().adjusted(-2, -2, 2, 2).contains(rect)

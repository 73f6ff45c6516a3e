"""The first paint of a big graph's collapsed view touches no node the view folds away."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.big_onnx import STAGES, make_big_onnx
from tests.core.test_big_graph import CountingList
from workbench.core.graph.describe import describe
from workbench.core.graph.display_graph import prepare_view
from workbench.core.model.loaders import load_model
from workbench.gui.qt_graph_view import QtGraphView

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


def test_prepared_collapsed_view_paints_without_a_pass_over_the_nodes(qtbot,
                                                                      tmp_path: Path) -> None:
    graph = describe(load_model(str(make_big_onnx(tmp_path / "big.onnx", 4_000))))
    prepare_view(graph)  # what Session.open's worker does
    counted = CountingList(graph.nodes)
    graph.nodes = counted
    view = QtGraphView()
    view.resize(900, 700)
    qtbot.addWidget(view)
    view.set_graph(graph)
    view.show()
    qtbot.waitExposed(view)
    view.view.viewport().repaint()
    dg = view.display_graph()
    assert dg is not None
    assert len(dg) == STAGES + 2
    assert view.node_scene_rect("module:stage0") is not None
    assert counted.passes == 0
    view.expand(("stage0",))  # opening a module does walk the graph again
    assert counted.passes > 0
    assert view.node_scene_rect("module:stage0.block0") is not None

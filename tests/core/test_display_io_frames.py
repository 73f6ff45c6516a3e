"""Model inputs and outputs become boxes; expanded modules get nested frames."""

from __future__ import annotations

from workbench.core.graph.display_graph import build_display_graph, collapsible_modules
from workbench.core.graph.graph_layout import layered_layout
from workbench.core.graph.layergraph import LayerGraph, Node, TensorInfo, edges_from_nodes
from workbench.core.graph.module_frames import FRAME_TITLE, frame_layout


def _graph() -> LayerGraph:
    """x -> block.0 (conv, relu) -> block.1 (conv, relu) -> head -> y; a side input `mask`."""
    nodes: list[Node] = []

    def add(name: str, op: str, inputs: list[str], path: tuple[str, ...]) -> None:
        nodes.append(Node(name, op, [TensorInfo(i, (1, 4)) for i in inputs],
                          [TensorInfo(name, (1, 4))], module_path=path))

    add("b0.conv", "Conv", ["x"], ("block", "0", "conv"))
    add("b0.relu", "Relu", ["b0.conv"], ("block", "0", "relu"))
    add("b1.conv", "Conv", ["b0.relu"], ("block", "1", "conv"))
    add("b1.relu", "Relu", ["b1.conv", "mask"], ("block", "1", "relu"))
    add("head", "Gemm", ["b1.relu"], ("head",))
    return LayerGraph("onnx", nodes, edges_from_nodes(nodes),
                      inputs=[TensorInfo("x", (1, 4)), TensorInfo("mask", (1, 4)),
                              TensorInfo("unused", (1,))],
                      outputs=[TensorInfo("head", (1, 4))])


def test_inputs_and_outputs_are_boxes_with_edges() -> None:
    g = _graph()
    dg = build_display_graph(g, collapsible_modules(g))
    ids = [d.id for d in dg.nodes]
    assert ids[:2] == ["input:x", "input:mask"]  # `unused` feeds nothing: no box
    assert ids[-1] == "output:head"
    assert dg.node("input:x").io == "input"
    assert dg.node("output:head").io == "output"
    edges = {(e.src, e.dst): e.label for e in dg.edges}
    assert edges[("input:x", "b0.conv")] == "1×4"
    assert ("input:mask", "b1.relu") in edges
    assert ("head", "output:head") in edges
    # Inside a collapsed module the input feeds the module's box.
    collapsed = build_display_graph(g, set())
    assert {(e.src, e.dst) for e in collapsed.edges} >= {("input:x", "module:block"),
                                                          ("module:block", "head")}
    assert [d.id for d in build_display_graph(g, set(), io=False).nodes] == [
        "module:block", "head"]


def test_io_boxes_sit_above_and_below_the_graph() -> None:
    g = _graph()
    dg = build_display_graph(g, collapsible_modules(g))
    lay = layered_layout(dg)
    assert lay.layers["input:x"] == 0
    assert lay.layers["output:head"] == max(lay.layers.values())


def test_frames_nest_around_expanded_modules() -> None:
    g = _graph()
    groups = collapsible_modules(g)
    assert set(groups) == {("block",), ("block", "0"), ("block", "1")}
    dg = build_display_graph(g, groups)
    lay, found = frame_layout(dg, layered_layout(dg), groups)
    frames = {f.path: f for f in found}
    assert set(frames) == set(groups)
    outer, inner = frames[("block",)], frames[("block", "1")]
    assert outer.level == 1
    assert inner.level == 0
    assert inner.boxes == 2
    assert outer.boxes == 4
    # The outer frame strictly contains the inner one, which holds its boxes.
    assert outer.left < inner.left
    assert outer.top < frames[("block", "0")].top
    assert outer.bottom > inner.bottom
    (x, y), (w, h) = lay.positions["b1.conv"], lay.sizes["b1.conv"]
    assert inner.left < x - w / 2
    assert inner.right > x + w / 2
    assert inner.top < y - h / 2
    # Titles have room: the first box of a frame sits a title row below its top edge, and
    # the lower layers moved down to make that room (edges moved with them).
    top0 = lay.positions["b0.conv"][1] - lay.sizes["b0.conv"][1] / 2
    assert top0 - outer.top >= 2 * FRAME_TITLE
    assert frames[("block", "1")].top > frames[("block", "0")].bottom
    route = next(r for r in lay.edges if (r.src, r.dst) == ("b0.relu", "b1.conv"))
    assert route.points[-1][1] == lay.positions["b1.conv"][1] - lay.sizes["b1.conv"][1] / 2
    # The head is outside every frame.
    hy = lay.positions["head"][1]
    assert not (outer.top <= hy <= outer.bottom)
    # With `block.1` collapsed, its box is inside `block` but has no frame of its own.
    dg = build_display_graph(g, {("block",), ("block", "0")})
    frames = {f.path: f for f in frame_layout(dg, layered_layout(dg), groups)[1]}
    assert set(frames) == {("block",), ("block", "0")}
    assert frames[("block",)].boxes == 3

"""Module collapsing and the layered layout (headless)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from itertools import pairwise

import pytest

from workbench.core.graph.graph_layout import (
    DisplayEdge,
    DisplayGraph,
    DisplayNode,
    ancestor_groups,
    build_display_graph,
    collapsible_modules,
    default_expanded,
    group_id,
    layered_layout,
)
from workbench.core.graph.layergraph import LayerGraph, Node, TensorInfo, edges_from_nodes

Spec = tuple[str, str, list[str], tuple[str, ...]]


def make_graph(specs: list[Spec], module_types: dict | None = None) -> LayerGraph:
    """Nodes from (name, op, input names, module path); each outputs a tensor of its name."""
    nodes = [
        Node(name, op, [TensorInfo(i, (1, 8)) for i in inputs], [TensorInfo(name, (1, 8))],
             params=10, macs=100, module_path=path)
        for name, op, inputs, path in specs
    ]
    return LayerGraph("onnx", nodes, edges_from_nodes(nodes), module_types=module_types or {})


def block_graph() -> LayerGraph:
    """stem -> block(conv, bn, relu, add with skip) -> head; `block` is a BasicBlock."""
    return make_graph(
        [
            ("stem", "Conv", ["x"], ("stem",)),
            ("block.conv", "Conv", ["stem"], ("block", "conv")),
            ("block.bn", "BatchNormalization", ["block.conv"], ("block", "bn")),
            ("block.relu", "Relu", ["block.bn"], ("block", "relu")),
            ("block.add", "Add", ["block.relu", "stem"], ("block",)),
            ("head", "Gemm", ["block.add"], ("head",)),
        ],
        {("block",): "BasicBlock"},
    )


def chain_with_skips(n: int, seed: int = 0) -> DisplayGraph:
    """A ResNet/DenseNet-like DAG: a chain with skip connections, branches and concats."""
    rng = random.Random(seed)
    nodes = [DisplayNode(f"n{i}", f"n{i}", "Conv", "conv", False, (), [f"n{i}"])
             for i in range(n)]
    edges = []
    for i in range(1, n):
        edges.append(DisplayEdge(f"n{i - 1}", f"n{i}", "1×64"))
        if i % 8 == 0 and i >= 6:
            edges.append(DisplayEdge(f"n{i - 6}", f"n{i}", "1×64"))  # residual
        if i % 50 == 0 and i >= 20:
            for k in range(2, 20, 3):
                edges.append(DisplayEdge(f"n{i - k}", f"n{i}", "cat"))  # dense concat
        if rng.random() < 0.1 and i + 3 < n:
            edges.append(DisplayEdge(f"n{i}", f"n{i + 3}", "branch"))
    return DisplayGraph(nodes, edges)


def assert_sound(dg: DisplayGraph, *, dag: bool = True) -> None:
    lay = layered_layout(dg)
    ids = {d.id for d in dg.nodes}
    assert set(lay.positions) == ids
    assert set(lay.sizes) == ids
    assert len(lay.edges) == len({(e.src, e.dst) for e in dg.edges if e.src != e.dst})
    for r in lay.edges:
        assert len(r.points) >= 2
        (sx, sy), (sw, sh) = lay.positions[r.src], lay.sizes[r.src]
        (dx, dy), (dw, dh) = lay.positions[r.dst], lay.sizes[r.dst]
        if dag:
            assert lay.layers[r.src] < lay.layers[r.dst], r
            assert sy < dy
            # Leaves the bottom of its source and arrives at the top of its target.
            assert r.points[0][1] == pytest.approx(sy + sh / 2)
            assert r.points[-1][1] == pytest.approx(dy - dh / 2)
            assert abs(r.points[0][0] - sx) <= sw / 2
            assert abs(r.points[-1][0] - dx) <= dw / 2
    # Boxes never overlap: sort each layer by x and check the gaps.
    by_layer: dict[int, list[str]] = {}
    for d, li in lay.layers.items():
        by_layer.setdefault(li, []).append(d)
    for members in by_layer.values():
        members.sort(key=lambda d: lay.positions[d][0])
        for a, b in pairwise(members):
            gap = lay.positions[b][0] - lay.positions[a][0]
            assert gap >= (lay.sizes[a][0] + lay.sizes[b][0]) / 2 - 1e-6
    for x, y in lay.positions.values():
        assert -1e-6 <= x <= lay.width + 1e-6
        assert 0 <= y <= lay.height + 1e-6


def test_fully_expanded_graph_shows_every_node() -> None:
    g = block_graph()
    dg = build_display_graph(g, collapsible_modules(g))
    assert [d.id for d in dg.nodes] == [n.name for n in g.nodes]
    assert not any(d.is_group for d in dg.nodes)
    assert len(dg.edges) == len(g.edges) == 6
    assert dg.display_of == {n.name: n.name for n in g.nodes}


def test_single_node_modules_are_never_groups() -> None:
    g = block_graph()
    groups = collapsible_modules(g)
    assert set(groups) == {("block",)}
    assert groups[("block",)] == 4
    dg = build_display_graph(g, set())
    assert "stem" in dg
    assert "head" in dg


def test_collapsed_module_becomes_one_group_with_deduplicated_edges() -> None:
    g = block_graph()
    dg = build_display_graph(g, set())
    gid = group_id(("block",))
    assert gid == "module:block"
    assert [d.id for d in dg.nodes] == ["stem", gid, "head"]
    group = dg.node(gid)
    assert group.is_group
    assert group.category == "group"
    assert group.members == ["block.conv", "block.bn", "block.relu", "block.add"]
    assert group.params == 40
    assert group.macs == 400
    assert "block" in group.label
    assert "BasicBlock" in group.label
    assert "4" in group.label
    assert group.op == "BasicBlock"
    assert group.output_shape == "1×8"
    # stem feeds two members (conv and the skip into add): one edge; internal edges dropped.
    assert [(e.src, e.dst) for e in dg.edges] == [("stem", gid), (gid, "head")]
    assert dg.edges[0].label == "1×8"
    assert all(dg.display_of[m] == gid for m in group.members)


def test_nested_modules_expand_level_by_level() -> None:
    specs: list[Spec] = [("in", "Conv", ["x"], ())]
    prev = "in"
    for b in range(3):
        for k in range(2):
            name = f"enc.{b}.op{k}"
            specs.append((name, "Relu", [prev], ("enc", str(b), f"op{k}")))
            prev = name
    g = make_graph(specs, {("enc",): "Encoder"})
    # ("enc", b, "opk") hold one node each, so they are not groups.
    assert set(collapsible_modules(g)) == {("enc",), ("enc", "0"), ("enc", "1"), ("enc", "2")}
    assert [d.id for d in build_display_graph(g, set()).nodes] == ["in", "module:enc"]
    outer = build_display_graph(g, {("enc",)})
    assert [d.id for d in outer.nodes] == ["in", "module:enc.0", "module:enc.1", "module:enc.2"]
    assert outer.node("module:enc.1").op == "Module"  # no type recorded
    inner = build_display_graph(g, {("enc",), ("enc", "1")})
    assert len(inner.nodes) == 5
    assert "enc.1.op0" in inner
    assert "module:enc.1" not in inner
    # An inner path is ignored while its parent is collapsed.
    assert len(build_display_graph(g, {("enc", "1")}).nodes) == 2


def test_wrapper_module_is_skipped_for_its_only_child() -> None:
    g = make_graph([
        ("a", "Conv", ["x"], ("layer1", "0", "conv")),
        ("b", "Relu", ["a"], ("layer1", "0", "relu")),
    ])
    assert set(collapsible_modules(g)) == {("layer1", "0")}
    assert [d.id for d in build_display_graph(g, set()).nodes] == ["module:layer1.0"]


def test_group_ids_are_stable_across_rebuilds() -> None:
    g = block_graph()
    first = [d.id for d in build_display_graph(g, set()).nodes]
    build_display_graph(g, collapsible_modules(g))
    assert [d.id for d in build_display_graph(g, set()).nodes] == first


def test_ancestor_groups() -> None:
    g = block_graph()
    assert ancestor_groups(g, "block.bn") == {("block",)}
    assert ancestor_groups(g, "stem") == set()


def test_default_expanded_opens_everything_on_small_graphs() -> None:
    g = block_graph()
    assert default_expanded(g) == set(collapsible_modules(g))


def test_default_expanded_starts_large_graphs_collapsed() -> None:
    specs: list[Spec] = []
    prev = "x"
    for s in range(10):
        for b in range(10):
            for k in range(5):
                name = f"s{s}.b{b}.op{k}"
                specs.append((name, "Conv", [prev], (f"s{s}", f"b{b}")))
                prev = name
    g = make_graph(specs)  # 500 nodes: 10 stages of 10 blocks of 5
    assert default_expanded(g, max_visible=600) == set(collapsible_modules(g))
    assert default_expanded(g, max_visible=5) == set()
    stages = default_expanded(g, max_visible=150)
    assert stages == {(f"s{s}",) for s in range(10)}
    assert len(build_display_graph(g, stages).nodes) == 100
    assert len(build_display_graph(g, default_expanded(g, max_visible=99)).nodes) == 10


def test_layout_of_module_graph_is_sound() -> None:
    g = block_graph()
    for expanded in (set(), collapsible_modules(g)):
        assert_sound(build_display_graph(g, expanded))


def test_layout_of_random_dags_is_sound() -> None:
    for seed in range(5):
        rng = random.Random(seed)
        n = 60
        nodes = [DisplayNode(f"v{i}", f"v{i}", "Add", "elementwise", False, (), [f"v{i}"])
                 for i in range(n)]
        edges = {(rng.randrange(i), i) for i in range(1, n) for _ in range(rng.randint(1, 3))}
        # Shuffle the display order: the layout must not rely on it being topological.
        rng.shuffle(nodes)
        dg = DisplayGraph(nodes, [DisplayEdge(f"v{a}", f"v{b}") for a, b in sorted(edges)])
        assert_sound(dg)


def test_long_edges_are_routed_through_intermediate_layers() -> None:
    dg = chain_with_skips(40)
    lay = layered_layout(dg)
    skip = next(r for r in lay.edges if (r.src, r.dst) == ("n2", "n8"))
    assert lay.layers["n8"] - lay.layers["n2"] == 6
    assert len(skip.points) == 2 + 2 * 5  # two bends per layer crossed
    ys = [y for _, y in skip.points]
    assert ys == sorted(ys)


def test_sources_are_pulled_down_to_their_consumer() -> None:
    g = make_graph([
        ("a", "Conv", ["x"], ()),
        ("b", "Relu", ["a"], ()),
        ("c", "Relu", ["b"], ()),
        ("const", "Constant", [], ()),
        ("d", "Add", ["c", "const"], ()),
    ])
    lay = layered_layout(build_display_graph(g, set()))
    assert lay.layers["const"] == lay.layers["d"] - 1
    assert lay.layers["a"] == 0


def test_cycles_do_not_hang_and_every_node_is_placed() -> None:
    nodes = [DisplayNode(n, n, "LSTM", "recurrent", False, (), [n]) for n in "abcde"]
    edges = [DisplayEdge(s, d) for s, d in
             [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "b"), ("d", "e"),
              ("e", "e"), ("a", "b")]]
    dg = DisplayGraph(nodes, edges)
    lay = layered_layout(dg)
    assert set(lay.positions) == set("abcde")
    assert len(lay.edges) == 6  # duplicate and self loop dropped
    for r in lay.edges:
        (_, sy), (_, dy) = lay.positions[r.src], lay.positions[r.dst]
        # A reversed edge still starts at its source and ends at its target.
        half = lay.sizes[r.src][1] / 2
        assert r.points[0][1] == pytest.approx(sy + half if dy > sy else sy - half)
    assert_sound(dg, dag=False)


def test_grouping_can_create_cycles_and_still_lays_out() -> None:
    # outside sits between two members of `m`: m -> outside -> m once collapsed.
    g = make_graph([
        ("m.a", "Conv", ["x"], ("m",)),
        ("outside", "Relu", ["m.a"], ()),
        ("m.b", "Conv", ["outside"], ("m",)),
    ])
    dg = build_display_graph(g, set())
    assert {(e.src, e.dst) for e in dg.edges} == {("module:m", "outside"), ("outside", "module:m")}
    lay = layered_layout(dg)
    assert set(lay.positions) == {"module:m", "outside"}
    assert len(lay.edges) == 2


def test_empty_graph() -> None:
    g = LayerGraph("onnx", [], [])
    dg = build_display_graph(g, set())
    assert len(dg) == 0
    lay = layered_layout(dg)
    assert lay.positions == {}
    assert lay.edges == []
    assert default_expanded(g) == set()


def test_custom_node_size_is_used() -> None:
    dg = chain_with_skips(10)
    lay = layered_layout(dg, lambda d: (300.0, 60.0))
    assert all(s == (300.0, 60.0) for s in lay.sizes.values())
    ys = sorted({y for _, y in lay.positions.values()})
    assert ys[1] - ys[0] >= 60


@pytest.mark.perf
def test_10k_node_layout_is_fast(perf_figure: Callable[[str], None]) -> None:
    dg = chain_with_skips(10_000)
    t = time.perf_counter()
    layered_layout(dg)
    elapsed = time.perf_counter() - t
    perf_figure(f"10,000-node layout: {elapsed:.2f} s")
    assert elapsed < 5.0  # about 0.2 s on a laptop core


def test_10k_node_layout_is_complete_and_compact() -> None:
    dg = chain_with_skips(10_000)
    lay = layered_layout(dg)
    assert len(lay.positions) == 10_000
    assert len(lay.edges) == len(dg.edges)
    # Compact: the chain stays narrow instead of drifting sideways.
    assert lay.width < 3_000

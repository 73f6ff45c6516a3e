"""Big graphs scale linearly: a fixed number of passes over the nodes, whatever their number,
and a collapsed view whose layout input does not grow with the nodes folded inside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.big_onnx import STAGES, make_big_onnx
from workbench.core.graph.display_graph import (
    build_display_graph,
    collapsible_modules,
    constant_nodes,
    default_expanded,
    prepare_view,
)
from workbench.core.graph.graph_layout import layered_layout
from workbench.core.graph.layergraph import LayerGraph, edges_from_nodes
from workbench.core.model.loaders import load_model


class CountingList(list):  # type: ignore[type-arg]
    """A list that counts the passes made over it."""

    passes = 0

    def __iter__(self) -> Any:
        self.passes += 1
        return super().__iter__()


def big_graph(tmp_path: Path, n_nodes: int) -> LayerGraph:
    from workbench.core.graph.describe import describe

    return describe(load_model(str(make_big_onnx(tmp_path / f"big{n_nodes}.onnx", n_nodes))))


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, LayerGraph]:
    folder = tmp_path_factory.mktemp("big")
    return {n: big_graph(folder, n) for n in (2_000, 8_000)}


def test_the_big_model_parses_into_every_node_with_shapes_and_macs(
        graphs: dict[int, LayerGraph]) -> None:
    g = graphs[8_000]
    assert len(g.nodes) == 8_000
    # three inside each block, two into each block after the first (its Conv and skip Add)
    assert len(g.edges) == 3 * 2_000 + 2 * 1_999
    assert all(n.output_shape == (1, 4, 8, 8) for n in g.nodes)
    conv = g.nodes[0]
    assert conv.op == "Conv"
    assert conv.macs == 4 * 8 * 8 * 4 * 3 * 3
    assert g.macs == 2_000 * conv.macs
    assert conv.module_path == ("stage0", "block0", "conv")


def test_graph_view_preparation_makes_a_fixed_number_of_passes(
        tmp_path: Path) -> None:
    """Each step walks the nodes a few times, the same for 2,000 and 8,000 nodes: no step
    loops over the nodes once per node (a quadratic cost)."""
    passes = {}
    for n in (2_000, 8_000):
        g = big_graph(tmp_path, n)
        counted = CountingList(g.nodes)
        g.nodes = counted
        edges_from_nodes(counted)
        collapsible_modules(g)
        constant_nodes(g)
        expanded = default_expanded(g)
        build_display_graph(g, expanded, constant_nodes(g))
        build_display_graph(g, set(collapsible_modules(g)), ())
        passes[n] = counted.passes
    assert passes[2_000] == passes[8_000] <= 12


def test_collapsed_view_does_not_grow_with_hidden_nodes(graphs: dict[int, LayerGraph]) -> None:
    small, big = (prepare_view(graphs[n]) for n in (2_000, 8_000))
    assert len(small) == len(big) == STAGES + 2  # the stages, the input and the output
    assert [d.id for d in small.nodes] == [d.id for d in big.nodes]
    assert small.edges == big.edges
    a, b = layered_layout(small), layered_layout(big)
    assert (a.width, a.height) == (b.width, b.height)
    assert sum(len(d.members) for d in big.nodes) == 8_000


def test_prepared_view_is_what_the_view_then_builds(graphs: dict[int, LayerGraph]) -> None:
    g = graphs[2_000]
    dg = prepare_view(g)
    assert build_display_graph(g, default_expanded(g), constant_nodes(g)) is dg
    expanded = build_display_graph(g, {("stage0",)}, constant_nodes(g))
    assert expanded is not dg
    assert len(expanded) > len(dg)
    assert build_display_graph(g, default_expanded(g), constant_nodes(g)) is dg

"""The layered layout reproduces recorded layouts of real graphs exactly (a refactoring guard).

`data/graph_layouts.json` holds display graphs of zoo models and ONNX light models (inputs
stored, so graph capture changes cannot break this test) with the layout each one had, plus
SHA-256 digests for large synthetic graphs that are rebuilt here from a seed. Any change to
the output (a position, a size, a layer, a route point) fails. If a change is intended,
regenerate the fixture and review the diff:

    PYTHONPATH=$PWD .venv/bin/python -m tests.core.test_graph_layout_golden
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from workbench.core.graph.graph_layout import (
    DisplayEdge,
    DisplayGraph,
    DisplayNode,
    Layout,
    layered_layout,
)

FIXTURE = Path(__file__).parent / "data" / "graph_layouts.json"

# Non-default options for one case, so every keyword reaches the code under test.
TIGHT = {"node_gap": 12.0, "layer_gap": 30.0, "sweeps": 2, "x_passes": 5}


def layout_json(lay: Layout) -> dict[str, Any]:
    """Every number of a layout, in a JSON-stable form (floats round-trip exactly)."""
    data = {
        "positions": {k: list(v) for k, v in lay.positions.items()},
        "sizes": {k: list(v) for k, v in lay.sizes.items()},
        "layers": dict(lay.layers),
        "edges": [[r.src, r.dst, r.label, [list(p) for p in r.points]] for r in lay.edges],
        "width": lay.width,
        "height": lay.height,
    }
    return json.loads(json.dumps(data))


def digest(lay: Layout) -> str:
    return hashlib.sha256(json.dumps(layout_json(lay), sort_keys=True).encode()).hexdigest()


def graph_json(dg: DisplayGraph) -> dict[str, Any]:
    return {
        "nodes": [[n.id, n.label, n.op, n.category, n.is_group, list(n.module_path)]
                  for n in dg.nodes],
        "edges": [[e.src, e.dst, e.label] for e in dg.edges],
    }


def graph_from_json(data: dict[str, Any]) -> DisplayGraph:
    nodes = [DisplayNode(i, label, op, cat, grp, tuple(mp), [i])
             for i, label, op, cat, grp, mp in data["nodes"]]
    return DisplayGraph(nodes, [DisplayEdge(s, d, label) for s, d, label in data["edges"]])


def dense_chain(n: int, seed: int) -> DisplayGraph:
    """A ResNet/DenseNet-like DAG: a chain with residuals, dense concats and random branches."""
    rng = random.Random(seed)
    nodes = [DisplayNode(f"n{i}", f"n{i}", "Conv", "conv", False, (), [f"n{i}"])
             for i in range(n)]
    edges = []
    for i in range(1, n):
        edges.append(DisplayEdge(f"n{i - 1}", f"n{i}", "1×64"))
        if i % 8 == 0 and i >= 6:
            edges.append(DisplayEdge(f"n{i - 6}", f"n{i}", "1×64"))
        if i % 50 == 0 and i >= 20:
            edges.extend(DisplayEdge(f"n{i - k}", f"n{i}", "cat") for k in range(2, 20, 3))
        if rng.random() < 0.1 and i + 3 < n:
            edges.append(DisplayEdge(f"n{i}", f"n{i + 3}", "branch"))
    return DisplayGraph(nodes, edges)


def cyclic_graph(n: int, seed: int) -> DisplayGraph:
    """Random edges in both directions (cycles, self loops, duplicates, unknown ends)."""
    rng = random.Random(seed)
    ops = ["Conv", "Add", "MatMul", "Relu", "Concat", "LayerNormalization"]
    nodes = [DisplayNode(f"v{i}", f"block{i % 7}.v{i}", rng.choice(ops), "x", i % 11 == 0,
                         ("block", str(i % 7)), [f"v{i}"]) for i in range(n)]
    edges = [DisplayEdge(f"v{rng.randrange(n)}", f"v{rng.randrange(n)}", f"e{k}")
             for k in range(2 * n)]
    edges += [DisplayEdge("v0", "v0"), DisplayEdge("v1", "missing"), DisplayEdge("v2", "v3"),
              DisplayEdge("v2", "v3", "again")]
    return DisplayGraph(nodes, edges)


SYNTHETIC = {"dense_chain": dense_chain, "cyclic_graph": cyclic_graph}


def synthetic(case: dict[str, Any]) -> DisplayGraph:
    return SYNTHETIC[case["kind"]](case["n"], case["seed"])


def load_cases() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]


CASES = load_cases() if FIXTURE.exists() else []


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_layout_matches_recorded_output(case: dict[str, Any]) -> None:
    if "graph" in case:
        lay = layered_layout(graph_from_json(case["graph"]), **case["options"])
        expected = case["layout"]
        got = layout_json(lay)
        for key in ("positions", "sizes", "layers", "width", "height"):
            assert got[key] == expected[key], key
        assert len(got["edges"]) == len(expected["edges"])
        for g, e in zip(got["edges"], expected["edges"], strict=True):
            assert g == e
    else:
        lay = layered_layout(synthetic(case), **case["options"])
        assert (lay.width, lay.height) == (case["width"], case["height"])
        assert digest(lay) == case["sha256"]


def test_fixture_covers_real_models_cycles_and_a_large_graph() -> None:
    assert [c["name"] for c in CASES] == [
        "zoo:resnet-mini", "resnet-mini_collapsed", "zoo:transformer-tiny",
        "transformer-tiny_default", "light_inception_v1", "squeezenet_collapsed",
        "dense_chain_3000", "cyclic_graph_300",
    ]


def _record() -> None:  # pragma: no cover - regenerates the fixture by hand
    import onnx

    from workbench.core.graph.describe import describe
    from workbench.core.graph.graph_layout import (
        build_display_graph,
        collapsible_modules,
        default_expanded,
    )
    from workbench.core.model.loaders import load_model

    light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    real = [
        ("zoo:resnet-mini", "zoo:resnet-mini", "all", {}),
        ("resnet-mini_collapsed", "zoo:resnet-mini", "none", {}),
        ("zoo:transformer-tiny", "zoo:transformer-tiny", "all", {}),
        ("transformer-tiny_default", "zoo:transformer-tiny", 40, TIGHT),
        ("light_inception_v1", str(light / "light_inception_v1.onnx"), "all", {}),
        ("squeezenet_collapsed", str(light / "light_squeezenet.onnx"), "none", {}),
    ]
    cases: list[dict[str, Any]] = []
    for name, source, expand, options in real:
        g = describe(load_model(source))
        expanded = (collapsible_modules(g) if expand == "all" else set() if expand == "none"
                    else default_expanded(g, int(expand)))
        dg = build_display_graph(g, expanded)
        cases.append({"name": name, "options": options, "graph": graph_json(dg),
                      "layout": layout_json(layered_layout(dg, **options))})
    for kind, n, seed, options in [("dense_chain", 3000, 0, {}), ("cyclic_graph", 300, 1, TIGHT)]:
        case: dict[str, Any] = {"name": f"{kind}_{n}", "kind": kind, "n": n,
                                "seed": seed, "options": options}
        lay = layered_layout(synthetic(case), **options)
        case.update(width=lay.width, height=lay.height, sha256=digest(lay))
        cases.append(case)
    FIXTURE.parent.mkdir(exist_ok=True)
    lines = ",\n".join(json.dumps(c, separators=(",", ":")) for c in cases)
    FIXTURE.write_text('{"cases": [\n' + lines + "\n]}\n", encoding="utf-8")


if __name__ == "__main__":
    _record()

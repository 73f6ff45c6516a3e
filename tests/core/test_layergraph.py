"""LayerGraph counts against onnx's own, and torch graphs against torch's FLOP counter."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.conftest import light_models
from workbench.core.graph.describe import describe
from workbench.core.graph.layergraph import edges_from_nodes, op_category
from workbench.core.model.loaders import load_model
from workbench.core.model.zoo import build_zoo

LIGHT = light_models()


def test_the_onnx_wheel_ships_light_models() -> None:
    assert len(LIGHT) >= 8
    assert any("densenet121" in p.name for p in LIGHT)


@pytest.mark.parametrize("path", LIGHT, ids=[p.stem for p in LIGHT])
def test_onnx_counts_equal_onnx_own(path: Path) -> None:
    import onnx

    model = onnx.load(str(path))
    graph = describe(load_model(str(path)))
    assert len(graph.nodes) == len(model.graph.node)
    assert graph.parameters == sum(math.prod(i.dims) for i in model.graph.initializer)
    assert len({n.name for n in graph.nodes}) == len(graph.nodes)  # names are unique
    # every edge joins a producer output to a consumer input
    producers = {t.name: n.name for n in graph.nodes for t in n.outputs}
    for e in graph.edges:
        assert producers[e.tensor] == e.src
        assert e.tensor in {t.name for t in graph.node(e.dst).inputs}
    assert graph.macs > 0
    summary = graph.summary()
    assert sum(summary["op_counts"].values()) == len(model.graph.node)


def test_onnx_macs_of_a_known_graph(onnx_mlp: Path) -> None:
    graph = describe(load_model(str(onnx_mlp)))
    assert graph.macs == 8 * 16 + 16 * 4  # two MatMuls at batch 1
    assert graph.node("/fc1/MatMul").module_path == ("fc1",)
    assert graph.node("/fc1/MatMul").params == 8 * 16
    assert graph.parameters == 8 * 16 + 16 + 16 * 4
    assert graph.size_bytes == graph.parameters * 4


def test_resnet50_macs_match_the_literature() -> None:
    path = next(p for p in LIGHT if "resnet50" in p.name)
    graph = describe(load_model(str(path)))
    assert 3.8e9 < graph.macs < 4.2e9  # ResNet-50 is ~4.1 GMACs at 224x224


@pytest.mark.parametrize("name", ["mlp", "lenet5", "resnet-mini", "mobilenet-mini", "gru"])
def test_torch_graph_macs_match_flop_counter(name: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    v = build_zoo(name)
    graph = describe(v)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        v.model(*v.example_inputs())
    expected = counter.get_total_flops() // 2
    assert graph.macs == pytest.approx(expected, rel=0.05)
    assert graph.parameters == sum(p.numel() for p in v.model.parameters())
    assert graph.edges, "a torch graph has edges"


def test_torch_graph_has_module_hierarchy() -> None:
    graph = describe(build_zoo("resnet-mini"))
    paths = graph.module_paths()
    assert ("layer1",) in paths
    assert ("layer1", "0", "conv1") in paths
    assert graph.module_types[("layer1", "0")] == "BasicBlock"
    conv = next(n for n in graph.nodes if n.module_path == ("layer1", "0", "conv1"))
    assert conv.op == "aten.conv2d"
    assert conv.param_names == ["layer1.0.conv1.weight"]
    assert conv.output_shape == (1, 32, 32, 32)
    assert conv.macs == 32 * 32 * 32 * 32 * 9


def test_transformer_graph_is_captured_by_export() -> None:
    graph = describe(build_zoo("transformer-tiny"))
    assert not graph.warnings
    assert any("encoder" in n.module_path for n in graph.nodes)
    assert graph.macs > 0


def test_torchscript_graph(tmp_path: Path) -> None:
    v = build_zoo("mlp")
    path = tmp_path / "m.pt"
    with pytest.warns(DeprecationWarning, match="deprecated"):
        torch.jit.script(v.model).save(str(path))
    graph = describe(load_model(str(path), input_shape=(1, 1, 8, 8)))
    assert graph.format == "torchscript"
    assert any("linear" in n.op for n in graph.nodes)
    assert graph.parameters == sum(p.numel() for p in v.model.parameters())


def test_module_tree_fallback_without_inputs(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(build_zoo("lenet5").model, path)
    graph = describe(load_model(str(path), trust=True))
    assert "module tree" in graph.warnings[0]
    assert [n.op for n in graph.nodes][:2] == ["Conv2d", "ReLU"]


def test_op_categories() -> None:
    assert op_category("Conv") == "conv"
    assert op_category("aten.conv2d") == "conv"
    assert op_category("Gemm") == "linear"
    assert op_category("aten.linear") == "linear"
    assert op_category("Relu") == "activation"
    assert op_category("BatchNormalization") == "norm"
    assert op_category("QuantizeLinear") == "quantize"
    assert op_category("Reshape") == "shape"
    assert op_category("MaxPool") == "pool"
    assert op_category("FancyCustomOp") == "other"


def test_edges_from_nodes_skips_unknown_producers() -> None:
    from workbench.core.graph.layergraph import Node, TensorInfo

    a = Node("a", "Relu", [TensorInfo("x")], [TensorInfo("t")])
    b = Node("b", "Relu", [TensorInfo("t"), TensorInfo("w")], [TensorInfo("y")])
    edges = edges_from_nodes([a, b])
    assert [(e.src, e.dst, e.tensor) for e in edges] == [("a", "b", "t")]


def test_constant_nodes_fold_away_in_the_display() -> None:
    from workbench.core.graph.graph_layout import build_display_graph, constant_nodes

    path = next(p for p in LIGHT if "densenet121" in p.name)
    graph = describe(load_model(str(path)))
    consts = constant_nodes(graph)
    ops = {graph.node(n).op for n in consts}
    assert ops <= {"Unsqueeze", "ConstantOfShape", "Constant", "Reshape"}, ops
    assert "Conv" not in ops
    assert len(consts) > 100
    every = {m for m in graph.module_paths()}
    shown = build_display_graph(graph, every, consts)
    assert sum(len(n.members) for n in shown.nodes) == len(graph.nodes) - len(consts)

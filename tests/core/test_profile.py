"""Per-layer profiles keyed by the layer graph's node names, for ONNX and torch variants."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from workbench.core.errors import InvalidParameterError
from workbench.core.graph.describe import describe
from workbench.core.graph.layergraph import LayerGraph, Node, TensorInfo, edges_from_nodes
from workbench.core.job_scope import job_scope
from workbench.core.measure.profile import LayerProfile, _OrtNameMap, profile_layers
from workbench.core.model.loaders import load_model
from workbench.core.model.onnx_export import exported_input_specs, torch_to_onnx
from workbench.core.model.variant import Variant
from workbench.core.model.zoo import build_zoo


def check_profile(profile: LayerProfile, variant: Variant, iters: int) -> None:
    names = [n.name for n in describe(variant).nodes]
    assert list(profile.times) == names  # every graph node, in graph order
    assert all(ms >= 0 for ms in profile.times.values())
    assert profile.rows, "some layer took time"
    assert [r.ms for r in profile.rows] == sorted((r.ms for r in profile.rows), reverse=True)
    assert {r.name for r in profile.rows} == {k for k, v in profile.times.items() if v > 0}
    assert sum(r.share for r in profile.rows) == pytest.approx(1.0)
    assert profile.attributed_ms == pytest.approx(sum(r.ms for r in profile.rows))
    assert 0 < profile.attributed_ms <= profile.total_ms * 1.05
    assert profile.iters == iters


def share_of(profile: LayerProfile, categories: set[str], variant: Variant) -> float:
    graph = describe(variant)
    return sum(r.share for r in profile.rows if graph.node(r.name).category in categories)


def onnx_variant(name: str) -> Variant:
    torch_variant = build_zoo(name)
    model = torch_to_onnx(torch_variant)
    return Variant(name, "onnx", model, "onnx", exported_input_specs(torch_variant, model))


def test_onnx_profile_uses_graph_names(onnx_mlp: Path) -> None:
    variant = load_model(str(onnx_mlp))
    profile = profile_layers(variant, iters=10, threads=1)
    check_profile(profile, variant, 10)
    assert profile.runtime == "ort"
    assert profile.batch == 1
    assert not profile.unmapped
    # ORT fuses MatMul+Add (and the Relu); the time lands on the MatMul nodes
    assert share_of(profile, {"linear"}, variant) > 0.9
    assert profile.times["/fc1/MatMul"] > 0
    assert profile.times["/fc2/MatMul"] > 0


def test_nameless_onnx_nodes_are_keyed_like_the_graph(onnx_mlp: Path) -> None:
    model = onnx.load(str(onnx_mlp))
    for node in model.graph.node:
        node.name = ""
    variant = Variant("nameless", "onnx", model, "onnx", load_model(str(onnx_mlp)).inputs)
    profile = profile_layers(variant, batch=4, iters=5, threads=1)
    check_profile(profile, variant, 5)
    assert set(profile.times) == {"h0", "h1", "h2", "y"}  # graph_onnx names them by output
    assert profile.times["h0"] > 0
    assert profile.times["y"] > 0
    assert all(not n.name for n in model.graph.node)  # the caller's model is untouched


def test_onnx_resnet_profile_is_dominated_by_convolutions() -> None:
    variant = onnx_variant("resnet-mini")
    profile = profile_layers(variant, batch=2, iters=5, threads=1)
    check_profile(profile, variant, 5)
    assert not profile.unmapped  # fused and NCHWc kernels all map back
    assert share_of(profile, {"conv"}, variant) > 0.6


def test_torch_profile_spreads_module_time_over_graph_nodes() -> None:
    variant = build_zoo("resnet-mini")
    with job_scope():  # torch's thread count is the job scope's to set
        profile = profile_layers(variant, batch=2, iters=5, threads=1)
    check_profile(profile, variant, 5)
    assert profile.runtime == "torch"
    assert share_of(profile, {"conv"}, variant) > 0.5
    graph = describe(variant)
    convs = [n.name for n in graph.nodes if n.category == "conv"]
    assert all(profile.times[c] > 0 for c in convs)
    top = graph.node(profile.rows[0].name)
    assert profile.rows[0].module == ".".join(top.module_path)
    # hooks were put on a copy: the variant's modules carry none
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in variant.model.modules())


def test_torch_profile_of_a_recurrent_model() -> None:
    variant = build_zoo("gru")
    with job_scope():
        profile = profile_layers(variant, iters=5, threads=1)
    check_profile(profile, variant, 5)
    assert profile.rows[0].op == "aten.gru"


def test_profile_refuses_what_it_cannot_do(onnx_mlp: Path) -> None:
    torch_variant = build_zoo("mlp")
    onnx_model = load_model(str(onnx_mlp))
    with pytest.raises(InvalidParameterError, match="convert"):
        profile_layers(torch_variant, runtime="ort")
    with pytest.raises(InvalidParameterError, match="ONNX"):
        profile_layers(onnx_model, runtime="torch")
    for bad in ({"batch": 0}, {"iters": 0}, {"runtime": "tvm"}, {"threads": 0}):
        with pytest.raises(InvalidParameterError):
            profile_layers(torch_variant, **bad)  # type: ignore[arg-type]


def test_ort_kernel_names_map_back_to_graph_nodes() -> None:
    def t(name: str) -> TensorInfo:
        return TensorInfo(name, (1, 4, 8, 8))

    nodes = [Node("conv", "Conv", [t("x")], [t("c")]),
             Node("bn", "BatchNormalization", [t("c")], [t("b")]),
             Node("relu", "Relu", [t("b")], [t("r")]),
             Node("/fc/MatMul", "MatMul", [t("r")], [t("m")]),
             Node("/fc/Add", "Add", [t("m")], [t("y")])]
    mapper = _OrtNameMap(LayerGraph("onnx", nodes, edges_from_nodes(nodes)))
    assert mapper.find("relu", "Relu") == "relu"
    assert mapper.find("r_nchwc", "Conv") == "conv"  # Conv+BN+Relu fused, named by tensor
    assert mapper.find("fused /fc/MatMul", "Gemm") == "/fc/MatMul"
    assert mapper.find("/fc/MatMul/MatMulAddFusion", "Gemm") == "/fc/MatMul"
    assert mapper.find("ReorderOutput", "ReorderOutput") is None  # no optimized graph given

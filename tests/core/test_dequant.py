"""Quantized ONNX weights read back as floats under their layers' names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from workbench.core.graph.dequant import (
    dequantize,
    dequantized_initializers,
    is_internal_name,
    match_to_parent,
    node_layers,
    original_name,
    quantized_weights,
)
from workbench.core.graph.stats import named_weights, weight_aliases, weight_stats
from workbench.core.model.loaders import load_model


def _qdq_model() -> tuple[onnx.ModelProto, np.ndarray, np.ndarray, np.ndarray]:
    """x @ W (W per-column int8 through DequantizeLinear, axis 1) and a shape constant."""
    q = np.array([[-127, 0, 5], [64, 127, -3]], dtype=np.int8)  # (in 2, out 3)
    scale = np.array([0.5, 0.25, 0.1], dtype=np.float32)
    zp = np.array([0, 2, -1], dtype=np.int8)
    inits = [numpy_helper.from_array(q, "fc.weight_quantized"),
             numpy_helper.from_array(scale, "fc.weight_scale"),
             numpy_helper.from_array(zp, "fc.weight_zero_point"),
             numpy_helper.from_array(np.array([1, 3], dtype=np.int64), "val_171")]
    nodes = [helper.make_node("DequantizeLinear", ["fc.weight_quantized", "fc.weight_scale",
                                                   "fc.weight_zero_point"], ["w"], axis=1),
             helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Reshape", ["h", "val_171"], ["y"])]
    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), q, scale, zp


def test_a_qdq_weight_is_dequantized_per_channel_under_its_float_name() -> None:
    model, q, scale, zp = _qdq_model()
    found = quantized_weights(model)
    assert list(found) == ["fc.weight_quantized"]
    w = found["fc.weight_quantized"]
    assert (w.name, w.scale, w.zero_point, w.axis) == (
        "fc.weight", "fc.weight_scale", "fc.weight_zero_point", 1)
    values, aliases, used = dequantized_initializers(model)
    expected = (q.astype(np.float32) - zp.astype(np.float32)) * scale
    np.testing.assert_allclose(values["fc.weight"], expected)
    assert values["fc.weight"][0, 1] == pytest.approx(-0.5)  # 0.25 × (0 − 2)
    assert aliases == {"fc.weight_quantized": "fc.weight"}
    assert used == {"fc.weight_scale", "fc.weight_zero_point"}


def test_named_weights_show_floats_and_drop_scales_and_shape_constants() -> None:
    model, *_ = _qdq_model()
    from workbench.core.model.variant import Variant

    variant = Variant("q", "onnx", model, "onnx", ())
    weights = named_weights(variant)
    assert list(weights) == ["fc.weight"]  # no fc.weight_scale, no val_171
    assert weights["fc.weight"].dtype == np.float32  # numpy, read without torch
    assert float(np.abs(weights["fc.weight"]).max()) <= 127 * 0.5
    assert weight_aliases(variant) == {"fc.weight_quantized": "fc.weight"}


def test_transposed_names_and_layout() -> None:
    assert original_name("fc.weight_Transposed_quantized") == ("fc.weight", True)
    assert original_name("conv.weight_quantized") == ("conv.weight", False)
    from workbench.core.graph.dequant import QuantizedWeight

    w = QuantizedWeight("fc.weight_Transposed_quantized", "fc.weight", "s", "z", 1, True)
    arrays = {"fc.weight_Transposed_quantized": np.array([[1, 2, 3], [4, 5, 6]], np.int8),
              "s": np.array([1.0, 2.0, 3.0], np.float32), "z": np.zeros(3, np.int8)}
    out = dequantize(w, arrays)
    assert out.shape == (3, 2)  # back in torch's (out, in) layout
    np.testing.assert_allclose(out, [[1, 4], [4, 10], [9, 18]])


def test_onnx_runtime_dynamic_int8_reads_back_close_to_the_float_weights(
        onnx_mlp: Path, tmp_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = tmp_path / "int8.onnx"
    quantize_dynamic(str(onnx_mlp), str(out), weight_type=QuantType.QInt8, per_channel=True)
    float_weights = named_weights(load_model(str(onnx_mlp)))
    int8 = load_model(str(out))
    raw = {i.name for i in int8.model.graph.initializer}
    assert "fc1.w_quantized" in raw  # ONNX Runtime's own naming
    weights = named_weights(int8)
    assert {"fc1.w", "fc2.w"} <= set(weights)
    assert not any(n.endswith(("_scale", "_zero_point", "_quantized")) for n in weights)
    for name in ("fc1.w", "fc2.w"):
        ref = float_weights[name]
        assert weights[name].shape == ref.shape
        err = float(np.abs(weights[name] - ref).max())
        assert err <= float(np.abs(ref).max()) / 100  # within an int8 step, not ±127
    stats = weight_stats(int8)
    assert stats.tensors["fc1.w"].max < 10  # floats, not the raw −127…127 integers


def test_match_to_parent_by_name_then_by_shape() -> None:
    child = {"stem.0.weight": (8, 3, 3, 3), "onnx::MatMul_12": (16, 10), "extra": (5,),
             "stem.0.bias": (8,)}
    parent = {"stem.0.weight": (8, 3, 3, 3), "stem.1.weight": (8,), "fc.weight": (10, 16)}
    # a real name (a folded conv's new bias) is never passed off as another layer's weight
    assert match_to_parent(child, parent) == {"stem.0.weight": "stem.0.weight",
                                              "onnx::MatMul_12": "fc.weight"}
    assert is_internal_name("val_171")
    assert is_internal_name("onnx::Conv_3")
    assert not is_internal_name("layer1.0.conv1.weight")


def test_node_layers_name_nodes_after_their_weights() -> None:
    model, *_ = _qdq_model()
    model.graph.node[1].name = "node_MatMul_7"
    # the MatMul reads the dequantized output, not an initializer: no layer for it
    assert node_layers(model) == {}
    model.graph.node[1].input[1] = "fc.weight_quantized"
    assert node_layers(model) == {"node_MatMul_7": "fc"}

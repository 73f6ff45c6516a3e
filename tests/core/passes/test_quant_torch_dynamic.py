"""PyTorch dynamic int8: Linear/LSTM/GRU weights become int8, the model still runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from workbench.core.errors import InvalidParameterError
from workbench.core.graph.stats import named_weights, weight_stats
from workbench.core.model.loaders import load_model
from workbench.core.model.runtime import run_variant
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import PassError, apply_pass, fingerprint
from workbench.core.passes.quant_torch_dynamic import TorchDynamicQuantize


def _quantized(model: nn.Module) -> dict[str, str]:
    return {n: type(m).__name__ for n, m in model.named_modules()
            if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")
            and "Packed" not in type(m).__name__}


def test_mlp_linears_become_int8() -> None:
    v = build_zoo("mlp")
    stamp = fingerprint(v)
    result = apply_pass(TorchDynamicQuantize(), v, {})
    assert fingerprint(v) == stamp
    new = result.variant
    assert _quantized(new.model) == {"1": "Linear", "3": "Linear", "5": "Linear"}
    assert _quantized(v.model) == {}  # the parent keeps float layers
    details = result.report.details
    assert details["quantized_layers"] == ["1", "3", "5"]
    assert details["size_bytes_after"] < details["size_bytes_before"] / 2
    fid = details["fidelity"]
    assert fid["cosine"] > 0.99
    assert set(fid["per_layer"]) == {"1", "3", "5"}
    assert all(20 < db < 80 for db in fid["per_layer"].values())
    assert run_variant(new, v.example_inputs(batch=4)).shape == (4, 10)


def test_weight_stats_read_the_packed_int8_weights() -> None:
    v = build_zoo("mlp")
    new = apply_pass(TorchDynamicQuantize(), v, {"per_channel": False}).variant
    weights = named_weights(new)
    assert set(weights) == {"1.weight", "3.weight", "5.weight"}
    assert weights["1.weight"].shape == v.model[1].weight.shape
    assert weights["1.weight"].dtype == torch.float32
    assert torch.allclose(weights["1.weight"], v.model[1].weight, atol=0.01)
    stats = weight_stats(new)
    assert stats.tensors["3.weight"].distinct is not None  # per-tensor int8: <= 256 values
    assert stats.tensors["3.weight"].distinct <= 256


@pytest.mark.parametrize(("name", "layers"), [
    ("gru", {"gru": "GRU", "fc": "Linear"}),
    ("transformer-tiny", None),
])
def test_recurrent_and_attention_models(name: str, layers: dict[str, str] | None) -> None:
    v = build_zoo(name)
    result = apply_pass(TorchDynamicQuantize(), v, {})
    quantized = _quantized(result.variant.model)
    if layers is not None:
        assert quantized == layers
    else:  # the encoder's feed-forward Linears, embed and head (not MHA's out_proj)
        assert "encoder.layers.0.linear1" in quantized
        assert "encoder.layers.0.self_attn.out_proj" not in quantized
    assert result.report.details["fidelity"]["cosine"] > 0.99
    out = run_variant(result.variant, v.example_inputs(batch=3))
    assert out.shape == (3, 10)
    assert np.isfinite(out).all()


def test_layer_types_select_what_is_quantized() -> None:
    v = build_zoo("gru")
    result = apply_pass(TorchDynamicQuantize(), v, {"layer_types": ["GRU"]})
    assert _quantized(result.variant.model) == {"gru": "GRU"}


def test_nothing_to_quantize() -> None:
    conv = Variant("conv", "torch", nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval(), "zoo",
                   (InputSpec("x", (1, 1, 8, 8)),))
    stamp = fingerprint(conv)
    with pytest.raises(PassError, match="no Linear / LSTM / GRU layer"):
        apply_pass(TorchDynamicQuantize(), conv, {})
    with pytest.raises(PassError, match="no LSTM layer"):
        apply_pass(TorchDynamicQuantize(), build_zoo("mlp"), {"layer_types": ["LSTM"]})
    assert fingerprint(conv) == stamp


@pytest.mark.parametrize("params", [{"layer_types": ["Conv2d"]}, {"layer_types": []},
                                    {"per_channel": "often"}])
def test_bad_params(params: dict[str, object]) -> None:
    v = build_zoo("mlp")
    stamp = fingerprint(v)
    with pytest.raises(InvalidParameterError):
        apply_pass(TorchDynamicQuantize(), v, params)
    assert fingerprint(v) == stamp


def test_onnx_is_the_wrong_backend(onnx_mlp: Path) -> None:
    with pytest.raises(PassError, match="works on torch"):
        apply_pass(TorchDynamicQuantize(), load_model(str(onnx_mlp)), {})

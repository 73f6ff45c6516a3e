"""N:M semi-structured sparsity: the pattern holds, the largest weights stay, errors are clear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from workbench.core.errors import InvalidParameterError
from workbench.core.model.loaders import load_model
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import PassError, PassResult, apply_pass, fingerprint
from workbench.core.passes.prune_nm import NMPrune


def _rows(result: PassResult) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in result.report.details["layers"]}


def _reference_mask(w: np.ndarray, n: int, m: int) -> np.ndarray:
    """N:M keep-mask in numpy, groups along the last axis (ties broken by position)."""
    groups = np.abs(w).reshape(-1, m)
    order = np.argsort(-groups, axis=1, kind="stable")[:, :n]
    mask = np.zeros_like(groups, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask.reshape(w.shape)


@pytest.fixture(scope="module")
def mlp() -> Variant:
    return build_zoo("mlp")


@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 4), (4, 8)])
def test_linear_layers_follow_the_pattern(mlp: Variant, n: int, m: int) -> None:
    stamp = fingerprint(mlp)
    result = apply_pass(NMPrune(), mlp, {"n": n, "m": m})
    assert fingerprint(mlp) == stamp
    assert result.report.details["pattern"] == f"{n}:{m}"
    assert result.report.details["sparsity"] == pytest.approx(1 - n / m)
    for name in ("1", "3", "5"):
        old = mlp.model.get_submodule(name).weight.detach().numpy()
        new = result.variant.model.get_submodule(name).weight.detach().numpy()
        keep = _reference_mask(old, n, m)
        np.testing.assert_array_equal(new, np.where(keep, old, 0.0))
        assert ((new.reshape(-1, m) != 0).sum(axis=1) == n).all()
        assert _rows(result)[name]["sparsity"] == pytest.approx(1 - n / m)
    assert result.report.after["sparsity"] == pytest.approx(1 - n / m, abs=0.02)  # + biases
    with torch.no_grad():
        assert result.variant.model(*mlp.example_inputs()).shape == (1, 10)


def test_conv_groups_run_along_input_channels() -> None:
    # untrained: no tied magnitudes (fp16-stored trained weights have ties, which the
    # reference mask below may break the other way)
    variant = build_zoo("resnet-mini", trained=False)
    result = apply_pass(NMPrune(), variant, {})
    conv = result.variant.model.layer1[0].conv1.weight.detach()  # (32, 32, 3, 3)
    old = variant.model.layer1[0].conv1.weight.detach()
    channels_last = conv.permute(0, 2, 3, 1).numpy()  # groups of 4 input channels per tap
    assert ((channels_last.reshape(-1, 4) != 0).sum(axis=1) == 2).all()
    keep = _reference_mask(old.permute(0, 2, 3, 1).numpy(), 2, 4)
    np.testing.assert_array_equal(channels_last,
                                  np.where(keep, old.permute(0, 2, 3, 1).numpy(), 0.0))
    rows = _rows(result)
    assert rows["stem.0"]["pruned"] is False  # one input channel: skipped with a warning
    assert rows["stem.0"]["sparsity"] == 0.0
    assert any("stem.0" in w for w in result.report.warnings)
    assert rows["fc"]["pruned"] is True
    assert "CUDA" in result.report.details["acceleration"]


def test_depthwise_convs_are_skipped() -> None:
    result = apply_pass(NMPrune(), build_zoo("mobilenet-mini"), {})
    rows = _rows(result)
    assert rows["blocks.0.block.3"]["pruned"] is False  # depthwise: one input per group
    assert rows["blocks.0.block.0"]["pruned"] is True
    assert rows["blocks.0.block.0"]["sparsity"] == pytest.approx(0.5)


def test_ignore_and_layer_types(mlp: Variant) -> None:
    result = apply_pass(NMPrune(), mlp, {"ignore": ["3"], "layer_types": ["linear"]})
    assert set(_rows(result)) == {"1", "5"}
    assert torch.equal(result.variant.model[3].weight, mlp.model[3].weight)


@pytest.mark.parametrize("params", [
    {"n": 4, "m": 4}, {"n": 5, "m": 4}, {"n": 0}, {"m": 1}, {"m": 64},
    {"layer_types": ["embedding"]}, {"layer_types": ["attention"]}, {"ignore": ["7"]},
])
def test_bad_params_are_rejected(mlp: Variant, params: dict[str, Any]) -> None:
    stamp = fingerprint(mlp)
    with pytest.raises(InvalidParameterError):
        apply_pass(NMPrune(), mlp, params)
    assert fingerprint(mlp) == stamp


def test_onnx_models_are_rejected(onnx_mlp: Path) -> None:
    with pytest.raises(PassError, match="works on torch"):
        apply_pass(NMPrune(), load_model(str(onnx_mlp)), {})


def test_nothing_to_prune(mlp: Variant) -> None:
    relu = Variant("relu", "torch", nn.Sequential(nn.ReLU()), "zoo",
                   inputs=(InputSpec("x", (1, 4)),))
    with pytest.raises(PassError, match="nothing to prune"):
        apply_pass(NMPrune(), relu, {})
    with pytest.raises(PassError, match="nothing to prune"):
        apply_pass(NMPrune(), mlp, {"ignore": ["1", "3", "5"]})
    with pytest.raises(PassError, match="divisible by m=7"):
        apply_pass(NMPrune(), mlp, {"n": 3, "m": 7})  # inputs are 64, 128 and 64

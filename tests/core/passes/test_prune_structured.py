"""Structured pruning: channels really go, the graph stays consistent, errors are clear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from workbench.core.errors import InvalidParameterError
from workbench.core.graph.analysis import Analysis, analyse
from workbench.core.graph.describe import describe
from workbench.core.jobs import run_job
from workbench.core.model.loaders import load_model
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import PassError, PassResult, apply_pass, fingerprint
from workbench.core.passes.prune_structured import StructuredPrune
from workbench.core.passes.prune_unstructured import MagnitudePrune


def _rows(result: PassResult) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in result.report.details["layers"]}


def _check_shrunk(before: Variant, result: PassResult) -> None:
    """Fewer parameters and MACs; runs on a new batch size with the same output shape."""
    b, a = result.report.before, result.report.after
    assert a["parameters"] < b["parameters"]
    assert 0 < a["macs"] < b["macs"]
    x = before.example_inputs(batch=3)
    with torch.no_grad():
        assert result.variant.model(*x).shape == before.model(*x).shape


@pytest.fixture(scope="module")
def resnet_analysis() -> Analysis:
    """resnet-mini, analysed once (apply_pass takes an Analysis and skips re-describing)."""
    return run_job(analyse(build_zoo("resnet-mini")))


@pytest.fixture(scope="module")
def resnet(resnet_analysis: Analysis) -> Variant:
    return resnet_analysis.variant


@pytest.fixture(scope="module")
def resnet_half(resnet_analysis: Analysis) -> tuple[str, PassResult]:
    stamp = fingerprint(resnet_analysis.variant)
    return stamp, apply_pass(StructuredPrune(), resnet_analysis, {"ratio": 0.5})


def test_resnet_half_the_channels_quarter_the_macs(resnet: Variant,
                                                   resnet_half: tuple[str, PassResult]) -> None:
    stamp, result = resnet_half
    assert fingerprint(resnet) == stamp  # the input is untouched
    _check_shrunk(resnet, result)
    assert result.report.after["macs"] / result.report.before["macs"] <= 0.35
    assert describe(result.variant).macs == result.report.after["macs"]
    rows = _rows(result)
    assert rows["fc"]["after"] == rows["fc"]["before"] == 10  # the classifier is kept whole
    assert result.report.details["kept_whole"] == ["fc"]
    for name in ("stem.0", "layer1.0.conv1", "layer3.1.conv2", "layer2.0.shortcut.0"):
        assert rows[name]["after"] == rows[name]["before"] // 2, name
    model = result.variant.model
    # residual branches stay in step: the shortcut and conv2 outputs still add up
    block = model.layer2[0]
    assert block.conv2.out_channels == block.shortcut[0].out_channels == block.bn2.num_features
    assert model.fc.in_features == model.layer3[1].conv2.out_channels
    assert result.report.details["channels_removed"] > 0


def test_mobilenet_depthwise_convs_stay_depthwise() -> None:
    variant = build_zoo("mobilenet-mini")
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5})
    _check_shrunk(variant, result)
    depthwise = [m for m in result.variant.model.modules()
                 if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 5
    for conv in depthwise:
        assert conv.groups == conv.in_channels == conv.out_channels
        assert conv.out_channels < 4 * 64
    assert _rows(result)["blocks.0.block.3"]["after"] == 32  # 64 hidden channels -> 32


@pytest.mark.parametrize("name", ["lenet5", "mlp"])
def test_small_models_shrink(name: str) -> None:
    variant = build_zoo(name)
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5, "importance": "l2"})
    _check_shrunk(variant, result)


def test_transformer_keeps_heads_even() -> None:
    variant = build_zoo("transformer-tiny")
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.3})
    _check_shrunk(variant, result)
    attn = [m for m in result.variant.model.modules() if isinstance(m, nn.MultiheadAttention)]
    for m in attn:
        assert m.embed_dim < 64
        assert m.embed_dim % m.num_heads == 0
        assert m.head_dim * m.num_heads == m.embed_dim


def test_unsupported_layers_give_a_clear_error() -> None:
    with pytest.raises(PassError, match=r"nothing to prune.*GRU"):
        apply_pass(StructuredPrune(), build_zoo("gru"), {"ratio": 0.5})


def test_ignore_list_is_honoured(resnet_analysis: Analysis) -> None:
    result = apply_pass(StructuredPrune(), resnet_analysis,
                        {"ratio": 0.5, "ignore": ["layer1.0.conv1", "layer3.0"]})
    rows = _rows(result)
    assert rows["layer1.0.conv1"]["after"] == 32
    assert rows["layer1.1.conv1"]["after"] == 16
    assert rows["layer3.0.conv1"]["after"] == 128  # a whole block named by its parent
    assert result.variant.model.layer1[0].conv1.out_channels == 32


def test_round_to_keeps_multiples(resnet_analysis: Analysis) -> None:
    result = apply_pass(StructuredPrune(), resnet_analysis, {"ratio": 0.3, "round_to": 8})
    rows = [r for r in result.report.details["layers"] if r["name"] != "fc"]
    assert all(r["after"] % 8 == 0 for r in rows)
    assert any(r["after"] < r["before"] for r in rows)


@pytest.mark.parametrize("importance", ["l1", "bn_scale", "random"])
def test_importance_picks_which_channels_go(resnet_analysis: Analysis, importance: str,
                                            resnet_half: tuple[str, PassResult]) -> None:
    _, l1 = resnet_half
    result = apply_pass(StructuredPrune(), resnet_analysis,
                        {"ratio": 0.5, "importance": importance})
    assert result.report.after["macs"] == l1.report.after["macs"]  # same widths
    same = fingerprint(result.variant) == fingerprint(l1.variant)
    assert same == (importance == "l1")


def test_random_importance_is_seeded(resnet_analysis: Analysis) -> None:
    def run(seed: int) -> str:
        params = {"ratio": 0.4, "importance": "random", "seed": seed}
        return fingerprint(apply_pass(StructuredPrune(), resnet_analysis, params).variant)

    state = torch.random.get_rng_state()
    assert run(1) == run(1) != run(2)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_l1_keeps_the_strongest_filters() -> None:
    variant = build_zoo("mlp")
    first = variant.model[1]
    with torch.no_grad():
        first.weight[:64] *= 10  # the first 64 hidden units dominate
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5})
    torch.testing.assert_close(result.variant.model[1].weight, first.weight[:64])


@pytest.mark.parametrize("params", [
    {"ratio": 0.95}, {"ratio": -0.1}, {"importance": "taylor"}, {"round_to": 0},
    {"round_to": 2.5}, {"ignore": ["layer9"]}, {"seed": -1},
])
def test_bad_params_are_rejected(resnet_analysis: Analysis, params: dict[str, Any]) -> None:
    stamp = fingerprint(resnet_analysis.variant)
    with pytest.raises(InvalidParameterError):
        apply_pass(StructuredPrune(), resnet_analysis, params)
    assert fingerprint(resnet_analysis.variant) == stamp


def test_onnx_models_are_rejected(onnx_mlp: Path) -> None:
    with pytest.raises(PassError, match="works on torch"):
        apply_pass(StructuredPrune(), load_model(str(onnx_mlp)), {"ratio": 0.5})


def test_nothing_to_prune() -> None:
    relu = Variant("relu", "torch", nn.Sequential(nn.ReLU()), "zoo",
                   inputs=(InputSpec("x", (1, 4)),))
    with pytest.raises(PassError, match="nothing to prune"):
        apply_pass(StructuredPrune(), relu, {"ratio": 0.5})
    mlp = build_zoo("mlp")
    with pytest.raises(PassError, match="nothing to prune"):
        apply_pass(StructuredPrune(), mlp, {"ignore": ["1", "3"]})  # "5" is the output


def test_groups_reaching_the_output_are_kept_whole() -> None:
    class TwoBranches(nn.Module):  # the output is a sum, not any layer's own output
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(8, 16)
            self.b = nn.Linear(16, 16)
            self.c = nn.Linear(8, 16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.relu(self.a(x))) + self.c(x)

    variant = Variant("branches", "torch", TwoBranches().eval(), "zoo",
                      inputs=(InputSpec("x", (1, 8)),))
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5})
    assert sorted(result.report.details["kept_whole"]) == ["b", "c"]
    model = result.variant.model
    assert (model.a.out_features, model.b.out_features, model.c.out_features) == (8, 16, 16)
    with torch.no_grad():
        assert model(*variant.example_inputs()).shape == (1, 16)


def test_training_mode_model_keeps_its_mode_and_statistics() -> None:
    variant = build_zoo("resnet-mini")
    variant.model.train()
    stamp = fingerprint(variant)  # includes BatchNorm running statistics
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5, "ignore": ["layer1.0.conv1"]})
    assert fingerprint(variant) == stamp
    assert variant.model.training
    assert result.variant.model.training
    kept_bn, old_bn = result.variant.model.layer1[0].bn1, variant.model.layer1[0].bn1
    assert torch.equal(kept_bn.running_mean, old_bn.running_mean)
    assert int(kept_bn.num_batches_tracked) == int(old_bn.num_batches_tracked)


def test_masked_unstructured_result_can_be_pruned_structurally() -> None:
    lenet = build_zoo("lenet5")
    masked = apply_pass(MagnitudePrune(), lenet, {"sparsity": 0.5, "permanent": False})
    result = apply_pass(StructuredPrune(), masked.variant, {"ratio": 0.5})
    _check_shrunk(lenet, result)
    assert not any(hasattr(m, "weight_orig") for m in result.variant.model.modules())

"""Unstructured pruning: magnitude and random masks, the preview, and the error cases."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from workbench.core.errors import InvalidParameterError
from workbench.core.graph.describe import describe
from workbench.core.model.loaders import load_model
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import PassError, apply_pass, fingerprint
from workbench.core.passes.prune_unstructured import MagnitudePrune, RandomPrune, preview_sparsity

LENET_LAYERS = ["0", "3", "7", "9", "11"]  # conv, conv, linear, linear, linear


def _layers(result: Any) -> dict[str, float]:
    return {row["name"]: row["sparsity"] for row in result.report.details["layers"]}


def _zeros(t: torch.Tensor) -> float:
    return float((t == 0).float().mean())


def relu_only() -> Variant:
    return Variant("relu", "torch", nn.Sequential(nn.ReLU()), "zoo",
                   inputs=(InputSpec("x", (1, 4)),))


@pytest.fixture(scope="module")
def lenet() -> Variant:
    return build_zoo("lenet5")


def test_magnitude_layer_scope_zeroes_the_smallest_weights(lenet: Variant) -> None:
    stamp = fingerprint(lenet)
    result = apply_pass(MagnitudePrune(), lenet, {"sparsity": 0.6})
    assert fingerprint(lenet) == stamp
    assert set(_layers(result)) == set(LENET_LAYERS)
    new = dict(result.variant.model.named_modules())
    old = dict(lenet.model.named_modules())
    for name in LENET_LAYERS:
        w_new, w_old = new[name].weight.detach(), old[name].weight.detach()
        assert _zeros(w_new) == pytest.approx(0.6, abs=0.005)
        kept = w_new != 0
        assert torch.equal(w_new[kept], w_old[kept])  # survivors unchanged
        assert w_old[~kept].abs().max() <= w_old[kept].abs().min()  # the smallest went
        assert not hasattr(new[name], "weight_mask")  # permanent: no masks left
    assert result.report.after["sparsity"] > result.report.before["sparsity"] + 0.5
    assert result.report.after["parameters"] == result.report.before["parameters"]
    assert result.variant.recipe[-1]["pass"] == "prune.magnitude"
    with torch.no_grad():
        assert result.variant.model(*lenet.example_inputs()).shape == (1, 10)


def test_magnitude_global_scope_uses_one_threshold(lenet: Variant) -> None:
    result = apply_pass(MagnitudePrune(), lenet, {"sparsity": 0.7, "scope": "global"})
    layers = _layers(result)
    assert result.report.details["sparsity"] == pytest.approx(0.7, abs=0.002)
    assert max(layers.values()) - min(layers.values()) > 0.1  # layers differ
    new = dict(result.variant.model.named_modules())
    kept_min = min(float(new[n].weight.detach()[new[n].weight != 0].abs().min())
                   for n in layers)
    old = dict(lenet.model.named_modules())
    dropped_max = max(float(old[n].weight.detach()[new[n].weight == 0].abs().max())
                      for n in layers)
    assert dropped_max <= kept_min


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_preview_agrees_with_the_applied_result(scope: str) -> None:
    variant = build_zoo("resnet-mini")
    stamp = fingerprint(variant)
    params = {"sparsity": 0.8, "scope": scope, "ignore": ["stem"]}
    preview = preview_sparsity(variant, params)
    assert fingerprint(variant) == stamp
    assert "stem.0" not in preview
    applied = _layers(apply_pass(MagnitudePrune(), variant, params))
    assert preview.keys() == applied.keys()
    for name, value in applied.items():
        assert preview[name] == pytest.approx(value, abs=0.01), name


@pytest.mark.perf
def test_preview_is_fast_once_warm(lenet: Variant, perf_figure: Callable[[str], None]) -> None:
    preview_sparsity(lenet, {"sparsity": 0.1, "scope": "global"})
    start = time.perf_counter()
    for s in (0.2, 0.4, 0.6, 0.8):
        preview_sparsity(lenet, {"sparsity": s, "scope": "global"})
    per_preview = (time.perf_counter() - start) / 4
    perf_figure(f"sparsity preview: {per_preview * 1000:.1f} ms")
    assert per_preview < 0.02


def test_preview_of_random_pruning_is_the_expected_share(lenet: Variant) -> None:
    preview = preview_sparsity(lenet, RandomPrune.Params(sparsity=0.3))
    assert preview == pytest.approx(dict.fromkeys(LENET_LAYERS, 0.3), abs=1e-3)


def test_non_permanent_keeps_masks_and_still_works(lenet: Variant) -> None:
    masked = apply_pass(MagnitudePrune(), lenet, {"sparsity": 0.5, "permanent": False})
    baked = apply_pass(MagnitudePrune(), lenet, {"sparsity": 0.5})
    conv = masked.variant.model[0]
    assert hasattr(conv, "weight_orig")
    assert hasattr(conv, "weight_mask")
    assert _zeros(conv.weight_mask) == pytest.approx(0.5, abs=0.01)
    assert _layers(masked) == _layers(baked)
    assert any("weight_orig" in w for w in masked.report.warnings)
    x = lenet.example_inputs()
    with torch.no_grad():
        torch.testing.assert_close(masked.variant.model(*x), baked.variant.model(*x))
    copy.deepcopy(masked.variant.model)  # later passes clone their input
    assert describe(masked.variant).macs == describe(baked.variant).macs
    # a second pass on the masked model works on the effective weights
    again = apply_pass(MagnitudePrune(), masked.variant, {"sparsity": 0.7})
    assert list(_layers(again).values()) == pytest.approx([0.7] * 5, abs=0.005)
    assert not hasattr(again.variant.model[0], "weight_orig")


def test_ignore_and_layer_types_are_honoured(lenet: Variant) -> None:
    result = apply_pass(MagnitudePrune(), lenet,
                        {"sparsity": 0.5, "layer_types": "linear", "ignore": ["9"]})
    assert set(_layers(result)) == {"7", "11"}
    model = result.variant.model
    for name in ("0", "3", "9"):
        assert torch.equal(model.get_submodule(name).weight,
                           lenet.model.get_submodule(name).weight)
    assert _zeros(model.get_submodule("7").weight) == pytest.approx(0.5, abs=0.005)


def test_random_pruning_is_seeded_and_reproducible(lenet: Variant) -> None:
    state = torch.random.get_rng_state()
    a = apply_pass(RandomPrune(), lenet, {"sparsity": 0.5, "seed": 3})
    b = apply_pass(RandomPrune(), lenet, {"sparsity": 0.5, "seed": 3})
    c = apply_pass(RandomPrune(), lenet, {"sparsity": 0.5, "seed": 4})
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG left alone
    assert fingerprint(a.variant) == fingerprint(b.variant)
    assert fingerprint(a.variant) != fingerprint(c.variant)
    assert list(_layers(a).values()) == pytest.approx([0.5] * 5, abs=0.005)
    magnitude = apply_pass(MagnitudePrune(), lenet, {"sparsity": 0.5})
    assert fingerprint(a.variant) != fingerprint(magnitude.variant)


def test_random_global_scope(lenet: Variant) -> None:
    result = apply_pass(RandomPrune(), lenet, {"sparsity": 0.4, "scope": "global"})
    assert result.report.details["sparsity"] == pytest.approx(0.4, abs=0.002)


@pytest.mark.parametrize("params", [
    {"sparsity": 1.5}, {"sparsity": -0.1}, {"sparsity": "lots"}, {"scope": "everywhere"},
    {"layer_types": ["conv", "lstm"]}, {"layer_types": []}, {"ignore": ["no.such.layer"]},
    {"permanent": "maybe"}, {"seeed": 1},
])
def test_bad_params_are_rejected(lenet: Variant, params: dict[str, Any]) -> None:
    stamp = fingerprint(lenet)
    with pytest.raises(InvalidParameterError):
        apply_pass(MagnitudePrune(), lenet, params)
    assert fingerprint(lenet) == stamp


def test_random_seed_must_be_an_int(lenet: Variant) -> None:
    with pytest.raises(InvalidParameterError, match="seed"):
        apply_pass(RandomPrune(), lenet, {"seed": 1.5})


@pytest.mark.parametrize("cls", [MagnitudePrune, RandomPrune])
def test_onnx_models_are_rejected(onnx_mlp: Path, cls: type[MagnitudePrune]) -> None:
    with pytest.raises(PassError, match="works on torch"):
        apply_pass(cls(), load_model(str(onnx_mlp)), {"sparsity": 0.5})


def test_nothing_to_prune(lenet: Variant) -> None:
    with pytest.raises(PassError, match="nothing to prune"):
        apply_pass(MagnitudePrune(), relu_only(), {"sparsity": 0.5})
    with pytest.raises(PassError, match="nothing to prune"):
        apply_pass(MagnitudePrune(), lenet, {"ignore": LENET_LAYERS})
    with pytest.raises(PassError, match="nothing to prune"):
        apply_pass(RandomPrune(), lenet, {"layer_types": ["embedding"]})

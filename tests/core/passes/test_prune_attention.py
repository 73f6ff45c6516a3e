"""Structured pruning of real architectures: attention heads, channel shuffles, `.pt2`."""

from __future__ import annotations

import copy
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

from workbench.core.model.export import export_variant
from workbench.core.model.loaders import load_model
from workbench.core.model.onnx_export import export_onnx, ort_parity
from workbench.core.model.torchvision_shim import import_torchvision
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import PassError, PassResult, apply_pass
from workbench.core.passes.prune_gather import (
    ChannelGather,
    finish_gathers,
    gather_pruner,
    install_gather_mappings,
    with_gathers,
)
from workbench.core.passes.prune_structured import StructuredPrune


def _variant(name: str, model: nn.Module, shape: tuple[int, ...]) -> Variant:
    return Variant(name=name, backend="torch", model=model.eval(), format="zoo",
                   inputs=(InputSpec("x", shape),))


def _timm() -> ModuleType:
    import_torchvision()  # timm imports torchvision, whose CUDA wheel needs the shim first
    return pytest.importorskip("timm")


def _macs_ratio(result: PassResult) -> float:
    return result.report.after["macs"] / result.report.before["macs"]


def _runs_and_exports(before: Variant, result: PassResult) -> None:
    """Same output shape at a new batch size; ONNX Runtime matches torch within 1e-4."""
    x = before.example_inputs(batch=3)
    with torch.no_grad():
        assert result.variant.model(*x).shape == before.model(*x).shape
    export = export_onnx(result.variant)
    assert ort_parity(result.variant, export.model, result.variant.example_inputs()) < 1e-4


def test_timm_deit_heads_shrink_consistently() -> None:
    timm = _timm()
    # deit_tiny's layers at 64x64 (17 tokens): the same heads, a quarter of the time
    model = timm.create_model("deit_tiny_patch16_224", img_size=64, depth=4)
    variant = _variant("deit", model, (1, 3, 64, 64))
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5})
    assert _macs_ratio(result) <= 0.4
    blocks = [m for m in result.variant.model.modules()
              if isinstance(m, timm.layers.Attention)]
    assert len(blocks) == 4
    for m in blocks:
        assert m.qkv.out_features == 3 * m.num_heads * m.head_dim == 3 * m.attn_dim
        assert m.proj.in_features == m.attn_dim
        assert m.head_dim < 64
        assert m.scale == pytest.approx(m.head_dim ** -0.5)
    assert result.report.details["attention"]
    assert not any("Unwrapped" in w for w in result.report.warnings)
    _runs_and_exports(variant, result)


def test_torchvision_vit_hidden_dim_follows() -> None:
    tv = import_torchvision()
    model = tv.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2,
                                        num_heads=4, hidden_dim=64, mlp_dim=128)
    variant = _variant("vit", model, (1, 3, 32, 32))
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5})
    assert _macs_ratio(result) <= 0.4
    vit = result.variant.model
    assert vit.hidden_dim == vit.conv_proj.out_channels == 32
    for m in vit.modules():
        if isinstance(m, nn.MultiheadAttention):
            assert (m.num_heads, m.head_dim, m.embed_dim) == (4, 8, 32)
            assert m.in_proj_weight.shape == (96, 32)
    _runs_and_exports(variant, result)


class _TinyEncoder(nn.Module):
    """Tokens -> self-attention -> MLP -> mean -> classes."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 64)
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 64))
        self.head = nn.Linear(64, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h = h + self.attn(h, h, h, need_weights=False)[0]
        h = h + self.mlp(h)
        return self.head(h.mean(1))


def test_multihead_attention_keeps_equal_heads() -> None:
    variant = _variant("encoder", _TinyEncoder(), (1, 8, 16))
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5})
    assert _macs_ratio(result) <= 0.4
    attn = result.variant.model.attn
    assert (attn.num_heads, attn.embed_dim, attn.head_dim) == (4, 32, 8)
    assert attn.out_proj.in_features == attn.out_proj.out_features == 32
    _runs_and_exports(variant, result)


def test_shufflenet_prunes_through_its_shuffles() -> None:
    tv = import_torchvision()
    variant = _variant("shufflenet", tv.models.shufflenet_v2_x0_5(), (1, 3, 64, 64))
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5})  # TP alone: ZeroDivision
    assert _macs_ratio(result) <= 0.4  # the shuffled stream is pruned too
    assert result.report.details["kept_for_shuffle"] == []
    model = result.variant.model
    gathers = [m for m in model.modules() if isinstance(m, ChannelGather)]
    assert len(gathers) == 2 * 13 + 3  # 13 chunked shuffles, 3 that end a stage
    assert model.get_submodule("stage2.1.branch2.0").out_channels == 12  # was 24
    assert model.get_submodule("stage3.0.branch1.2").out_channels < 58
    _runs_and_exports(variant, result)


def test_shufflenet_pruning_is_exact_on_what_it_keeps() -> None:
    """Zero the channels Torch-Pruning picks in a copy: pruning them must not move the
    output, which holds only if every gather follows its channels through the shuffles."""
    import torch_pruning as tp

    tv = import_torchvision()
    torch.manual_seed(0)
    model = tv.models.shufflenet_v2_x0_5().eval()
    for m in model.modules():  # BatchNorms with real statistics and biases
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 64, 64)
    traced = with_gathers(model, (x,))
    assert traced is not None
    with torch.no_grad():
        full = model(x)
        assert torch.equal(traced(x), full)
    masked = copy.deepcopy(traced)  # (traced shares its layers with model)
    pruner = tp.pruner.BasePruner(
        traced, x, importance=tp.importance.GroupMagnitudeImportance(p=1),
        pruning_ratio=0.5, ignored_layers=[traced.fc],
        customized_pruners={ChannelGather: gather_pruner()})
    gathers = install_gather_mappings(pruner.DG)
    names = {m: n for n, m in traced.named_modules()}
    copies = dict(masked.named_modules())
    for group in pruner.step(interactive=True):
        for dep, idxs in group:
            layer = dep.target.module
            if isinstance(layer, (nn.Conv2d, nn.BatchNorm2d)) and \
                    dep.handler.__name__ != "prune_in_channels":
                dead = torch.tensor([int(getattr(i, "idx", i)) for i in idxs])
                with torch.no_grad():
                    copies[names[layer]].weight[dead] = 0
                    if copies[names[layer]].bias is not None:
                        copies[names[layer]].bias[dead] = 0
        group.prune()
    finish_gathers(gathers)
    with torch.no_grad():
        pruned, reference = traced(x), masked(x)
    assert (reference - full).abs().max() > 1e-2  # the zeroed channels did carry signal
    assert torch.allclose(pruned, reference, atol=1e-5)


def test_ghostnet_prunes_its_ghost_modules_in_lockstep() -> None:
    """A Ghost module concatenates a convolution with a depthwise copy of it: channel k
    of both halves goes together, and the halves stay equal."""
    timm = _timm()
    variant = _variant("ghostnet", timm.create_model("ghostnet_100"), (1, 3, 64, 64))
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5})
    assert _macs_ratio(result) <= 0.4
    tied = result.report.details["tied_channels"]
    assert tied.get("blocks.1.0.conv_dw") == 2
    for m in result.variant.model.modules():
        if type(m).__name__ == "GhostModule":
            primary, cheap = m.primary_conv[0], m.cheap_operation[0]
            assert cheap.out_channels == primary.out_channels == cheap.groups
    unpruned = [r["name"] for r in result.report.details["layers"]
                if r["after"] == r["before"]]
    assert unpruned == ["classifier"]
    _runs_and_exports(variant, result)


class _Untraceable(nn.Module):
    """A ShuffleNet unit behind data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        unit = import_torchvision().models.shufflenetv2.InvertedResidual
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.units = nn.Sequential(unit(16, 32, 2), unit(32, 32, 1))
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.units(self.stem(x))
        if h.mean() > 1e9:  # data-dependent: fx refuses
            h = h * 0
        return self.head(h.mean((2, 3)))


def test_untraceable_shuffles_are_kept_whole_and_named() -> None:
    variant = _variant("untraceable", _Untraceable(), (1, 3, 16, 16))
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5})
    kept = result.report.details["kept_for_shuffle"]
    assert "units.1.branch2.5" in kept
    assert any("channel shuffle" in w for w in result.report.warnings)
    assert result.variant.model.units[1].branch2[0].out_channels == 8  # inside: pruned
    _runs_and_exports(variant, result)


class _HardHeads(nn.Module):
    """Attention-like code Torch-Pruning cannot see into: it reshapes by `self.heads`."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 64)
        self.heads = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x).view(x.shape[0], self.heads, 16)
        return (h.softmax(-1) * h).reshape(x.shape[0], self.heads * 16)


def test_a_blocking_layer_is_named_and_ignoring_it_works() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), _HardHeads(), nn.ReLU(),
                          nn.Linear(64, 5))
    variant = _variant("hard", model, (1, 8))
    with pytest.raises(PassError, match=r"fails in 2 \(_HardHeads\): add \"2\" to the "
                                        r"ignore list"):
        apply_pass(StructuredPrune(), variant, {"ratio": 0.5})
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5, "ignore": ["2"]})
    assert result.variant.model[0].out_features == 8
    assert result.variant.model[2].fc.out_features == 64
    _runs_and_exports(variant, result)


def _save_pt2(model: nn.Module, example: tuple[Any, ...], path: Path) -> Path:
    dynamic = tuple({0: torch.export.Dim.AUTO} for _ in example)
    program = torch.export.export(model.eval(), example, dynamic_shapes=dynamic, strict=False)
    torch.export.save(program, str(path))
    return path


def test_pt2_program_is_rebuilt_pruned_and_exported(tmp_path: Path) -> None:
    zoo = build_zoo("resnet-mini")
    path = _save_pt2(zoo.model, zoo.example_inputs(batch=2), tmp_path / "resnet.pt2")
    variant = load_model(str(path), trust=True)
    result = apply_pass(StructuredPrune(), variant, {"ratio": 0.5})
    rows = {r["name"]: r for r in result.report.details["layers"]}
    assert rows["layer2.0.conv1"]["before"] == 64
    assert rows["layer2.0.conv1"]["after"] == 32
    assert rows["fc"]["after"] == 10
    assert _macs_ratio(result) <= 0.4
    _runs_and_exports(variant, result)
    out = export_variant(result.variant, tmp_path / "pruned.pt2")["output"]
    again = load_model(str(out), trust=True)
    x = variant.example_inputs(batch=3)
    with torch.no_grad():
        assert torch.allclose(again.model(*x), result.variant.model(*x), atol=1e-5)


def test_pt2_without_layers_says_why(tmp_path: Path) -> None:
    class Scale(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x) * 2

    path = _save_pt2(Scale(), (torch.randn(2, 4),), tmp_path / "scale.pt2")
    variant = load_model(str(path), trust=True)
    with pytest.raises(PassError, match="no convolution or linear layer"):
        apply_pass(StructuredPrune(), variant, {"ratio": 0.5})


def test_pt2_attention_program_gives_a_clear_error(tmp_path: Path) -> None:
    """torch.export decomposes MultiheadAttention into fixed-size views."""
    path = _save_pt2(_TinyEncoder(), (torch.randn(2, 8, 16),), tmp_path / "encoder.pt2")
    variant = load_model(str(path), trust=True)
    with pytest.raises(PassError, match=r"exported program.*load the model from its code"):
        apply_pass(StructuredPrune(), variant, {"ratio": 0.5})

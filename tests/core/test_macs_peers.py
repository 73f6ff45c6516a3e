"""MACs of the torch and ONNX captures against torch's FlopCounterMode, per op family."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.core.graph.describe import describe
from workbench.core.graph.graph_onnx import onnx_layer_graph
from workbench.core.graph.graph_torch import _fx_graph
from workbench.core.graph.macs import einsum_macs, flop_counter_macs
from workbench.core.model.onnx_export import export_onnx, exported_input_specs
from workbench.core.model.torchvision_shim import import_torchvision
from workbench.core.model.variant import InputSpec, Variant


class SelfAttention(nn.Module):
    """timm-style attention: one qkv projection, heads split by reshape/permute."""

    def __init__(self, kind: str, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.kind, self.heads = kind, heads
        self.qkv, self.proj, self.norm = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim), \
            nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, n, 3, self.heads, c // self.heads
                                                 ).permute(2, 0, 3, 1, 4)
        if self.kind == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v)
        elif self.kind == "matmul":
            y = (q @ k.transpose(-2, -1) * 0.125).softmax(-1) @ v
        elif self.kind == "einsum":
            w = torch.einsum("bhqd,bhkd->bhqk", q, k).softmax(-1)
            y = torch.einsum("bhqk,bhkd->bhqd", w, v)
        else:  # bmm on flattened heads
            qf, kf, vf = (t.reshape(b * self.heads, n, -1) for t in (q, k, v))
            y = torch.bmm(torch.bmm(qf, kf.transpose(1, 2)).softmax(-1), vf)
        return self.proj(y.reshape(b, self.heads, n, -1).transpose(1, 2).reshape(b, n, c))


class AttentionKinds(nn.Sequential):
    """One block per way of writing attention (one ONNX export for all four)."""

    def __init__(self) -> None:
        super().__init__(*(SelfAttention(k) for k in ("sdpa", "matmul", "einsum", "bmm")))


class MHA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.fc = nn.Linear(16, 32), nn.Linear(32, 10)
        self.att = nn.MultiheadAttention(32, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.emb(x)
        return self.fc(self.att(h, h, h, need_weights=False)[0] + h)


class ShuffleConvs(nn.Module):
    """Grouped, depthwise and transposed convolutions, norms, a split and a shuffle."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn, self.gn = nn.BatchNorm2d(16), nn.GroupNorm(4, 16)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.stem(x))
        a, b = x.chunk(2, dim=1)
        x = torch.cat([self.grouped(a), self.depthwise(b)], dim=1)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)  # shuffle
        return self.up(self.gn(x))


def _tv(name: str, **kw: Any) -> Callable[[], nn.Module]:
    return lambda: getattr(import_torchvision().models, name)(**kw)


def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        timm = pytest.importorskip("timm")
        return timm.create_model(name, pretrained=False)
    return build


IMG = (1, 3, 64, 64)
perf = pytest.mark.perf
CASES = [
    pytest.param(AttentionKinds, (1, 10, 32), id="sdpa-matmul-einsum-bmm-attention"),
    pytest.param(MHA, (1, 10, 16), id="multihead-attention"),
    pytest.param(ShuffleConvs, (1, 3, 16, 16), id="grouped-shuffle-norms"),
    pytest.param(_tv("VisionTransformer", image_size=32, patch_size=8, num_layers=2,
                     num_heads=4, hidden_dim=64, mlp_dim=128), (1, 3, 32, 32), id="tv-vit"),
    pytest.param(_timm("deit_tiny_patch16_224"), (1, 3, 224, 224), id="deit_tiny"),
    pytest.param(_tv("shufflenet_v2_x0_5"), IMG, id="shufflenet_v2_x0_5", marks=perf),
    pytest.param(_tv("resnet18"), IMG, id="resnet18", marks=perf),
    pytest.param(_tv("mobilenet_v3_small"), IMG, id="mobilenet_v3_small", marks=perf),
    pytest.param(_tv("efficientnet_b0"), IMG, id="efficientnet_b0", marks=perf),
    pytest.param(_tv("squeezenet1_1"), IMG, id="squeezenet1_1", marks=perf),
    pytest.param(_tv("googlenet", aux_logits=False, init_weights=False), IMG, id="googlenet",
                 marks=perf),
    pytest.param(_timm("mobilevit_xxs"), (1, 3, 256, 256), id="mobilevit_xxs", marks=perf),
]


def _variant(build: Callable[[], nn.Module], shape: tuple[int, ...]) -> Variant:
    torch.manual_seed(0)
    return Variant("m", "torch", build().eval(), "zoo", inputs=(InputSpec("x", shape),))


def _onnx_macs(model: Any, variant: Variant) -> int:
    specs = exported_input_specs(variant, model)
    return onnx_layer_graph(model, {s.name: s.shape for s in specs}).macs


@pytest.mark.parametrize(("build", "shape"), CASES)
def test_torch_and_onnx_macs_match_flop_counter(build: Callable[[], nn.Module],
                                                shape: tuple[int, ...]) -> None:
    v = _variant(build, shape)
    expected = flop_counter_macs(v.model, v.example_inputs())
    assert describe(v).macs == pytest.approx(expected, rel=0.02)
    assert _onnx_macs(export_onnx(v).model, v) == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize(("build", "shape"), [
    pytest.param(_tv("shufflenet_v2_x0_5"), IMG, id="shufflenet"),
    pytest.param(ShuffleConvs, (1, 3, 16, 16), id="grouped-shuffle-norms")])
def test_channel_shuffle_torch_and_torchscript_onnx(build: Callable[[], nn.Module],
                                                    shape: tuple[int, ...]) -> None:
    """The TorchScript exporter writes `channels // groups` as shape arithmetic that onnx's
    inference cannot fold; every later conv used to lose its shape (0.12x on ShuffleNet).
    (The dynamo export of ShuffleNet is checked above, under `perf` for time.)"""
    import onnx

    v = _variant(build, shape)
    expected = flop_counter_macs(v.model, v.example_inputs())
    assert describe(v).macs == pytest.approx(expected, rel=0.02)
    buf = io.BytesIO()
    torch.onnx.export(v.model, v.example_inputs(), buf, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}})
    model = onnx.load_from_string(buf.getvalue())
    assert _onnx_macs(model, v) == pytest.approx(expected, rel=0.02)


def test_the_reference_counts_attention_by_hand() -> None:
    """10 tokens, 32 wide, 4 heads of 8: qkv 10*32*96, proj 10*32*32, QK^T and AV 10*10*32."""
    v = _variant(lambda: SelfAttention("sdpa"), (1, 10, 32))
    by_hand = 10 * 32 * 96 + 10 * 32 * 32 + 2 * 10 * 10 * 32
    assert flop_counter_macs(v.model, v.example_inputs()) == by_hand
    assert describe(v).macs == by_hand


def test_norms_and_shuffles_count_nothing() -> None:
    graph = describe(_variant(ShuffleConvs, (1, 3, 16, 16)))
    for node in graph.nodes:
        if not node.op.startswith(("aten.conv", "aten.conv_transpose")):
            assert node.macs == 0, node.op
    grouped = next(n for n in graph.nodes if n.module_path == ("grouped",))
    assert grouped.macs == 8 * 16 * 16 * 2 * 9  # each output sees 2 of 8 input channels


def test_fx_capture_counts_multihead_attention() -> None:
    """When torch.export fails, torch.fx keeps nn.MultiheadAttention as one module call."""
    v = _variant(MHA, (2, 10, 16))
    graph = _fx_graph(v.model, v.example_inputs(), v, 0, 0, [])
    assert graph.macs == flop_counter_macs(v.model, v.example_inputs())


@pytest.mark.parametrize(("equation", "shapes", "macs"), [
    ("ij,jk->ik", [(2, 3), (3, 4)], 2 * 3 * 4),
    ("bhqd,bhkd->bhqk", [(1, 2, 5, 8), (1, 2, 7, 8)], 2 * 5 * 7 * 8),
    ("ij,jk", [(2, 3), (3, 4)], 24),  # implicit output
    ("ij,jk->k", [(2, 3), (3, 4)], 3 * 4),  # i is summed away before the product
    ("i,j->ij", [(3,), (5,)], 15),
    ("ii->i", [(3, 3)], 0),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], 2 * 3 * 4 + 2 * 4 * 5),
])
def test_einsum_macs(equation: str, shapes: list[tuple[int, ...]], macs: int) -> None:
    assert einsum_macs(equation, shapes) == macs


@pytest.mark.parametrize(("q", "k", "out"), [
    ((1, 4, 10, 8), (1, 2, 12, 8), (1, 4, 10, 8)),  # 4-D, grouped-query (2 kv heads)
    ((1, 10, 32), (1, 12, 32), (1, 10, 32)),  # 3-D, heads folded into the last axis
])
def test_onnx_attention_op_counts_its_two_matmuls(q: tuple[int, ...], k: tuple[int, ...],
                                                  out: tuple[int, ...]) -> None:
    from workbench.core.graph.layergraph import Node, TensorInfo
    from workbench.core.graph.macs import onnx_node_macs

    node = Node("att", "Attention", [TensorInfo("q", q), TensorInfo("k", k),
                                     TensorInfo("v", k)], [TensorInfo("y", out)])
    assert onnx_node_macs(node) == 2 * 4 * 10 * 12 * 8  # Q·Kᵀ and weights·V per q head

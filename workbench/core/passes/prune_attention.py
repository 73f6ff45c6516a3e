"""Attention blocks under structured pruning: tell Torch-Pruning their heads, then fix the
attributes their forward passes reshape with.

Torch-Pruning prunes a fused `qkv` projection by head (its `num_heads` argument): every
head keeps the same width, and q, k and v lose the same columns, as does the output
projection's input. It cannot know the plain attributes a forward pass reshapes with
(timm's `Attention.head_dim`, torchvision's `VisionTransformer.hidden_dim`); they are
recomputed here from the pruned layers, as Torch-Pruning's own timm example does.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def fused_qkv_blocks(model: nn.Module) -> list[Any]:
    """timm-style attention blocks: a fused `qkv` Linear whose output the forward pass
    reshapes into `(3, num_heads, head_dim)`. Call before pruning."""
    return [m for m in model.modules() if _is_fused_qkv(m)]


def mha_heads(model: nn.Module) -> dict[nn.Module, int]:
    """`nn.MultiheadAttention` -> head count: each head keeps the same width."""
    return {m: int(m.num_heads) for m in model.modules()
            if isinstance(m, nn.MultiheadAttention)}


def sync_attention(model: nn.Module, fused: list[Any], heads: dict[nn.Module, int]
                   ) -> list[str]:
    """Recompute, from the pruned layers, the sizes attention forward passes reshape with.

    `fused` are the blocks `fused_qkv_blocks` found before pruning; `heads` maps their qkv
    layers to head counts after pruning (the pruner's `num_heads`). Returns one line per
    attention block whose shape changed.
    """
    changed: list[str] = []
    names = {m: n for n, m in model.named_modules()}
    for m in fused:
        qkv: Any = m.qkv
        num_heads = int(heads.get(qkv, m.num_heads))
        head_dim = qkv.out_features // (3 * num_heads)
        if (num_heads, head_dim) != (m.num_heads, m.head_dim):
            changed.append(f"{names[m]}: {m.num_heads} heads x {m.head_dim} -> "
                           f"{num_heads} x {head_dim}")
        m.num_heads = num_heads
        m.head_dim = head_dim
        if hasattr(m, "attn_dim"):
            m.attn_dim = num_heads * head_dim
        if hasattr(m, "scale"):  # fused SDPA scales by the new head_dim: match it
            m.scale = head_dim ** -0.5
    for layer in model.modules():
        if isinstance(layer, nn.MultiheadAttention):
            layer.head_dim = layer.embed_dim // layer.num_heads
            layer.kdim = layer.vdim = layer.embed_dim
        elif _is_torchvision_vit(layer):
            vit: Any = layer
            vit.hidden_dim = vit.conv_proj.out_channels
    return changed


def _is_fused_qkv(m: Any) -> bool:
    qkv: Any = getattr(m, "qkv", None)
    return (isinstance(qkv, nn.Linear) and isinstance(getattr(m, "num_heads", None), int)
            and isinstance(getattr(m, "head_dim", None), int)
            and qkv.out_features == 3 * m.num_heads * m.head_dim)


def _is_torchvision_vit(m: Any) -> bool:
    return (type(m).__name__ == "VisionTransformer" and isinstance(
        getattr(m, "conv_proj", None), nn.Conv2d) and isinstance(
            getattr(m, "hidden_dim", None), int))

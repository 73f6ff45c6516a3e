"""N:M semi-structured sparsity: in every M consecutive weights keep the N largest.

Groups run along the reduction (input) dimension of each layer's matrix multiply: the
in-features of a Linear weight, and the input channels of a convolution weight at each
kernel position (the weight seen channels-last, `(out, kh, kw, in)`, as NVIDIA's ASP and
cuSPARSELt lay out implicit-GEMM convolutions). A layer whose input size is not a multiple
of M is skipped with a warning; so are depthwise convolutions (one input channel per group).

The zeros are baked into ordinary dense weights. Only sparse tensor cores (CUDA, compute
capability 8.0 or newer, through `torch.sparse.to_sparse_semi_structured`) turn the 2:4
pattern into speed; on a CPU the result is exactly as fast as the dense model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workbench.core.errors import InvalidParameterError
from workbench.core.model.variant import Variant
from workbench.core.passes.base import Pass, PassContext, PassError, PassOutput, param
from workbench.core.passes.prune_unstructured import (
    bake_existing_masks,
    check_ignore,
    check_layer_types,
    effective_weight,
    layer_sparsity,
    select_layers,
    tensor_attr,
)

log = logging.getLogger(__name__)

_TYPES_HELP = "module kinds to sparsify: any of conv, linear"
_IGNORE_HELP = "module names left untouched"


def nm_mask(weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """The N:M keep-mask of a Linear `(out, in)` or conv `(out, in, *kernel)` weight.

    Raises ValueError when the input size is not a multiple of `m`.
    """
    w = weight.detach()
    if w.ndim > 2:  # conv: groups of input channels at each kernel position
        w = w.movedim(1, -1)
    if w.shape[-1] % m:
        raise ValueError(f"input size {w.shape[-1]} is not a multiple of {m}")
    groups = w.abs().reshape(-1, m)
    keep = groups.topk(n, dim=1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, keep, True).reshape(w.shape)
    return mask.movedim(-1, 1) if weight.ndim > 2 else mask


def input_size(module: nn.Module) -> int:
    """The size of the dimension N:M groups run along (in-features or in-channels/groups)."""
    return int(effective_weight(module).shape[1])


class NMPrune(Pass):
    """Keep the N largest of every M consecutive input weights (2:4 by default)."""

    name = "prune.nm"
    title = "N:M semi-structured sparsity"
    category = "prune"
    backends = ("torch",)
    description = ("Zeros all but the N largest-magnitude weights in every group of M "
                   "consecutive input weights of each Linear and convolution (2:4 gives 50% "
                   "sparsity in the pattern sparse tensor cores accelerate).")

    @dataclass
    class Params:
        n: int = param(2, min=1, max=31, help="weights kept in every group")
        m: int = param(4, min=2, max=32, help="group size along the input dimension")
        layer_types: list[str] = param(["conv", "linear"], help=_TYPES_HELP)
        ignore: list[str] = param([], widget="nodes", help=_IGNORE_HELP)

        def __post_init__(self) -> None:
            if self.n >= self.m:
                raise InvalidParameterError(
                    f"prune.nm: n must be smaller than m (got {self.n}:{self.m}).")
            check_layer_types(self.layer_types)
            if "embedding" in self.layer_types:
                raise InvalidParameterError("prune.nm works on conv and linear layers only.")

    def requires(self, variant: Variant, params: Any) -> None:
        check_ignore(self.name, variant.model, params.ignore)
        layers = select_layers(variant.model, params.layer_types, params.ignore)
        if not layers:
            raise PassError(
                f"nothing to prune: {variant.name} has no {'/'.join(params.layer_types)} "
                "layer with weights" + (" outside the ignore list." if params.ignore else "."))
        if not any(input_size(mod) % params.m == 0 for _, mod in layers):
            raise PassError(f"nothing to prune: no layer of {variant.name} has an input size "
                            f"divisible by m={params.m}.")

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        model = self.clone_model(variant)
        layers = select_layers(model, params.layer_types, params.ignore)
        rows: list[dict[str, Any]] = []
        warnings: list[str] = []
        for i, (name, mod) in enumerate(layers):
            ctx.cancel.check()
            ctx.progress(i / len(layers), f"{name}…")
            bake_existing_masks(mod)
            size = input_size(mod)
            if size % params.m:
                n_weights, sparsity = layer_sparsity(mod)
                reason = f"input size {size} is not a multiple of {params.m}"
                warnings.append(f"skipped {name}: {reason}.")
                rows.append({"name": name, "params": n_weights, "sparsity": round(sparsity, 6),
                             "pruned": False, "reason": reason})
                continue
            with torch.no_grad():
                weight = tensor_attr(mod)
                weight.mul_(nm_mask(weight, params.n, params.m).to(weight.dtype))
            n_weights, sparsity = layer_sparsity(mod)
            rows.append({"name": name, "params": n_weights, "sparsity": round(sparsity, 6),
                         "pruned": True})
        pruned = [r for r in rows if r["pruned"]]
        total = sum(r["params"] for r in pruned)
        ctx.progress(1.0, "Done")
        return PassOutput(model=model, warnings=warnings, details={
            "pattern": f"{params.n}:{params.m}", "layers": rows,
            "sparsity": round(sum(r["params"] * r["sparsity"] for r in pruned) / total, 6),
            "acceleration": _acceleration_note(params.n, params.m)})


def _acceleration_note(n: int, m: int) -> str:
    if (n, m) != (2, 4):
        return (f"{n}:{m} is not a pattern sparse tensor cores accelerate (they need 2:4); "
                "the zeros help compression only.")
    if torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0):
        return ("2:4 on a CUDA device of compute capability >= 8.0: "
                "torch.sparse.to_sparse_semi_structured can accelerate the Linear layers "
                "(fp16/bf16/int8).")
    return ("2:4 can be accelerated by torch.sparse.to_sparse_semi_structured only on a CUDA "
            "GPU of compute capability >= 8.0; none is available here, so the zeros save "
            "no time on this machine.")


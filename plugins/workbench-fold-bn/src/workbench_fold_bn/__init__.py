"""`convert.fold_bn`: fold BatchNorm layers into the convolutions before them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.api import Pass, PassContext, PassError, PassOutput, Variant, param


class FoldBatchNorm(Pass):
    """Fold each Conv→BatchNorm pair into one convolution (eval-mode arithmetic)."""

    name = "convert.fold_bn"
    title = "Fold BatchNorm into convolutions"
    category = "convert"
    backends = ("torch",)
    description = ("Merges every BatchNorm that directly follows a convolution into that "
                   "convolution's weights and bias. Outputs stay the same in eval mode.")

    @dataclass
    class Params:
        check_tolerance: float = param(1e-4, min=0.0, max=1.0,
                                       help="largest output difference accepted after folding")

    def requires(self, variant: Variant, params: Any) -> None:
        import torch

        if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in variant.model.modules()):
            raise PassError(f"{variant.name} has no BatchNorm layer to fold.")

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        import torch
        from torch.fx.experimental.optimization import fuse

        model = self.clone_model(variant).eval()
        before = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                     for m in model.modules())
        try:
            fused = fuse(model, inplace=True)
        except Exception as exc:
            raise PassError(f"{variant.name} cannot be traced by torch.fx for folding: "
                            f"{str(exc).splitlines()[0]}") from exc
        after = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                    for m in fused.modules())
        inputs = variant.example_inputs()
        with torch.no_grad():
            diff = float((variant.model(*inputs) - fused(*inputs)).abs().max())
        if diff > params.check_tolerance:
            raise PassError(f"Folding changed the outputs by {diff:.3g} "
                            f"(more than {params.check_tolerance}).")
        return PassOutput(model=fused, details={"batchnorm_folded": before - after,
                                                "max_abs_diff": diff})

"""`demo.round_weights`: round every torch weight to a number of decimals.

A third-party plugin with no dependencies of its own: `packaging/smoke.sh` installs it next
to the bundle (`pip install --target dist/workbench/plugins`) and runs it from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.api import Pass, PassContext, PassOutput, Variant, param


class RoundWeights(Pass):
    """Round each parameter to `decimals` decimal places."""

    name = "demo.round_weights"
    title = "Round weights (demo plugin)"
    category = "convert"
    backends = ("torch",)
    description = "Rounds every weight to a number of decimals: a plugin example."

    @dataclass
    class Params:
        decimals: int = param(2, min=0, max=8, help="decimal places kept")

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        import torch

        model = self.clone_model(variant)
        changed = 0
        with torch.no_grad():
            for p in model.parameters():
                rounded = torch.round(p, decimals=params.decimals)
                changed += int((rounded != p).sum())
                p.copy_(rounded)
        return PassOutput(model=model, details={"weights_changed": changed,
                                                "decimals": params.decimals})

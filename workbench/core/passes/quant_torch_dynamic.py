"""quantize.torch_dynamic: int8 dynamic quantization of Linear, LSTM and GRU layers.

Weights are stored as int8; activations are quantized on the fly at run time. This uses
eager-mode `torch.ao.quantization.quantize_dynamic`, which torch 2.13 deprecates in favour
of torchao (not a dependency here); the app silences its deprecation warnings (logs.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from workbench.core.model.variant import Variant
from workbench.core.passes.base import Pass, PassContext, PassError, PassOutput, check_subset, param

log = logging.getLogger(__name__)

LAYER_TYPES = ("Linear", "LSTM", "GRU")


class TorchDynamicQuantize(Pass):
    name = "quantize.torch_dynamic"
    title = "Dynamic int8 (PyTorch)"
    category = "quantize"
    backends = ("torch",)
    description = ("Store Linear, LSTM and GRU weights as int8 and quantize activations on the "
                   "fly (PyTorch eager dynamic quantization, CPU).")

    @dataclass
    class Params:
        layer_types: list[str] = param(list(LAYER_TYPES),
                                       help="Layer types to quantize: Linear, LSTM, GRU")
        per_channel: bool = param(True, help="One scale per output channel (Linear only)")

    def requires(self, variant: Variant, params: Any) -> None:
        check_subset(self.name, "layer_types", params.layer_types, LAYER_TYPES)
        if not _targets(variant.model, params.layer_types):
            raise PassError(f"{self.name}: {variant.name} has no "
                            f"{' / '.join(params.layer_types)} layer to quantize.")

    def run(self, variant: Variant, params: Any, ctx: PassContext) -> PassOutput:
        import torch
        from torch import nn

        from workbench.core.model.fidelity import fidelity_report

        ctx.progress(0.1, "Quantizing…")
        model = self.clone_model(variant)
        # torch.ao.quantization is deprecated in torch 2.13 (torchao replaces it) but the eager
        # API still works; its warnings reach the app's silenced `py.warnings` logger.
        from torch.ao import quantization as tq

        spec: dict[Any, Any] = {}
        for t in params.layer_types:
            cls = getattr(nn, t)
            linear_pc = t == "Linear" and params.per_channel
            spec[cls] = tq.per_channel_dynamic_qconfig if linear_pc else \
                tq.default_dynamic_qconfig
        model = tq.quantize_dynamic(model, spec, dtype=torch.qint8, inplace=False)
        quantized = _quantized_names(model)
        if not quantized:
            raise PassError(f"{self.name}: nothing was quantized in {variant.name}.")
        _disable_encoder_fast_path(model)
        model.eval()
        ctx.cancel.check()
        ctx.progress(0.6, "Measuring fidelity…")
        child = Variant(variant.name, "torch", model, variant.format, variant.inputs)
        fid, warns = fidelity_report(variant, child)
        details = {"quantized_layers": quantized, "count": len(quantized),
                   "size_bytes_before": _saved_size(variant.model),
                   "size_bytes_after": _saved_size(model), "fidelity": fid}
        ctx.progress(1.0, "Done")
        return PassOutput(model, details=details, warnings=warns)


def _targets(model: Any, layer_types: list[str]) -> list[str]:
    """Names of modules whose exact type is one of `layer_types` (as quantize_dynamic
    matches them: subclasses such as MultiheadAttention's out_proj are left alone)."""
    from torch import nn

    classes = tuple(getattr(nn, t) for t in layer_types)
    return [n for n, m in model.named_modules() if type(m) in classes]


def _quantized_names(model: Any) -> list[str]:
    return [n for n, m in model.named_modules()
            if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")
            and type(m).__name__ in LAYER_TYPES]


def _disable_encoder_fast_path(model: Any) -> None:
    """nn.TransformerEncoderLayer's fused fast path reads `linear1.weight` as a tensor, which a
    quantized Linear no longer has; flagging the activation as unsupported keeps the layer on
    its ordinary path (same maths)."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.TransformerEncoderLayer) and any(
                n in _quantized_names(m) for n in ("linear1", "linear2")):
            m.activation_relu_or_gelu = False


def _saved_size(model: Any) -> int:
    """Bytes of the model's state dict as torch.save writes it."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()

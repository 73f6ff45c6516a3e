"""Variants: an immutable model plus its metadata and lineage."""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)


def new_variant_id() -> str:
    return f"v{next(_ids)}"


@dataclass(frozen=True)
class InputSpec:
    """One model input: its shape (batch first), dtype and, for integers, a value range."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    low: int = 0
    high: int = 2

    def example(self, seed: int = 0, batch: int | None = None) -> Any:
        """A deterministic example tensor for this input."""
        import torch

        shape = (batch, *self.shape[1:]) if batch is not None else self.shape
        gen = torch.Generator().manual_seed(seed)
        if self.dtype.startswith("int"):
            return torch.randint(self.low, self.high, shape, generator=gen,
                                 dtype=getattr(torch, self.dtype))
        return torch.randn(shape, generator=gen, dtype=getattr(torch, self.dtype))


@dataclass(frozen=True)
class Variant:
    """A model and where it came from. Passes return new variants; none mutates one."""

    name: str
    backend: str  # "torch" | "onnx"
    model: Any  # torch.nn.Module | onnx.ModelProto
    format: str  # zoo, onnx, pt2, torchscript, state_dict, safetensors, pickle
    inputs: tuple[InputSpec, ...] = ()
    source: str = ""
    parent: str | None = None
    recipe: tuple[dict[str, Any], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_variant_id)

    def example_inputs(self, seed: int = 0, batch: int | None = None) -> tuple[Any, ...]:
        return tuple(spec.example(seed + i, batch) for i, spec in enumerate(self.inputs))


def set_mode(model: Any, training: bool) -> Any:
    """`model.train(training)`, tolerating modules that cannot switch (torch.export's)."""
    # an unlifted torch.export module keeps the mode it was captured in
    with contextlib.suppress(NotImplementedError):
        model.train(training)
    return model

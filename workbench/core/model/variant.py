"""Variants: an immutable model plus its metadata and lineage."""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_ids = itertools.count(1)
_ids_lock = threading.Lock()


def new_variant_id() -> str:
    with _ids_lock:
        return f"v{next(_ids)}"


def reserve_variant_ids(top: int) -> None:
    """Make new ids start above `v{top}` (after a project with such ids is loaded)."""
    global _ids
    with _ids_lock:
        current = next(_ids)
        _ids = itertools.count(max(current, top + 1))


MAX_INPUT_DIMS = 8
MAX_INPUT_ELEMENTS = 2**28  # 1 GB of float32: beyond that a sample input is a mistake


def check_input_shape(dims: Any) -> tuple[int, ...]:
    """`dims` as a shape of positive sizes, or InvalidParameterError saying what is wrong."""
    from workbench.core.errors import InvalidParameterError

    if not isinstance(dims, (list, tuple)) or not dims or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise InvalidParameterError(f"The input shape must be a list of integers, such as "
                                    f"1,3,32,32; got {str(dims)[:60]}.")
    if any(d <= 0 for d in dims):
        raise InvalidParameterError("Every size of the input shape must be positive.")
    if len(dims) > MAX_INPUT_DIMS:
        raise InvalidParameterError(f"The input shape has {len(dims)} dimensions; at most "
                                    f"{MAX_INPUT_DIMS} are supported.")
    elements = 1
    for d in dims:
        elements *= d
    if elements > MAX_INPUT_ELEMENTS:
        raise InvalidParameterError(
            f"The input shape {'x'.join(map(str, dims))} holds {elements:,} values, over the "
            f"{MAX_INPUT_ELEMENTS:,} a sample input may have.")
    return tuple(dims)


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

    @functools.cached_property
    def content_hash(self) -> str | None:
        """SHA-256 of the model's structure, weights and input specs (not of its id), for
        caching derived artifacts; None for ONNX variants. Computed once."""
        from workbench.core.model.artifact_cache import variant_content_hash

        return variant_content_hash(self)


def set_mode(model: Any, training: bool) -> Any:
    """`model.train(training)`, tolerating modules that cannot switch (torch.export's)."""
    # an unlifted torch.export module keeps the mode it was captured in
    with contextlib.suppress(NotImplementedError):
        model.train(training)
    return model

"""Weight statistics per tensor and for the whole model, computed on tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.variant import Variant


@dataclass(frozen=True)
class TensorStats:
    """Statistics of one weight tensor (or of all of them, for the summary)."""

    name: str
    shape: tuple[int, ...]
    numel: int
    min: float
    max: float
    mean: float
    std: float
    sparsity: float  # share of exact zeros
    hist_counts: np.ndarray
    hist_edges: np.ndarray
    channel_min: np.ndarray | None = None  # per output channel (dim 0)
    channel_max: np.ndarray | None = None
    distinct: int | None = None  # number of distinct values, when small (quantized layers)
    values: np.ndarray | None = None  # those distinct values (the codebook of a clustered layer)
    value_counts: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "numel": self.numel,
                "min": self.min, "max": self.max, "mean": self.mean, "std": self.std,
                "sparsity": self.sparsity}


@dataclass(frozen=True)
class WeightStats:
    """Per-tensor statistics keyed by tensor name, plus a whole-model summary."""

    tensors: dict[str, TensorStats]
    summary: TensorStats
    bins: int

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary.to_json(),
                "tensors": [t.to_json() for t in self.tensors.values()]}


SUMMARY_SAMPLE = 2_000_000


def named_weights(variant: Variant) -> dict[str, Any]:
    """The variant's numeric weight tensors as float32 torch tensors, by name."""
    import torch

    out: dict[str, Any] = {}
    if variant.backend == "onnx":
        from onnx import numpy_helper

        for init in variant.model.graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.size > 1 and np.issubdtype(arr.dtype, np.number):
                out[init.name] = torch.from_numpy(np.array(arr, dtype=np.float32))
        return out
    for name, p in variant.model.named_parameters():
        if p.numel() > 1:
            out[name] = p.detach().to(torch.float32)  # fp16/bf16 weights read as float32
    out.update(_masked_weights(variant.model, out))
    out.update(_packed_weights(variant.model))
    return out


def _masked_weights(model: Any, found: dict[str, Any]) -> dict[str, Any]:
    """For `torch.nn.utils.prune` reparametrisations, the effective (masked) weight replaces
    `weight_orig` under the plain name."""
    import torch

    out: dict[str, Any] = {}
    for mod_name, module in model.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        for buf_name, _ in module.named_buffers(recurse=False):
            if not buf_name.endswith("_mask"):
                continue
            base = buf_name.removesuffix("_mask")
            found.pop(f"{prefix}{base}_orig", None)
            effective = getattr(module, base, None)
            if isinstance(effective, torch.Tensor):
                out[prefix + base] = effective.detach().to(torch.float32)
    return out


def _packed_weights(model: Any) -> dict[str, Any]:
    """Dequantized weights of quantized modules (dynamic int8 Linear/LSTM/GRU), whose
    packed parameters `named_parameters` does not list."""
    import torch

    out: dict[str, Any] = {}
    for mod_name, module in model.named_modules():
        if not type(module).__module__.startswith(("torch.ao.nn.quantized",
                                                   "torch.nn.quantized")) \
                or "Packed" in type(module).__name__:  # the layer itself reports them
            continue
        unpack = getattr(module, "_weight_bias", None)
        if not callable(unpack):
            continue
        try:
            packed = unpack()
        except Exception:  # an exotic packing: leave it out of the statistics
            continue
        weights = packed["weight"] if isinstance(packed, dict) else {"weight": packed[0]}
        prefix = f"{mod_name}." if mod_name else ""
        for key, w in weights.items():
            if isinstance(w, torch.Tensor) and w.numel() > 1:
                w = w.dequantize() if w.is_quantized else w
                out[prefix + key] = w.detach().to(torch.float32)
    return out


def weight_stats(variant: Variant, bins: int = 64) -> WeightStats:
    """Histogram, range, moments, sparsity and per-channel ranges of every weight tensor."""
    return stats_from_tensors(named_weights(variant), bins)


def stats_from_tensors(weights: dict[str, Any], bins: int = 64) -> WeightStats:
    import torch

    if bins < 1:
        raise ValueError("bins must be at least 1")
    tensors: dict[str, TensorStats] = {}
    total = 0
    total_sum = 0.0
    total_sq = 0.0
    zeros = 0
    lo, hi = float("inf"), float("-inf")
    with torch.no_grad():
        for name, t in weights.items():
            flat = t.reshape(-1)
            tmin, tmax = (float(v) for v in torch.aminmax(flat))
            n = flat.numel()
            s = float(flat.sum())
            sq = float(torch.linalg.vector_norm(flat)) ** 2
            nz = n - int(torch.count_nonzero(flat))
            mean = s / n
            std = max(sq / n - mean * mean, 0.0) ** 0.5
            counts, edges = _histogram(flat, bins, tmin, tmax)
            cmin = cmax = None
            if t.ndim >= 2:
                per = torch.aminmax(t.reshape(t.shape[0], -1), dim=1)
                cmin, cmax = per.min.numpy().copy(), per.max.numpy().copy()
            values, value_counts = _distinct(flat)
            distinct = None if values is None else len(values)
            tensors[name] = TensorStats(name, tuple(t.shape), n, tmin, tmax, mean, std,
                                        nz / n, counts, edges, cmin, cmax, distinct, values,
                                        value_counts)
            total += n
            total_sum += s
            total_sq += sq
            zeros += nz
            lo, hi = min(lo, tmin), max(hi, tmax)
        if total == 0:
            empty = TensorStats("model", (0,), 0, 0.0, 0.0, 0.0, 0.0, 0.0,
                                np.zeros(bins), np.linspace(0, 1, bins + 1))
            return WeightStats({}, empty, bins)
        counts = np.zeros(bins, dtype=np.float64)
        edges = np.linspace(lo, hi if hi > lo else lo + 1e-12, bins + 1)
        # Above a few million values the summary histogram is taken on an even subsample
        # (scaled back to counts), as napari's HistogramModel does.
        step = max(1, -(-total // SUMMARY_SAMPLE))
        for t in weights.values():
            c, _ = _histogram(t.reshape(-1)[::step], bins, lo, hi)
            counts += c * step
    mean = total_sum / total
    std = max(total_sq / total - mean * mean, 0.0) ** 0.5
    summary = TensorStats("model", (total,), total, lo, hi, mean, std, zeros / total, counts,
                          edges)
    return WeightStats(tensors, summary, bins)


def _distinct(flat: Any, limit: int = 256) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The distinct values and their counts when there are at most `limit` (quantized or
    clustered layers), else (None, None). A sample decides first, so full-precision layers
    cost almost nothing."""
    import torch

    if torch.unique(flat[:4096]).numel() > limit:
        return None, None
    uniq, counts = torch.unique(flat, return_counts=True)
    if uniq.numel() > limit:
        return None, None
    return uniq.numpy().copy(), counts.numpy().copy()


def _histogram(flat: Any, bins: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    import torch

    if hi <= lo:
        hi = lo + 1e-12
    counts = torch.histc(flat, bins=bins, min=lo, max=hi).to(torch.float64).numpy()
    return counts, np.linspace(lo, hi, bins + 1)

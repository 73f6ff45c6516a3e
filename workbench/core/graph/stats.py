"""Weight statistics per tensor and for the whole model, computed on tensors.

Everything is a whole-tensor op (never a Python loop over values). NaN and ±Inf values are
counted per tensor and left out of the ranges, moments and histograms; a tensor without
them (the usual case) pays nothing extra, since a finite sum proves every value finite."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.model.variant import Variant

log = logging.getLogger(__name__)

MAX_NONFINITE_WARNINGS = 10  # tensors named one by one in the warnings, then a tally


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
    nan: int = 0  # NaN values, left out of everything above but `numel` and `sparsity`
    inf: int = 0  # +Inf and -Inf values, likewise

    @property
    def nonfinite(self) -> int:
        """How many NaN and ±Inf values the tensor holds."""
        return self.nan + self.inf

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "numel": self.numel,
                "min": self.min, "max": self.max, "mean": self.mean, "std": self.std,
                "sparsity": self.sparsity, "nan": self.nan, "inf": self.inf}


@dataclass(frozen=True)
class WeightStats:
    """Per-tensor statistics keyed by tensor name, plus a whole-model summary."""

    tensors: dict[str, TensorStats]
    summary: TensorStats
    bins: int

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary.to_json(),
                "tensors": [t.to_json() for t in self.tensors.values()]}

    def nonfinite_tensors(self) -> dict[str, tuple[int, int]]:
        """(NaN count, ±Inf count) of every tensor that holds such values, by name."""
        return {n: (t.nan, t.inf) for n, t in self.tensors.items() if t.nonfinite}

    def warnings(self, limit: int = MAX_NONFINITE_WARNINGS) -> list[str]:
        """One sentence per tensor holding NaN or Inf values (at most `limit`, then a tally)."""
        bad = self.nonfinite_tensors()
        out = [f"{name} holds {nonfinite_text(nan, inf)} "
               + ("value; statistics ignore it." if nan + inf == 1 else
                  "values; statistics ignore them.")
               for name, (nan, inf) in list(bad.items())[:limit]]
        if len(bad) > limit:
            rest = list(bad.values())[limit:]
            out.append(f"{len(rest)} more tensors hold "
                       f"{nonfinite_text(sum(n for n, _ in rest), sum(i for _, i in rest))} "
                       "values; statistics ignore them.")
        return out


def nonfinite_text(nan: int, inf: int) -> str:
    """Counts as words: '3 NaN and 1 Inf', '2 NaN', '1 Inf'."""
    parts = ([f"{nan:,} NaN"] if nan else []) + ([f"{inf:,} Inf"] if inf else [])
    return " and ".join(parts) or "no non-finite"


SUMMARY_SAMPLE = 2_000_000


def named_weights(variant: Variant) -> dict[str, Any]:
    """The variant's numeric weight tensors as float32 torch tensors, by name."""
    import torch

    out: dict[str, Any] = {}
    if variant.backend == "onnx":
        return _onnx_weights(variant.model)
    for name, p in variant.model.named_parameters():
        if p.numel() > 1:
            out[name] = p.detach().to(torch.float32)  # fp16/bf16 weights read as float32
    out.update(_masked_weights(variant.model, out))
    out.update(_packed_weights(variant.model))
    return out


def _onnx_weights(model: Any) -> dict[str, Any]:
    """An ONNX model's float initializers by name; quantized ones dequantized under the name
    of the float weight they replaced (their scales and zero points left out), and integer
    constants that are no weights (shapes, indices) left out."""
    import torch
    from onnx import numpy_helper

    from workbench.core.graph.dequant import dequantized_initializers

    dequantized, aliases, helpers = dequantized_initializers(model)
    out: dict[str, Any] = {}
    for init in model.graph.initializer:
        if init.name in aliases:
            name = aliases[init.name]
            out[name] = torch.from_numpy(dequantized[name])
            continue
        if init.name in helpers:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size > 1 and np.issubdtype(arr.dtype, np.number) and \
                arr.dtype not in (np.int32, np.int64):
            out[init.name] = torch.from_numpy(np.array(arr, dtype=np.float32))
    return out


def weight_aliases(variant: Variant) -> dict[str, str]:
    """The weight name `named_weights` shows for each quantized ONNX initializer (the
    graph's nodes name the initializers)."""
    if variant.backend != "onnx":
        return {}
    from workbench.core.graph.dequant import original_name, quantized_weights

    return {q: original_name(q)[0] for q in quantized_weights(variant.model)}


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
            log.debug("cannot unpack the weights of %s", type(module).__name__, exc_info=True)
            continue
        weights = packed["weight"] if isinstance(packed, dict) else {"weight": packed[0]}
        prefix = f"{mod_name}." if mod_name else ""
        for key, w in weights.items():
            if isinstance(w, torch.Tensor) and w.numel() > 1:
                w = w.dequantize() if w.is_quantized else w
                out[prefix + key] = w.detach().to(torch.float32)
    return out


def nonfinite_weights(variant: Variant) -> dict[str, tuple[int, int]]:
    """(NaN count, ±Inf count) of every weight tensor holding such values: the tensors
    `weight_stats` reads, checked with one `isfinite().all()` each."""
    import torch

    out: dict[str, tuple[int, int]] = {}
    with torch.no_grad():
        for name, t in named_weights(variant).items():
            finite = torch.isfinite(t)
            if not bool(finite.all()):
                nan = int(torch.isnan(t).sum())
                out[name] = (nan, t.numel() - nan - int(finite.sum()))
    return out


def weight_stats(variant: Variant, bins: int = 64) -> WeightStats:
    """Histogram, range, moments, sparsity and per-channel ranges of every weight tensor."""
    return stats_from_tensors(named_weights(variant), bins)


def stats_from_tensors(weights: dict[str, Any], bins: int = 64) -> WeightStats:
    """Statistics of float torch tensors by name; NaN and ±Inf values are counted apart."""
    import torch

    if bins < 1:
        raise ValueError("bins must be at least 1")
    tensors: dict[str, TensorStats] = {}
    total = finite_total = 0
    total_sum = 0.0
    total_sq = 0.0
    zeros = nans = infs = 0
    lo, hi = float("inf"), float("-inf")
    with torch.no_grad():
        for name, t in weights.items():
            flat = t.reshape(-1)
            n = flat.numel()
            s = float(flat.sum())
            nan = inf = 0
            values = flat
            if not math.isfinite(s):  # a NaN or Inf somewhere, or a float32 overflow
                finite = torch.isfinite(flat)
                nan = int(torch.isnan(flat).sum())
                inf = n - nan - int(finite.sum())
                if nan or inf:
                    values = flat[finite]
                    s = float(values.sum())
            stats, sq, nz = _tensor_stats(name, t, values, s, n, nan, inf, bins)
            tensors[name] = stats
            total += n
            finite_total += values.numel()
            total_sum += s
            total_sq += sq
            zeros += nz
            nans += nan
            infs += inf
            if values.numel():
                lo, hi = min(lo, stats.min), max(hi, stats.max)
        if total == 0:
            empty = TensorStats("model", (0,), 0, 0.0, 0.0, 0.0, 0.0, 0.0,
                                np.zeros(bins), np.linspace(0, 1, bins + 1))
            return WeightStats({}, empty, bins)
        if finite_total == 0:
            lo, hi = 0.0, 0.0
        counts = np.zeros(bins, dtype=np.float64)
        edges = np.linspace(lo, hi if hi > lo else lo + 1e-12, bins + 1)
        # Above a few million values the summary histogram is taken on an even subsample
        # (scaled back to counts), as napari's HistogramModel does.
        step = max(1, -(-total // SUMMARY_SAMPLE))
        for name, t in weights.items():
            sample = t.reshape(-1)[::step]
            if tensors[name].nonfinite:
                sample = sample[torch.isfinite(sample)]
            c, _ = _histogram(sample, bins, lo, hi)
            counts += c * step
    mean = total_sum / finite_total if finite_total else 0.0
    std = max(total_sq / finite_total - mean * mean, 0.0) ** 0.5 if finite_total else 0.0
    summary = TensorStats("model", (total,), total, lo, hi, mean, std, zeros / total, counts,
                          edges, nan=nans, inf=infs)
    return WeightStats(tensors, summary, bins)


def _tensor_stats(name: str, t: Any, values: Any, s: float, n: int, nan: int, inf: int,
                  bins: int) -> tuple[TensorStats, float, int]:
    """One tensor's statistics, its sum of squares and its count of zeros; `values` are its
    finite values (all of `t` when `nan` and `inf` are 0) and `s` their sum."""
    import torch

    m = values.numel()
    if m == 0:  # nothing but NaN and Inf: no range, no histogram
        return TensorStats(name, tuple(t.shape), n, 0.0, 0.0, 0.0, 0.0, 0.0, np.zeros(bins),
                           np.linspace(0.0, 1.0, bins + 1), nan=nan, inf=inf), 0.0, 0
    tmin, tmax = (float(v) for v in torch.aminmax(values))
    sq = float(torch.linalg.vector_norm(values)) ** 2
    nz = m - int(torch.count_nonzero(values))
    mean = s / m
    std = max(sq / m - mean * mean, 0.0) ** 0.5
    counts, edges = _histogram(values, bins, tmin, tmax)
    cmin: np.ndarray | None = None
    cmax: np.ndarray | None = None
    if t.ndim >= 2:
        rows = t.reshape(t.shape[0], -1)
        if nan or inf:
            finite = torch.isfinite(rows)
            lo = torch.where(finite, rows, torch.inf).amin(dim=1)
            hi = torch.where(finite, rows, -torch.inf).amax(dim=1)
            empty = ~finite.any(dim=1)  # a channel of nothing but NaN/Inf: drawn as 0
            cmin = lo.masked_fill(empty, 0.0).numpy().copy()
            cmax = hi.masked_fill(empty, 0.0).numpy().copy()
        else:
            per = torch.aminmax(rows, dim=1)
            cmin, cmax = per.min.numpy().copy(), per.max.numpy().copy()
    uniq, value_counts = _distinct(values)
    distinct = None if uniq is None else len(uniq)
    stats = TensorStats(name, tuple(t.shape), n, tmin, tmax, mean, std, nz / n, counts,
                        edges, cmin, cmax, distinct, uniq, value_counts, nan, inf)
    return stats, sq, nz


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

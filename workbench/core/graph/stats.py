"""Weight statistics per tensor and for the whole model, computed with numpy.

Everything is a whole-tensor (or cache-sized chunk) op, never a Python loop over values; an
ONNX model's initializers are read from their raw bytes and torch is never imported for them.
NaN and ±Inf values are counted per tensor and left out of the ranges, moments and
histograms; a tensor without them (the usual case) pays nothing extra, since a finite min
and max prove every value finite."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.graph.stats_kernels import Moments, as_array, distinct, histogram, moments
from workbench.core.jobs import CancelToken
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
        return nonfinite_warnings(self.nonfinite_tensors(), limit)


def nonfinite_warnings(bad: dict[str, tuple[int, int]], limit: int = MAX_NONFINITE_WARNINGS
                       ) -> list[str]:
    """One sentence per tensor of `bad` ((NaN, Inf) counts by name), at most `limit`, then a
    tally of the rest."""
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
    """The variant's numeric weight tensors by name: float32 torch tensors for a torch
    variant, numpy arrays in their stored float dtype (read without copies) for ONNX."""
    if variant.backend == "onnx":
        return _onnx_weights(variant.model)
    import torch

    out: dict[str, Any] = {}
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
    from onnx import numpy_helper

    from workbench.core.graph.dequant import dequantized_initializers

    dequantized, aliases, helpers = dequantized_initializers(model)
    out: dict[str, Any] = {}
    for init in model.graph.initializer:
        if init.name in aliases:
            name = aliases[init.name]
            out[name] = dequantized[name]
            continue
        if init.name in helpers:
            continue
        if init.data_type in _NO_WEIGHT_TYPES or math.prod(init.dims) <= 1:
            continue  # shapes, indices, flags: not decoded at all
        arr = numpy_helper.to_array(init)  # raw bytes: a numpy view, no copy
        if np.issubdtype(arr.dtype, np.number) or _is_ml_float(arr.dtype):
            out[init.name] = arr if arr.dtype.kind == "f" else arr.astype(np.float32)
    return out


_NO_WEIGHT_TYPES = frozenset({6, 7, 8, 9})  # TensorProto INT32, INT64, STRING, BOOL


def _is_ml_float(dtype: np.dtype) -> bool:
    """bfloat16 and the float8/float4 types (ml_dtypes), which numpy does not call numbers."""
    return dtype.kind == "V" and dtype.name.startswith(("bfloat", "float"))


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
    `weight_stats` reads, checked with one min/max each (NaN and Inf survive both)."""
    out: dict[str, tuple[int, int]] = {}
    for name, t in named_weights(variant).items():
        arr = as_array(t)
        if arr.size and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
            nan = int(np.count_nonzero(np.isnan(arr)))
            out[name] = (nan, arr.size - nan - int(np.count_nonzero(np.isfinite(arr))))
    return out


def weight_stats(variant: Variant, bins: int = 64, cancel: CancelToken | None = None
                 ) -> WeightStats:
    """Histogram, range, moments, sparsity and per-channel ranges of every weight tensor
    (`cancel` is checked between tensors)."""
    return stats_from_tensors(named_weights(variant), bins, cancel)


PARALLEL_MIN = 1 << 18  # tensors of fewer values are measured on the calling thread


def stats_from_tensors(weights: dict[str, Any], bins: int = 64,
                       cancel: CancelToken | None = None) -> WeightStats:
    """Statistics of float tensors (numpy arrays or CPU torch tensors) by name; NaN and ±Inf
    values are counted apart. Big tensors' first passes run on threads (numpy frees the
    GIL in its reductions)."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    arrays = {name: as_array(t) for name, t in weights.items()}
    big = [n for n, a in arrays.items() if a.size >= PARALLEL_MIN]
    workers = min(len(big), (os.cpu_count() or 1) - 1)
    if workers > 0:
        # Pipelined: the range/moment passes (GIL-free reductions) run ahead on the pool
        # while this thread takes the histograms (bincount holds the GIL).
        with ThreadPoolExecutor(workers, thread_name_prefix="weight-stats") as pool:
            futures = {n: pool.submit(_measure, arrays[n]) for n in big}
            done = {n: _finish(n, a, futures[n].result() if n in futures else _measure(a),
                               bins) for n, a in _checked(arrays, cancel)}
    else:
        done = {n: _finish(n, a, _measure(a), bins) for n, a in _checked(arrays, cancel)}
    tensors = {n: done[n][0] for n in arrays}
    total = sum(t.numel for t in tensors.values())
    finite_total = sum(t.numel - t.nonfinite for t in tensors.values())
    total_sum = math.fsum(done[n][1] for n in arrays)
    total_sq = math.fsum(done[n][2] for n in arrays)
    zeros = sum(done[n][3] for n in arrays)
    finite = [t for t in tensors.values() if t.numel > t.nonfinite]
    lo = min((t.min for t in finite), default=0.0)
    hi = max((t.max for t in finite), default=0.0)
    if total == 0:
        empty = TensorStats("model", (0,), 0, 0.0, 0.0, 0.0, 0.0, 0.0,
                            np.zeros(bins), np.linspace(0, 1, bins + 1))
        return WeightStats({}, empty, bins)
    counts = np.zeros(bins, dtype=np.float64)
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-12, bins + 1)
    # Above a few million values the summary histogram is taken on an even subsample
    # (scaled back to counts), as napari's HistogramModel does.
    step = max(1, -(-total // SUMMARY_SAMPLE))
    for name, a in arrays.items():
        sample = a.reshape(-1)[::step]
        if tensors[name].nonfinite:
            sample = sample[np.isfinite(sample)]
        counts += histogram(sample, bins, lo, hi) * step
    mean = total_sum / finite_total if finite_total else 0.0
    std = max(total_sq / finite_total - mean * mean, 0.0) ** 0.5 if finite_total else 0.0
    summary = TensorStats("model", (total,), total, lo, hi, mean, std, zeros / total, counts,
                          edges, nan=sum(t.nan for t in tensors.values()),
                          inf=sum(t.inf for t in tensors.values()))
    return WeightStats(tensors, summary, bins)


def _checked(arrays: dict[str, np.ndarray], cancel: CancelToken | None
             ) -> Iterator[tuple[str, np.ndarray]]:
    """The items of `arrays`, `cancel` checked before each."""
    for item in arrays.items():
        if cancel is not None:
            cancel.check()
        yield item


@dataclass(frozen=True)
class _Measured:
    """A tensor's first pass: its finite values (flat) and their moments (None when there
    is none), NaN and Inf counts, and per-channel ranges over finite values."""

    values: np.ndarray
    moments: Moments | None
    nan: int
    inf: int
    channel_min: np.ndarray | None
    channel_max: np.ndarray | None


def _measure(arr: np.ndarray) -> _Measured:
    """Range, moments, zeros and channel ranges of one tensor; NaN and Inf counted apart."""
    n = arr.size
    m = moments(arr) if n else None
    values = arr.reshape(-1)
    cmin, cmax = (m.channel_min, m.channel_max) if m else (None, None)
    if m is None or (math.isfinite(m.lo) and math.isfinite(m.hi)):
        return _Measured(values, m, 0, 0, cmin, cmax)
    finite = np.isfinite(values)
    nan = int(np.count_nonzero(np.isnan(values)))
    inf = n - nan - int(np.count_nonzero(finite))
    values = values[finite]
    if cmin is not None:
        cmin, cmax = _finite_channel_range(arr)
    return _Measured(values, moments(values) if values.size else None, nan, inf, cmin, cmax)


def _finish(name: str, arr: np.ndarray, measured: _Measured, bins: int
            ) -> tuple[TensorStats, float, float, int]:
    """One tensor's statistics from its first pass plus the histogram, with the sum and sum
    of squares of its finite values and its count of zeros (for the summary)."""
    n = arr.size
    shape = tuple(int(d) for d in arr.shape)
    m, values, nan, inf = measured.moments, measured.values, measured.nan, measured.inf
    cmin, cmax = measured.channel_min, measured.channel_max
    if m is None:  # nothing but NaN and Inf (or nothing): no range, no histogram
        return (TensorStats(name, shape, n, 0.0, 0.0, 0.0, 0.0, 0.0, np.zeros(bins),
                            np.linspace(0.0, 1.0, bins + 1), cmin, cmax, nan=nan, inf=inf),
                0.0, 0.0, 0)
    k = values.size
    mean = m.total / k
    std = max(m.squares / k - mean * mean, 0.0) ** 0.5
    nz = k - m.nonzero
    counts = histogram(values, bins, m.lo, m.hi)
    edges = np.linspace(m.lo, m.hi if m.hi > m.lo else m.lo + 1e-12, bins + 1)
    uniq, value_counts = distinct(values)
    stats = TensorStats(name, shape, n, m.lo, m.hi, mean, std, nz / n, counts, edges,
                        cmin, cmax, None if uniq is None else len(uniq), uniq, value_counts,
                        nan, inf)
    return stats, m.total, m.squares, nz


def _finite_channel_range(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per dim-0 channel min and max over finite values; a channel without any is 0."""
    rows = arr.reshape(arr.shape[0], -1)
    finite = np.isfinite(rows)
    lo = np.where(finite, rows, np.inf).min(axis=1)
    hi = np.where(finite, rows, -np.inf).max(axis=1)
    empty = ~finite.any(axis=1)
    lo[empty] = 0.0
    hi[empty] = 0.0
    dtype = np.float32 if arr.dtype == np.float16 else arr.dtype
    return lo.astype(dtype), hi.astype(dtype)

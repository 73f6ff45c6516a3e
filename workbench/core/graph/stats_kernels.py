"""Numpy kernels behind the weight statistics: one pass for the range, moments, zeros and
per-channel ranges, one for the histogram, both over cache-sized chunks so each value is
read from memory twice at most. Numpy releases the GIL inside these loops, so big tensors
are spread over threads. float16 stays float16 in memory (a chunk at a time is widened)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

CHUNK = 1 << 16  # values per chunk: 256 KB of float32, resident in L2 between the reductions
NATIVE_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def as_array(t: Any) -> np.ndarray:
    """A numpy view of `t` (a numpy array or a CPU torch tensor); dtypes numpy cannot reduce
    natively (integers, bfloat16, float8) are read as float32, float16/32/64 are not copied."""
    arr = t if isinstance(t, np.ndarray) else t.detach().cpu().numpy()
    if arr.dtype not in NATIVE_FLOATS:
        arr = arr.astype(np.float32)
    return arr


def _work_dtype(arr: np.ndarray) -> np.dtype:
    """The dtype a chunk is reduced in: float16 widens to float32, others stay."""
    return np.dtype(np.float32) if arr.dtype == np.float16 else arr.dtype


@dataclass(frozen=True)
class Moments:
    """One pass over a tensor: its range, sums, zeros and per-channel range (NaN/Inf included:
    a non-finite `lo`/`hi` says the tensor holds such values)."""

    lo: float
    hi: float
    total: float
    squares: float
    nonzero: int
    channel_min: np.ndarray | None
    channel_max: np.ndarray | None


def moments(arr: np.ndarray) -> Moments:
    """Range, sum, sum of squares and non-zero count of `arr`, and per dim-0 channel range for
    tensors of two dims or more, in one chunked pass (min/max propagate NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):  # NaN, Inf and overflow are handled
        return _moments(arr)


def _moments(arr: np.ndarray) -> Moments:
    work = _work_dtype(arr)
    channels = arr.ndim >= 2 and arr.shape[0] > 0 and arr.size > 0
    rows = np.ascontiguousarray(arr).reshape(arr.shape[0] if channels else 1, -1)
    per = max(1, CHUNK // max(rows.shape[1], 1))  # rows per chunk
    cmins: list[np.ndarray] = []
    cmaxs: list[np.ndarray] = []
    total = squares = 0.0
    zeros = 0
    size = min(arr.size, CHUNK)  # no chunk is longer
    ones = np.ones(size, dtype=work)  # sum as a dot product: BLAS, 2x numpy's pairwise sum
    is_zero = np.empty(size, dtype=bool)  # zeros counted on booleans: 6x count_nonzero(float)
    lo, hi = math.inf, -math.inf
    flat_rows = rows.shape[1] > CHUNK  # long rows: chunk within the row too
    for r in range(0, rows.shape[0], per):
        block = rows[r:r + per]
        if channels:
            cmins.append(block.min(axis=1))
            cmaxs.append(block.max(axis=1))
        flat = block.reshape(-1)
        for i in range(0, flat.size, CHUNK if flat_rows else flat.size):
            c = flat[i:i + CHUNK] if flat_rows else flat
            c = c.astype(work) if c.dtype != work else c
            if not channels:
                lo = min(lo, float(c.min()), key=_nan_first)
                hi = max(hi, float(c.max()), key=_nan_last)
            total += float(np.dot(c, ones[:c.size]))
            squares += float(np.dot(c, c))
            zeros += int(np.count_nonzero(np.equal(c, 0, out=is_zero[:c.size])))
    cmin = cmax = None
    if channels:
        cmin, cmax = np.concatenate(cmins), np.concatenate(cmaxs)
        lo, hi = float(cmin.min()), float(cmax.max())
        if cmin.dtype == np.float16:
            cmin, cmax = cmin.astype(np.float32), cmax.astype(np.float32)
    if not (math.isfinite(total) and math.isfinite(squares)) and math.isfinite(lo) \
            and math.isfinite(hi):  # finite values whose float32 sums overflowed
        flat64 = arr.reshape(-1).astype(np.float64)
        total, squares = float(flat64.sum()), float(np.dot(flat64, flat64))
    return Moments(lo, hi, total, squares, arr.size - zeros, cmin, cmax)


def _nan_first(v: float) -> float:
    """Sort key that makes NaN win a `min` (so it is not lost to a finite value)."""
    return -math.inf if math.isnan(v) else v


def _nan_last(v: float) -> float:
    """Sort key that makes NaN win a `max`."""
    return math.inf if math.isnan(v) else v


def histogram(flat: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """Counts (float64) of the finite 1-D `flat` in `bins` equal bins over [lo, hi], the last
    bin closed (values outside are clipped into the end bins), in chunks: subtract, scale,
    truncate, bincount."""
    counts = np.zeros(bins, dtype=np.int64)
    if flat.size == 0:
        return counts.astype(np.float64)
    if hi <= lo:
        hi = lo + 1e-12
    if not hi > lo:  # a range too narrow to split at this magnitude: one value
        counts[0] = flat.size
        return counts.astype(np.float64)
    scale = bins / (hi - lo)
    work = np.float64 if flat.dtype == np.float64 or scale > 1e38 else np.float32
    n = min(flat.size, CHUNK)
    buf = np.empty(n, dtype=work)
    idx = np.empty(n, dtype=np.intp)
    for i in range(0, flat.size, CHUNK):
        c = flat[i:i + CHUNK]
        b, k = buf[:c.size], idx[:c.size]
        np.subtract(c, work(lo), out=b, dtype=work)
        np.multiply(b, work(scale), out=b)
        np.clip(b, 0, bins - 1, out=b)
        np.copyto(k, b, casting="unsafe")  # truncation toward zero: the bin index
        counts += np.bincount(k, minlength=bins)
    return counts.astype(np.float64)


def distinct(flat: np.ndarray, limit: int = 256) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The distinct values and their counts when there are at most `limit` (quantized or
    clustered layers), else (None, None). A sample decides first, so full-precision layers
    cost almost nothing."""
    if np.unique(flat[:4096]).size > limit:
        return None, None
    uniq, counts = np.unique(flat, return_counts=True)
    if uniq.size > limit:
        return None, None
    return uniq, counts

"""Weight statistics on ~27M float32 parameters (about 100 tensors, ResNet-50-like shapes)
against plain numpy per tensor (min, max, mean, std, zeros and a 64-bin histogram over the
tensor's range), timed side by side in one run, interleaved, median of the rounds; also
our statistics with every tensor on the calling thread (what the threads bring).

Run: .venv/bin/python tests/benchmarks/bench_stats.py [--rounds 5]
Target: workbench / numpy <= 1.0. Exits 1 if it is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from workbench.core.graph import stats
from workbench.core.graph.stats import stats_from_tensors

TARGET = 1.0


def weights(seed: int = 0) -> dict[str, np.ndarray]:
    """~27M float32 values in ~100 tensors: convolutions of every width, a big classifier."""
    rng = np.random.default_rng(seed)
    shapes = ([(64, 64, 3, 3)] * 12 + [(128, 128, 3, 3)] * 12 + [(256, 256, 3, 3)] * 12
              + [(512, 512, 3, 3)] * 3 + [(512, 2048, 1, 1)] * 6 + [(1000, 2048)]
              + [(256, 1024, 1, 1)] * 12 + [(2048,)] * 42)
    return {f"w{i}": rng.standard_normal(s, dtype=np.float32) for i, s in enumerate(shapes)}


def numpy_reference(ws: dict[str, np.ndarray], bins: int = 64) -> None:
    """What a numpy user writes per tensor."""
    for a in ws.values():
        lo, hi = a.min(), a.max()
        a.mean(), a.std(), np.count_nonzero(a)
        np.histogram(a, bins=bins, range=(lo, hi))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ws = weights()
    n = sum(a.size for a in ws.values())
    stats_from_tensors(ws)  # warm up (imports, thread pool, page faults)
    ours, ref, single = [], [], []
    threaded_min = stats.PARALLEL_MIN
    for _ in range(args.rounds):
        t = time.perf_counter()
        stats_from_tensors(ws, bins=64)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        numpy_reference(ws)
        ref.append(time.perf_counter() - t)
        stats.PARALLEL_MIN = 1 << 62  # the same, all on the calling thread
        t = time.perf_counter()
        stats_from_tensors(ws, bins=64)
        single.append(time.perf_counter() - t)
        stats.PARALLEL_MIN = threaded_min
    ratio = statistics.median(o / r for o, r in zip(ours, ref, strict=True))
    print(f"weight statistics on {n / 1e6:.1f}M parameters in {len(ws)} tensors "
          f"(median of {args.rounds}):")
    print(f"  workbench {statistics.median(ours):.3f} s   numpy per tensor "
          f"{statistics.median(ref):.3f} s   ratio {ratio:.2f}x (target <= {TARGET:.1f}x)")
    print(f"  one thread {statistics.median(single):.3f} s   ratio "
          f"{statistics.median(o / r for o, r in zip(single, ref, strict=True)):.2f}x")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the benchmark: the engine's ORT latency against a bare `session.run` loop.

    .venv/bin/python tests/benchmarks/bench_overhead.py [--threads 1] [--rounds 6]
        [--iters 200] [--warmup 20] [--batch 1]

Models: zoo:resnet-mini exported with `torch_to_onnx`, and the onnx wheel's light squeezenet
(`onnx/backend/test/data/light/light_squeezenet.onnx`). In one process, interleaved
A/B/A/B for several rounds, it times the engine (`benchmark(..., runtime="ort")`, with a
progress consumer attached) and a bare loop of `perf_counter_ns` around `session.run` on a
session with the same options (`runtime.ort_session`). Target: the engine's p50 and mean
within 5% of the bare loop's (median of the per-round ratios).

Then two consecutive engine runs of zoo:resnet-mini (torch eager) and whether their p50s
agree within the noise (|Δp50| <= 3·max(std) + 0.05 ms). One intra-op thread by default:
fewer threads than cores keeps a small, shared machine steady. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.jobs import run_job
from workbench.core.measure.benchmark import BenchConfig, benchmark
from workbench.core.model.loaders import load_model
from workbench.core.model.onnx_export import exported_input_specs, torch_to_onnx
from workbench.core.model.runtime import ort_session, session_feed
from workbench.core.model.variant import Variant
from workbench.core.model.zoo import build_zoo

TARGET = 0.05


def models() -> list[Variant]:
    import onnx

    torch_variant = build_zoo("resnet-mini")
    exported = torch_to_onnx(torch_variant)
    out = [Variant("resnet-mini.onnx", "onnx", exported, "onnx",
                   exported_input_specs(torch_variant, exported))]
    light = Path(onnx.__file__).parent / "backend/test/data/light/light_squeezenet.onnx"
    if light.exists():
        out.append(load_model(str(light)))
    else:
        print(f"(skipping squeezenet: {light} not found)")
    return out


def bare(variant: Variant, threads: int | None, warmup: int, iters: int, batch: int
         ) -> list[float]:
    """perf_counter_ns around session.run, nothing else."""
    session = ort_session(variant.model, threads)
    feed = session_feed(session, variant.example_inputs(batch=batch))
    run = session.run
    clock = time.perf_counter_ns
    for _ in range(warmup):
        run(None, feed)
    samples = []
    for _ in range(iters):
        t0 = clock()
        run(None, feed)
        samples.append((clock() - t0) / 1e6)
    return samples


def engine(variant: Variant, threads: int | None, warmup: int, iters: int, batch: int
           ) -> list[float]:
    seen: list[Any] = []  # a consumer, as the GUI has: every update is delivered
    cfg = BenchConfig(runtime="ort", batch_sizes=[batch], threads=threads, warmup=warmup,
                      iters=iters)
    result = run_job(benchmark(variant, cfg), seen.append)
    return result.records[0].samples_ms


def compare(variant: Variant, args: argparse.Namespace) -> dict[str, Any]:
    ratios_p50, ratios_mean = [], []
    pooled: dict[str, list[float]] = {"engine": [], "bare": []}
    for k in range(args.rounds):
        order = [("engine", engine), ("bare", bare)]
        if k % 2:
            order.reverse()  # A/B then B/A: neither side always goes first
        got = {}
        for name, fn in order:
            got[name] = fn(variant, args.threads, args.warmup, args.iters, args.batch)
            pooled[name].extend(got[name])
        ratios_p50.append(np.median(got["engine"]) / np.median(got["bare"]))
        ratios_mean.append(np.mean(got["engine"]) / np.mean(got["bare"]))
    p50 = statistics.median(ratios_p50)
    mean = statistics.median(ratios_mean)
    return {
        "model": variant.name,
        "engine_p50_ms": float(np.median(pooled["engine"])),
        "bare_p50_ms": float(np.median(pooled["bare"])),
        "engine_mean_ms": float(np.mean(pooled["engine"])),
        "bare_mean_ms": float(np.mean(pooled["bare"])),
        "ratio_p50": float(p50), "ratio_mean": float(mean),
        "ratio_p50_rounds": [round(float(r), 4) for r in ratios_p50],
        "ok": bool(abs(p50 - 1) <= TARGET and abs(mean - 1) <= TARGET),
    }


def consecutive(args: argparse.Namespace) -> dict[str, Any]:
    variant = build_zoo("resnet-mini")
    cfg = BenchConfig(runtime="torch", batch_sizes=[args.batch], threads=args.threads,
                      warmup=args.warmup, iters=args.iters)
    a, b = (run_job(benchmark(variant, cfg)).records[0] for _ in range(2))
    bound = 3 * max(a.std_ms, b.std_ms) + 0.05
    return {"model": "zoo:resnet-mini (torch)", "p50_a": a.p50_ms, "p50_b": b.p50_ms,
            "std_a": a.std_ms, "std_b": b.std_ms, "diff": abs(a.p50_ms - b.p50_ms),
            "bound": bound, "ok": bool(abs(a.p50_ms - b.p50_ms) <= bound)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (0: default)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    args.threads = args.threads or None
    rows = [compare(v, args) for v in models()]
    print(f"{'model':<20}{'engine p50':>12}{'bare p50':>10}{'ratio':>8}"
          f"{'engine mean':>13}{'bare mean':>11}{'ratio':>8}  target ±5%")
    for r in rows:
        print(f"{r['model']:<20}{r['engine_p50_ms']:>12.4f}{r['bare_p50_ms']:>10.4f}"
              f"{r['ratio_p50']:>8.3f}{r['engine_mean_ms']:>13.4f}{r['bare_mean_ms']:>11.4f}"
              f"{r['ratio_mean']:>8.3f}  {'ok' if r['ok'] else 'MISSED'}")
        print(f"{'':<20}p50 ratio per round: {r['ratio_p50_rounds']}")
    twice = consecutive(args)
    print(f"two engine runs of {twice['model']}: p50 {twice['p50_a']:.4f} / "
          f"{twice['p50_b']:.4f} ms (std {twice['std_a']:.4f} / {twice['std_b']:.4f}); "
          f"|Δ| {twice['diff']:.4f} <= {twice['bound']:.4f}: "
          f"{'agree' if twice['ok'] else 'DISAGREE'}")
    print(json.dumps({"overhead": rows, "consecutive": twice, "threads": args.threads}))
    return 0 if all(r["ok"] for r in rows) and twice["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

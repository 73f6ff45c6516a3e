"""Benchmark structured pruning: zoo:resnet-mini before and after prune.structured (ratio 0.5).

Run:  .venv/bin/python tests/benchmarks/bench_prune.py [--size 32] [--threads 1] [--rounds 5]

Measured side by side in one run:
- MACs ratio from the pass report (target <= 0.35) and parameters ratio;
- CPU latency at batch 1 and batch 32 with `torch.utils.benchmark.Timer`, original and pruned
  timed in alternating rounds (the median of each is kept, so a noisy neighbour hits both);
  target speed-up >= 1.6x;
- the pruned model exported with `torch.onnx.export(dynamo=True, external_data=False)` and
  run in ONNX Runtime: max |ORT - torch| on a batch of 4.
The input is the zoo default, 1x32x32 (one channel), unless --size says otherwise. Timing
uses one intra-op thread by default: on a small shared VM, OpenMP threads that get
descheduled stall at every barrier and the timings swing tenfold; pass --threads to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import statistics
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.benchmark import Timer

from workbench.core.model.zoo import build_zoo
from workbench.core.passes.base import apply_pass
from workbench.core.passes.prune_structured import StructuredPrune

TARGET_MACS = 0.35
TARGET_SPEEDUP = 1.6


def latency(model: Any, x: torch.Tensor, threads: int) -> float:
    """Median seconds per forward pass (no grad) over a blocked autorange."""
    timer = Timer("with torch.no_grad(): model(x)", globals={"model": model, "x": x,
                                                           "torch": torch},
                  num_threads=threads)
    return timer.blocked_autorange(min_run_time=0.3).median


def side_by_side(original: Any, pruned: Any, x: torch.Tensor, threads: int, rounds: int
                 ) -> tuple[float, float]:
    """Median latency of each model over `rounds` alternating measurements."""
    with torch.no_grad():  # warm-up: oneDNN builds its kernels on the first calls
        for _ in range(3):
            original(x)
            pruned(x)
    a, b = [], []
    for _ in range(rounds):
        a.append(latency(original, x, threads))
        b.append(latency(pruned, x, threads))
    return statistics.median(a), statistics.median(b)


def onnx_parity(model: Any, x: torch.Tensor) -> tuple[float, int]:
    """Export with the dynamo exporter, run in ORT; return (max abs diff, file bytes)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pruned.onnx"
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=False,
                              input_names=["input"], output_names=["logits"],
                              dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
        size = path.stat().st_size
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    return float(np.abs(got - want).max()), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="input height and width")
    parser.add_argument("--threads", type=int, default=1, help="intra-op CPU threads")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ratio", type=float, default=0.5)
    args = parser.parse_args()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"

    variant = build_zoo("resnet-mini", input_shape=(1, 1, args.size, args.size))
    result = apply_pass(StructuredPrune(), variant, {"ratio": args.ratio})
    before, after = result.report.before, result.report.after
    original, pruned = variant.model.eval(), result.variant.model.eval()

    rows: list[tuple[str, str, str, str, str]] = []
    macs_ratio = after["macs"] / before["macs"]
    rows.append(("MACs", f"{before['macs']:,}", f"{after['macs']:,}", f"{macs_ratio:.3f}x",
                 f"<= {TARGET_MACS} {'PASS' if macs_ratio <= TARGET_MACS else 'FAIL'}"))
    params_ratio = after["parameters"] / before["parameters"]
    rows.append(("parameters", f"{before['parameters']:,}", f"{after['parameters']:,}",
                 f"{params_ratio:.3f}x", ""))
    speedups = []
    for batch in (1, 32):
        x = variant.example_inputs(batch=batch)[0]
        t_orig, t_pruned = side_by_side(original, pruned, x, args.threads, args.rounds)
        speedup = t_orig / t_pruned
        speedups.append(speedup)
        rows.append((f"latency b={batch} (ms)", f"{t_orig * 1e3:.3f}", f"{t_pruned * 1e3:.3f}",
                     f"{speedup:.2f}x speed-up",
                     f">= {TARGET_SPEEDUP} {'PASS' if speedup >= TARGET_SPEEDUP else 'FAIL'}"))
    diff, size = onnx_parity(pruned, variant.example_inputs(batch=4)[0])
    rows.append(("ONNX (dynamo) ORT parity", "", f"{size:,} B", f"max|diff| {diff:.2e}",
                 f"<= 1e-4 {'PASS' if diff <= 1e-4 else 'FAIL'}"))

    print(f"zoo:resnet-mini, input 1x{args.size}x{args.size}, prune.structured ratio "
          f"{args.ratio} (l1), torch {torch.__version__}, {args.threads} CPU threads, "
          f"median of {args.rounds} alternating rounds")
    widths = [max(len(r[i]) for r in [*rows, _HEADER]) for i in range(5)]
    for row in (_HEADER, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


_HEADER = ("measure", "original", "pruned", "ratio", "target")


if __name__ == "__main__":
    main()

"""Benchmarking a variant a second time reuses its ONNX export from the disk cache.

    .venv/bin/python tests/benchmarks/bench_export_cache.py [--models zoo:resnet-mini,zoo:minilm]
        [--iters 5]

For each model, with an empty cache folder (`WORKBENCH_CACHE_DIR` set to a temporary
folder), `workbench bench MODEL --runtime ort` runs twice in separate processes: cold (the
export is made and stored), then warm (the export is read back). It prints both wall times
and their ratio (target: the warm run takes at least 5x less). Process start-up (imports,
loading the model) is in both, so in one process it also times `Session.benchmark` cold,
then again after the memory cache is cleared (a disk hit), then again (a memory hit).
Exits 1 if no model meets the target in either measurement.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 5.0


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("workbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "workbench"]


def bench_cli(model: str, iters: int, cache: str) -> float:
    env = dict(os.environ, WORKBENCH_CACHE_DIR=cache)
    args = [*cli(), "bench", model, "--runtime", "ort", "--iters", str(iters),
            "--warmup", "1", "--threads", "1", "--json"]
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def bench_in_process(model: str, iters: int, cache: str) -> list[float]:
    from workbench.core.measure.benchmark import BenchConfig
    from workbench.core.model import artifact_cache
    from workbench.core.model.onnx_export import clear_export_cache
    from workbench.core.session.session import Session

    artifact_cache.set_cache_dir(cache)
    clear_export_cache()
    session = Session(remember_recent=False)
    entry = session.run(session.open(model))
    cfg = BenchConfig(runtime="ort", iters=iters, warmup=1, threads=1)
    walls = []
    for run in range(3):
        if run == 1:
            clear_export_cache()  # the second run reads the disk, the third the memory
        start = time.perf_counter()
        session.run(session.benchmark(cfg, entry.id))
        walls.append(time.perf_counter() - start)
    return walls


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="zoo:resnet-mini,zoo:minilm")
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args()
    met = False
    print(f"{'model':<18}{'cold s':>9}{'warm s':>9}{'ratio':>8}   (workbench bench, "
          "separate processes)")
    rows = []
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="wb-bench-cache-") as cache:
            cold = bench_cli(model, args.iters, cache)
            warm = bench_cli(model, args.iters, cache)
        met |= cold >= TARGET * warm
        print(f"{model:<18}{cold:>9.2f}{warm:>9.2f}{cold / warm:>7.1f}x")
        with tempfile.TemporaryDirectory(prefix="wb-bench-cache-") as cache:
            rows.append((model, bench_in_process(model, args.iters, cache)))
    print(f"\n{'model':<18}{'cold s':>9}{'disk s':>9}{'ratio':>8}{'memory s':>10}{'ratio':>8}"
          "   (Session.benchmark, one process)")
    for model, (cold, disk, memory) in rows:
        met |= cold >= TARGET * disk
        print(f"{model:<18}{cold:>9.2f}{disk:>9.2f}{cold / disk:>7.1f}x{memory:>10.2f}"
              f"{cold / memory:>7.1f}x")
    print(f"\ntarget: warm >= {TARGET:.0f}x less wall time: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

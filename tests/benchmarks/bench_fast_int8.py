"""Fast int8 from torch: quantize.ort_dynamic on zoo:resnet-mini, first time and cached.

    .venv/bin/python tests/benchmarks/bench_fast_int8.py [--repeat 3] [--model zoo:resnet-mini]

Each repeat is a fresh process with an empty export cache (`WORKBENCH_CACHE_DIR` in a
temporary folder), timing the window's path (`Session.apply` run as a job, after the model
is open, as the window does it):

* first: the first quantize.ort_dynamic (the ONNX export is made). onnx and ONNX Runtime
  are imported before it and timed apart, as the window imports them in the background
  after its first paint;
* cached (disk): again after the memory caches are cleared (exports, the parent's reference
  outputs, ONNX Runtime sessions), as a later process would: the export, the pre-processed
  model and the reference outputs come from the disk cache;
* cached (memory): again, as a second int8 pass in the same window does;
* benchmark: `Session.benchmark` on ONNX Runtime (the Benchmark tab's defaults: 10 warm-up
  and 100 timed runs at batch 1) with the export cached, the benchmark panel's path.

Prints the median wall time of each (and the process's CPU time, which a busy machine
inflates less), the steps of the runs, and the targets: first within 5 s, cached within
2 s. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FIRST_TARGET_S = 5.0
CACHED_TARGET_S = 2.0
ROOT = Path(__file__).resolve().parents[2]


def child(model: str) -> dict[str, Any]:
    """One fresh process's figures (run with --child)."""
    from workbench.core.measure.benchmark import BenchConfig
    from workbench.core.model.onnx_export import clear_export_cache
    from workbench.core.model.reference_outputs import clear_reference_outputs
    from workbench.core.model.runtime import clear_session_cache
    from workbench.core.session.session import Session

    session = Session(remember_recent=False)
    parent = session.run(session.open(model)).id
    start = time.perf_counter()
    import onnx  # noqa: F401  (the window loads these in the background after its first paint)
    import onnxruntime  # noqa: F401
    imports = time.perf_counter() - start
    cpu: dict[str, float] = {}

    def apply(label: str) -> tuple[float, dict[str, Any]]:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = session.run(session.apply("quantize.ort_dynamic", {}, parent))
        cpu[label] = time.process_time() - cpu_start
        return time.perf_counter() - start, result.report.details

    first, details = apply("first")
    clear_export_cache()
    clear_reference_outputs()
    clear_session_cache()
    disk, disk_details = apply("disk")
    memory, memory_details = apply("memory")
    start = time.perf_counter()
    # the Benchmark tab's defaults (100 runs after 10 warm-up runs, batch 1), on ORT
    bench = session.run(session.benchmark(BenchConfig(runtime="ort"), parent))
    bench_s = time.perf_counter() - start
    return {"first": first, "disk": disk, "memory": memory, "bench": bench_s,
            "imports": imports, "cpu": cpu, "steps": details["step_seconds"],
            "disk_steps": disk_details["step_seconds"],
            "memory_steps": memory_details["step_seconds"], "export": details["export"],
            "disk_export": disk_details["export"], "memory_export": memory_details["export"],
            "bench_notes": [n for n in bench.notes if "ONNX export" in n
                            or "Exported" in n]}


def run_child(model: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wb-fast-int8-") as cache:
        env = dict(os.environ, WORKBENCH_CACHE_DIR=cache, HF_HUB_OFFLINE="1",
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        out = subprocess.run([sys.executable, __file__, "--child", "--model", model],
                             env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="zoo:resnet-mini")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.model)))
        return 0
    runs = [run_child(args.model) for _ in range(args.repeat)]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    rows = [("first (export made)", "first", FIRST_TARGET_S),
            ("cached on disk", "disk", CACHED_TARGET_S),
            ("cached in memory", "memory", CACHED_TARGET_S),
            ("benchmark, export cached", "bench", None)]
    print(f"quantize.ort_dynamic on {args.model}: median of {len(runs)} fresh processes")
    print(f"{'':<28}{'median s':>9}{'runs s':>22}{'CPU s':>8}{'target s':>10}")
    missed = False
    for label, key, target in rows:
        spread = ", ".join(f"{r[key]:.2f}" for r in runs)
        cpu = statistics.median(r["cpu"][key] for r in runs) if key in runs[0]["cpu"] else None
        cpu_text = f"{cpu:>8.2f}" if cpu is not None else f"{'':>8}"
        verdict = ""
        if target is not None:
            ok = median(key) <= target
            missed |= not ok
            verdict = f"{target:>6.1f} {'met' if ok else 'MISSED'}"
        print(f"{label:<28}{median(key):>9.2f}{spread:>22}{cpu_text}  {verdict}")
    last = runs[-1]
    print(f"(not in 'first': importing onnx and onnxruntime, {median('imports'):.2f} s, "
          "which the window does in the background after its first paint)")
    for label, key in (("first", "steps"), ("disk-cached", "disk_steps"),
                       ("memory-cached", "memory_steps")):
        print(f"steps of the {label} run (s): "
              + ", ".join(f"{k} {v:.2f}" for k, v in last[key].items()))
    print(f"first:  {last['export']}\ndisk:   {last['disk_export']}\n"
          f"memory: {last['memory_export']}")
    print("benchmark: " + " ".join(last["bench_notes"]))
    try:
        load = os.getloadavg()[0]
        print(f"load average during the run: {load:.1f} on {os.cpu_count()} cores")
    except OSError:
        pass
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Open-and-paint times for real ONNX models, and weight statistics on 25M parameters.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python tests/benchmarks/bench_open.py
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def light(name: str) -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"


def bench_open(source: str) -> dict[str, float]:
    from workbench.core.graph.analysis import open_model
    from workbench.core.jobs import run_job
    from workbench.gui.app import create_app
    from workbench.gui.qt_main_window import QtMainWindow

    app = create_app()
    t0 = time.perf_counter()
    analysis = run_job(open_model(source))
    t1 = time.perf_counter()
    window = QtMainWindow(remember_layout=False)
    window.show_dialogs = False  # closing with unsaved variants must not wait for an answer
    window.resize(1400, 900)
    window.show()
    window.workspace.add(analysis)
    app.processEvents()
    window.graph_view.view.viewport().repaint()
    t2 = time.perf_counter()
    window.close()
    return {"nodes": len(analysis.graph.nodes), "load_s": t1 - t0, "paint_s": t2 - t1,
            "total_s": t2 - t0}


def bench_stats() -> dict[str, float]:
    import numpy as np
    import torch

    from workbench.core.graph.stats import stats_from_tensors

    gen = torch.Generator().manual_seed(0)
    shapes = [(512, 512, 3, 3)] * 10 + [(1000, 2048)] * 1 + [(256, 256, 3, 3)] * 3
    weights = {f"w{i}": torch.randn(s, generator=gen) for i, s in enumerate(shapes)}
    n = sum(w.numel() for w in weights.values())
    times = []
    for _ in range(3):
        t = time.perf_counter()
        stats_from_tensors(weights, bins=64)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    for w in weights.values():
        a = w.numpy()
        np.histogram(a, bins=64)
        a.min(), a.max(), a.mean(), a.std(), (a == 0).mean()
    numpy_s = time.perf_counter() - t
    return {"params": n, "workbench_s": statistics.median(times), "numpy_s": numpy_s}


def main() -> None:
    print("open + first paint (real models)")
    print(f"  {'model':<28}{'nodes':>7}{'load s':>9}{'paint s':>9}{'total s':>9}")
    for name in ("squeezenet", "resnet50", "inception_v2", "densenet121"):
        r = bench_open(str(light(name)))
        print(f"  {name:<28}{r['nodes']:>7}{r['load_s']:>9.3f}{r['paint_s']:>9.3f}"
              f"{r['total_s']:>9.3f}")
    for zoo in ("zoo:resnet-mini", "zoo:minilm"):
        r = bench_open(zoo)
        print(f"  {zoo:<28}{r['nodes']:>7}{r['load_s']:>9.3f}{r['paint_s']:>9.3f}"
              f"{r['total_s']:>9.3f}")
    s = bench_stats()
    print(f"weight statistics on {s['params'] / 1e6:.1f}M parameters: "
          f"{s['workbench_s']:.3f} s (numpy per-tensor equivalent {s['numpy_s']:.3f} s, "
          f"ratio {s['numpy_s'] / s['workbench_s']:.1f}x)")


if __name__ == "__main__":
    main()

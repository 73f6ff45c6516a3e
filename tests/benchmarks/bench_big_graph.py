"""Big ONNX graphs (10,000 and 50,000 nodes): `workbench inspect` and the window's first paint.

Run:  PYTHONPATH=. QT_QPA_PLATFORM=offscreen .venv/bin/python tests/benchmarks/bench_big_graph.py

Models come from `tests/big_onnx.py` (residual blocks of Conv, Mul, Relu, Add in 50 stages), so
the collapsed view shows the same 52 boxes at both sizes. Printed side by side:

- `inspect --json` as a whole process: wall time and peak RSS (target at 50k: 5 s, 600 MB);
- in one process: load, layer graph, JSON text and weight statistics, each timed;
- the window: the worker's view preparation, then the first paint on the GUI thread
  (`workspace.add` to a repainted viewport; target 3 s), and the collapsed view's layout and
  box count, which must not grow with the nodes folded away.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Peak RSS from the kernel's VmHWM: ru_maxrss survives exec, so a child forked from this
# (by then big) process would report this process's peak instead of its own.
_CHILD = """
import resource, sys
from workbench.cli import main
sys.stdout = open('/dev/null', 'w')
code = main(['inspect', sys.argv[1], '--json'])
use = resource.getrusage(resource.RUSAGE_SELF)
try:
    peak = next(int(line.split()[1]) for line in open('/proc/self/status')
                if line.startswith('VmHWM:'))
except OSError:
    peak = use.ru_maxrss
sys.stderr.write(f"{peak} {use.ru_utime + use.ru_stime}\\n")
sys.exit(code)
"""


def bench_inspect_process(path: Path) -> dict[str, float]:
    """`workbench inspect PATH --json` in a fresh process: wall and CPU seconds (CPU time
    tells the work apart from a busy machine's waits) and peak RSS (MB)."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    wall = time.perf_counter() - t
    peak_kb, cpu = done.stderr.split()[-2:]
    return {"inspect process (s)": wall, "inspect process CPU (s)": float(cpu),
            "inspect peak RSS (MB)": int(peak_kb) / 1024}


def bench_stages(path: Path) -> tuple[dict[str, float], Any]:
    """Each step of `inspect` in this process, and the analysis it made."""
    from workbench.cli_output import dumps
    from workbench.core.graph.analysis import Analysis
    from workbench.core.graph.describe import describe
    from workbench.core.graph.stats import weight_stats
    from workbench.core.model.loaders import load_model

    out: dict[str, float] = {}
    t = time.perf_counter()
    variant = load_model(str(path))
    out["load (s)"] = time.perf_counter() - t
    t = time.perf_counter()
    graph = describe(variant)
    out["layer graph (s)"] = time.perf_counter() - t
    t = time.perf_counter()
    dumps(graph.summary())
    out["JSON text (s)"] = time.perf_counter() - t
    t = time.perf_counter()
    stats = weight_stats(variant)
    out["weight stats (s)"] = time.perf_counter() - t
    return out, Analysis(variant, graph, stats)


def bench_window(analysis: Any) -> dict[str, float]:
    """Worker-side preparation, then the GUI thread's first paint of the collapsed view."""
    from workbench.core.graph.display_graph import prepare_view
    from workbench.core.graph.graph_layout import layered_layout
    from workbench.gui.app import create_app
    from workbench.gui.qt_main_window import QtMainWindow

    app = create_app()
    out: dict[str, float] = {}
    t = time.perf_counter()
    dg = prepare_view(analysis.graph)  # Session.open's worker does this
    out["prepare view, worker (s)"] = time.perf_counter() - t
    t = time.perf_counter()
    layered_layout(dg)
    out["collapsed layout (s)"] = time.perf_counter() - t
    out["collapsed boxes"] = len(dg)
    window = QtMainWindow()
    window.show_dialogs = False  # closing must not wait on a question
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    t = time.perf_counter()
    window.workspace.add(analysis)
    app.processEvents()
    window.graph_view.view.viewport().repaint()
    out["first paint (s)"] = time.perf_counter() - t
    window.close()
    window.deleteLater()
    app.processEvents()
    return out


def main() -> None:
    from tests.big_onnx import make_big_onnx

    sizes = (10_000, 50_000)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {n: make_big_onnx(Path(tmp) / f"big{n}.onnx", n) for n in sizes}
        rows = {}
        for n, p in paths.items():
            stages, analysis = bench_stages(p)
            rows[n] = {**bench_inspect_process(p), **stages, **bench_window(analysis)}
    print(f"{'':28s}" + "".join(f"{f'{n:,} nodes':>16s}" for n in sizes))
    for key in rows[sizes[0]]:
        cells = "".join(f"{rows[n][key]:>16.0f}" if "boxes" in key or "MB" in key
                        else f"{rows[n][key]:>16.3f}" for n in sizes)
        print(f"{key:28s}{cells}")
    big = rows[50_000]
    print(f"\ntargets (50k): inspect {big['inspect process (s)']:.2f} s <= 5 s "
          f"(CPU {big['inspect process CPU (s)']:.2f} s), "
          f"{big['inspect peak RSS (MB)']:.0f} MB <= 600 MB; "
          f"first paint {big['first paint (s)']:.2f} s <= 3 s; collapsed boxes "
          f"{rows[10_000]['collapsed boxes']:.0f} (10k) == {big['collapsed boxes']:.0f} (50k)")


if __name__ == "__main__":
    main()

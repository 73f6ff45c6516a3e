"""Cold start: the window paints the graph before anything heavy is imported; the panels
that are not visible are built when first shown; the passes load in the background."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import open_and_wait

REPO = Path(__file__).resolve().parents[2]

# Runs the real `workbench MODEL` start-up, which ends right after the first painted graph
# (WORKBENCH_EXIT_AFTER_PAINT); nothing runs after that paint, so `sys.modules` then is what
# the paint needed.
AT_PAINT = """
import runpy, sys
sys.argv = ['workbench', sys.argv[1]]
try:
    runpy.run_module('workbench', run_name='__main__')
except SystemExit as exc:
    print('EXIT', exc.code)
passes = sorted(m for m in sys.modules if m.startswith('workbench.core.passes.')
                and m.rsplit('.', 1)[1] not in ('base', 'registry', 'plugin_path'))
heavy = [m for m in ('torch', 'onnxruntime', 'transformers', 'pyqtgraph', 'superqt', 'qtpy')
         if m in sys.modules]
panels = [m for m in sys.modules if m.startswith('workbench.gui.qt_')
          and m.endswith(('weights_panel', 'train_panel', 'benchmark_panel', 'compare_panel',
                          'passes_panel'))]
print('PASSES', ','.join(passes) or '-')
print('HEAVY', ','.join(heavy) or '-')
print('PANELS', ','.join(panels) or '-')
"""


def light_model(name: str) -> Path:
    import onnx

    path = Path(onnx.__file__).parent / "backend/test/data/light" / f"light_{name}.onnx"
    if not path.is_file():
        pytest.skip(f"{path.name} is not shipped with this onnx")
    return path


def test_the_graph_is_painted_before_torch_onnxruntime_and_the_passes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen",
           "WORKBENCH_EXIT_AFTER_PAINT": "1", "WORKBENCH_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", AT_PAINT, str(light_model("zfnet512"))],
                          capture_output=True, text=True, env=env, timeout=300, check=True)
    assert "first paint: 38 nodes" in done.stderr  # the graph itself was painted
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert lines["EXIT"] == "0"
    assert lines["PASSES"] == "-"
    assert lines["HEAVY"] == "-"
    assert lines["PANELS"] == "-"


def test_hidden_panels_are_built_on_first_show_and_follow_the_selection(
        qtbot: Any, main_window: Any) -> None:
    lazy = main_window.lazy
    assert all(lazy[name].panel is None for name in ("weights", "train", "benchmark",
                                                     "compare"))
    open_and_wait(qtbot, main_window, "zoo:lenet5")
    assert lazy["weights"].panel is None  # opening a model builds no hidden panel
    main_window.show_tab("weights")
    weights = lazy["weights"].panel
    assert weights is not None
    assert weights.isVisible()
    # the stats set while it did not exist were handed over when it was built
    assert weights.select_tensor("3.weight")
    _, counts = weights.histogram_data()
    assert counts.sum() > 0
    # and it is connected: picking a tensor selects its node in the graph
    weights.tensor_selected.emit("3.weight")
    assert main_window.graph_view.selected_node()
    main_window.show_tab("compare")
    compare = lazy["compare"].panel
    assert compare is not None
    assert compare.table.rowCount() == 1
    assert lazy["train"].panel is None
    assert lazy["benchmark"].panel is None


def test_passes_load_in_the_background_then_the_dock_is_built(
        qtbot: Any, main_window: Any) -> None:
    holder = main_window.lazy["passes"]
    if not main_window.registry.loaded:  # the first window of this process: still loading
        assert holder.panel is None
    main_window.start_warmup()  # started already once the window was up; at most once
    # the status bar says "Loading passes…" until the worker is done
    qtbot.waitUntil(lambda: main_window.warmup_label.text().startswith("Passes ready"),
                    timeout=120_000)
    assert main_window.registry.loaded
    # the Passes dock counts as shown (tabified behind the inspector): built once released
    assert holder.panel is not None
    panel = holder.panel
    assert panel.select_pass("prune.magnitude")
    assert panel.current_pass().name == "prune.magnitude"

"""Regenerate the README's screenshots from real runs: every tab in light and dark at
1400×900, plus densenet121's graph with its minimap.

    .venv/bin/python scripts/readme_screenshots.py docs/screens

zoo:resnet-mini (digits-trained) is pruned, fine-tuned, quantized to int8 and benchmarked
in the window's own Session, so every figure on screen comes from a run on this machine.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["WORKBENCH_CONFIG_DIR"] = tempfile.mkdtemp()  # never the user's settings
os.environ["WORKBENCH_DATA_DIR"] = tempfile.mkdtemp()

SIZE = (1400, 900)


def main(out: Path) -> None:
    import onnx

    from workbench.core.measure.benchmark import BenchConfig
    from workbench.core.train.training import TrainConfig
    from workbench.gui.app import create_app
    from workbench.gui.qt_main_window import QtMainWindow
    from workbench.gui.screenshot import render_screenshot
    from workbench.gui.theme import apply_theme

    out.mkdir(parents=True, exist_ok=True)
    app = create_app()
    w = QtMainWindow(remember_layout=False)
    w.show_dialogs = False
    w.resize(*SIZE)
    w.show()
    s = w.session

    def pump(seconds: float = 0.6) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()

    base = s.run(s.open("zoo:resnet-mini"))
    pruned = s.run(s.apply("prune.structured", {"ratio": 0.5}, base.id)).variant
    tuned = s.run(s.train("digits", TrainConfig.parse({"epochs": 6}), pruned.id))
    int8 = s.run(s.apply("quantize.ort_static", {}, base.id)).variant
    bench = BenchConfig.parse({"batch_sizes": "1,8,32", "iters": 30})
    for vid in (base.id, pruned.id, tuned.id, int8.id):
        s.run(s.evaluate("digits", vid))
        s.run(s.benchmark(bench, vid))
    shots = {"graph": pruned.id, "weights": int8.id, "train": tuned.id,
             "benchmark": base.id, "compare": tuned.id}
    for theme in ("light", "dark"):
        apply_theme(theme, app)
        for tab, vid in shots.items():
            w.workspace.select(vid)
            w.show_tab(tab)
            pump()
            w.grab().save(str(out / f"{tab}-{theme}.png"))
            print("wrote", out / f"{tab}-{theme}.png")  # noqa: T201
    w.close()
    light = Path(onnx.__file__).parent / "backend/test/data/light/light_densenet121.onnx"
    for theme in ("light", "dark"):
        render_screenshot(str(light), "graph", str(out / f"densenet121-{theme}.png"), SIZE,
                          theme=theme)
        print("wrote", out / f"densenet121-{theme}.png")  # noqa: T201


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screens"))

"""The Train tab: live curves grow while a run goes on, the GUI never stalls, Stop keeps a
usable variant."""

from __future__ import annotations

from typing import Any

import torch
from PySide6.QtCore import Qt

from tests.conftest import open_and_wait


def _prepare(qtbot: Any, window: Any, epochs: int) -> Any:
    open_and_wait(qtbot, window, "zoo:mlp")
    panel = window.train_panel
    window.show_tab("train")
    panel.form.set_value("epochs", epochs)
    panel.form.set_value("lr", 3e-3)
    panel.dataset.setCurrentText("digits")
    return panel


def test_curves_grow_while_the_run_goes_on(qtbot: Any, main_window: Any) -> None:
    """Curves grow epoch by epoch (the GUI thread's stall limit is a perf test)."""
    panel = _prepare(qtbot, main_window, epochs=12)
    seen: list[int] = []
    main_window.jobs.progress.connect(lambda _s: seen.append(len(panel.history)))
    with qtbot.waitSignal(main_window.training_finished, timeout=120_000) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    # the epoch curves grew one point at a time while the run went on
    assert seen[-1] == 12
    assert {1, 5, 9} <= set(seen)
    x, _y = panel.val_curve.getData()
    assert len(x) == 12
    assert len(panel.batch_curve.getData()[0]) > 12
    # the finished run is a new child variant with its accuracy in the list
    new_id = blocker.args[0][0]
    entry = main_window.workspace.get(new_id)
    assert entry.analysis.variant.parent is not None
    assert entry.results["accuracy"] > 0.85
    assert main_window.variant_list.currentItem().text(5).endswith("%")


def test_stop_mid_run_gives_a_usable_variant(qtbot: Any, main_window: Any) -> None:
    panel = _prepare(qtbot, main_window, epochs=400)

    def stop_after_two_epochs(step: Any) -> None:
        if len(panel.history) == 2 and panel.stop_button.isEnabled():
            qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)

    main_window.jobs.progress.connect(stop_after_two_epochs)
    with qtbot.waitSignal(main_window.training_finished, timeout=120_000) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert len(panel.history) < 10
    variant = main_window.workspace.get(blocker.args[0][0]).analysis.variant
    with torch.no_grad():
        assert variant.model(*variant.example_inputs()).shape == (1, 10)


def test_pause_and_resume(qtbot: Any, main_window: Any) -> None:
    panel = _prepare(qtbot, main_window, epochs=3)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert main_window.jobs.paused
    assert panel.pause_button.text() == "Resume"
    qtbot.wait(300)
    progress_while_paused = len(panel.history)
    qtbot.wait(300)
    assert len(panel.history) == progress_while_paused
    with qtbot.waitSignal(main_window.training_finished, timeout=120_000):
        qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert len(panel.history) == 3


def test_evaluate_fills_the_accuracy_column(qtbot: Any, main_window: Any) -> None:
    panel = _prepare(qtbot, main_window, epochs=1)
    with qtbot.waitSignal(main_window.jobs.finished, timeout=60_000):
        qtbot.mouseClick(panel.eval_button, Qt.MouseButton.LeftButton)
    assert main_window.workspace.selected.results["accuracy"] is not None
    assert main_window.variant_list.currentItem().text(5) != "—"


def test_checkpoints_and_resume_from_the_tab(qtbot: Any, main_window: Any) -> None:
    from pathlib import Path

    panel = _prepare(qtbot, main_window, epochs=2)
    source = main_window.workspace.selected.id
    with qtbot.waitSignal(main_window.training_finished, timeout=120_000):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not main_window.jobs.busy, timeout=10_000)
    run_dir = Path(main_window.session._run_dirs[source])
    assert (run_dir / "last.pt").exists()
    assert (run_dir / "best.pt").exists()
    main_window.workspace.select(source)
    panel.form.set_value("epochs", 4)
    panel.resume.setChecked(True)
    with qtbot.waitSignal(main_window.training_finished, timeout=120_000):
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert [r["epoch"] for r in panel.history] == [3, 4]  # only the remaining epochs ran

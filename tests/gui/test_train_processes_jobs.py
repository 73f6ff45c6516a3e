"""The Train tab's "processes" field for distillation and prune-and-fine-tune: both run in 2
processes under torch's launcher, with curves live from rank 0, and Stop stops every rank."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.gui.test_train_processes import _workers_of
from workbench.gui.qt_train_panel import QtTrainPanel

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def test_every_mode_takes_the_processes_field(qtbot: Any) -> None:
    panel = QtTrainPanel()
    qtbot.addWidget(panel)
    panel.set_variant("mlp", [("v9", "teacher")])
    panel.processes.setValue(2)
    for index, mode in enumerate(("train", "distill", "prune")):
        panel.mode.setCurrentIndex(index)
        assert panel.processes.isEnabled()
        with qtbot.waitSignal(panel.start_requested) as blocker:
            qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert blocker.args[0]["mode"] == mode
        assert blocker.args[0]["processes"] == 2


def _start(qtbot: Any, window: Any, timeout: int = 300_000) -> list[str]:
    """Click Start; the new variants' ids once the run has finished (its error if it fails)."""
    finished: list[list[str]] = []
    window.training_finished.connect(finished.append)
    window.last_error = None
    try:
        qtbot.mouseClick(window.train_panel.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(finished) or window.last_error is not None,
                        timeout=timeout)
    finally:
        window.training_finished.disconnect(finished.append)
    assert window.last_error is None, window.last_error
    return finished[0]


def _sparsity(entry: Any) -> float:
    weights = [p for p in entry.analysis.variant.model.parameters() if p.ndim >= 2]
    return sum(int((p == 0).sum()) for p in weights) / sum(p.numel() for p in weights)


@pytest.mark.multiproc
def test_distill_and_prune_in_two_processes(qtbot: Any, main_window: Any) -> None:
    from tests.conftest import open_and_wait

    open_and_wait(qtbot, main_window, "zoo:mlp")
    workspace, panel = main_window.workspace, main_window.train_panel
    student = workspace.selected.id
    main_window.show_tab("train")
    panel.dataset.setCurrentText("digits")
    panel.form.set_value("epochs", 2)
    # a teacher trained here, in this process: its lineage trains, so the workers load it
    # from a file rather than train another one
    (teacher,) = _start(qtbot, main_window)
    workspace.select(student)

    panel.mode.setCurrentIndex(1)
    panel.teacher.setCurrentIndex(panel.teacher.findData(teacher))
    panel.processes.setValue(2)
    seen: list[int] = []
    main_window.jobs.progress.connect(lambda _s: seen.append(len(panel.history)))
    (distilled,) = _start(qtbot, main_window)
    assert {1, 2} <= set(seen)  # epoch by epoch, from rank 0
    entry = workspace.get(distilled)
    assert entry.name.endswith("·distilled")
    assert [h["epoch"] for h in entry.results["history"]] == [1, 2]
    assert entry.results["history"][-1]["val_accuracy"] > 0.5

    workspace.select(student)
    panel.mode.setCurrentIndex(2)
    panel.form.set_value("epochs", 1)
    panel.rounds.setValue(2)
    panel.step.setValue(0.3)
    panel.budget.setValue(1.0)
    rounds = _start(qtbot, main_window)
    assert len(rounds) == 2
    assert [round(s, 1) for s, _ in panel._rounds][-2:] == [0.3, 0.6]  # drawn per round
    assert _sparsity(workspace.get(rounds[-1])) >= 0.6 - 1e-3
    from workbench.core.session.settings import runs_dir

    handed = [p.name for p in runs_dir().rglob("*") if p.suffix in (".pt2", ".safetensors")]
    assert handed == []  # models handed to the workers and back are gone; recipes, logs stay
    assert list(runs_dir().rglob("recipe.json"))

    workspace.select(student)
    panel.mode.setCurrentIndex(1)
    panel.form.set_value("epochs", 400)

    def stop_after_one_epoch(_step: Any) -> None:
        if len(panel.history) == 1 and panel.stop_button.isEnabled():
            qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)

    main_window.jobs.progress.connect(stop_after_one_epoch)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=300_000)
    qtbot.waitUntil(lambda: _workers_of("recipe.json") == [], timeout=300_000)
    assert len(panel.history) < 400

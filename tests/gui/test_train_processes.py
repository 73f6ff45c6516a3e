"""The Train tab's "processes" field: a run in 2 processes under torch's launcher, curves live
from rank 0, and Stop stops every rank."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from tests.conftest import open_and_wait
from workbench.gui.qt_train_panel import QtTrainPanel


def test_the_processes_field_goes_with_the_start_request(qtbot: Any) -> None:
    panel = QtTrainPanel()
    qtbot.addWidget(panel)
    panel.set_variant("mlp", [])
    panel.processes.setValue(2)
    with qtbot.waitSignal(panel.start_requested) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0]["processes"] == 2


def _prepare(qtbot: Any, window: Any, epochs: int) -> Any:
    open_and_wait(qtbot, window, "zoo:mlp")
    panel = window.train_panel
    window.show_tab("train")
    panel.form.set_value("epochs", epochs)
    panel.dataset.setCurrentText("digits")
    panel.processes.setValue(2)
    return panel


def _workers_of(folder_marker: str) -> list[int]:
    """Live processes whose command line names `folder_marker` (the launched recipe)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if folder_marker in cmd:
                pids.append(int(proc.name))
    return pids


@pytest.mark.multiproc
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_two_processes_draw_live_curves_and_stop_stops_every_rank(
        qtbot: Any, main_window: Any) -> None:
    panel = _prepare(qtbot, main_window, epochs=3)
    seen: list[int] = []
    main_window.jobs.progress.connect(lambda _s: seen.append(len(panel.history)))
    with qtbot.waitSignal(main_window.training_finished, timeout=300_000) as blocker:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert {1, 2, 3} <= set(seen)  # epoch by epoch, as rank 0 wrote them
    entry = main_window.workspace.get(blocker.args[0][0])
    assert len(entry.results["history"]) == 3

    panel.form.set_value("epochs", 400)

    def stop_after_one_epoch(_step: Any) -> None:
        if len(panel.history) == 1 and panel.stop_button.isEnabled():
            qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)

    main_window.jobs.progress.connect(stop_after_one_epoch)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=300_000)
    # the agent and both ranks are gone (waited for as an event, the timeout a failsafe)
    qtbot.waitUntil(lambda: _workers_of("recipe.json") == [], timeout=300_000)
    assert _workers_of("recipe.json") == []
    assert len(panel.history) < 400

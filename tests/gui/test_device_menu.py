"""Settings ▸ Device lists the CPU, each GPU and MPS; the pick is saved, shown in the status
bar, and reaches the jobs the window starts (a faked cuda:0/cuda:1/mps machine)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import open_and_wait
from workbench.core import devices
from workbench.core.session.settings import Settings
from workbench.gui.qt_device_menu import refresh_devices
from workbench.gui.qt_startup import warmup_running

FOUND = [("cpu", "CPU"), ("cuda:0", "cuda:0 · Fake GPU A"), ("cuda:1", "cuda:1 · Fake GPU B"),
         ("mps", "mps · Apple GPU (Metal)")]


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Devices the window's jobs ask for; they run on the CPU."""
    seen: list[str] = []
    monkeypatch.setattr(devices, "device_available", lambda d: d in dict(FOUND))
    monkeypatch.setattr(devices, "available_devices", lambda: list(FOUND))

    def job_device(device: str) -> str:
        seen.append(devices.check_device(device))
        return "cpu"

    monkeypatch.setattr(devices, "job_device", job_device)
    return seen


def _listed(window: Any, qtbot: Any) -> list[str]:
    qtbot.waitUntil(lambda: not warmup_running(), timeout=60_000)
    refresh_devices(window)
    return [a.text() for a in window.device_menu.actions()]


def test_the_menu_lists_every_device_and_the_pick_reaches_a_job(
        qtbot: Any, main_window: Any, fake_gpus: list[str]) -> None:
    assert _listed(main_window, qtbot) == [label for _, label in FOUND]
    assert main_window.device_actions["cpu"].isChecked()
    assert main_window.device_label.text() == "Device: cpu"

    main_window.device_actions["cuda:1"].trigger()
    assert main_window.settings.device == "cuda:1"
    assert Settings(main_window.settings.path).device == "cuda:1"  # saved
    assert main_window.device_actions["cuda:1"].isChecked()
    assert not main_window.device_actions["cpu"].isChecked()
    assert main_window.device_label.text() == "Device: cuda:1"

    open_and_wait(qtbot, main_window, "zoo:mlp")
    with qtbot.waitSignal(main_window.jobs.finished, timeout=60_000):
        main_window.evaluate_selected("digits")
    with qtbot.waitSignal(main_window.jobs.finished, timeout=60_000):
        main_window.start_profile({})
    assert main_window.last_error is None
    assert fake_gpus == ["cuda:1", "cuda:1"]


def test_a_saved_device_this_machine_lacks_is_shown_and_refused(
        qtbot: Any, main_window: Any, fake_gpus: list[str]) -> None:
    main_window.settings.device = "cuda:5"  # a settings file from a bigger machine
    assert _listed(main_window, qtbot)[-1] == "cuda:5 (not available here)"
    gone = main_window.device_actions["cuda:5"]
    assert gone.isChecked()
    assert not gone.isEnabled()
    open_and_wait(qtbot, main_window, "zoo:mlp")
    main_window.evaluate_selected("digits")
    assert "No CUDA device 'cuda:5' is available" in (main_window.last_error or "")
    assert fake_gpus == []
    main_window.device_actions["mps"].trigger()
    assert main_window.settings.device == "mps"
    assert "cuda:5" in main_window.device_actions  # listed until the menu is rebuilt

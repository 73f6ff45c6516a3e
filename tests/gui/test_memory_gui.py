"""The memory ceiling in the window: Settings ▸ Memory ceiling, and a job past it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from PySide6.QtCore import QTimer

from tests.conftest import open_and_wait
from workbench.core.child_job import can_isolate
from workbench.core.passes import registry
from workbench.core.passes.base import Pass, PassContext, PassOutput, param
from workbench.gui.qt_memory_setting import memory_dialog

_MB = 1 << 20


class Greedy(Pass):
    """Allocates (and touches) 16 MB at a time up to `cap_mb`, in a child process."""

    name = "test.greedy_gui"
    title = "Allocate on purpose"
    isolated = True

    @dataclass
    class Params:
        cap_mb: int = param(1024, min=16, max=1536)

    def run(self, variant: Any, params: Any, ctx: PassContext) -> PassOutput:
        hoard = []
        for i in range(params.cap_mb // 16):
            hoard.append(torch.ones(16 * _MB // 4))
            ctx.progress(i / (params.cap_mb // 16), f"holding {16 * (i + 1)} MB")
        return PassOutput(self.clone_model(variant))


def test_the_memory_ceiling_dialog_saves_the_setting(qtbot: Any, main_window: Any) -> None:
    dialog = memory_dialog(main_window)
    qtbot.addWidget(dialog)
    assert "60% of this machine's memory" in dialog.labelText()
    assert dialog.doubleValue() == 0.0
    dialog.setDoubleValue(10.0)
    dialog.accept()
    assert main_window.settings.max_memory_bytes == 10 << 30
    actions = [a.text() for a in main_window.menuBar().actions()]
    settings_menu = main_window.menuBar().actions()[actions.index("&Settings")].menu()
    assert "&Memory ceiling…" in [a.text() for a in settings_menu.actions()]


@pytest.mark.skipif(not can_isolate(), reason="heavy jobs run in a forked child on Linux")
def test_a_job_past_the_ceiling_fails_and_the_window_keeps_running(
        qtbot: Any, main_window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    plugins = [*registry.discover().plugins, registry.PluginInfo("test_greedy_gui", "tests",
                                                                 Greedy)]
    monkeypatch.setattr(registry, "_cache", registry.Registry(plugins))
    monkeypatch.setattr(main_window, "registry", registry._cache)
    open_and_wait(qtbot, main_window, "zoo:mlp")
    main_window.settings.set_max_memory(256 * _MB)
    ticks: list[bool] = []  # the window's event loop, beating while the job runs
    timer = QTimer(main_window)
    timer.timeout.connect(lambda: ticks.append(main_window.jobs.busy))
    timer.start(10)
    with qtbot.waitSignal(main_window.pass_failed, timeout=60_000) as blocker:
        main_window.apply_pass("test.greedy_gui", {"cap_mb": 1536})
    timer.stop()
    message = blocker.args[0]
    assert message.startswith("test.greedy_gui on zoo:mlp was stopped: it used ")
    assert "past the memory ceiling of 256 MB" in message
    assert any(ticks)  # the window handled events during the job
    qtbot.waitUntil(lambda: not main_window.jobs.busy, timeout=10_000)
    assert len(main_window.workspace) == 1

"""QtJobRunner runs each job inside a job scope, on the worker thread."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from workbench.core.job_scope import release_memory, request_threads
from workbench.core.jobs import CancelToken, Progress
from workbench.gui.workers import QtJobRunner

OTHER = 2 if torch.get_num_threads() != 2 else 3


@pytest.mark.parametrize("end", ["success", "error", "cancel"])
def test_a_worker_job_leaves_process_state_as_it_found_it(qtbot: Any, end: str) -> None:
    runner = QtJobRunner()
    before = (torch.get_num_threads(), gc.isenabled())
    inside: list[Any] = []
    running = threading.Event()

    def job(token: CancelToken) -> Iterator[Progress]:
        request_threads(OTHER)
        gc.disable()
        try:
            while end == "cancel" or not inside:
                inside.append((torch.get_num_threads(), threading.current_thread().name))
                running.set()
                yield Progress(None)
                token.check()
        finally:
            inside.append(("finally", torch.get_num_threads()))
        if end == "error":
            raise ValueError("boom")
        return "done"

    results: list[Any] = []
    with qtbot.waitSignal(runner.finished, timeout=30_000):
        runner.run("probe", job, results.append, results.append)
        if end == "cancel":
            qtbot.waitUntil(running.is_set, timeout=10_000)
            runner.cancel()
    assert inside[0][0] == OTHER
    assert inside[0][1] != threading.main_thread().name  # it ran on the worker thread
    assert inside[-1] == ("finally", OTHER)  # a cancelled job is closed inside its scope
    assert (torch.get_num_threads(), gc.isenabled()) == before
    assert gc.get_freeze_count() > 0  # the open models stay frozen until memory is released
    release_memory()
    if end == "success":
        assert results == ["done"]
    elif end == "error":
        assert isinstance(results[0], ValueError)
    else:
        assert results == []

"""An opening job with `preview` hands its graph over (`GraphReady`, its view prepared) and
reads no weight until the window has drawn it, or the job is cancelled."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.big_onnx import make_big_onnx
from workbench.core.errors import CancelledError
from workbench.core.graph import analysis
from workbench.core.graph.analysis import GraphReady, open_model
from workbench.core.jobs import CancelToken
from workbench.core.session.session import Session


def _until_ready(job: Any) -> GraphReady:
    for step in job:
        if isinstance(step.payload, GraphReady):
            return step.payload
    raise AssertionError("the job never handed its graph over")


def _drive(job: Any) -> Any:
    try:
        while True:
            next(job)
    except StopIteration as stop:
        return stop.value


class StatsSpy:
    """Records, each time the (real) statistics start, whether `ready` was drawn by then."""

    def __init__(self) -> None:
        self.ready: GraphReady | None = None
        self.calls: list[bool | None] = []
        self._real = analysis.weight_stats

    def __call__(self, variant: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(self.ready.drawn.is_set() if self.ready else None)
        return self._real(variant, *args, **kwargs)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> StatsSpy:
    spy = StatsSpy()
    monkeypatch.setattr(analysis, "weight_stats", spy)
    # the window's drawing and the cancel below come from timers: a busy machine may run
    # them late, and the job must still be waiting then
    monkeypatch.setattr(analysis, "PREVIEW_WAIT_S", 120.0)
    return spy


def test_the_statistics_wait_for_the_graph_to_be_drawn(tmp_path: Path, spy: StatsSpy) -> None:
    job = open_model(str(make_big_onnx(tmp_path / "c.onnx", n_nodes=80)), preview=True)
    ready = spy.ready = _until_ready(job)
    assert spy.calls == []  # no weight read yet
    assert len(ready.graph.nodes) == 80
    assert ready.graph.memo("display_graphs", dict)  # the first view is prepared already
    threading.Timer(0.2, ready.drawn.set).start()  # the window draws it, a moment later
    result = _drive(job)
    assert spy.calls == [True]
    assert result.graph is ready.graph
    assert result.stats.summary.numel > 0


def test_a_cancel_while_waiting_for_the_drawing_stops_before_the_statistics(
        tmp_path: Path, spy: StatsSpy) -> None:
    token = CancelToken()
    job = open_model(str(make_big_onnx(tmp_path / "c.onnx", n_nodes=80)), token,
                     preview=True)
    _until_ready(job)
    threading.Timer(0.2, token.cancel).start()
    with pytest.raises(CancelledError):
        _drive(job)
    assert spy.calls == []


def test_the_session_hands_the_graph_over_only_when_asked(tmp_path: Path) -> None:
    path = str(make_big_onnx(tmp_path / "c.onnx", n_nodes=80))
    session = Session(remember_recent=False)
    steps: list[Any] = []
    plain = session.run(session.open(path), steps.append)  # the CLI's way: nothing to wait for
    assert steps
    assert not any(isinstance(s.payload, GraphReady) for s in steps)
    assert plain.analysis.stats.summary.numel > 0
    task = session.open(path, preview=True)  # the window's way
    job = task.job(CancelToken())
    ready = _until_ready(job)
    ready.drawn.set()
    entry = task.commit(_drive(job))
    assert entry.analysis.graph is ready.graph
    assert len(session.workspace) == 2

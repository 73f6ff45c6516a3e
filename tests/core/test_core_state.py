"""Settings, the workspace, jobs and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.errors import CancelledError, InvalidParameterError
from workbench.core.fileio import atomic_path, atomic_write_text
from workbench.core.graph.analysis import analyse, open_model
from workbench.core.jobs import CancelToken, Progress, run_job
from workbench.core.model.zoo import build_zoo
from workbench.core.session.settings import MAX_RECENT, Settings
from workbench.core.session.workspace import Workspace


def test_settings_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    s = Settings(path)
    fired: list[int] = []
    s.changed.connect(lambda: fired.append(1))
    for i in range(MAX_RECENT + 3):
        s.add_recent(f"/m/{i}.onnx")
    s.add_recent("/m/3.onnx")
    s.set_device("cpu")
    again = Settings(path)
    assert again.recent_files[0] == "/m/3.onnx"
    assert len(again.recent_files) == MAX_RECENT
    assert json.loads(path.read_text())["schema"] == 1
    assert len(fired) == MAX_RECENT + 5
    with pytest.raises(InvalidParameterError, match="Unknown device"):
        s.set_device("tpu")


def test_corrupt_settings_fall_back_to_defaults(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{not json")
    s = Settings(path)
    assert s.device == "cpu"
    assert s.recent_files == []


def test_settings_live_in_the_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(tmp_path / "cfg"))
    Settings().add_recent("zoo:mlp")
    assert (tmp_path / "cfg" / "settings.json").exists()


def test_atomic_write_leaves_target_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "first")
    def fail() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_open_job_reports_progress_and_result() -> None:
    steps: list[Progress] = []
    analysis = run_job(open_model("zoo:mlp"), steps.append)
    assert analysis.graph.parameters == analysis.stats.summary.numel
    fractions = [s.fraction for s in steps]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0


def test_cancelled_job_stops() -> None:
    token = CancelToken()
    job = analyse(build_zoo("mlp"), token)
    next(job)
    token.cancel()
    with pytest.raises(CancelledError):
        run_job(job)


def test_workspace_events_and_lineage() -> None:
    ws = Workspace()
    log: list[tuple[str, object]] = []
    ws.added.connect(lambda i: log.append(("added", i)))
    ws.selection_changed.connect(lambda i: log.append(("selected", i)))
    ws.removed.connect(lambda i: log.append(("removed", i)))
    a = ws.add(run_job(open_model("zoo:mlp")))
    assert ws.selected is a
    ws.rename(a.id, "baseline")
    assert ws.get(a.id).name == "baseline"
    with pytest.raises(ValueError, match="empty"):
        ws.rename(a.id, "  ")
    ws.remove(a.id)
    assert ws.selected is None
    assert log == [("added", a.id), ("selected", a.id), ("selected", None), ("removed", a.id)]

"""Projects: a session saved to a folder as it changes, and read back whole."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from workbench.core.errors import WorkbenchError
from workbench.core.model.export import ExportError
from workbench.core.model.variant import new_variant_id
from workbench.core.passes.base import PassReport
from workbench.core.session import project as project_module
from workbench.core.session.project import (
    SCHEMA_VERSION,
    Project,
    ProjectError,
    project_summary,
)
from workbench.core.session.session import Session


def _session() -> Session:
    return Session(remember_recent=False)


def _rows(folder: Path) -> dict[str, dict[str, Any]]:
    """The variants saved in `folder`, read with a connection of their own."""
    return {v["id"]: v for v in project_summary(folder)["variants"]}


def _model_files(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "models").iterdir() if not p.name.startswith("."))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "project"


@pytest.fixture
def saved(folder: Path, onnx_mlp: Path) -> Session:
    """A session of a zoo MLP, its pruned child and an ONNX MLP, saved to `folder`."""
    session = _session()
    with Project.create(folder) as project:
        project.attach(session)
        session.run(session.open("zoo:mlp"))
        session.run(session.apply("prune.magnitude", {"sparsity": 0.5}))
        session.run(session.open(str(onnx_mlp)))
        root = session.workspace.entries()[0]
        session.rename("my mlp", root.id)
        session.workspace.set_result(root.id, "accuracy", 0.75)
        session.workspace.set_result(root.id, "history", [{"epoch": 1, "loss": 0.5}])
        session.workspace.set_result(root.id, "opaque", object())  # not JSON: skipped
        session.workspace.select(root.id)
    return session


def _outputs(variant: Any) -> Any:
    with torch.no_grad():
        return variant.model(*variant.example_inputs(batch=3))


# round trip --------------------------------------------------------------------------------
def test_save_and_reopen_keeps_every_variant(saved: Session, folder: Path) -> None:
    before = {e.id: e for e in saved.workspace.entries()}
    session = _session()
    with Project.open(folder) as project:
        entries = project.load_into(session)
    assert [e.id for e in entries] == list(before)
    assert not session.history.can_undo  # a load is not an edit
    for entry in entries:
        old, new = before[entry.id], entry
        a, b = old.analysis.variant, new.analysis.variant
        assert (new.name, b.parent, b.recipe, b.backend, b.inputs) == (
            old.name, a.parent, a.recipe, a.backend, a.inputs)
        assert b.metadata == a.metadata
        if a.backend == "onnx":
            assert b.model.SerializeToString() == a.model.SerializeToString()
        else:
            sa, sb = a.model.state_dict(), b.model.state_dict()
            assert sorted(sa) == sorted(sb)
            assert all(torch.equal(sa[k], sb[k]) for k in sa)
            assert torch.equal(_outputs(a), _outputs(b))  # the batch stays dynamic
    root, child, onnx_entry = entries
    assert root.name == "my mlp"
    assert child.analysis.variant.parent == root.id
    assert root.results["accuracy"] == 0.75
    assert root.results["history"] == [{"epoch": 1, "loss": 0.5}]
    assert "opaque" not in root.results
    report = child.results["report"]
    assert isinstance(report, PassReport)
    assert report.to_json() == before[child.id].results["report"].to_json()
    assert onnx_entry.results == {}
    assert session.workspace.selected is not None
    assert session.workspace.selected.id == root.id
    assert int(new_variant_id()[1:]) > max(int(e.id[1:]) for e in entries)  # no clash


def test_reopened_session_keeps_saving(saved: Session, folder: Path, onnx_mlp: Path) -> None:
    session = _session()
    with Project.open(folder) as project:
        project.load_into(session)
        files = _model_files(folder)
        project.attach(session)  # already equal: nothing is exported again
        assert _model_files(folder) == files
        entry = session.run(session.open(str(onnx_mlp)))
        assert entry.id not in {e.id for e in saved.workspace.entries()}
        assert entry.id in _rows(folder)
    assert len(_rows(folder)) == 4


def test_a_loaded_project_refuses_a_clashing_session(saved: Session, folder: Path) -> None:
    with Project.open(folder) as project, pytest.raises(ProjectError, match="already holds"):
        project.load_into(saved)


def test_attach_refuses_another_sessions_project(saved: Session, folder: Path) -> None:
    with Project.open(folder) as project, pytest.raises(ProjectError, match="already holds"):
        project.attach(_session())
    assert len(_rows(folder)) == 3


# autosave ----------------------------------------------------------------------------------
def test_every_change_is_saved_at_once(folder: Path) -> None:
    session = _session()
    project = Project.create(folder)
    project.attach(session)
    root = session.run(session.open("zoo:mlp"))
    assert list(_rows(folder)) == [root.id]
    child = session.run(session.apply("prune.magnitude", {"sparsity": 0.5}))
    child_id = child.variant.id
    assert _rows(folder)[child_id]["parent"] == root.id
    assert _rows(folder)[child_id]["results"] == ["report"]

    session.undo()  # undo of an add removes the row
    assert list(_rows(folder)) == [root.id]
    session.redo()
    assert list(_rows(folder)) == [root.id, child_id]

    session.rename("renamed", root.id)
    assert _rows(folder)[root.id]["name"] == "renamed"
    session.undo()
    assert _rows(folder)[root.id]["name"] == root.analysis.variant.name

    session.workspace.set_result(root.id, "latency_ms", 1.5)
    assert _rows(folder)[root.id]["results"] == ["latency_ms"]

    session.delete(root.id)  # the subtree goes
    assert _rows(folder) == {}
    session.undo()
    assert list(_rows(folder)) == [root.id, child_id]
    assert _rows(folder)[root.id]["results"] == ["latency_ms"]
    assert project_summary(folder)["selected"] == root.id

    project.detach()
    session.rename("not saved", root.id)
    assert _rows(folder)[root.id]["name"] != "not saved"
    project.close()


def test_autosave_lives_as_long_as_the_session(folder: Path, onnx_mlp: Path) -> None:
    session = _session()
    Project.create(folder).attach(session)  # no reference kept to the project
    import gc

    gc.collect()
    session.run(session.open(str(onnx_mlp)))
    assert len(_rows(folder)) == 1


def test_identical_models_share_one_file(folder: Path, onnx_mlp: Path) -> None:
    session = _session()
    with Project.create(folder) as project:
        project.attach(session)
        first = session.run(session.open(str(onnx_mlp)))
        second = session.run(session.open(str(onnx_mlp)))
        session.undo()
        session.redo()
        rows = _rows(folder)
        assert rows[first.id]["model_file"] == rows[second.id]["model_file"]
        name = rows[first.id]["model_file"]
        assert _model_files(folder) == [name]
        data = (folder / "models" / name).read_bytes()
        assert name == f"{hashlib.sha256(data).hexdigest()}.onnx"


def test_unused_model_files_are_removed_on_attach(folder: Path, onnx_mlp: Path) -> None:
    session = _session()
    with Project.create(folder) as project:
        project.attach(session)
        entry = session.run(session.open(str(onnx_mlp)))
        session.delete(entry.id)
        assert len(_model_files(folder)) == 1  # kept while undo may bring it back
    with Project.open(folder) as project:
        project.load_into(other := _session())
        project.attach(other)
    assert _model_files(folder) == []


def test_a_model_nothing_can_capture_is_refused(folder: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(variant: Any, path: Any, fmt: Any = None, opset: int = 18) -> Any:
        raise ExportError(f"{variant.name} cannot be captured ({fmt}).")

    session = _session()
    session.run(session.open("zoo:mlp"))
    monkeypatch.setattr("workbench.core.model.export.export_variant", refuse)
    with Project.create(folder) as project, pytest.raises(
            ProjectError, match=r"zoo:mlp cannot be saved.*TorchScript"):
        project.attach(session)
    assert list((folder / "models").iterdir()) == []

    other = _session()
    failures: list[tuple[str, str]] = []
    with Project.open(folder) as project:
        project.attach(other)
        project.save_failed.connect(lambda i, m: failures.append((i, m)))
        entry = other.run(other.open("zoo:mlp"))  # the session keeps it; the user is told
    assert entry.id in other.workspace
    assert failures
    assert failures[0][0] == entry.id
    assert "cannot be saved" in failures[0][1]
    assert _rows(folder) == {}


def test_torchscript_is_the_fallback(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.core.model import export

    real = export.export_variant

    def no_pt2(variant: Any, path: Any, fmt: Any = None, opset: int = 18) -> Any:
        if fmt == "pt2":
            raise ExportError("no torch.export today")
        return real(variant, path, fmt, opset)

    monkeypatch.setattr(export, "export_variant", no_pt2)
    session = _session()
    with Project.create(folder) as project:
        project.attach(session)
        entry = session.run(session.open("zoo:mlp"))
    assert _rows(folder)[entry.id]["model_file"].endswith(".ts")
    loaded = _session()
    with Project.open(folder) as project:
        (back,) = project.load_into(loaded)
    x = entry.analysis.variant.example_inputs()
    with torch.no_grad():
        assert torch.equal(back.analysis.variant.model(*x), entry.analysis.variant.model(*x))


def test_results_and_metadata_keep_what_json_can_hold(folder: Path, onnx_mlp: Path) -> None:
    import dataclasses

    import numpy as np

    from workbench.core.measure.benchmark import BenchRecord, BenchResult

    session = _session()
    with Project.create(folder) as project:
        project.attach(session)
        entry = session.run(session.open(str(onnx_mlp)))
        variant = dataclasses.replace(entry.analysis.variant, id=new_variant_id(),
                                      metadata={"shape": (1, 8), "lock": threading.Lock(),
                                                "nested": {"ok": [1, 2.5, None]}})
        added = session.workspace.add(dataclasses.replace(entry.analysis, variant=variant))
        record = BenchRecord.from_samples([1.0, 2.0, 3.0], "ort", "cpu", 1)
        bench = BenchResult("mlp", [record], {"iters": 3}, {"cpu": "x"}, {"ort": "1"})
        session.workspace.set_result(added.id, "benchmark", bench)
        session.workspace.set_result(added.id, "latency_ms", np.float32(2.0))
        session.workspace.set_result(added.id, "ratio", np.int64(3))
    loaded = _session()
    with Project.open(folder) as project:
        _, back = project.load_into(loaded)
    assert back.analysis.variant.metadata == {"shape": [1, 8], "nested": {"ok": [1, 2.5, None]}}
    assert back.results["latency_ms"] == 2.0
    assert back.results["ratio"] == 3
    assert isinstance(back.results["benchmark"], BenchResult)
    assert back.results["benchmark"].to_json() == bench.to_json()


# refusals ----------------------------------------------------------------------------------
def test_what_is_not_a_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="not a Workbench project"):
        Project.open(tmp_path / "missing")
    with pytest.raises(ProjectError, match="not a Workbench project"):
        Project.open(tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    sqlite3.connect(plain / "project.db").execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(ProjectError, match="not a Workbench project"):
        Project.open(plain)


def test_a_corrupt_database_is_refused(folder: Path) -> None:
    Project.create(folder).close()
    (folder / "project.db").write_bytes(b"this is not SQLite" * 500)
    with pytest.raises(ProjectError, match="corrupt"):
        Project.open(folder)


def test_a_newer_project_is_refused(folder: Path) -> None:
    Project.create(folder).close()
    db = sqlite3.connect(folder / "project.db")
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
               (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(ProjectError, match="newer Workbench"):
        Project.open(folder)


def test_create_refuses_a_used_folder(folder: Path, tmp_path: Path) -> None:
    Project.create(folder).close()
    with pytest.raises(ProjectError, match="already holds a project"):
        Project.create(folder)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ProjectError, match="not empty"):
        Project.create(tmp_path / "busy")
    with pytest.raises(ProjectError, match="is a file"):
        Project.create(tmp_path / "busy" / "notes.txt")


def test_every_error_is_a_workbench_error() -> None:
    assert issubclass(ProjectError, WorkbenchError)


def _set_model_file(folder: Path, variant_id: str, name: str) -> None:
    db = sqlite3.connect(folder / "project.db")
    db.execute("UPDATE variants SET model_file = ? WHERE id = ?", (name, variant_id))
    db.commit()
    db.close()


def test_a_changed_model_file_is_refused(folder: Path, onnx_mlp: Path) -> None:
    session = _session()
    with Project.create(folder) as project:
        project.attach(session)
        entry = session.run(session.open(str(onnx_mlp)))
    (path,) = (folder / "models").iterdir()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    loaded = _session()
    with Project.open(folder) as project, pytest.raises(ProjectError, match="changed or dam"):
        project.load_into(loaded)
    assert len(loaded.workspace) == 0  # nothing, rather than part of the project

    _set_model_file(folder, entry.id, "../../outside.onnx")
    with Project.open(folder) as project, pytest.raises(ProjectError, match="invalid model"):
        project.load_into(loaded)


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def test_a_project_never_carries_trust(folder: Path, tmp_path: Path) -> None:
    session = _session()
    with Project.create(folder) as project:
        project.attach(session)
        entry = session.run(session.open("zoo:mlp"))
    (path,) = (folder / "models").iterdir()
    marker = tmp_path / "ran"
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    (key,) = [k for k in entries if k.endswith("data/sample_inputs/model.pt")]
    buf = io.BytesIO()
    torch.save(_Payload(str(marker)), buf)
    entries[key] = buf.getvalue()
    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    name = f"{hashlib.sha256(hostile.getvalue()).hexdigest()}.pt2"
    (folder / "models" / name).write_bytes(hostile.getvalue())  # its hash matches its name
    _set_model_file(folder, entry.id, name)
    with Project.open(folder) as project, pytest.raises(ProjectError, match="trust"):
        project.load_into(_session())
    assert not marker.exists()


# migrations --------------------------------------------------------------------------------
_VERSION_0 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE variants (id TEXT PRIMARY KEY, parent TEXT, name TEXT NOT NULL,
    position INTEGER NOT NULL, backend TEXT NOT NULL, format TEXT NOT NULL,
    source TEXT NOT NULL, inputs TEXT NOT NULL, recipe TEXT NOT NULL, metadata TEXT NOT NULL,
    model_file TEXT NOT NULL);
CREATE TABLE results (variant_id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,
    value TEXT NOT NULL, PRIMARY KEY (variant_id, key));
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '0');
"""


def _write_version_0(folder: Path, model: Path) -> str:
    """A project as the previous format wrote it: no `created` column."""
    (folder / "models").mkdir(parents=True)
    data = model.read_bytes()
    name = f"{hashlib.sha256(data).hexdigest()}.onnx"
    (folder / "models" / name).write_bytes(data)
    db = sqlite3.connect(folder / "project.db")
    db.executescript(_VERSION_0)
    inputs = [{"name": "x", "shape": [1, 8], "dtype": "float32", "low": 0, "high": 2}]
    db.execute("INSERT INTO variants VALUES ('v7', NULL, 'old mlp', 0, 'onnx', 'onnx', "
               "'mlp.onnx', ?, '[]', '{}', ?)", (json.dumps(inputs), name))
    db.execute("INSERT INTO results VALUES ('v7', 'accuracy', '', '0.5')")
    db.commit()
    db.close()
    return name


def test_an_older_project_is_migrated(folder: Path, onnx_mlp: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _write_version_0(folder, onnx_mlp)
    with pytest.raises(ProjectError, match="cannot upgrade"):
        Project.open(folder)  # no migration from 0 is known

    calls: list[int] = []

    def add_created(db: sqlite3.Connection) -> None:
        calls.append(0)
        db.execute("ALTER TABLE variants ADD COLUMN created REAL NOT NULL DEFAULT 0")

    monkeypatch.setitem(project_module.MIGRATIONS, 0, add_created)
    session = _session()
    with Project.open(folder) as project:
        assert project.schema_version == SCHEMA_VERSION
        (entry,) = project.load_into(session)
        assert (entry.id, entry.name, entry.results) == ("v7", "old mlp", {"accuracy": 0.5})
        project.attach(session)
        session.rename("migrated", entry.id)
    with Project.open(folder) as project:  # already migrated: nothing runs again
        assert project.rows()[0]["name"] == "migrated"
        assert project.runs() == []  # format 2 added the runs table
    assert calls == [0]


def test_a_format_1_project_gains_the_runs_table(folder: Path, onnx_mlp: Path) -> None:
    session = _session()
    session.save_as_project(str(folder))
    session.run(session.open(str(onnx_mlp)))
    session.clear()
    db = sqlite3.connect(folder / "project.db")  # as format 1 wrote it: no runs table
    db.executescript("DROP TABLE runs; UPDATE meta SET value = '1' "
                     "WHERE key = 'schema_version';")
    db.close()
    with Project.open(folder) as project:
        assert project.schema_version == SCHEMA_VERSION == 2
        assert len(project.rows()) == 1
        run_id = project.begin_run("v1", "train", "digits", {"epochs": 3},
                                   folder / "runs" / "v1-x")
        (record,) = project.runs()
        assert (record.id, record.status, record.epochs) == (run_id, "running", 3)
        assert record.checkpoint_dir == (folder / "runs" / "v1-x").resolve()
        assert project.interrupted_runs() == []  # this process runs it
        project.end_run(run_id, "stopped")
        assert project.run(run_id).status == "stopped"
        with pytest.raises(ProjectError, match="finished, stopped or failed"):
            project.end_run(run_id, "running")


def test_a_failing_migration_changes_nothing(folder: Path, onnx_mlp: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _write_version_0(folder, onnx_mlp)

    def broken(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE variants ADD COLUMN created REAL NOT NULL DEFAULT 0")
        db.execute("SELECT * FROM no_such_table")

    monkeypatch.setitem(project_module.MIGRATIONS, 0, broken)
    with pytest.raises(ProjectError, match="Cannot upgrade"):
        Project.open(folder)
    db = sqlite3.connect(folder / "project.db")
    columns = [r[1] for r in db.execute("PRAGMA table_info(variants)")]
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    db.close()
    assert "created" not in columns
    assert version == "0"


# summary -----------------------------------------------------------------------------------
def test_summary_is_json(saved: Session, folder: Path) -> None:
    summary = project_summary(folder)
    json.dumps(summary)
    assert summary["schema_version"] == SCHEMA_VERSION
    assert summary["interrupted_runs"] == []
    ids = [e.id for e in saved.workspace.entries()]
    assert [v["id"] for v in summary["variants"]] == ids
    root, child, onnx_row = summary["variants"]
    assert (root["name"], root["backend"], root["parent"]) == ("my mlp", "torch", None)
    assert child["parent"] == root["id"]
    assert root["results"] == ["accuracy", "history"]
    assert onnx_row["model_file"].endswith(".onnx")
    assert onnx_row["format"] == "onnx"
    for row in summary["variants"]:
        assert row["bytes"] == (folder / "models" / row["model_file"]).stat().st_size


# crash safety ------------------------------------------------------------------------------
_CHILD = """
import sys, time
from workbench.core.session.project import Project
from workbench.core.session.session import Session

session = Session(remember_recent=False)
Project.create(sys.argv[1]).attach(session)
session.run(session.open("zoo:mlp"))
session.run(session.apply("prune.magnitude", {"sparsity": 0.5}))
print("saved", flush=True)
while True:  # keep adding: the kill lands somewhere in the middle of one addition
    entry = session.run(session.apply("prune.magnitude", {"sparsity": 0.5}))
    print("added", entry.variant.id, flush=True)
"""


def test_a_killed_process_leaves_an_openable_project(folder: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(folder)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
    watchdog = threading.Timer(300, child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "saved", child.stderr.read() if child.stderr else ""
        assert child.stdout.readline().startswith("added")
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    session = _session()
    with Project.open(folder) as project:
        root, pruned, *more = project.load_into(session)
    assert root.analysis.variant.parent is None
    assert pruned.analysis.variant.parent == root.id
    assert len(more) >= 1  # every addition that had finished, and nothing half-made
    chain = [pruned, *more]
    assert all(b.analysis.variant.parent == a.id for a, b in itertools.pairwise(chain))
    assert pruned.analysis.variant.recipe[-1]["pass"] == "prune.magnitude"
    assert pruned.results["report"].after["sparsity"] > 0.4
    weights = [p for n, p in pruned.analysis.variant.model.state_dict().items()
               if n.endswith("weight")]
    assert all(float((w == 0).float().mean()) >= 0.45 for w in weights)

"""Recovery: training runs recorded in the project, a SIGKILL mid-training, and resume."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from workbench.cli import main
from workbench.core.errors import WorkbenchError
from workbench.core.jobs import run_job
from workbench.core.session.project import Project, project_summary
from workbench.core.session.runs import checkpoint_epoch
from workbench.core.session.session import Session
from workbench.core.session.use_recovery import RecoveryError
from workbench.core.train.data import load_dataset
from workbench.core.train.distill import distill
from workbench.core.train.training import TrainConfig, train

CONFIG = {"epochs": 6, "batch_size": 32, "seed": 7, "lr": 3e-3}


def _session() -> Session:
    return Session(remember_recent=False)


def _mark_running(folder: Path) -> None:
    """What a process killed mid-run leaves: its run still `running`."""
    db = sqlite3.connect(folder / "project.db")
    db.execute("UPDATE runs SET status = 'running', ended = NULL")
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project of zoo:mlp and one finished 2-epoch run, then marked as interrupted."""
    folder = tmp_path_factory.mktemp("recovery") / "project"
    session = _session()
    project = session.save_as_project(str(folder))
    root = session.run(session.open("zoo:mlp"))
    session.run(session.train("digits", TrainConfig(epochs=2, batch_size=64, seed=1),
                              root.id))
    (run,) = project.runs()
    assert (run.status, run.kind, run.variant_id, run.dataset) == (
        "finished", "train", root.id, "digits")
    assert run.checkpoint_dir.parent == folder / "runs"
    assert (run.config["epochs"], run.config["checkpoint_dir"]) == (2, None)
    assert project.interrupted_runs() == []
    session.clear()
    _mark_running(folder)
    return folder


@pytest.fixture
def crashed(template: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(template, folder)
    return folder


def test_an_interrupted_run_is_listed_and_resumed(crashed: Path) -> None:
    session = _session()
    session.open_project(str(crashed))
    (run,) = session.interrupted_runs()
    assert (run.resumable, run.checkpoint_epoch(), run.epochs) == (True, 2, 2)
    root, trained = session.workspace.entries()
    entry = session.run(session.resume_run())
    assert entry.analysis.variant.parent == run.variant_id == root.id
    assert entry.results["accuracy"] == pytest.approx(trained.results["accuracy"])
    assert session.project.run(run.id).status == "finished"
    assert session.interrupted_runs() == []
    session.clear()
    assert len(project_summary(crashed)["variants"]) == 3


def test_resume_refuses_what_it_cannot_resume(crashed: Path) -> None:
    with pytest.raises(RecoveryError, match="Open a project"):
        _session().resume_run()
    session = _session()
    session.open_project(str(crashed))
    (run,) = session.interrupted_runs()
    with pytest.raises(WorkbenchError, match="no training run 'nope'"):
        session.resume_run("nope")
    (run.checkpoint_dir / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RecoveryError, match="corrupt or incomplete"):
        session.resume_run(run.id)
    torch.save({"model": {}}, run.checkpoint_dir / "last.pt")
    with pytest.raises(RecoveryError, match="corrupt or incomplete"):
        session.resume_run(run.id)
    (run.checkpoint_dir / "last.pt").unlink()
    with pytest.raises(RecoveryError, match="no checkpoint"):
        session.resume_run(run.id)
    session.delete(run.variant_id)
    with pytest.raises(RecoveryError, match="no longer in the project"):
        session.resume_run(run.id)
    session.clear()
    db = sqlite3.connect(crashed / "project.db")
    db.execute("UPDATE runs SET kind = 'prune'")
    db.commit()
    db.close()
    session.open_project(str(crashed))
    with pytest.raises(RecoveryError, match="prune-and-fine-tune"):
        session.resume_run(run.id)
    session.clear()


def test_an_interrupted_distillation_resumes_with_its_teacher(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    session = _session()
    project = session.save_as_project(str(folder))
    teacher = session.run(session.open("zoo:mlp"))
    session.run(session.apply("prune.magnitude", {"sparsity": 0.5}))
    student = session.workspace.entries()[-1]
    checkpoints = folder / "runs" / "distill"
    config = TrainConfig(epochs=2, batch_size=128, seed=2, checkpoint_dir=str(checkpoints))
    data = load_dataset("digits", (1, 1, 8, 8), seed=2)
    run_job(distill(teacher.analysis.variant, student.analysis.variant, data,
                    dataclasses.replace(config, epochs=1), alpha=0.5))
    options = {"teacher_id": teacher.id, "temperature": 4.0, "alpha": 0.5, "transfer": False}
    project.begin_run(student.id, "distill", "digits", dataclasses.asdict(config),
                      checkpoints, options)
    session.clear()  # the process "dies": the run stays running

    session.open_project(str(folder))
    (run,) = session.interrupted_runs()
    assert (run.kind, run.options, run.checkpoint_epoch(), run.epochs) == (
        "distill", options, 1, 2)
    entry = session.run(session.resume_run(run.id))
    assert entry.analysis.variant.parent == student.id
    assert entry.analysis.variant.recipe[-1]["params"]["alpha"] == 0.5
    assert [h["epoch"] for h in entry.results["history"]] == [1, 2]
    session.clear()


def test_only_interrupted_runs_are_resumed(crashed: Path) -> None:
    session = _session()
    project = session.open_project(str(crashed))
    (run,) = session.interrupted_runs()
    project.end_run(run.id, "failed")
    with pytest.raises(RecoveryError, match="no interrupted training run"):
        session.resume_run()
    with pytest.raises(RecoveryError, match="is failed, not interrupted"):
        session.resume_run(run.id)
    session.clear()


def test_cli_lists_and_resumes(crashed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["project", "ls", str(crashed), "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)["interrupted_runs"]
    assert (run["kind"], run["epoch"], run["epochs"], run["resumable"]) == (
        "train", 2, 2, True)
    assert main(["project", "ls", str(crashed)]) == 0
    assert f"interrupted train run {run['id']}" in capsys.readouterr().out
    assert main(["project", "resume", str(crashed), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["run"], out["parent"]) == (run["id"], run["variant_id"])
    summary = project_summary(crashed)
    assert summary["interrupted_runs"] == []
    assert out["variant"] in [v["id"] for v in summary["variants"]]
    assert main(["project", "resume", str(crashed)]) == 2
    assert "no interrupted training run" in capsys.readouterr().err


# SIGKILL mid-training ----------------------------------------------------------------------
_CHILD = """
import json, sys, time
from workbench.core.events import BatchDone, EpochDone
from workbench.core.session.session import Session
from workbench.core.train.training import TrainConfig

session = Session(remember_recent=False)
session.save_as_project(sys.argv[1])
root = session.run(session.open("zoo:mlp"))
session.run(session.apply("prune.magnitude", {"sparsity": 0.5}))
pruned = session.workspace.entries()[-1]
print(json.dumps([root.id, pruned.id]), flush=True)
epochs = 0

def slow_after_two_epochs(step):  # so the kill lands inside an epoch, never after the run
    global epochs
    if isinstance(step.payload, EpochDone):
        epochs += 1
    elif epochs >= 2 and isinstance(step.payload, BatchDone):
        time.sleep(0.05)

session.run(session.train("digits", TrainConfig(**json.loads(sys.argv[2])), pruned.id),
            slow_after_two_epochs)
print("finished", flush=True)
"""


def _wait_for_checkpoint(folder: Path, child: subprocess.Popen[str], epochs: int) -> int:
    """Poll the project until a running run has checkpointed `epochs`; that epoch count.

    No clock decides: the child's training is finite, so the loop ends when it does."""
    while child.poll() is None:
        if (folder / "project.db").is_file():
            db = sqlite3.connect(f"{(folder / 'project.db').as_uri()}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT checkpoint_dir FROM runs WHERE status = 'running'"
                                  ).fetchall()
            except sqlite3.Error:
                rows = []
            finally:
                db.close()
            for (rel,) in rows:
                done = checkpoint_epoch(folder / rel)
                if done is not None and done >= epochs:
                    return done
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint of {epochs} epochs (child exit {child.poll()})")


def test_sigkill_mid_training_then_recover_and_resume(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(folder), json.dumps(CONFIG)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("["), child.stderr.read() if child.stderr else ""
        root_id, pruned_id = json.loads(line)
        killed_after = _wait_for_checkpoint(folder, child, 2)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    assert killed_after < CONFIG["epochs"]

    db = sqlite3.connect(folder / "project.db")  # the database survived the kill (WAL)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()

    session = _session()
    session.open_project(str(folder))
    root, pruned = session.workspace.entries()  # everything that had finished, nothing more
    assert (root.id, pruned.id) == (root_id, pruned_id)
    assert pruned.analysis.variant.parent == root.id
    assert pruned.results["report"].after["sparsity"] > 0.4
    (run,) = session.interrupted_runs()
    assert (run.kind, run.variant_id, run.epochs) == ("train", pruned.id, CONFIG["epochs"])
    assert run.resumable
    assert 2 <= (run.checkpoint_epoch() or 0) < CONFIG["epochs"]

    resumed = session.run(session.resume_run(run.id))
    assert resumed.analysis.variant.parent == pruned.id
    history = resumed.results["history"]
    assert [h["epoch"] for h in history] == list(range(1, CONFIG["epochs"] + 1))
    assert session.project.run(run.id).status == "finished"
    source = pruned.analysis.variant
    session.clear()

    # the same run, uninterrupted, from the same source variant and seed
    cfg = TrainConfig(**CONFIG)
    data = load_dataset("digits", source.inputs[0].shape, seed=cfg.seed)
    straight = run_job(train(source, data, cfg))
    assert straight.test is not None
    gap = abs(resumed.results["accuracy"] - straight.test.accuracy) * 100
    report = (f"\nresumed after {killed_after} of {CONFIG['epochs']} epochs: accuracy "
              f"{resumed.results['accuracy']:.4f} vs uninterrupted "
              f"{straight.test.accuracy:.4f} ({gap:.2f} points apart)")
    print(report)  # noqa: T201 (the number to report)
    assert gap <= 0.5

    with Project.open(folder) as project:  # the resumed variant was saved at once
        assert [r["id"] for r in project.rows()] == [root.id, pruned.id, resumed.id]
        assert project.interrupted_runs() == []

"""After a project opens, the window offers to resume a training run a crash interrupted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from workbench.core.jobs import run_job
from workbench.core.session.project import Project
from workbench.core.session.session import Session
from workbench.core.train.data import load_dataset
from workbench.core.train.training import TrainConfig, train


@pytest.fixture
def crashed(tmp_path: Path) -> Path:
    """A project of zoo:mlp whose 3-epoch run checkpointed 2 epochs, then its process died."""
    folder = tmp_path / "project"
    session = Session(remember_recent=False)
    project = session.save_as_project(str(folder))
    root = session.run(session.open("zoo:mlp"))
    variant = root.analysis.variant
    checkpoints = folder / "runs" / "crashed"
    config = TrainConfig(epochs=2, batch_size=128, seed=3, checkpoint_dir=str(checkpoints))
    run_job(train(variant, load_dataset("digits", variant.inputs[0].shape, seed=3), config))
    project.begin_run(root.id, "train", "digits",
                      {"epochs": 3, "batch_size": 128, "seed": 3}, checkpoints)
    session.clear()  # closes the project with its run still `running`
    return folder


def _answer(monkeypatch: pytest.MonkeyPatch, button: Any) -> list[str]:
    asked: list[str] = []

    def question(parent: Any, title: str, text: str, *args: Any) -> Any:
        asked.append(text)
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def test_yes_resumes_the_interrupted_run(qtbot: Any, main_window: Any, crashed: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _answer(monkeypatch, QMessageBox.StandardButton.Yes)
    main_window.show_dialogs = True
    with qtbot.waitSignal(main_window.training_finished, timeout=120_000) as blocker:
        assert main_window.open_project(str(crashed))
    assert asked == ["Training of zoo:mlp was interrupted at epoch 2 of 3. Resume?"]
    (new_id,) = blocker.args[0]
    root = main_window.workspace.entries()[0]
    trained = main_window.workspace.get(new_id)
    assert trained.analysis.variant.parent == root.id
    assert [h["epoch"] for h in trained.results["history"]] == [1, 2, 3]
    assert main_window.session.interrupted_runs() == []


def test_no_leaves_the_run_interrupted(qtbot: Any, main_window: Any, crashed: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _answer(monkeypatch, QMessageBox.StandardButton.No)
    main_window.show_dialogs = True
    assert main_window.open_project(str(crashed))
    assert len(asked) == 1
    assert not main_window.jobs.busy
    assert len(main_window.workspace) == 1
    assert len(main_window.session.interrupted_runs()) == 1


def test_no_question_without_dialogs(main_window: Any, crashed: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _answer(monkeypatch, QMessageBox.StandardButton.Yes)
    assert main_window.open_project(str(crashed))
    assert asked == []
    assert not main_window.jobs.busy
    with Project.open(crashed) as project:
        assert len(project.interrupted_runs()) == 1

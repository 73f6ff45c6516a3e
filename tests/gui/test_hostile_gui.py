"""Hostile files in the window: a clear message, nothing runs, and No means not opened."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from tests.conftest import open_and_wait


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def hostile_pickle(tmp_path: Path) -> Path:
    path = tmp_path / "payload.pt"
    with path.open("wb") as f:
        pickle.dump({"w": Payload(tmp_path / "MARKER")}, f, protocol=4)
    return path


def _decline_trust(qtbot: Any, window: Any, path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> list[tuple[str, str]]:
    """Open `path` answering No to the trust dialog; the (title, text) of each question."""
    asked: list[tuple[str, str]] = []

    def say_no(*args: Any, **kwargs: Any) -> QMessageBox.StandardButton:
        asked.append((args[1], args[2]))
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "warning", say_no)
    window.show_dialogs = True
    open_and_wait(qtbot, window, str(path))
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=10_000)
    return asked


def test_answering_no_to_the_trust_dialog(qtbot: Any, main_window: Any, hostile_pickle: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _decline_trust(qtbot, main_window, hostile_pickle, monkeypatch)
    assert [title for title, _ in asked] == ["Untrusted file"]
    assert "Not opened" in main_window.status_label.text()
    assert not main_window.progress.isVisible()
    assert not (hostile_pickle.parent / "MARKER").exists()
    assert main_window.workspace.selected is None


def test_hostile_and_broken_files_get_a_message(qtbot: Any, main_window: Any, tmp_path: Path,
                                                hostile_pickle: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x1b]0;HACKED\x07 not onnx")
    for path, expected in [(hostile_pickle, "--trust"), (garbage, "not an ONNX file")]:
        main_window.last_error = None
        open_and_wait(qtbot, main_window, str(path))
        qtbot.waitUntil(lambda: main_window.last_error is not None, timeout=10_000)
        assert expected in main_window.last_error
    assert not (tmp_path / "MARKER").exists()
    assert main_window.workspace.selected is None


def test_the_window_asks_before_opening_a_hostile_pt2(
        qtbot: Any, main_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A .pt2 whose symbolic shape would run Python: the trust dialog, and nothing runs."""
    import torch

    from tests.core.test_pt2_safety import _entries, _expr_str, _marker, _Net, _write

    monkeypatch.chdir(tmp_path)
    program = torch.export.export(_Net(), (torch.randn(2, 3, 8, 8),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    clean = tmp_path / "clean.pt2"
    torch.export.save(program, str(clean))
    entries = _entries(clean)
    _expr_str(entries, _marker("expr_str"))
    hostile = _write(tmp_path / "hostile.pt2", entries)
    asked = _decline_trust(qtbot, main_window, hostile, monkeypatch)
    assert len(asked) == 1
    assert "can run code" in asked[0][1]
    assert main_window.workspace.selected is None
    assert not (tmp_path / _marker("expr_str")).exists()
    open_and_wait(qtbot, main_window, str(clean))  # a clean archive opens with no prompt
    assert len(asked) == 1
    assert main_window.workspace.selected is not None


def test_a_pass_past_the_time_limit_is_abandoned(qtbot: Any, main_window: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings ▸ Pass time limit: a plugin that hangs gets an error, the window stays
    usable and the workspace unchanged."""
    import threading

    from workbench.core.passes.base import Pass

    release = threading.Event()

    class Hang(Pass):
        name = "test.hang"
        title = "Hangs"

        def run(self, variant: Any, params: Any, ctx: Any) -> Any:
            release.wait(30)
            raise RuntimeError("released")

    monkeypatch.setattr(main_window.registry, "get", lambda name: Hang())
    main_window.settings.set_pass_time_limit(0.5)
    open_and_wait(qtbot, main_window, "zoo:mlp")
    try:
        with qtbot.waitSignal(main_window.pass_failed, timeout=30_000) as blocker:
            main_window.apply_pass("test.hang", {})
    finally:
        release.set()
    assert "longer than 0.5 s" in blocker.args[0]
    qtbot.waitUntil(lambda: not main_window.jobs.busy, timeout=10_000)
    assert len(main_window.workspace) == 1

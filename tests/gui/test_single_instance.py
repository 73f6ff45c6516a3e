"""`workbench FILE` with a window running: the file opens there, the second launch exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QDir

from workbench.gui.single_instance import (
    InstanceServer,
    hand_off,
    parse_message,
    serve_window,
    server_name,
)

REPO = Path(__file__).resolve().parents[2]


def test_second_launch_hands_the_file_to_the_running_window(
        qtbot: Any, main_window: Any, onnx_mlp: Path, tmp_path: Path) -> None:
    server = serve_window(main_window)
    assert server is not None
    try:
        # a real second `workbench FILE`, from another folder, with a relative path
        env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
        env.pop("WORKBENCH_NEW_WINDOW", None)
        other = tmp_path / "elsewhere"
        other.mkdir()
        proc = subprocess.Popen([sys.executable, "-m", "workbench",
                                 os.path.relpath(onnx_mlp, other)], cwd=other, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=60_000)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        qtbot.waitUntil(lambda: len(main_window.workspace) == 1, timeout=60_000)
        assert main_window.workspace.selected.analysis.variant.name.startswith("mlp")
    finally:
        server.close()


def test_load_options_travel_with_the_file(qtbot: Any) -> None:
    name = f"{server_name()}-options"
    server = InstanceServer(name=name)
    assert server.listen()
    seen: list[tuple[str, dict[str, Any]]] = []
    server.open_requested.connect(lambda s, o: seen.append((s, o)))
    try:
        script = ("import sys; from PySide6.QtCore import QCoreApplication; "
                  "from workbench.gui.single_instance import hand_off; app = QCoreApplication([]); "
                  "sys.exit(0 if hand_off('zoo:mlp', {'input_shape': (2, 8), 'trust': False, "
                  f"'arch': None}}, name={name!r}) else 3)")
        proc = subprocess.Popen([sys.executable, "-c", script],
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=30_000)
        assert proc.returncode == 0
        assert seen == [("zoo:mlp", {"input_shape": (2, 8), "trust": False})]
    finally:
        server.close()


def test_nobody_listening_means_start_a_window(qtbot: Any) -> None:
    assert hand_off("zoo:mlp", name=f"{server_name()}-nobody") is False


def test_a_stale_socket_is_taken_over(qtbot: Any) -> None:
    """A crashed window leaves its socket file behind; the next window listens anyway."""
    import socket as pysocket

    name = f"{server_name()}-stale"
    path = Path(QDir.tempPath()) / name
    path.unlink(missing_ok=True)
    dead = pysocket.socket(pysocket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody accepts: what a killed window leaves
    assert path.exists()
    assert hand_off("zoo:mlp", name=name) is False
    server = InstanceServer(name=name)
    try:
        assert server.listen()
        assert server.server.fullServerName() == str(path)
    finally:
        server.close()


def test_bad_requests_are_refused() -> None:
    assert parse_message(b"not json") is None
    assert parse_message(b'{"open": 3}') is None
    assert parse_message(b'["open"]') is None
    assert parse_message(b'{"open": "a.onnx"}') == ("a.onnx", {})


def test_names_are_per_user_and_settings_folder(monkeypatch: Any, tmp_path: Path) -> None:
    first = server_name()
    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(tmp_path / "other"))
    assert server_name() != first
    assert server_name().startswith("workbench-")

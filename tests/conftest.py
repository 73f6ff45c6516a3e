"""Shared fixtures: an isolated config folder, small real models, and the main window."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_FIGURES: list[str] = []


@pytest.fixture
def perf_figure() -> Callable[[str], None]:
    """Record a measured figure; `pytest -m perf` prints them all at the end."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("perf figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings and cached artifacts never touch the user's real folders."""
    from workbench.core.model.artifact_cache import set_cache_dir

    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    set_cache_dir(None)
    yield
    set_cache_dir(None)  # a session with a project points it at the project's folder


def light_models() -> list[Path]:
    """The real architectures shipped (with light weights) in the onnx wheel."""
    import onnx

    folder = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    return sorted(folder.glob("*.onnx"))


def make_onnx_mlp(path: Path, hidden: int = 16, dynamic_batch: bool = True) -> Path:
    """Write a small two-layer ONNX MLP (MatMul + Add + Relu) with a dynamic batch."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, hidden)).astype(np.float32), "fc1.w")
    b1 = numpy_helper.from_array(np.zeros(hidden, np.float32), "fc1.b")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, 4)).astype(np.float32), "fc2.w")
    batch: Any = "batch" if dynamic_batch else 1
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "fc1.w"], ["h0"], name="/fc1/MatMul"),
            helper.make_node("Add", ["h0", "fc1.b"], ["h1"], name="/fc1/Add"),
            helper.make_node("Relu", ["h1"], ["h2"], name="/act/Relu"),
            helper.make_node("MatMul", ["h2", "fc2.w"], ["y"], name="/fc2/MatMul"),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])],
        initializer=[w1, b1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=10)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def onnx_mlp(tmp_path: Path) -> Path:
    return make_onnx_mlp(tmp_path / "mlp.onnx")


@pytest.fixture
def main_window(qtbot: Any) -> Iterator[Any]:
    """A main window with dialogs turned off (errors land in `last_error`)."""
    from workbench.gui.app import create_app
    from workbench.gui.qt_main_window import QtMainWindow

    create_app()
    window = QtMainWindow()
    window.show_dialogs = False
    window.show()
    yield window
    # Closed here, not by pytest-qt (which closes its widgets before fixtures end): a test
    # may have turned dialogs on, and closing must never wait on a modal question.
    window.show_dialogs = False
    window.jobs.cancel()
    window.close()
    window.deleteLater()


def open_and_wait(qtbot: Any, window: Any, source: str, **options: Any) -> None:
    """Open `source` in the window's worker and wait until it is in the workspace."""
    with qtbot.waitSignal(window.jobs.finished, timeout=60_000):
        window.open_source(source, **options)
